"""Columns the schema mostly does not describe (trial 22): values mapped to ``other`` are
counted, warned about above 5 % and refused above 50 % (above 5 % with --strict); values
outside the bounds are refused above 5 %; a birth year's lower bound is a bottom code."""

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fhirsynth.cli import app
from fhirsynth.domain import TableSpec
from fhirsynth.errors import InputError
from fhirsynth.ingest import read_input
from fhirsynth.ingest.csv import bounds_warning, read_csv_table
from fhirsynth.pipeline import import_warnings
from fhirsynth.report.readme import release_readme

DX = {"type": "categorical", "domain": ["I21", "J18"], "other": True, "nullable": True}
LOS = {"type": "numeric", "integer": True, "bounds": [1, 5], "nullable": True}


def _table(tmp_path: Path, cells: list[tuple[str, str]]) -> Path:
    p = tmp_path / "t.csv"
    p.write_text("dx,los\n" + "".join(f"{a},{b}\n" for a, b in cells), encoding="utf-8")
    return p


def _read(tmp_path: Path, cells, *, strict: bool = False, los=LOS):
    spec = TableSpec.from_dict({"name": "t", "columns": {"dx": DX, "los": los}})
    _, rep = read_input([_table(tmp_path, cells)], spec, strict=strict)
    return rep


def _dx(n_longer: int, n: int = 100) -> list[tuple[str, str]]:
    # codes longer than the declared 3-character ones, as a trial's I21.4 for I21
    return [("I21.4" if i < n_longer else "J18", "2") for i in range(n)] + [("", "3")]


def test_values_mapped_to_other_are_counted_and_a_few_pass_quietly(tmp_path):
    rep = _read(tmp_path, _dx(4))
    assert rep["mapped_to_other"] == {"dx": {"mapped": 4, "values": 100}}  # missing: not a value
    assert not [w for w in import_warnings(rep, 101) if "category list" in w]


def test_more_than_5_percent_mapped_to_other_is_warned_and_strict_refuses(tmp_path):
    rep = _read(tmp_path, _dx(12))
    (warning,) = [w for w in import_warnings(rep, 101) if "category list" in w]
    assert "column 'dx': 12 of 100 values (12%) are not in its category list" in warning
    assert "mapped to 'other'" in warning and "code length" in warning
    with pytest.raises(InputError, match=r"column 'dx': 12 of 100 values \(12%\).*--strict"):
        import_warnings(_read(tmp_path, _dx(12), strict=True), 101)


def test_more_than_half_mapped_to_other_is_refused_naming_the_column_share_and_fix(tmp_path):
    rep = _read(tmp_path, _dx(94))
    with pytest.raises(InputError) as err:
        import_warnings(rep, 101)
    msg = str(err.value)
    assert "t.csv: column 'dx': 94 of 100 values (94%) are not in its category list" in msg
    assert "letter case, code length" in msg and "fix the category list" in msg
    assert "I21.4" not in msg  # never a value of the data
    # `ingest` keeps the table with the custodian: the same words, as a warning
    assert any("94 of 100" in w for w in import_warnings(rep, 101, refuse=False))


def test_more_than_5_percent_outside_the_bounds_is_refused_unless_top_coded(tmp_path):
    cells = [("J18", "9" if i < 42 else "2") for i in range(100)]
    with pytest.raises(InputError) as err:
        import_warnings(_read(tmp_path, cells), 100)
    msg = str(err.value)
    assert ("column 'los': 42 of 100 values (42%) are outside the schema's bounds [1, 5] "
            "(0 below, 42 above); the bounds are probably wrong") in msg
    assert '"top_code": 5' in msg
    # a top code is meant to clip: no refusal, no warning
    top = dict(LOS, source={"top_code": 5})
    assert not [w for w in import_warnings(_read(tmp_path, cells, los=top), 100)
                if "bounds" in w]
    # a few are clipped with the warning, as before
    few = [("J18", "9" if i < 3 else "2") for i in range(100)]
    warnings = import_warnings(_read(tmp_path, few), 100)
    assert [w for w in warnings if "3 value(s) outside the schema's bounds" in w]
    assert not [w for w in warnings if "probably wrong" in w]


