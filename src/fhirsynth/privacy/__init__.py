"""Privacy parameters, the per-run accountant and the persistent per-source ledger."""

from fhirsynth.privacy.budget import Accountant, PrivacyBudget, Step

__all__ = ["Accountant", "PrivacyBudget", "Step"]
