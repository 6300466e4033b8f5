"""A CSV whose first line is a patient row: one clear error, and no cell is ever echoed.

Header names are printed (``columns``), quoted (duplicate names, unknown columns) and kept
in reports; a first line that looks like a data row is refused everywhere before any of
that, and a single name that looks like a value is shown as ``column i``.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from fhirsynth.cli import app
from fhirsynth.domain import load_spec
from fhirsynth.errors import TableInputError
from fhirsynth.ingest import read_input
from fhirsynth.ingest.csv import read_csv_table

runner = CliRunner()
CANARIES = ("CANARY-NAME-7731", "canary@example.org", "555-867-5309", "MRN99887766",
            "Smith CANARY", "1931-02-28")
ROW = "CANARY-NAME-7731,canary@example.org,555-867-5309,MRN99887766,1931-02-28,67,Male"


def _schema(tmp_path, columns):
    p = tmp_path / "s.schema.json"
    p.write_text(json.dumps({"name": "s", "columns": columns}))
    return load_spec(p)


def _no_canary(text: str) -> None:
    for c in CANARIES:
        assert c not in text, c


@pytest.mark.parametrize("name", ["555-867-5309", "(555) 867-5309", "+1 555 867 5309",
                                  "MRN99887766", "canary@example.org", "1931-02-28",
                                  "02/28/1931", "28-Feb-1931", "Feb 28", "67", "187.3"])
def test_values_are_recognised(name):
    from fhirsynth.ingest.columns import looks_like_value

    assert looks_like_value(name)


@pytest.mark.parametrize("name", ["Id", "SSN", "ZIP", "bmi", "avg_glucose_level", "icd10",
                                  "bp_sys_2", "may_flag", "bmi (kg/m2)", "Smith CANARY"])
def test_column_names_are_not_values(name):
    from fhirsynth.ingest.columns import looks_like_value

    assert not looks_like_value(name)


def test_columns_command_refuses_a_data_row_without_quoting_it(tmp_path):
    p = tmp_path / "nd2.csv"
    p.write_text(ROW + "\nB,b@example.org,555-111-2222,MRN11112222,1940-01-01,70,Female\n")
    r = runner.invoke(app, ["columns", str(p)])
    assert r.exit_code == 2
    out = " ".join(r.output.split())
    assert "line 1 of" in out and "nd2.csv looks like a data row, not a header" in out
    assert "5 of 7 names look like values" in out and "needs a header line" in out
    _no_canary(r.output)


def test_run_read_refuses_a_data_row_before_duplicate_names(tmp_path):
    p = tmp_path / "nd2.csv"
    p.write_text("Smith CANARY,MRN99887766,Smith CANARY,555-867-5309,67\n"
                 "Jones,MRN11112222,Jones,555-111-2222,70\n")
    spec = _schema(tmp_path, {"age": {"type": "numeric", "bounds": [0, 120]}})
    with pytest.raises(TableInputError) as info:
        read_csv_table(p, spec)
    msg = str(info.value)
    assert "looks like a data row" in msg and "3 of 5 names" in msg
    assert "duplicate" not in msg
    _no_canary(msg)
    with pytest.raises(TableInputError) as info:  # the path `fhirsynth run` takes
        read_input([p], spec)
    _no_canary(str(info.value))


def test_duplicate_names_are_quoted_only_in_a_plain_header(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("age,bmi,age\n1,2,3\n")
    spec = _schema(tmp_path, {"bmi": {"type": "numeric", "bounds": [0, 100]}})
    with pytest.raises(TableInputError, match=r"duplicate column names in the header: 'age' "
                                              r"in columns 1, 3"):
        read_csv_table(p, spec)
    p.write_text("age,555-867-5309,Smith CANARY,Smith CANARY\n1,2,3,4\n")
    for call in (lambda: read_csv_table(p, spec), lambda: runner.invoke(
            app, ["columns", str(p)], catch_exceptions=False)):
        try:
            r = call()
        except TableInputError as exc:
            text = str(exc)
        else:
            assert r.exit_code == 2
            text = r.output
        assert "one name in columns 3, 4" in " ".join(text.split())
        _no_canary(text)


def test_a_single_value_like_name_is_shown_by_its_position(tmp_path):
    from fhirsynth.ingest.columns import check_header, shown_names

    assert shown_names(["age", "bmi", "555-867-5309"]) == ["age", "bmi", "column 3"]
    assert shown_names(["age", "2020"], public={"2020"}) == ["age", "2020"]
    check_header("x.csv", ["age", "bmi", "555-867-5309"])  # one is not a data row
    p = tmp_path / "one.csv"
    p.write_text("age,bmi,555-867-5309\n67,22,1\n")
    r = runner.invoke(app, ["columns", str(p)])
    assert r.exit_code == 0, r.output
    assert [ln.split("\t")[0] for ln in r.output.strip().splitlines()] == [
        "age", "bmi", "column 3"]
    _no_canary(r.output)
    spec = _schema(tmp_path, {"age": {"type": "numeric", "bounds": [0, 120]}})
    s = tmp_path / "s.schema.json"
    r = runner.invoke(app, ["columns", str(p), "--schema", str(s)])
    assert r.exit_code == 0, r.output
    assert "column 3\t" in r.output
    _no_canary(r.output)
    table, report = read_input([p], spec)
    assert list(report["columns"]) == ["age", "bmi", "column 3"]
    _no_canary(json.dumps(report))
    assert any("column 3" in w for w in report["warnings"])


def test_single_field_data_row_is_refused(tmp_path):
    from fhirsynth.ingest.columns import check_header

    with pytest.raises(TableInputError, match="1 of 1 names"):
        check_header(tmp_path / "x.csv", ["canary@example.org"])


def test_audit_table_reader_refuses_a_data_row(tmp_path):
    from fhirsynth.errors import InputError
    from fhirsynth.evaluate.audit_pipeline import read_table

    p = tmp_path / "nd2.csv"
    p.write_text(ROW + "\n")
    with pytest.raises(InputError, match="looks like a data row") as info:
        read_table(p)
    _no_canary(str(info.value))


def test_an_empty_header_name_is_shown_by_its_position(tmp_path) -> None:
    # trial 13: the warning ended "left out of the release: " with a blank
    from fhirsynth.domain import TableSpec
    from fhirsynth.ingest import read_input

    p = tmp_path / "t.csv"
    p.write_text("sex,,age\nf,x,30\nm,y,40\n", encoding="utf-8")
    spec = TableSpec.from_dict({"name": "s", "columns": {
        "sex": {"type": "categorical", "domain": ["f", "m"]},
        "age": {"type": "numeric", "bounds": [0, 89], "integer": True}}})
    _, report = read_input([p], spec)
    assert any("left out of the release: column 2 (no name)" in w for w in report["warnings"])


@pytest.mark.parametrize("name", ["44054006", "dx_44054006", "snomed-38341003",
                                  "cond.dx_368581000119106", "bmi_39156-5"])
def test_clinical_codes_are_code_like(name):
    from fhirsynth.ingest.columns import looks_like_code

    assert looks_like_code(name)


@pytest.mark.parametrize("name", ["44054007", "MRN99887766", "MRN_99887766", "5558675309",
                                  "1931-02-28", "39156-4", "dx_4405400", "67"])
def test_values_that_are_no_valid_code_are_not_code_like(name):
    from fhirsynth.ingest.columns import looks_like_code

    assert not looks_like_code(name)  # a wrong check digit or partition, or not a code


def test_a_header_of_snomed_coded_names_beside_plain_ones_is_a_header(tmp_path):
    # it was refused as "a data row": 2 of 4 names looked like values
    p = tmp_path / "coded.csv"
    p.write_text("age,sex,dx_44054006,snomed_38341003\n67,f,true,false\n54,m,false,true\n")
    spec = _schema(tmp_path, {
        "age": {"type": "numeric", "bounds": [0, 89], "integer": True},
        "dx_44054006": {"type": "boolean"}, "snomed_38341003": {"type": "boolean"}})
    table, _ = read_csv_table(p, spec)
    assert list(table.columns) == ["age", "dx_44054006", "snomed_38341003"]
    assert table["dx_44054006"].tolist() == [True, False]
    r = runner.invoke(app, ["columns", str(p)])
    assert r.exit_code == 0, r.output
    assert [ln.split("\t")[0] for ln in r.output.strip().splitlines()] == [
        "age", "sex", "dx_44054006", "snomed_38341003"]
    s = tmp_path / "out.schema.json"
    r = runner.invoke(app, ["columns", str(p), "--write-schema", str(s)])
    assert r.exit_code == 0, r.output
    assert set(json.loads(s.read_text())["columns"]) == {"age", "sex", "dx_44054006",
                                                         "snomed_38341003"}


@pytest.mark.parametrize("row", [
    # only codes and numbers: no plain name beside them
    "44054006,38341003,73211009", "44054006,38341003",
    # a valid code among values is still a data row
    "CANARY-NAME-7731,44054006,1931-02-28,67,Male",
    "Smith CANARY,MRN_99887766,555-867-5309,dx_44054006",
    # trial 21: a name beside one valid code and a date, record number or phone number;
    # a bare number or an identifier's prefix is never taken for a coded name
    "Jane CANARY,F,1957-06-21,44054006", "Jane CANARY,F,00123103,65",
    "Jane CANARY,F,MRN-00123103,5558671004,diabetes", "age,sex,dx_44054006,38341003"])
def test_a_headerless_file_with_code_like_cells_is_still_refused(tmp_path, row):
    p = tmp_path / "nd.csv"
    p.write_text(row + "\n" + row + "\n")
    spec = _schema(tmp_path, {"age": {"type": "numeric", "bounds": [0, 120]}})
    with pytest.raises(TableInputError, match="looks like a data row") as info:
        read_csv_table(p, spec)
    msg = str(info.value)
    _no_canary(msg)
    assert "44054006" not in msg and "Male" not in msg
    r = runner.invoke(app, ["columns", str(p)])
    assert r.exit_code == 2 and "44054006" not in r.output
    for value in ("Jane", "00123103", "1957-06-21", "5558671004"):
        assert value not in msg and value not in r.output
    _no_canary(r.output)


def test_columns_says_why_a_name_is_shown_by_its_place(tmp_path):
    # trial 20: a single number-like header name was listed as "column 2" without a reason
    p = tmp_path / "one.csv"
    p.write_text("age,2019,sex\n40,1,f\n")
    r = runner.invoke(app, ["columns", str(p)])
    assert r.exit_code == 0, r.output
    line = next(ln for ln in r.output.splitlines() if ln.startswith("column 2\t"))
    assert "its name looks like a value" in line and "2019" not in r.output
