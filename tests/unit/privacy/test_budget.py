import math

import pytest

from fhirsynth.errors import PrivacyBudgetError
from fhirsynth.privacy.budget import Accountant, PrivacyBudget, Step


@pytest.mark.parametrize(
    ("eps", "message"),
    [
        (0, "epsilon (0) must be a finite number > 0"),
        (-1, "epsilon (-1) must be a finite number > 0"),
        (math.inf, "epsilon (inf) must be a finite number > 0"),
        (math.nan, "epsilon (nan) must be a number, not NaN"),
        ("abc", "epsilon ('abc') must be a real number, not str"),
        (True, "epsilon (True) must be a real number, not bool"),
        (1 + 2j, "epsilon ((1+2j)) must be a real number, not complex"),
    ],
)
def test_invalid_epsilon_names_the_value(eps, message):
    with pytest.raises(PrivacyBudgetError) as info:
        PrivacyBudget(epsilon=eps)
    assert str(info.value) == message


@pytest.mark.parametrize("delta", [-0.1, 1, 1.5])
def test_delta_out_of_range(delta):
    with pytest.raises(PrivacyBudgetError, match=r"delta .* must lie in \[0, 1\)"):
        PrivacyBudget(epsilon=1, delta=delta)


def test_parse_from_text():
    assert PrivacyBudget.parse("1.5", "1e-6") == PrivacyBudget(epsilon=1.5, delta=1e-6)
    with pytest.raises(PrivacyBudgetError, match="epsilon \\('abc'\\) must be a number"):
        PrivacyBudget.parse("abc")


def test_plausibility_is_graded_not_blocking():
    assert PrivacyBudget(epsilon=1e9).plausibility()
    assert PrivacyBudget(epsilon=1).plausibility() == []


def test_accountant_refuses_overspend_before_recording():
    acc = Accountant(PrivacyBudget(epsilon=1.5))
    for i in range(7):
        acc.spend(Step(name=f"m{i}", mechanism="Laplace", epsilon=0.2))
    with pytest.raises(PrivacyBudgetError, match="only 0.1 of 1.5 remains"):
        acc.spend(Step(name="m7", mechanism="Laplace", epsilon=0.2))
    assert len(acc.steps) == 7
    acc.spend(Step(name="last", mechanism="Laplace", epsilon=0.1))
    assert acc.spent_epsilon == pytest.approx(1.5)
    assert acc.table()["steps"][-1]["name"] == "last"


@pytest.mark.parametrize("eps", [1e-320, 5e-324, 1e-9, 9.99e-7])
def test_epsilon_below_the_floor_is_refused(eps):
    from fhirsynth.privacy.budget import MIN_EPSILON

    with pytest.raises(PrivacyBudgetError, match=r"is below 1e-06: the noise would drown"):
        PrivacyBudget(epsilon=eps)
    with pytest.raises(PrivacyBudgetError, match="is below 1e-06"):
        PrivacyBudget.parse(str(eps))
    assert PrivacyBudget(epsilon=MIN_EPSILON).epsilon == MIN_EPSILON


def test_tiny_epsilon_on_the_cli_is_one_clear_error_before_anything_is_read(tmp_path):
    from typer.testing import CliRunner

    from fhirsynth.cli import app

    ledger, out = tmp_path / "l.sqlite", tmp_path / "out"
    r = CliRunner().invoke(app, ["run", str(tmp_path / "absent.csv"), "--epsilon", "1e-320",
                                 "--out", str(out), "--ledger", str(ledger)])
    assert r.exit_code == 2, r.output
    assert "is below 1e-06" in r.output and "internal error" not in r.output
    assert "absent.csv" not in r.output  # refused before the input is looked at
    assert not ledger.exists() and not out.exists()
