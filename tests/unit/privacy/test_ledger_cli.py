"""The ledger on the command line, and case 018 (a second run on the same data)."""

import pytest
from typer.testing import CliRunner

from fhirsynth.cli import app
from fhirsynth.errors import BudgetExhaustedError
from fhirsynth.privacy.budget import PrivacyBudget
from fhirsynth.privacy.ledger import Ledger, source_fingerprint


def test_set_cap_and_show(tmp_path):
    src = tmp_path / "cohort.csv"
    src.write_text("a\n1\n", encoding="utf-8")
    led = tmp_path / "ledger.sqlite"
    runner = CliRunner()
    res = runner.invoke(app, ["ledger", "set-cap", str(src), "--epsilon", "2", "--delta",
                              "1e-6", "--label", "cohort", "--ledger", str(led)])
    assert res.exit_code == 0, res.output
    fp = source_fingerprint([src])
    Ledger(led).charge(fp, PrivacyBudget(epsilon=0.5), run_id="run-1")
    Ledger(led).complete("run-1", ["synthetic.csv", "report.pdf"])
    out = runner.invoke(app, ["ledger", "show", "--ledger", str(led)]).output
    assert fp in out and "cap: epsilon 2, delta 1e-06 (custodian)" in out
    assert "spent: epsilon 0.5, delta 0 in 1 release(s)" in out
    assert "run run-1" in out and "completed" in out and "synthetic.csv" in out


def test_cap_below_what_was_spent_is_refused_unless_forced(tmp_path):
    # a trial's cap below the spent total was accepted with only a warning
    led = tmp_path / "ledger.sqlite"
    fp = "a" * 64
    Ledger(led).charge(fp, PrivacyBudget(epsilon=1.0), run_id="run-1")
    runner = CliRunner()
    res = runner.invoke(app, ["ledger", "set-cap", fp, "--epsilon", "0.5", "--ledger",
                              str(led)])
    said = " ".join(res.output.split())
    assert res.exit_code == 2, said
    assert str(led) in said and "already spent epsilon 1, delta 0 in 1 release(s)" in said
    assert "requested cap (epsilon 0.5, delta 0)" in said and "--force" in said
    assert "the cap was not changed" in said
    (before,) = Ledger(led).summary()
    assert before.cap_epsilon != 0.5
    res = runner.invoke(app, ["ledger", "set-cap", fp, "--epsilon", "0.5", "--force",
                              "--ledger", str(led)])
    assert res.exit_code == 0, res.output
    assert "spent epsilon 1" in res.output and "no further release is possible" in res.output
    assert Ledger(led).summary()[0].cap_epsilon == 0.5
    ok = runner.invoke(app, ["ledger", "set-cap", fp, "--epsilon", "3", "--ledger", str(led)])
    assert ok.exit_code == 0 and "warning" not in ok.output
    with pytest.raises(BudgetExhaustedError):
        Ledger(led).charge(fp, PrivacyBudget(epsilon=2.5), run_id="run-2")


def test_bad_cap_is_one_clear_error(tmp_path):
    res = CliRunner().invoke(app, ["ledger", "set-cap", "f" * 64, "--epsilon", "nan",
                                   "--ledger", str(tmp_path / "l.sqlite")])
    assert res.exit_code == 2 and "epsilon" in res.output and "Traceback" not in res.output


@pytest.mark.shared_data
def test_case_018_second_run_is_refused(shared_cases, tmp_path):
    case = shared_cases / "018-epsilon-budget-split-and-exhaustion"
    led = Ledger(tmp_path / "ledger.sqlite")
    fp = source_fingerprint([case / "input.csv"])
    led.charge(fp, PrivacyBudget(epsilon=1.5), run_id="first", label="018")
    led.complete("first", ["synthetic.csv"])
    with pytest.raises(BudgetExhaustedError,
                       match=r"budget exhausted for dataset 018: spent epsilon 1.5 of cap 1.5, "
                             r"this release needs 1.5"):
        led.charge(fp, PrivacyBudget(epsilon=1.5), run_id="second")
    assert [r.run_id for r in led.summary(fp)[0].releases] == ["first"]


def test_set_cap_without_delta_keeps_the_delta_cap_and_the_refusal_names_delta(tmp_path):
    src = tmp_path / "cohort.csv"
    src.write_text("a\n1\n", encoding="utf-8")
    led = tmp_path / "ledger.sqlite"
    fp = source_fingerprint([src])
    Ledger(led).charge(fp, PrivacyBudget(epsilon=1, delta=1e-9), run_id="r1")  # sets the cap
    runner = CliRunner()
    res = runner.invoke(app, ["ledger", "set-cap", str(src), "--epsilon", "3",
                              "--ledger", str(led)])
    assert res.exit_code == 0, res.output
    assert "delta 1e-09" in res.output  # kept, not silently reset to 0
    (summary,) = Ledger(led).summary()
    assert summary.cap_epsilon == 3 and summary.cap_delta == pytest.approx(1e-9)
    with pytest.raises(BudgetExhaustedError, match="--delta"):
        Ledger(led).charge(fp, PrivacyBudget(epsilon=1, delta=1e-6))


