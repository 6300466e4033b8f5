"""The shareable report's input-column table and identifier check state what the run did."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fhirsynth.domain import Column, TableSpec
from fhirsynth.ingest import read_input
from fhirsynth.ingest.csv import read_csv_table
from fhirsynth.report.shareable import PASS, ShareableContext, _checks
from fhirsynth.report.summary import input_columns

HEADER = ("Id,BIRTHDATE,SSN,FIRST,MARITAL,RACE,GENDER,BIRTHPLACE,STATE,ZIP,"
          "HEALTHCARE_EXPENSES")
ROW = ("3edac2e3-d223-6fae-d515-daf96ef6bc76,2014-10-06,999-17-5017,Ann,M,white,F,"
       "Boston  Massachusetts  US,Massachusetts,02155,1000.5")
SMALL = {"name": "small", "columns": {
    "GENDER": {"type": "categorical", "domain": ["F", "M"], "nullable": False},
    "RACE": {"type": "categorical", "domain": ["white", "black", "asian"], "other": True},
    "HEALTHCARE_EXPENSES": {"type": "numeric", "bounds": [0, 3000000]}}}
FULL = {"name": "full", "columns": {
    "Id": {"role": "key"},
    "GENDER": {"type": "categorical", "domain": ["F", "M"], "nullable": False},
    "birth_year": {"type": "integer", "bounds": [1900, 2026],
                   "source": {"column": "BIRTHDATE", "transform": "year"}},
    "STATE": {"type": "categorical", "domain": ["MA", "NY"], "other": True,
              "source": {"column": "STATE", "transform": "state"}},
    "MARITAL": {"role": "drop"}}}


def _read(tmp_path: Path, schema: dict) -> dict:
    (tmp_path / "p.csv").write_text(f"{HEADER}\n{ROW}\n", encoding="utf-8")
    _, rep = read_input([tmp_path / "p.csv"], TableSpec.from_dict(schema))
    return rep


def _table(rep: dict, output: list[str] | None = None) -> dict[str, tuple[str, str]]:
    return {r["column"]: (r["role"], r["treatment"]) for r in input_columns(rep, output)}


def test_columns_the_schema_leaves_out_are_omitted_not_transformed(tmp_path):
    t = _table(_read(tmp_path, SMALL), ["GENDER", "RACE", "HEALTHCARE_EXPENSES"])
    assert t == {
        "Id": ("key", "omitted (identifier)"),
        "BIRTHDATE": ("quasi_identifier", "omitted (not in the schema)"),
        "SSN": ("identifier", "omitted (identifier)"),
        "FIRST": ("identifier", "omitted (identifier)"),
        "MARITAL": ("feature", "omitted (not in the schema)"),
        "RACE": ("feature", "modelled"), "GENDER": ("feature", "modelled"),
        "BIRTHPLACE": ("quasi_identifier", "omitted (not in the schema)"),
        "STATE": ("quasi_identifier", "omitted (not in the schema)"),
        "ZIP": ("quasi_identifier", "omitted (not in the schema)"),
        "HEALTHCARE_EXPENSES": ("feature", "modelled")}


def test_schema_keys_transforms_and_drops_are_named(tmp_path):
    rep = _read(tmp_path, FULL)
    t = _table(rep, ["Id", "GENDER", "birth_year", "STATE"])
    assert t["Id"] == ("key", "regenerated (fresh UUIDv4 per synthetic patient)")
    assert t["BIRTHDATE"] == ("quasi_identifier", "transformed (year) as birth_year")
    assert t["STATE"] == ("quasi_identifier", "transformed (state)")
    assert t["MARITAL"] == ("drop", "omitted (declared by the schema)")
    assert t["ZIP"][1] == "omitted (not in the schema)"
    # only names and classes: no cell value of the row reaches the table
    blob = json.dumps(input_columns(rep))
    for value in ("3edac2e3", "2014", "999-17", "Ann", "Boston", "02155", "1000.5"):
        assert value not in blob
    # an output without the transformed column says so
    assert _table(rep, ["Id", "GENDER", "STATE"])["BIRTHDATE"][1] == "omitted (not in the output)"


def _ctx(spec: TableSpec, cols: list[dict], synthetic: list[str]) -> ShareableContext:
    bt = {"epsilon_total": 1.0, "delta_total": 0.0, "epsilon_spent": 1.0, "delta_spent": 0.0,
          "composition": "basic", "steps": [{"name": "s", "epsilon": 1.0}]}
    return ShareableContext(
        dataset="d", created="2026-01-01", run_id="r", version="0", budget_table=bt, spec=spec,
        synthetic_stats=[], synthetic_columns=synthetic, n_synthetic=10,
        safe_harbor={"passed": True, "findings": []}, software={}, hashes={}, config={},
        limitations="", model_summary={"input_columns": cols})


def _identifier_check(ctx: ShareableContext) -> tuple[str, str]:
    return next((mark, detail) for name, mark, detail in _checks(ctx)
                if name == "Identifier columns excluded from the model")


def test_identifier_check_counts_identifier_and_key_columns_only(tmp_path):
    spec = TableSpec.from_dict(SMALL)
    cols = input_columns(_read(tmp_path, SMALL))
    mark, detail = _identifier_check(_ctx(spec, cols, ["GENDER", "RACE", "HEALTHCARE_EXPENSES"]))
    # Id, SSN, FIRST: not BIRTHDATE, MARITAL, BIRTHPLACE, STATE or ZIP
    assert (mark, detail) == (PASS, "3 identifier or key column(s) not modelled")


def test_derived_and_dropped_fhir_columns_are_not_counted_as_identifiers():
    spec = TableSpec(name="f", columns=(
        Column(name="age", kind="numeric", bounds=(0, 90), integer=True),
        Column(name="birth_year", kind="numeric", bounds=(1936, 2026), role="derived"),
        Column(name="birth_date_precision", categories=("day", "year"), role="drop")))
    mark, detail = _identifier_check(_ctx(spec, [], ["age", "birth_year"]))
    assert mark == PASS
    assert detail == ("no identifier or key column in the schema or the input header (1 "
                      "column(s) dropped by the spec, not counted)")


@pytest.mark.shared_data
@pytest.mark.filterwarnings("ignore::fhirsynth.errors.LowUtilityWarning")  # 22 rows, on purpose
def test_synthea_patients_with_a_three_column_schema(shared_data, tmp_path):
    """The tester's run: the table and the check describe the release, not the proposals."""
    from fhirsynth.config import LearnConfig
    from fhirsynth.pipeline import RunConfig, run_release

    pypdf = pytest.importorskip("pypdf")
    schema = tmp_path / "S.schema.json"
    schema.write_text(json.dumps(SMALL), encoding="utf-8")
    src = shared_data / "csv" / "synthea" / "dbt-synthea-27" / "patients.csv"
    res = run_release(RunConfig(inputs=[src], spec=schema, epsilon=1.0, out=tmp_path / "O",
                                ledger=tmp_path / "L.sqlite", seed=5, formats=("csv",),
                                learn=LearnConfig(allow_few_rows=True)))
    text = " ".join("\n".join(p.extract_text() for p in pypdf.PdfReader(
        str(res.out / "report.pdf")).pages).split())
    table = text[text.index("Input columns: class and treatment"):
                 text.index("The synthetic data's own statistics")]
    for col, cls, treatment in (("GENDER", "feature", "modelled"),
                                ("RACE", "feature", "modelled")):
        assert f"{col} {cls} {treatment}" in table, col
    # a header the schema does not declare is the custodian's data: counted, never named
    # (trial 11 planted a name, an e-mail address and an MRN as header names)
    header = src.read_text(encoding="utf-8").splitlines()[0].split(",")
    for col in ("Id", "BIRTHDATE", "STATE", "ZIP", "MARITAL", "SSN"):
        assert f"{col} " not in table, col
    assert f"{len(header) - 3} more input column(s) that the schema does not declare" in table
    assert "regenerate" not in table and "zip3" not in table and "year" not in table
    assert "12 identifier or key column(s) not modelled" in text


