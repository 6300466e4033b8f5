"""Columns that extraction left empty for (nearly) every patient are named on the console and
in the internal report, with the issue kind and its fix; the ingest summary counts them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from fhirsynth.cli import app
from fhirsynth.domain import Column, TableSpec
from fhirsynth.ingest import read_input
from fhirsynth.ingest.coverage import empty_column_warnings, extraction_issue_count
from fhirsynth.ingest.features import default_spec_path, load_feature_spec

ROOT = Path(__file__).resolve().parents[3]
COHORT = ROOT / "fixtures" / "cohort"

SPEC = TableSpec(name="t", columns=(
    Column(name="age", kind="numeric", bounds=(0.0, 90.0), integer=True, nullable=True),
    Column(name="sex", categories=("f", "m"), nullable=True),
))


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_empty_column_with_issues_is_warned_with_kind_and_fix() -> None:
    table = pd.DataFrame({"age": pd.array([None] * 20, dtype="Int64"),
                          "sex": pd.array(["f"] * 20, dtype="string")})
    counts = {"age: born after the reference date": 20, "sex: unknown thing": 1}
    [warning] = empty_column_warnings(table, counts, SPEC)
    assert warning.startswith("column age is empty for all 20 input patients")
    assert "birth date after the spec's reference_date (20 issue(s))" in warning
    assert "set reference_date in the feature spec" in warning
    nullable = SPEC["age"].nullable
    # a column the model cannot learn as empty gets its values from the noise alone
    assert ("would come from the noise alone" in warning) is (not nullable)


def test_nearly_empty_column_is_warned_and_a_filled_or_clean_one_is_not() -> None:
    ages = [None] * 39 + [50]
    table = pd.DataFrame({"age": pd.array(ages, dtype="Int64"),
                          "sex": pd.array([None] * 40, dtype="string")})
    [warning] = empty_column_warnings(table, {"age: unknown unit": 3}, SPEC)
    assert "column age is empty for 39 of 40 input patients" in warning
    assert "`factors: {UNIT: multiplier}`" in warning and "add the unit" not in warning
    # half empty: a cohort fact, not an extraction problem
    half = pd.DataFrame({"age": pd.array([None] * 20 + [50] * 20, dtype="Int64"),
                         "sex": pd.array(["f"] * 40, dtype="string")})
    assert empty_column_warnings(half, {"age: unknown unit": 20}, SPEC) == []
    # empty without any extraction issue (the data simply has none): no warning
    assert empty_column_warnings(table, {}, SPEC) == []


def test_columns_with_the_same_issue_share_one_warning() -> None:
    # trial 15: MIMIC's refusal repeated the same advice for age and birth_year, and for
    # three encounter counts: some 3,000 characters in one error
    spec = TableSpec(name="t", columns=(
        Column(name="age", kind="numeric", bounds=(0.0, 90.0), integer=True),
        Column(name="birth_year", kind="numeric", bounds=(1936.0, 2026.0), integer=True),
        Column(name="bmi", kind="numeric", bounds=(10.0, 80.0)),
    ))
    table = pd.DataFrame({c: pd.array([None] * 20, dtype="Float64")
                          for c in ("age", "birth_year", "bmi")})
    counts = {"age: born after the reference date": 20,
              "birth_year: born after the reference date": 20, "bmi: unknown unit": 20}
    warnings = empty_column_warnings(table, counts, spec)
    assert len(warnings) == 2
    assert warnings[0].startswith("columns age and birth_year are empty for all 20 input")
    assert warnings[0].count("set reference_date") == 1
    assert warnings[1].startswith("column bmi is empty for all 20 input patients")


def test_extraction_issue_count_adds_reader_and_extraction_issues() -> None:
    report = {"issue_count": 2, "issues": [{}, {}],
              "extraction": {"counts": {"age: born after the reference date": 5}}}
    assert extraction_issue_count(report) == 7
    assert extraction_issue_count({"issues": ["a", "b", "c"]}) == 3


def _spec_with_reference(tmp_path: Path, ref: str) -> Path:
    text = default_spec_path().read_text("utf-8")
    text, n = re.subn(r'(?m)^reference_date: .*$', f'reference_date: "{ref}"', text)
    assert n == 1
    # the birth-year bounds move with the reference date (checked when the spec loads)
    year = int(ref[:4])
    text, n = re.subn(r"bounds: \[1936, 2026\]", f"bounds: [{year - 89}, {year}]", text)
    assert n == 1
    path = tmp_path / "spec.yaml"
    path.write_text(text, "utf-8")
    return path


def test_read_fhir_warns_when_every_birth_date_follows_the_reference_date(tmp_path) -> None:
    spec = load_feature_spec(_spec_with_reference(tmp_path, "1900-01-01"))
    table, report = read_input([COHORT], spec)
    assert table["age"].isna().all()
    warnings = report["warnings"]
    assert any(w.startswith("columns age and birth_year are empty for all") for w in warnings)
    assert all("reference_date" in w for w in warnings if " age " in w)
    # no patient id and no exact date in any warning
    ids = {json.loads(p.read_text()).get("entry", [{}])[0].get("resource", {}).get("id", "")
           for p in COHORT.glob("*.json")}
    blob = " ".join(warnings)
    assert not any(i and i in blob for i in ids)
    assert not re.search(r"\d{4}-\d{2}-\d{2}", blob)
    # the default spec (reference date after the fixture's dates): no warning
    _, ok = read_input([COHORT], load_feature_spec())
    assert ok["warnings"] == []


def test_ingest_command_prints_the_warning_and_counts_extraction_issues(tmp_path) -> None:
    spec = _spec_with_reference(tmp_path, "1900-01-01")
    result = CliRunner().invoke(app, ["ingest", str(COHORT), "--spec", str(spec),
                                      "--out", str(tmp_path / "t.csv")])
    assert result.exit_code == 0, result.output
    out = _flat(result.output)
    assert "warning: columns age and birth_year are empty for all" in out
    assert out.count("birth date after the spec's reference_date") == 1
    m = re.search(r"issues (\d[\d,]*)", out)
    assert m is not None and int(m.group(1).replace(",", "")) > 0
    assert "born after the reference date" in out


def test_an_empty_column_that_is_not_nullable_is_said_to_come_from_noise() -> None:
    spec = TableSpec(name="t", columns=(
        Column(name="age", kind="numeric", bounds=(0.0, 90.0), integer=True, nullable=False),))
    table = pd.DataFrame({"age": pd.array([None] * 25, dtype="Int64")})
    [warning] = empty_column_warnings(table, {"age: born after the reference date": 25}, spec)
    assert "its synthetic values would come from the noise alone" in _flat(warning)
    assert "leave the column out of the feature spec" in warning