def test_a_large_cap_needs_the_same_allowance_as_a_large_release(tmp_path):
    # a trial set a cap of epsilon 1e6 without a word; a release of that size is refused
    led = tmp_path / "l.sqlite"
    fp = "e" * 64
    res = CliRunner().invoke(app, ["ledger", "set-cap", fp, "--epsilon", "1e6", "--ledger",
                                   str(led)])
    assert res.exit_code == 2 and "--allow-large-epsilon" in res.output
    res = CliRunner().invoke(app, ["ledger", "set-cap", fp, "--epsilon", "2", "--delta", "0.01",
                                   "--ledger", str(led)])
    assert res.exit_code == 2 and "--allow-large-delta" in res.output
    # nothing was recorded by the refusals
    assert not led.exists() or not [x for x in Ledger(led).summary() if x.fingerprint == fp]
    ok = CliRunner().invoke(app, ["ledger", "set-cap", fp, "--epsilon", "20", "--ledger",
                                  str(led), "--allow-large-epsilon"])
    assert ok.exit_code == 0, ok.output


def test_set_cap_with_a_label_renames_the_source(tmp_path):
    # a trial's set-cap --label on a known source exited 0 and changed nothing
    led = tmp_path / "l.sqlite"
    fp = "d" * 64
    Ledger(led).charge(fp, PrivacyBudget(epsilon=1.0), run_id="r1", label="first name")
    ok = CliRunner().invoke(app, ["ledger", "set-cap", fp, "--epsilon", "2", "--label",
                                  "second name", "--ledger", str(led)])
    assert ok.exit_code == 0, ok.output
    assert Ledger(led).summary(fp)[0].label == "second name"
    # without --label the name stays
    CliRunner().invoke(app, ["ledger", "set-cap", fp, "--epsilon", "3", "--ledger", str(led)])
    assert Ledger(led).summary(fp)[0].label == "second name"


def test_set_cap_and_show_take_the_name_or_fingerprint_start_that_show_prints(tmp_path):
    # trial 24: `ledger set-cap t24-bulk-plain` (the name `ledger show` printed) failed with
    # "input 't24-bulk-plain' does not exist"; only the 64-hex fingerprint worked
    led = tmp_path / "l.sqlite"
    a, b = "ab12" * 16, "ab13" * 16
    Ledger(led).charge(a, PrivacyBudget(epsilon=1.0), run_id="r1", label="bulk-plain")
    Ledger(led).charge(b, PrivacyBudget(epsilon=1.0), run_id="r2", label="other")
    runner = CliRunner()
    ok = runner.invoke(app, ["ledger", "set-cap", "bulk-plain", "--epsilon", "2",
                             "--ledger", str(led)])
    assert ok.exit_code == 0, ok.output
    assert Ledger(led).summary(a)[0].cap_epsilon == 2.0
    assert Ledger(led).summary(b)[0].cap_epsilon == 1.0  # the other source is untouched
    ok = runner.invoke(app, ["ledger", "set-cap", b[:10], "--epsilon", "3", "--ledger",
                             str(led)])
    assert ok.exit_code == 0, ok.output
    assert Ledger(led).summary(b)[0].cap_epsilon == 3.0
    shown = runner.invoke(app, ["ledger", "show", "other", "--ledger", str(led)]).output
    assert b in shown and a not in shown
    # a start shared by two sources is refused, naming both; an unknown name says what
    # the argument may be
    both = runner.invoke(app, ["ledger", "set-cap", "ab12ab1", "--epsilon", "2",
                               "--ledger", str(led)])
    assert both.exit_code == 2 and "Traceback" not in both.output
    said = " ".join(both.output.split())
    assert "neither an input path nor a source" in said  # 7 digits: not a prefix
    both = runner.invoke(app, ["ledger", "set-cap", "ab1", "--epsilon", "2", "--ledger",
                               str(led)])
    assert "neither an input path" in " ".join(both.output.split())
    two = Ledger(led)
    two.charge("ab12" * 15 + "ffff", PrivacyBudget(epsilon=1.0), run_id="r3", label="x")
    res = runner.invoke(app, ["ledger", "set-cap", "ab12ab12", "--epsilon", "2", "--ledger",
                              str(led)])
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "2 sources" in said and "ab12ab12ab12" in said
