"""Every exception and warning fhirsynth raises, in one place.

The tree::

    FhirsynthError                      base of everything raised on purpose
    ├── ConfigError(ValueError)         bad option, spec or schema (names the field and value)
    │   └── SpecError                   a feature spec / schema file that does not parse
    ├── PrivacyBudgetError(ValueError)  invalid (epsilon, delta) or a release over the cap
    │   └── BudgetExhaustedError        the ledger's cap for a source would be passed
    ├── InputError                      input that cannot be read (file, line or entry, field)
    │   ├── FHIRValidationError         one or more invalid FHIR resources (collects them all)
    │   │   └── FHIRVersionError        a resource of another FHIR version than the one configured
    │   └── TableInputError             a CSV row or column that does not fit its schema
    ├── ModelError                      a model that cannot be fitted, saved or loaded
    │   ├── TooFewRowsError             below the minimum cohort size for a DP fit
    │   └── NotFittedError(AttributeError)  sampling or reporting before fit
    ├── EvidenceError(ValueError)       conditional sampling on an unknown column or value,
    │                                   or evidence the model gives probability zero
    ├── ReportError                     a report or audit record that cannot be written/verified
    └── ExportError                     synthetic output that cannot be written or does not
                                        validate (a bug, never bad input)

    PrivacyLeakWarning(RuntimeWarning)  something was read off the data without noise
    ReproducibleNoiseWarning(RuntimeWarning)  the DP noise was drawn from a fixed seed
    LowUtilityWarning(UserWarning)      the fit is valid but unlikely to be useful
    SafeHarborWarning(UserWarning)      samples of a spec could fail the Safe Harbor scan
    LargeBudgetWarning(UserWarning)     an epsilon or delta above the usual range
    TableInputWarning(UserWarning)      a table is accepted, but part of it is probably not
                                        what was meant (values clipped or mapped to 'other',
                                        rows repeated)

Messages never quote a value from the patient data: they name files, positions (line or
entry index), resource types, fields, and the *kind* of problem.  Resource ids and
references are never quoted: in Bulk exports the Patient id is the MRN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "BudgetExhaustedError",
    "ConfigError",
    "EvidenceError",
    "ExportError",
    "FHIRValidationError",
    "FHIRVersionError",
    "FhirsynthError",
    "InputError",
    "Issue",
    "LargeBudgetWarning",
    "LowUtilityWarning",
    "ModelError",
    "NotFittedError",
    "PrivacyBudgetError",
    "PrivacyLeakWarning",
    "ReportError",
    "ReproducibleNoiseWarning",
    "SafeHarborWarning",
    "SpecError",
    "TableInputError",
    "TableInputWarning",
    "TooFewRowsError",
]


class FhirsynthError(Exception):
    """Base class of every error fhirsynth raises on purpose."""


class ConfigError(FhirsynthError, ValueError):
    """An option, spec or schema value is invalid; the message names field and value."""


class SpecError(ConfigError):
    """A feature spec or table schema file is malformed."""


class PrivacyBudgetError(FhirsynthError, ValueError):
    """Invalid privacy parameters, or a plan that would spend more than declared."""


class BudgetExhaustedError(PrivacyBudgetError):
    """A release would pass the custodian's cap recorded in the ledger for its source."""


@dataclass(frozen=True)
class Issue:
    """One problem found in the input.

    ``where`` is a file with a line or entry index (``bundle.json entry[3]``), ``resource``
    the resource type, ``field`` the element path, ``problem`` what is wrong (never a quoted
    patient value).  A ``resource`` given as ``Type/id`` keeps its type only: ids may be
    MRNs, and the file and position already find the resource.
    """

    where: str
    problem: str
    resource: str = ""
    field: str = ""

    def __post_init__(self) -> None:
        if "/" in self.resource:
            object.__setattr__(self, "resource", self.resource.partition("/")[0])

    def __str__(self) -> str:
        parts = [self.where]
        if self.resource:
            parts.append(self.resource)
        if self.field:
            parts.append(self.field)
        return f"{': '.join(parts)}: {self.problem}"


class InputError(FhirsynthError):
    """Input that cannot be read or trusted."""

    def __init__(self, message: str, issues: Sequence[Issue] = ()) -> None:
        self.issues = tuple(issues)
        if self.issues:
            shown = "\n".join(f"  - {i}" for i in self.issues[:20])
            more = len(self.issues) - 20
            if more > 0:
                shown += f"\n  ... and {more} more"
            message = f"{message}\n{shown}"
        super().__init__(message)


class FHIRValidationError(InputError):
    """One or more FHIR resources failed validation; ``issues`` lists every one."""


class FHIRVersionError(FHIRValidationError):
    """A resource (type, profile) belongs to another FHIR version than the configured one."""


class TableInputError(InputError):
    """A clinical CSV does not fit its schema."""


class ModelError(FhirsynthError):
    """A model cannot be fitted, saved or loaded."""


class TooFewRowsError(ModelError):
    """The cohort is smaller than the configured minimum for a DP fit."""


class NotFittedError(ModelError, AttributeError):
    """The synthesizer was used before ``fit``."""


class EvidenceError(FhirsynthError, ValueError):
    """Evidence for conditional sampling names an unknown column or value, or is impossible."""


class ReportError(FhirsynthError):
    """A report or audit record cannot be written or does not verify."""


class ExportError(FhirsynthError):
    """Synthetic output cannot be written, or a generated resource does not validate."""


class PrivacyLeakWarning(RuntimeWarning):
    """Something that shapes the output was read off the private data without noise."""


class ReproducibleNoiseWarning(RuntimeWarning):
    """The DP noise was drawn from a fixed seed (``random_state``): whoever knows or guesses
    the seed can regenerate and remove it, so the model is a test model, not for sharing."""


class LowUtilityWarning(UserWarning):
    """The fit is valid but its output is unlikely to be useful (tiny cohort, tiny epsilon)."""


class TableInputWarning(UserWarning):
    """A patient table is accepted, but part of it is probably not what was meant: values
    clipped to their bounds or mapped to ``other``, rows that repeat an earlier row."""


class SafeHarborWarning(UserWarning):
    """Samples of this spec could fail the Safe Harbor scan (an age past 89, a date part, a
    name that is an identifier); ``fhirsynth run`` and ``fit`` refuse such a spec."""


class LargeBudgetWarning(UserWarning):
    """An epsilon or delta above the usual range: valid, but the guarantee is weak."""
