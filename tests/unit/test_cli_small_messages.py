"""Small CLI messages from a new user's trial: fit on a folder, ledger show on no ledger,
columns with a schema that run would refuse for Safe Harbor."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from fhirsynth.cli import app

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
    csv.write_text("age,sex\n95,f\n40,m\n")
    schema = tmp_path / "p.schema.json"
    schema.write_text(json.dumps({"name": "p", "columns": {
        "age": {"type": "numeric", "integer": True, "bounds": [0, 110]},
        "sex": {"type": "categorical", "domain": ["f", "m"]}}}))
    r = runner.invoke(app, ["columns", str(csv), "--spec", str(schema)])
    assert r.exit_code == 0, r.output
    assert "age" in r.output and "`run` refuses this schema" in r.output
    assert "95" not in r.output  # never a value
