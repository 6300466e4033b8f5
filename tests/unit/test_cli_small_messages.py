"""Small CLI messages from new users' trials: fit on a folder, ledger show on no ledger,
columns with a schema that run would refuse for Safe Harbor, what an interrupted command
charged, running out of memory."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from fhirsynth.cli import app
from fhirsynth.cli._app import friendly_errors
from fhirsynth.privacy.budget import PrivacyBudget
from fhirsynth.privacy.ledger import Ledger

runner = CliRunner()


def test_fit_on_a_folder_says_it_is_a_folder(tmp_path) -> None:
    schema = tmp_path / "s.schema.json"
    schema.write_text(json.dumps({"name": "t", "columns": {
        "a": {"type": "categorical", "domain": ["x", "y"]}}}))
    r = runner.invoke(app, ["fit", str(tmp_path), "--schema", str(schema), "--epsilon", "1",
                            "--out", str(tmp_path / "m.json"), "--ledger",
                            str(tmp_path / "l.sqlite")])
    assert r.exit_code == 2 and "a folder; fit reads one CSV" in r.output


def test_ledger_show_never_creates_a_ledger(tmp_path) -> None:
    led = tmp_path / "nothing-here.sqlite"
    r = runner.invoke(app, ["ledger", "show", "--ledger", str(led)])
    assert r.exit_code == 2 and "no ledger at" in r.output
    assert not led.exists()


def test_columns_with_a_schema_that_run_refuses_warns(tmp_path) -> None:
    csv = tmp_path / "p.csv"
    csv.write_text("age,sex\n95.5,f\n40,m\n")
    schema = tmp_path / "p.schema.json"
    schema.write_text(json.dumps({"name": "p", "columns": {
        "age": {"type": "numeric", "integer": True, "bounds": [0, 110]},
        "sex": {"type": "categorical", "domain": ["f", "m"]}}}))
    r = runner.invoke(app, ["columns", str(csv), "--spec", str(schema)])
    assert r.exit_code == 0, r.output
    assert "age" in r.output and "`run` refuses this schema" in r.output
    assert "95.5" not in r.output  # never a value (not "95": a temporary path may hold it)
    # red team F5: the age's own line gives the pre-check's finding, not the general advice
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("age\t"))
    assert line.split("\t")[3] == ("age: `run` refuses this schema: column 'age': its bounds "
                                    "end at 110, so synthetic ages above 89 can appear, and no "
                                    "top-coding is declared (Safe Harbor: ages_over_89)")
    assert "top-code the age" in r.output  # the fix stands, in the warning
    # trial 19: a schema that already top-codes the age still got the advice
    schema.write_text(json.dumps({"name": "p", "columns": {
        "age": {"type": "numeric", "integer": True, "bounds": [0, 90],
                "source": {"top_code": 90}},
        "sex": {"type": "categorical", "domain": ["f", "m"]}}}))
    r = runner.invoke(app, ["columns", str(csv), "--spec", str(schema)])
    assert r.exit_code == 0, r.output
    assert "refuses" not in r.output and "without a top code" not in r.output
    assert "age: within the Safe Harbor limit in this schema" in " ".join(r.output.split())


def test_an_interrupted_command_says_exactly_what_it_charged(tmp_path, capsys):
    ledger = tmp_path / "l.sqlite"

    @friendly_errors
    def charged_then_cut() -> None:
        Ledger(ledger).charge("a" * 64, PrivacyBudget(epsilon=0.7), run_id="feedc0de" * 4)
        raise KeyboardInterrupt

    @friendly_errors
    def cut_before_charging(ledger: object = None) -> None:
        raise KeyboardInterrupt

    @friendly_errors
    def cut_without_a_ledger() -> None:  # sample, report, verify: no ledger to speak of
        raise KeyboardInterrupt

    with pytest.raises(typer.Exit) as exc:
        charged_then_cut()
    err = " ".join(capsys.readouterr().err.split())
    assert exc.value.exit_code == 130
    assert "this run was charged epsilon 0.7 (run feedc0de)" in err and "stays" in err
    with pytest.raises(typer.Exit):
        cut_before_charging()  # the earlier command's charge is not this one's
    err = " ".join(capsys.readouterr().err.split())
    assert "nothing was charged to the ledger" in err and "0.7" not in err
    with pytest.raises(typer.Exit):
        cut_without_a_ledger()
    err = " ".join(capsys.readouterr().err.split())
    assert "interrupted: no output was written" in err and "ledger" not in err


def test_running_out_of_memory_is_one_clear_error(capsys):
    @friendly_errors
    def too_big() -> None:
        raise MemoryError

    with pytest.raises(typer.Exit) as exc:
        too_big()
    err = " ".join(capsys.readouterr().err.split())
    assert exc.value.exit_code == 2 and "out of memory: nothing was written" in err
    assert "internal error" not in err


def test_verbose_after_the_command_is_taken_as_fhirsynth_s_own(tmp_path) -> None:
    # trial 19: `fhirsynth run -v ...` said only "No such option: -v"
    import subprocess
    import sys

    from fhirsynth.cli._app import hoist_verbose

    assert hoist_verbose(["run", "x", "-v", "--out", "o"]) == ["-v", "run", "x", "--out", "o"]
    assert hoist_verbose(["-vv", "sample"]) == ["-vv", "sample"]
    assert hoist_verbose(["run", "--verbose", "--", "-v"]) == ["--verbose", "run", "--", "-v"]
    r = subprocess.run([sys.executable, "-m", "fhirsynth", "ledger", "show", "-v", "--ledger",
                        str(tmp_path / "none.sqlite")], capture_output=True, text=True)
    assert "No such option" not in r.stderr + r.stdout and "no ledger at" in r.stdout + r.stderr


def test_columns_says_within_the_limit_only_of_what_the_schema_outputs(tmp_path) -> None:
    """Red team F5: an age left out of the schema, or dropped by it, was said to be "within the
    Safe Harbor limit in this schema"; a column of years `run` refuses showed no finding."""
    csv = tmp_path / "p.csv"
    csv.write_text("age,age_months,momage,annee,sex\n95.5,1200.5,99.5,1920.5,f\n")
    schema = tmp_path / "p.schema.json"
    schema.write_text(json.dumps({"name": "p", "columns": {
        "age": {"type": "numeric", "integer": True, "bounds": [0, 89]},
        "momage": {"type": "numeric", "bounds": [0, 120], "role": "drop"},
        "annee": {"type": "numeric", "integer": True, "bounds": [1900, 2026]},
        "sex": {"type": "categorical", "domain": ["f", "m"]}}}))
    r = runner.invoke(app, ["columns", str(csv), "--spec", str(schema)])
    assert r.exit_code == 0, r.output
    reason = {ln.split("\t")[0]: ln.split("\t")[3] for ln in r.stdout.splitlines()}
    assert reason["age"] == ("age: within the Safe Harbor limit in this schema (bounded at 89 "
                             "years, or top-coded)")
    # not output: left out (the advice stands) or dropped by the schema; never "within"
    assert reason["age_months"].startswith("age in months: Safe Harbor allows no age over 89")
    assert reason["momage"] == "declared by the schema"
    assert reason["annee"].startswith("`run` refuses this schema: column 'annee': its bounds "
                                      "are years reaching back before")
    assert not any(v in r.output for v in ("1200.5", "1920.5", "95.5", "99.5"))
