"""Which metric implementation the benchmark scores with.

The project's single implementation is ``fhirsynth.evaluate`` (fidelity / privacy); until it
is on this branch the temporary ``benchmarks.metrics_fallback`` stands in, and every result
file records which one scored it (``metrics_source``).
"""

from __future__ import annotations

import importlib.util

from benchmarks import metrics_fallback as _fallback

SOURCE = ("fhirsynth.evaluate (not wired yet: fallback used)"
          if importlib.util.find_spec("fhirsynth.evaluate") else "benchmarks.metrics_fallback")
evaluate = _fallback.evaluate
tstr_auc = _fallback.tstr_auc

__all__ = ["SOURCE", "evaluate", "tstr_auc"]