def test_fit_refuses_a_column_mostly_mapped_to_other(tmp_path):
    p = _table(tmp_path, _dx(94))
    schema = tmp_path / "t.schema.json"
    schema.write_text(json.dumps({"name": "t", "columns": {"dx": DX, "los": LOS}}))
    result = CliRunner().invoke(app, ["fit", str(p), "--schema", str(schema), "--epsilon",
                                      "1", "--out", str(tmp_path / "m.json"), "--ledger",
                                      str(tmp_path / "l.sqlite")])
    assert result.exit_code == 2
    assert "94 of 100 values (94%)" in " ".join(result.output.split())
    assert not (tmp_path / "m.json").exists()


def _birth_years(tmp_path: Path) -> tuple[TableSpec, Path]:
    year = dt.date.today().year
    spec = TableSpec.from_dict({"name": "t", "columns": {"date_of_birth": {
        "type": "numeric", "integer": True, "bounds": [year - 89, year],
        "source": {"transform": "year"}}}})
    p = tmp_path / "b.csv"
    p.write_text("date_of_birth\n" + "".join(
        f"{year - 95 if i < 20 else year - 40}-03-01\n" for i in range(100)), encoding="utf-8")
    return spec, p


def test_a_birth_year_lower_bound_is_a_bottom_code(tmp_path):
    spec, p = _birth_years(tmp_path)
    _, rep = read_csv_table(p, spec)
    assert rep.out_of_bounds["date_of_birth"]["bottom_coded"] == 20
    assert rep.out_of_bounds["date_of_birth"]["below"] == 0
    assert bounds_warning("b.csv", rep.out_of_bounds) is None
    # --strict fails on values outside the bounds, not on bottom-coded birth years
    table, _ = read_csv_table(p, spec, bounds="fail")
    assert len(table) == 100
    _, rep = read_input([p], spec, strict=True)
    assert not [w for w in import_warnings(rep, 100) if "bounds" in w]


def test_the_readme_says_a_bottom_coded_birth_year_means_that_year_or_earlier(tmp_path):
    spec, _ = _birth_years(tmp_path)
    lo = dt.date.today().year - 89
    text = release_readme(spec=spec, dataset="d", run_id="r", created="2026-12-05",
                          version="0", budget_table={"epsilon_total": 1.0, "delta_total": 0.0,
                                                     "epsilon_spent": 1.0, "delta_spent": 0.0,
                                                     "steps": []},
                          config={}, files=["synthetic/patients.csv"], columns=["date_of_birth"])
    (row,) = [ln for ln in text.splitlines() if ln.startswith("| `date_of_birth`")]
    assert f"{lo} means {lo} or earlier" in row


def test_an_age_bounded_at_89_clips_larger_ages_without_a_refusal(tmp_path):
    # Safe Harbor's own fix, "end the bounds at 89 (larger values are clipped into the top
    # bin)": CI met three runs refused once the 5 % rule counted those ages as wrong bounds
    p = tmp_path / "a.csv"
    p.write_text("age\n" + "".join(f"{95 if i < 70 else 40}\n" for i in range(100)))
    spec = TableSpec.from_dict({"name": "t", "columns": {
        "age": {"type": "numeric", "integer": True, "bounds": [0, 89]}}})
    _, rep = read_input([p], spec)
    warnings = import_warnings(rep, 100)
    assert [w for w in warnings if "70 value(s) outside the schema's bounds" in w]
    assert not [w for w in warnings if "probably wrong" in w]
    # the same share on a column that is no age is refused
    q = tmp_path / "b.csv"
    q.write_text(p.read_text().replace("age", "score", 1))
    spec = TableSpec.from_dict({"name": "t", "columns": {
        "score": {"type": "numeric", "integer": True, "bounds": [0, 89]}}})
    _, rep = read_input([q], spec)
    with pytest.raises(InputError, match="column 'score': 70 of 100 values"):
        import_warnings(rep, 100)
