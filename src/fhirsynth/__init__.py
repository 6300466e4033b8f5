"""fhirsynth: differentially private synthetic patients from FHIR R4 and clinical CSV."""

import logging

from fhirsynth.domain import Column, TableSpec, load_spec
from fhirsynth.errors import (
    ConfigError,
    FhirsynthError,
    InputError,
    PrivacyBudgetError,
    PrivacyLeakWarning,
)
from fhirsynth.privacy.budget import Accountant, PrivacyBudget, Step

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "Accountant",
    "Column",
    "ConfigError",
    "FhirsynthError",
    "InputError",
    "PrivacyBudget",
    "PrivacyBudgetError",
    "PrivacyLeakWarning",
    "Step",
    "TableSpec",
    "__version__",
    "load_spec",
]
