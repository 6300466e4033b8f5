"""Resource ids never reach a message or an issue: in Bulk exports the Patient id is the MRN.

Every test plants a canary id (and reference) and checks that the place is still named by
file, line or entry index and resource type, and that the canary appears nowhere.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from fhirsynth.errors import FHIRValidationError, FHIRVersionError, InputError, Issue
from fhirsynth.ingest.extract_base import ExtractReport
from fhirsynth.ingest.fhir import ImportReport, iter_patients
from fhirsynth.ingest.records import PatientRecord

CANARY = "MRN99887766"


def _patient(pid: str, **extra: object) -> dict:
    return {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1970-05",
            **extra}


def _condition(cid: str, ref: str) -> dict:
    return {"resourceType": "Condition", "id": cid, "subject": {"reference": ref},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]}}


def _ndjson(path: Path, *resources: dict) -> Path:
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in resources) + b"\n")
    return path


def _bundle(path: Path, *resources: dict) -> Path:
    doc = {"resourceType": "Bundle", "type": "collection",
           "entry": [{"resource": r} for r in resources]}
    path.write_bytes(orjson.dumps(doc))
    return path


def _everything(report: ImportReport) -> str:
    return repr(report.to_dict(file_names=True)) + "\n".join(str(i) for i in report.issues)


def test_issue_keeps_the_resource_type_only():
    issue = Issue("Patient.000.ndjson line 3", "invalid date", f"Patient/{CANARY}", "birthDate")
    assert issue.resource == "Patient"
    assert str(issue) == "Patient.000.ndjson line 3: Patient: birthDate: invalid date"


def test_strict_ndjson_error_names_file_line_and_type_not_the_id(tmp_path):
    f = _ndjson(tmp_path / "Patient.000.ndjson", _patient("a1"), _patient("a2"),
                _patient(CANARY, birthDate="1970-13-45"))
    with pytest.raises(FHIRValidationError) as info:
        list(iter_patients(f, strict=True))
    msg = str(info.value)
    assert "Patient.000.ndjson line 3: Patient: birthDate: " in msg
    assert CANARY not in msg


def test_lenient_issues_and_report_hold_no_id(tmp_path):
    f = _ndjson(tmp_path / "Patient.000.ndjson", _patient(CANARY, birthDate="1970-13-45"))
    report = ImportReport()
    list(iter_patients(f, report=report))
    assert [(i.where, i.resource, i.field) for i in report.issues] == [
        ("Patient.000.ndjson line 1", "Patient", "birthDate")]
    assert CANARY not in _everything(report)


def test_bundle_orphan_quotes_neither_its_id_nor_its_reference(tmp_path):
    f = _bundle(tmp_path / "b.json", _patient("p1"),
                _condition(f"cond-{CANARY}", f"Patient/{CANARY}"))
    report = ImportReport()
    list(iter_patients(f, report=report))
    (issue,) = report.issues
    assert (issue.where, issue.resource, issue.field) == ("b.json entry[1]", "Condition",
                                                          "subject")
    assert "orphan" in issue.problem and CANARY not in _everything(report)
    with pytest.raises(FHIRValidationError) as info:
        list(iter_patients(f, strict=True))
    assert "b.json entry[1]: Condition: subject" in str(info.value)
    assert CANARY not in str(info.value)


def test_loose_ndjson_orphan_quotes_neither_its_id_nor_its_reference(tmp_path):
    _ndjson(tmp_path / "Patient.ndjson", _patient("p1"))
    _ndjson(tmp_path / "Condition.ndjson", _condition(f"cond-{CANARY}", f"Patient/{CANARY}"),
            {**_condition("c2", f"Encounter/{CANARY}"),
             "encounter": {"reference": f"Encounter/{CANARY}"}, "subject": None})
    report = ImportReport()
    list(iter_patients(tmp_path, report=report))
    assert report.issues and all(i.resource == "Condition" for i in report.issues)
    assert all(i.where.startswith("Condition.ndjson line ") for i in report.issues)
    assert CANARY not in _everything(report)
    with pytest.raises(FHIRValidationError) as info:
        list(iter_patients(tmp_path, strict=True))
    assert CANARY not in str(info.value)


def test_duplicate_patient_names_the_two_places_not_the_id(tmp_path):
    f = _bundle(tmp_path / "dup.json", _patient(CANARY), _patient(CANARY, gender="male"))
    with pytest.raises(InputError) as info:
        list(iter_patients(f))
    assert "dup.json entry[0] and at dup.json entry[1]" in str(info.value)
    assert CANARY not in str(info.value)


def test_version_error_names_the_type_not_the_id(tmp_path):
    p = _patient(CANARY, meta={"profile": ["http://hl7.org/fhir/STU3/StructureDefinition/Patient"]})
    with pytest.raises(FHIRVersionError) as info:
        list(iter_patients(_bundle(tmp_path / "v.json", p)))
    assert "v.json entry[0]: Patient: " in str(info.value) and "STU3" in str(info.value)
    assert CANARY not in str(info.value)


def test_extraction_issue_names_the_type_not_the_id():
    record = PatientRecord(patient_id=CANARY, patient=_patient(CANARY), source="b.json")
    report = ExtractReport()
    report.add("marital_status: unknown code", record, record.patient, "maritalStatus")
    (issue,) = report.issues
    assert str(issue) == "b.json: Patient: maritalStatus: marital_status: unknown code"
    assert CANARY not in str(issue)


def test_extraction_issues_find_the_resource_by_file_and_line_or_entry(tmp_path):
    from fhirsynth.ingest.extract_base import ExtractReport

    cond = _condition(f"cond-{CANARY}", f"Patient/{CANARY}")
    bulk = tmp_path / "bulk"
    bulk.mkdir()
    _ndjson(bulk / "Patient.ndjson", _patient("p0"), _patient(CANARY))
    _ndjson(bulk / "Condition.ndjson", _condition("c0", "Patient/p0"), cond)
    bundle = _bundle(tmp_path / "b.json", _patient(f"{CANARY}-b"),
                     _condition("cb", f"Patient/{CANARY}-b"))
    places = []
    for source in (bulk, bundle):
        for rec in iter_patients(source):
            if rec.patient_id.startswith(CANARY):
                report = ExtractReport()
                report.add("k", rec, rec.patient)
                report.add("k", rec, rec.of_type("Condition")[0])
                places += [str(i) for i in report.issues]
    assert places == ["Patient.ndjson line 2: Patient: k",
                      "Condition.ndjson line 2: Condition: k",
                      "b.json entry[0]: Patient: k", "b.json entry[1]: Condition: k"]
    assert CANARY not in " ".join(places)


def test_import_report_of_a_run_holds_no_id(tmp_path):
    """The dict the internal report and evaluation.json are built from (``read_input``)."""
    import json

    from fhirsynth.ingest import read_input
    from fhirsynth.ingest.features import load_feature_spec
    from fhirsynth.ingest.report import stored_report

    f = _bundle(tmp_path / "b.json", _patient("p1"), _patient(CANARY, birthDate="2090-01-01"),
                _condition(f"cond-{CANARY}", f"Patient/{CANARY}-gone"))
    _, report = read_input([f], load_feature_spec(None))
    extraction = report["extraction"]["issues"]
    assert extraction and all(i.startswith("file[0] entry[1]: Patient: ") for i in extraction)
    assert any("orphan" in i["problem"] for i in report["issues"])
    assert CANARY not in json.dumps(report, default=str)
    assert CANARY not in json.dumps(stored_report(report), default=str)