def test_a_dropped_id_column_is_not_counted_but_the_check_says_it_was_dropped():
    # docs/reading-the-report.md: dropped columns are not counted as identifiers; the stroke
    # schema drops its "id" column, so the check must not say the input holds none at all
    spec = TableSpec(name="s", columns=(
        Column(name="id", kind="numeric", bounds=(0, 10**6), integer=True, role="drop"),
        Column(name="marital", categories=("a", "b"), role="drop"),
        Column(name="age", kind="numeric", bounds=(0, 90), integer=True)))
    mark, detail = _identifier_check(_ctx(spec, [], ["age"]))
    assert (mark, detail) == (PASS, "no identifier or key column in the schema or the input "
                                    "header (2 column(s) dropped by the spec, not counted)")


def test_identifier_count_matches_the_table_key_via_source_column_and_drop(tmp_path):
    # trial 23: a key read from header "id", "phone" and "patient_name" (3), and a column the
    # schema drops: the check counted 4
    (tmp_path / "p.csv").write_text(
        "id,phone,patient_name,old_mrn,smoker,age\n7,555-0101,Ann,M1,yes,40\n",
        encoding="utf-8")
    schema = {"name": "k", "columns": {
        "patient_key": {"role": "key", "source": {"column": "id"}},
        "old_mrn": {"role": "drop"},
        "smoker": {"type": "categorical", "domain": ["no", "yes"]},
        "age": {"type": "numeric", "bounds": [0, 89], "integer": True}}}
    spec = TableSpec.from_dict(schema)
    _, rep = read_input([tmp_path / "p.csv"], spec)
    cols = input_columns(rep, ["patient_key", "smoker", "age"])
    in_table = [c["column"] for c in cols if c["role"] in ("identifier", "key")]
    assert sorted(in_table) == ["id", "patient_name", "phone"]
    mark, detail = _identifier_check(_ctx(spec, cols, ["patient_key", "smoker", "age"]))
    assert (mark, detail) == (PASS, "3 identifier or key column(s) not modelled (1 column(s) "
                                    "dropped by the spec, not counted)")


