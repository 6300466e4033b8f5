"""A delta cap of 0 refuses a release with delta > 0 in its own words (trial 12: it said
"budget exhausted ... spent delta 0 of cap 0")."""

import pytest

from fhirsynth.errors import BudgetExhaustedError
from fhirsynth.privacy.budget import PrivacyBudget
from fhirsynth.privacy.ledger import Ledger


def test_a_zero_delta_cap_asks_for_pure_epsilon_dp(tmp_path) -> None:
    book = Ledger(tmp_path / "l.sqlite")
    book.set_cap("a" * 64, 2.0, 0.0, label="cohort")
    with pytest.raises(BudgetExhaustedError, match=r"delta cap of dataset cohort is 0: its "
                       r"releases must be pure epsilon-DP \(--delta 0\)") as err:
        book.charge("a" * 64, PrivacyBudget(epsilon=1.0, delta=1e-9))
    assert "exhausted" not in str(err.value)
    book.charge("a" * 64, PrivacyBudget(epsilon=1.0, delta=0.0))  # pure epsilon-DP fits
    book.set_cap("b" * 64, 2.0, 1e-9, label="other")
    book.charge("b" * 64, PrivacyBudget(epsilon=1.0, delta=1e-9))
    with pytest.raises(BudgetExhaustedError, match="spent delta 1e-09 of cap 1e-09"):
        book.charge("b" * 64, PrivacyBudget(epsilon=0.5, delta=1e-9))
