"""What the import drops or clips is counted and summarised (counts and kinds, no values).

FHIR: resources lost with their invalid Patient are counted as such (in a Bundle and in
Bulk NDJSON), not as orphans, and :func:`drop_warning` summarises them in one line;
:func:`issue_row` gives the readable row of an issue.  CSV: values outside a column's bounds
are counted per column and side, top-coded values apart, and ``bounds="fail"`` makes them
row problems.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fhirsynth.domain import TableSpec
from fhirsynth.errors import TableInputError
from fhirsynth.ingest.csv import bounds_warning, read_csv_table
from fhirsynth.ingest.fhir import ImportReport, iter_patients
from fhirsynth.ingest.report import drop_warning, issue_row, stored_report

CANARY = "QZCANARY4412"


def test_loose_patient_dropped_as_invalid_takes_its_resources_along(root, tmp_path):
    bulk = tmp_path / "bulk"
    shutil.copytree(root / "fixtures" / "bulk", bulk)
    lines = (bulk / "Patient.ndjson").read_text("utf-8").splitlines()
    first = json.loads(lines[0])
    first["birthDate"] = f"{CANARY}-02-03"
    (bulk / "Patient.ndjson").write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    own = sum(1 for f in bulk.glob("*.ndjson") if f.name != "Patient.ndjson"
              for line in f.read_text("utf-8").splitlines()
              if f"Patient/{first['id']}" in line)
    report = ImportReport()
    records = list(iter_patients(bulk, report=report))
    assert len(records) == len(lines) - 1
    assert sum(report.dropped_with_patient.values()) == own > 0
    assert not report.orphans
    text = drop_warning(report.to_dict())
    assert text is not None and text.startswith(
        f"FHIR input: 1 resource dropped as invalid (1 Patient with its {own} resources)")
    assert CANARY not in text and first["id"] not in text


def test_drop_warning_counts_kinds_and_says_nothing_when_nothing_was_dropped():
    assert drop_warning({"dropped": {}, "orphans": {}}) is None
    text = drop_warning({
        "dropped": {"Condition: invalid value": 2, "Patient: required element missing": 1,
                    "Patient: invalid value": 1},
        "dropped_with_patient": {"Observation": 30, "Encounter": 7},
        "elements_dropped": {"Condition.onsetDateTime": 4},
        "orphans": {"Observation": 3}})
    assert text is not None
    assert ("FHIR input: 4 resources dropped as invalid (2 Patient with their 37 resources, "
            "2 Condition); 4 invalid elements dropped from kept resources "
            "(Condition.onsetDateTime); 3 resources not attached to any patient (orphans)"
            ) in text
    assert "--strict" in text


def test_issue_rows_are_readable_and_leave_the_resource_id_out():
    fhir = {"where": "file[0] entry[3]", "resource": "Patient/abc-123", "field": "birthDate",
            "problem": "invalid value (value_error)"}
    assert issue_row(fhir) == ["file[0] entry[3]", "Patient", "birthDate",
                               "invalid value (value_error)"]
    assert issue_row("p.csv line 4: age: not a number") == ["p.csv line 4", "", "age",
                                                            "not a number"]
    stored = stored_report({"issues": [fhir], "warnings": ["names b.json"]})
    assert stored == {"issues": [dict(fhir, resource="Patient")]}


SCHEMA = {"name": "t", "columns": {
    "age": {"type": "numeric", "bounds": [0, 90], "integer": True, "nullable": True,
            "source": {"top_code": 90}},
    "glucose": {"type": "numeric", "bounds": [50, 300], "nullable": True}}}


def _csv(tmp_path: Path) -> Path:
    p = tmp_path / "t.csv"
    p.write_text("age,glucose\n-5,100\n95,9999\n40,\n120,20\n30,x\n", "utf-8")
    return p


def test_out_of_bounds_values_are_counted_per_column_and_kept(tmp_path):
    table, rep = read_csv_table(_csv(tmp_path), TableSpec.from_dict(SCHEMA), strict=False)
    assert len(table) == 4  # the row with "x" is dropped as before; its age is not counted
    assert rep.out_of_bounds == {
        "age": {"bounds": [0, 90], "below": 1, "above": 0, "top_coded": 2, "bottom_coded": 0},
        "glucose": {"bounds": [50, 300], "below": 1, "above": 1, "top_coded": 0, "bottom_coded": 0}}
    assert table["age"].tolist()[:2] == [-5, 95]  # kept as read: encoding clips
    text = bounds_warning("t.csv", rep.out_of_bounds)
    assert text == ("t.csv: 3 value(s) outside the schema's bounds, clipped to them before "
                    "any DP step (age 1 below [0, 90]; glucose 1 below and 1 above [50, 300]); "
                    "fix the input or the bounds if that is unexpected, or rerun with --strict "
                    "to fail on them instead")
    assert bounds_warning("t.csv", {"age": {"bounds": [0, 90], "below": 0, "above": 0,
                                            "top_coded": 5, "bottom_coded": 0}}) is None


def test_bounds_fail_names_file_line_and_column_never_the_value(tmp_path):
    with pytest.raises(TableInputError) as err:
        read_csv_table(_csv(tmp_path), TableSpec.from_dict(SCHEMA), bounds="fail")
    msg = str(err.value).replace(str(tmp_path), "TMP")  # pytest-55 holds "-5"
    assert "t.csv line 2: age: value below the schema's bounds [0, 90]" in msg
    assert "t.csv line 3: glucose: value above the schema's bounds [50, 300]" in msg
    assert "t.csv line 5: glucose: value below" in msg and "line 5: age" not in msg
    assert "9999" not in msg and "-5" not in msg
