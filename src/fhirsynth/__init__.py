"""fhirsynth: differentially private synthetic patients from FHIR R4 and clinical CSV.

The public API: :class:`Synthesizer` (fit a DP Bayesian network to a table with a public
:class:`TableSpec`, then sample), :func:`run_release` with :class:`RunConfig` (the whole job:
ingest, learn, sample, export, reports), the privacy objects, and every exception and
warning class (the tree is drawn in :mod:`fhirsynth.errors`).  Heavy modules are
imported on first use, so ``import fhirsynth`` stays fast.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from fhirsynth.domain import Column, TableSpec, load_spec
from fhirsynth.errors import (
    BudgetExhaustedError,
    ConfigError,
    EvidenceError,
    ExportError,
    FhirsynthError,
    FHIRValidationError,
    FHIRVersionError,
    InputError,
    LargeBudgetWarning,
    LowUtilityWarning,
    ModelError,
    NotFittedError,
    PrivacyBudgetError,
    PrivacyLeakWarning,
    ReportError,
    ReproducibleNoiseWarning,
    SafeHarborWarning,
    SpecError,
    TableInputError,
    TableInputWarning,
    TooFewRowsError,
)
from fhirsynth.privacy.budget import Accountant, PrivacyBudget, Step

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

_LAZY = {
    "FittedModel": "fhirsynth.model",
    "LearnConfig": "fhirsynth.config",
    "Ledger": "fhirsynth.privacy.ledger",
    "RunConfig": "fhirsynth.pipeline",
    "RunResult": "fhirsynth.pipeline",
    "Synthesizer": "fhirsynth.synthesizer",
    "read_input": "fhirsynth.ingest",
    "run_release": "fhirsynth.pipeline",
}

__all__ = [
    "Accountant",
    "BudgetExhaustedError",
    "Column",
    "ConfigError",
    "EvidenceError",
    "ExportError",
    "FHIRValidationError",
    "FHIRVersionError",
    "FhirsynthError",
    "FittedModel",
    "InputError",
    "LargeBudgetWarning",
    "LearnConfig",
    "Ledger",
    "LowUtilityWarning",
    "ModelError",
    "NotFittedError",
    "PrivacyBudget",
    "PrivacyBudgetError",
    "PrivacyLeakWarning",
    "ReportError",
    "ReproducibleNoiseWarning",
    "RunConfig",
    "RunResult",
    "SafeHarborWarning",
    "SpecError",
    "Step",
    "Synthesizer",
    "TableInputError",
    "TableInputWarning",
    "TableSpec",
    "TooFewRowsError",
    "__version__",
    "load_spec",
    "read_input",
    "run_release",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fhirsynth' has no attribute {name!r}")
