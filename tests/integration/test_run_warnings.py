"""Warnings of ``fhirsynth run`` that a new user must not miss: columns extraction left empty
(console and internal report only) and a failed Safe Harbor scan of the output (console, and
the closing line no longer says the outputs may be shared)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fhirsynth.cli import app
from fhirsynth.evaluate.safe_harbor_advice import scan_warnings
from fhirsynth.ingest.features import default_spec_path

pypdf = pytest.importorskip("pypdf")

ROOT = Path(__file__).resolve().parents[2]
COHORT = ROOT / "fixtures" / "cohort"


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def _pdf_text(path: Path) -> str:
    return _flat(" ".join(p.extract_text() or "" for p in pypdf.PdfReader(str(path)).pages))


def test_run_warns_about_empty_columns_on_the_console_and_internally_only(tmp_path) -> None:
    text = default_spec_path().read_text("utf-8")
    text = re.sub(r'(?m)^reference_date: .*$', 'reference_date: "1900-01-01"', text)
    text = text.replace("bounds: [1936, 2026]", "bounds: [1811, 1900]")  # birth_year follows
    spec = tmp_path / "spec.yaml"
    spec.write_text(text, "utf-8")
    out = tmp_path / "rel"
    result = CliRunner().invoke(app, ["run", str(COHORT), "--spec", str(spec), "--epsilon", "1",
                                      "--out", str(out), "--ledger", str(tmp_path / "l.sqlite"),
                                      "--seed", "5"])
    assert result.exit_code == 0, result.output
    console = _flat(result.output)
    # age and birth year have the same issue and advice: one warning names both
    assert "warning: columns age and birth_year are empty for all" in console
    assert "set reference_date in the feature spec" in console
    assert "columns age and birth_year are empty" in _pdf_text(out / "internal" /
                                                             "validation.pdf")
    # the shareable outputs gain no count of the real data from this warning
    assert "is empty for" not in _pdf_text(out / "report.pdf")
    assert "is empty for" not in (out / "audit.json").read_text("utf-8")


def _csv(tmp_path: Path, upper: float) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    n = 300
    pd.DataFrame({"age": rng.integers(88, 110, n),
                  "sex": rng.choice(["f", "m"], n)}).to_csv(tmp_path / "p.csv", index=False)
    schema = {"name": "old", "columns": {
        "age": {"type": "numeric", "bounds": [0, upper], "integer": True, "nullable": False},
        "sex": {"type": "categorical", "domain": ["f", "m"], "nullable": False}}}
    (tmp_path / "p.schema.json").write_text(json.dumps(schema), "utf-8")
    return tmp_path / "p.csv", tmp_path / "p.schema.json"


def _run_csv(tmp_path: Path, upper: float) -> tuple[int, str, Path]:
    data, schema = _csv(tmp_path, upper)
    out = tmp_path / "rel"
    result = CliRunner().invoke(app, ["run", str(data), "--schema", str(schema), "--epsilon",
                                      "1", "--out", str(out), "--ledger",
                                      str(tmp_path / "l.sqlite")])
    return result.exit_code, _flat(result.output), out


def test_failed_safe_harbor_scan_is_warned_and_not_called_shareable(tmp_path,
                                                                   monkeypatch) -> None:
    # the pre-run spec check refuses this schema (test_run_safe_harbor_precheck.py); the
    # output scan stays the safety net for what the spec cannot decide, so switch the
    # pre-check off here to exercise the scan's warnings
    monkeypatch.setattr("fhirsynth.pipeline.check_spec_safe_harbor", lambda *a, **k: None)
    code, console, out = _run_csv(tmp_path, upper=120)
    assert code == 0, console
    audit = json.loads((out / "audit.json").read_text("utf-8"))
    assert audit["evaluation"]["safe_harbor"]["passed"] is False
    assert "warning: Safe Harbor scan of the output failed: 3. ages over 89" in console
    assert "column age" in console and "end the column's bounds at 89" in console
    assert "do not share this release yet" in console
    assert "may be shared" not in console
    # trial 26: `verify --shareable` called this release shareable once internal/ was gone
    shutil.rmtree(out / "internal")
    n = len(audit["evaluation"]["safe_harbor"]["findings"])
    assert n >= 1
    verify = CliRunner().invoke(app, ["verify", "--shareable", str(out)])
    text = _flat(verify.output)
    assert verify.exit_code == 1, text
    assert (f"NOT SHAREABLE: the Safe Harbor scan of the output failed ({n} finding(s), "
            "evaluation.safe_harbor in audit.json") in text
    assert CliRunner().invoke(app, ["verify", str(out)]).exit_code == 0  # still intact


def test_passed_safe_harbor_scan_keeps_the_closing_line(tmp_path) -> None:
    code, console, out = _run_csv(tmp_path, upper=89)
    assert code == 0, console
    assert json.loads((out / "audit.json").read_text("utf-8"))["evaluation"]["safe_harbor"][
        "passed"] is True
    assert "Safe Harbor scan of the output failed" not in console
    assert "may be shared" in console and "do not share" not in console
    shutil.rmtree(out / "internal")
    verify = CliRunner().invoke(app, ["verify", "--shareable", str(out)])
    assert verify.exit_code == 0, verify.output
    assert "the Safe Harbor scan of the output passed" in _flat(verify.output)


def test_scan_warnings_name_kind_place_and_fix_without_values() -> None:
    sh = {"passed": False, "findings": [
        {"kind": "ages_over_89", "location": "patients.csv", "field": "age", "count": 3,
         "rule": "age above 89", "description": "3. ages over 89"},
        {"kind": "email", "location": "patients.csv", "field": "contact", "count": 2,
         "rule": "value pattern", "description": "6. e-mail addresses"}]}
    first, second = scan_warnings(sh)
    assert "3. ages over 89 (3 in patients.csv, column age" in first and "bounds at 89" in first
    assert "6. e-mail addresses" in second and "drop the column" in second
    assert scan_warnings({"passed": True, "findings": []}) == []


def test_the_year_of_a_birth_date_is_scanned_as_a_birth_year(tmp_path, monkeypatch) -> None:
    # a trial's BIRTHDATE (the `year` of a birth date) of 1905 passed the output scan of
    # `run` and `report`; the pre-check (switched off here) refuses such bounds first
    monkeypatch.setattr("fhirsynth.pipeline.check_spec_safe_harbor", lambda *a, **k: None)
    rng = np.random.default_rng(0)
    n = 300
    pd.DataFrame({"BIRTHDATE": [f"{y}-06-15" for y in rng.integers(1900, 1930, n)],
                  "sex": rng.choice(["f", "m"], n)}).to_csv(tmp_path / "p.csv", index=False)
    schema = {"name": "p", "columns": {
        "BIRTHDATE": {"type": "numeric", "bounds": [1900, 2026], "integer": True,
                      "nullable": False, "source": {"transform": "year"}},
        "sex": {"type": "categorical", "domain": ["f", "m"], "nullable": False}}}
    (tmp_path / "p.schema.json").write_text(json.dumps(schema), "utf-8")
    out = tmp_path / "rel"
    args = ["--schema", str(tmp_path / "p.schema.json")]
    result = CliRunner().invoke(app, ["run", str(tmp_path / "p.csv"), *args, "--epsilon", "1",
                                      "--out", str(out), "--ledger", str(tmp_path / "l.sqlite")])
    console = _flat(result.output)
    assert result.exit_code == 0, console
    sh = json.loads((out / "audit.json").read_text("utf-8"))["evaluation"]["safe_harbor"]
    assert [(f["field"], f["rule"]) for f in sh["findings"]] == [
        ("BIRTHDATE", "birth year implies age > 89")]
    assert "column BIRTHDATE; rule: birth year implies age > 89" in console
    assert "do not share this release yet" in console
    model = json.loads((out / "model.json").read_text("utf-8"))
    assert model["output"]["birth_years"] == ["BIRTHDATE"]  # the saved spec has no source
    # `report` says so on the terminal too (it wrote the failed scan into audit.json only)
    result = CliRunner().invoke(app, ["report", str(out / "model.json"),
                                      str(out / "synthetic" / "patients.csv"), "--real",
                                      str(tmp_path / "p.csv"), *args, "--out",
                                      str(tmp_path / "rep")])
    console = _flat(result.output)
    assert result.exit_code == 0, console
    assert "Safe Harbor scan of the output failed" in console
    assert "column BIRTHDATE; rule: birth year implies age > 89" in console


def test_holdout_0_says_once_that_the_privacy_risk_tests_are_not_run(tmp_path) -> None:
    # a trial's --holdout 0 run left the privacy-risk tests out without a word on the terminal
    data, schema = _csv(tmp_path, 89)
    result = CliRunner().invoke(app, ["run", str(data), "--schema", str(schema), "--epsilon",
                                      "1", "--out", str(tmp_path / "rel"), "--ledger",
                                      str(tmp_path / "l.sqlite"), "--holdout", "0"])
    console = _flat(result.output)
    assert result.exit_code == 0, console
    assert console.count("privacy-risk tests") == 1
    assert ("warning: no patient was held out (--holdout 0), so the privacy-risk tests "
            "(membership and attribute inference") in console
    assert "--holdout 0.2 (the default) runs them" in console
    evaluation = json.loads((tmp_path / "rel" / "internal" / "evaluation.json").read_text())
    assert evaluation["privacy"] is None  # not run, as the notice says
    # with the default holdout nothing is said
    (tmp_path / "b").mkdir()
    _, console, _ = _run_csv(tmp_path / "b", 89)
    assert "privacy-risk tests" not in console
