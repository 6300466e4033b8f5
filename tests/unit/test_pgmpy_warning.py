"""pgmpy's import-time FutureWarning does not reach users of the Python API; others do."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

# a tiny fit, the pgmpy network and the report's model summary, then a
# FutureWarning of our own, which must still be an error under -W error::FutureWarning
SCRIPT = textwrap.dedent("""
    import warnings
    import numpy as np
    import pandas as pd
    import fhirsynth
    from fhirsynth import Synthesizer
    from fhirsynth.domain import TableSpec
    from fhirsynth.report.summary import model_summary

    before = list(warnings.filters)
    spec = TableSpec.from_dict({"name": "t", "columns": {
        "a": {"type": "categorical", "domain": ["x", "y"]},
        "b": {"type": "integer", "bounds": [0, 9]}}})
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"a": rng.choice(["x", "y"], 200), "b": rng.integers(0, 10, 200)})
    synth = Synthesizer(spec, epsilon=1.0, random_state=1).fit(table)
    synth.model.network
    summary = model_summary(synth.model)
    assert len(summary["released_marginals"]) == 2
    assert warnings.filters == before, "the pgmpy filter leaked"
    try:
        warnings.warn("another future change", FutureWarning)
    except FutureWarning:
        print("other FutureWarnings still raise")
""")


def test_api_use_survives_error_on_future_warning():
    proc = subprocess.run([sys.executable, "-W", "error::FutureWarning", "-c", SCRIPT],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "other FutureWarnings still raise"
    assert "pgmpy" not in proc.stderr


def test_only_that_pgmpy_warning_is_ignored():
    from fhirsynth._pgmpy import _without_deprecation

    dep = "`pgmpy.estimators.StructureScore` is deprecated and will be removed in v1.3.0."
    emitted = [("`pgmpy.models.Other` is deprecated", FutureWarning, "pgmpy.models"),
               (dep, FutureWarning, "pgmpy.estimators"),  # the one ignored
               (dep, FutureWarning, "somewhere.else"),
               (dep, DeprecationWarning, "pgmpy.estimators")]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with _without_deprecation():
            for message, category, module in emitted:
                warnings.warn_explicit(message, category, "x.py", 1, module=module)
    assert [(str(w.message), w.category) for w in seen] == [
        (m, c) for i, (m, c, _) in enumerate(emitted) if i != 1]
