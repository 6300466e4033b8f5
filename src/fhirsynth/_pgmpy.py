"""The one place fhirsynth imports pgmpy.

pgmpy 1.1 warns on import that ``pgmpy.estimators.StructureScore`` is deprecated (a
``FutureWarning`` raised while ``pgmpy.inference`` imports its estimators).  fhirsynth uses
neither, so this module imports the pgmpy classes fhirsynth needs with that one warning
ignored (matched by category, message and module) and every other warning left alone.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["network_classes"]

#: the start of the one pgmpy warning ignored, and the modules it may come from
DEPRECATION = r"`pgmpy\.estimators\.StructureScore` is deprecated"
_MODULE = r"pgmpy(\..*)?$"


@contextmanager
def _without_deprecation() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=DEPRECATION, category=FutureWarning,
                                module=_MODULE)
        yield


def network_classes() -> tuple[Any, Any]:
    """pgmpy's ``(DiscreteBayesianNetwork, TabularCPD)``."""
    with _without_deprecation():
        from pgmpy.factors.discrete import TabularCPD
        from pgmpy.models import DiscreteBayesianNetwork
    return DiscreteBayesianNetwork, TabularCPD
