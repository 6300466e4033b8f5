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


def test_spent_is_never_written_above_the_total_for_a_rounding_excess():
    acc = Accountant(PrivacyBudget(epsilon=1.0, delta=1e-6))
    acc.spend(Step(name="a", mechanism="laplace", epsilon=0.5, delta=5e-7))
    acc.spend(Step(name="b", mechanism="laplace", epsilon=0.5000000000000002,
                   delta=5.000000000000001e-7))
    assert acc.spent_epsilon > 1.0  # the exact sum passes by one unit in the last place
    table = acc.table()
    assert table["epsilon_spent"] == 1.0 and table["delta_spent"] == 1e-6
    zcdp = Accountant(PrivacyBudget(epsilon=1.0, delta=1e-6), rho_total=0.3)
    zcdp.spend(Step(name="a", mechanism="gaussian", epsilon=0.5, rho=0.15))
    zcdp.spend(Step(name="b", mechanism="gaussian", epsilon=0.5000000000000002,
                    rho=0.15000000000000002))
    assert math.fsum([0.15, 0.15000000000000002]) > 0.3
    assert zcdp.table()["rho_spent"] == 0.3 and zcdp.table()["epsilon_spent"] == 1.0


def test_a_real_spent_below_the_total_is_kept_as_is():
    acc = Accountant(PrivacyBudget(epsilon=1.0))
    acc.spend(Step(name="a", mechanism="laplace", epsilon=0.25))
    assert acc.table()["epsilon_spent"] == 0.25


@pytest.mark.parametrize("eps", [1.0, 0.3])
def test_fitted_model_spent_at_most_the_total(shared_data, eps):
    import json
    import warnings
    from pathlib import Path

    from fhirsynth import Synthesizer, load_spec, read_input

    spec = load_spec(shared_data / "tabular" / "stroke.schema.json")
    table, _ = read_input([Path(shared_data / "tabular" / "stroke.csv")], spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Synthesizer(spec, epsilon=eps, random_state=0).fit(table)
    budget = json.loads(json.dumps(model.model_.budget))
    assert budget["epsilon_spent"] <= budget["epsilon_total"] == eps
