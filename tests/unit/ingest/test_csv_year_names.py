"""A column of years keeps no date's name (a trial published ``date_of_birth`` holding
years): ``columns`` and the schema skeleton suggest an output name that says what it holds
(``birth_year`` read from ``date_of_birth``), and ``run`` / ``fit`` print one note for a
modelled year column still named as a date."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fhirsynth.cli import app
from fhirsynth.domain import TableSpec
from fhirsynth.ingest.columns import year_column_name
from fhirsynth.ingest.csv import year_name_note

runner = CliRunner()
OLDEST = dt.date.today().year - 89
YEARS = {"type": "numeric", "integer": True, "bounds": [OLDEST, OLDEST + 89]}
SEX = {"type": "categorical", "domain": ["F", "M"], "nullable": False}


def test_a_year_column_is_named_for_what_it_holds() -> None:
    assert [year_column_name(n) for n in (
        "date_of_birth", "dob", "BIRTHDATE", "PatientBirthDate", "admission_date",
        "DATEOFDEATH", "visit_datetime", "ADMITDATE", "date", "admit_time")] == [
        "birth_year", "birth_year", "birth_year", "birth_year", "admission_year",
        "YEAROFDEATH", "visit_year", "ADMITYEAR", "year", "admit_year"]


def test_columns_and_the_skeleton_suggest_the_year_name(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("date_of_birth,admission_date,sex\n1957-06-21,2020-01-02,F\n",
                   encoding="utf-8")
    r = runner.invoke(app, ["columns", str(src), "--write-schema",
                            str(tmp_path / "s.schema.json")])
    assert r.exit_code == 0, r.output
    lines = {ln.split("\t")[0]: ln for ln in r.output.splitlines() if "\t" in ln}
    hints = {n: c["name_suggests"] for n, c in
             json.loads((tmp_path / "s.schema.json").read_text())["columns"].items()}
    for name, new in (("date_of_birth", "birth_year"), ("admission_date", "admission_year")):
        want = f'"{new}" with "source": {{"column": "{name}", "transform": "year"}}'
        assert want in lines[name] and want in hints[name], (lines[name], hints[name])
    assert "1957" not in r.output and "2020" not in r.output
    assert "year" not in lines["sex"]


def test_the_note_names_a_year_column_kept_under_a_date_name() -> None:
    kept = TableSpec.from_dict({"name": "t", "columns": {
        "date_of_birth": {**YEARS, "source": {"transform": "year"}},
        "sex": SEX}})
    note = year_name_note(kept)
    assert note is not None and "'date_of_birth' holds years" in note
    assert '"birth_year"' in note and '"column": "date_of_birth"' in note
    renamed = TableSpec.from_dict({"name": "t", "columns": {
        "birth_year": {**YEARS, "source": {"column": "date_of_birth", "transform": "year"}},
        "sex": SEX}})
    assert year_name_note(renamed) is None


def _csv(tmp_path: Path, n: int = 60) -> Path:
    rng = __import__("random").Random(4)
    rows = [f"{1950 + rng.randrange(60)}-0{1 + rng.randrange(9)}-1{rng.randrange(10)},"
            f"{'FM'[rng.randrange(2)]}" for _ in range(n)]
    p = tmp_path / "t.csv"
    p.write_text("date_of_birth,sex\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return p


@pytest.mark.filterwarnings("ignore::fhirsynth.errors.LowUtilityWarning")
def test_run_and_fit_note_a_date_name_and_the_renamed_column_works(tmp_path: Path) -> None:
    data = _csv(tmp_path)
    kept, renamed = tmp_path / "kept.schema.json", tmp_path / "renamed.schema.json"
    kept.write_text(json.dumps({"name": "t", "columns": {
        "date_of_birth": {**YEARS, "source": {"transform": "year"}}, "sex": SEX}}))
    renamed.write_text(json.dumps({"name": "t", "columns": {
        "birth_year": {**YEARS, "source": {"column": "date_of_birth", "transform": "year"}},
        "sex": SEX}}))
    ledger = str(tmp_path / "l.sqlite")
    r = runner.invoke(app, ["fit", str(data), "--schema", str(kept), "--epsilon", "1",
                            "--out", str(tmp_path / "m.json"), "--ledger", ledger,
                            "--allow-few-rows"])
    assert r.exit_code == 0, r.output
    said = " ".join(r.output.split())
    assert said.count("note: column 'date_of_birth' holds years") == 1
    # the renamed column: reads date_of_birth, releases birth_year, no note
    r = runner.invoke(app, ["run", str(data), "--schema", str(renamed), "--epsilon", "1",
                            "--out", str(tmp_path / "o"), "--ledger",
                            str(tmp_path / "l2.sqlite"), "--allow-few-rows", "--holdout", "0"])
    assert r.exit_code == 0, r.output
    assert "holds years" not in r.output
    out = (tmp_path / "o" / "synthetic" / "patients.csv").read_text(encoding="utf-8")
    header = out.splitlines()[0].split(",")
    assert "birth_year" in header and "date_of_birth" not in header
    years = [int(float(line.split(",")[header.index("birth_year")]))
             for line in out.splitlines()[1:] if line.split(",")[header.index("birth_year")]]
    assert years and all(OLDEST <= y <= OLDEST + 89 for y in years)
    readme = (tmp_path / "o" / "README.md").read_text(encoding="utf-8")
    assert "from the input column date_of_birth: the year of a date" in readme
    # the same schema kept under the date name: the run notes it once, and still runs
    r = runner.invoke(app, ["run", str(data), "--schema", str(kept), "--epsilon", "1",
                            "--out", str(tmp_path / "o2"), "--ledger",
                            str(tmp_path / "l3.sqlite"), "--allow-few-rows", "--holdout", "0"])
    assert r.exit_code == 0, r.output
    said = " ".join(r.output.split())
    assert said.count("note: column 'date_of_birth' holds years") == 1