def test_the_target_column_is_named_target_in_the_input_columns(tmp_path):
    # the public-facts table calls it target; the input-columns table must agree
    p = tmp_path / "t.csv"
    p.write_text("age,stroke\n40,0\n70,1\n", "utf-8")
    spec = TableSpec.from_dict({"name": "t", "target": "stroke", "columns": {
        "age": {"type": "numeric", "bounds": [0, 89], "integer": True},
        "stroke": {"type": "boolean"}}})
    _, rep = read_csv_table(p, spec)
    roles = {r["column"]: r["role"] for r in input_columns({"columns": rep.treatments})}
    assert roles == {"age": "feature", "stroke": "target"}


def test_undeclared_header_names_never_reach_the_shareable_report(tmp_path):
    # trial 11: header names such as "Jane CANARYHDR Doe" or "MRN12345678" were printed in
    # report.pdf's input-column table; only names the public schema declares may appear
    from fhirsynth.report.pdf import build_pdf
    from fhirsynth.report.shareable import shareable_story

    pypdf = pytest.importorskip("pypdf")
    # (two or more value-like names make the header a data row, refused on its own)
    canaries = ["Jane CANARYHDR Doe", "CANARYNOTE free text", "MRN12345678", "Smith CANARY"]
    p = tmp_path / "h.csv"
    p.write_text(",".join(["GENDER", "RACE", "HEALTHCARE_EXPENSES", *canaries]) + "\n"
                 + "F,white,10," + ",".join(["x"] * len(canaries)) + "\n", encoding="utf-8")
    spec = TableSpec.from_dict(SMALL)
    _, rep = read_input([p], spec)
    cols = input_columns(rep, ["GENDER", "RACE", "HEALTHCARE_EXPENSES"])
    pdf = build_pdf(tmp_path / "r.pdf", shareable_story(
        _ctx(spec, cols, ["GENDER", "RACE", "HEALTHCARE_EXPENSES"])), title="t", footer="f")
    text = " ".join("\n".join(pg.extract_text() for pg in pypdf.PdfReader(str(pdf)).pages)
                    .split())
    assert "GENDER feature modelled" in text
    assert "4 more input column(s) that the schema does not declare" in text
    for c in canaries:
        assert c not in text and c.split()[-1] not in text, c
