"""Evaluation of a synthetic table: fidelity, privacy-risk tests and the Safe Harbor scan."""

from fhirsynth.evaluate.fidelity import describe, evaluate_fidelity
from fhirsynth.evaluate.privacy import evaluate_privacy
from fhirsynth.evaluate.safe_harbor import SafeHarborReport, scan_fhir, scan_table
from fhirsynth.evaluate.utility import ml_utility

__all__ = [
    "SafeHarborReport",
    "describe",
    "evaluate_fidelity",
    "evaluate_privacy",
    "ml_utility",
    "scan_fhir",
    "scan_table",
]
