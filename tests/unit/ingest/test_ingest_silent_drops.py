"""Resources the reader used to pass over in silence (QA trial 24): loose resources whose
patient came in a Bundle, resources filed under another type's name, Bundle entries without
a resource; each is now counted, warned of and refused by ``--strict`` naming its place."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from fhirsynth.cli import app
from fhirsynth.errors import FHIRValidationError
from fhirsynth.ingest.fhir import ImportReport, iter_patients
from fhirsynth.ingest.report import drop_warning

#: an id shaped like a record number: it must reach no message
MRN = "mrn-88127341"


def patient(pid: str) -> dict:
    return {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1970-05"}


def condition(cid: str, ref: str) -> dict:
    return {"resourceType": "Condition", "id": cid, "subject": {"reference": ref},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]}}


def encounter(eid: str, ref: str) -> dict:
    return {"resourceType": "Encounter", "id": eid, "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                      "code": "AMB"}, "subject": {"reference": ref},
            "period": {"start": "2020-01-01T10:00:00Z"}}


def ndjson(path: Path, *docs: dict) -> Path:
    path.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in docs))
    return path


def bundle(path: Path, *resources: dict, kind: str = "collection") -> Path:
    entries = [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources]
    path.write_bytes(orjson.dumps({"resourceType": "Bundle", "type": kind, "entry": entries}))
    return path


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def _ingest(tmp_path: Path, *args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, ["ingest", *args, "--out", str(tmp_path / "t.csv"),
                                   "--ledger", str(tmp_path / "l.sqlite")])
    return res.exit_code, _flat(res.output)


# -- item 1: a loose resource whose patient came in a Bundle ---------------------------------

def _mixed(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    bundle(folder / "bundle.json", patient(MRN))
    ndjson(folder / "Patient.ndjson", patient("p2"))
    ndjson(folder / "Condition.ndjson", condition("c2", "Patient/p2"),
           condition("c1", f"Patient/{MRN}"))
    return folder


def test_a_loose_resource_of_a_bundle_patient_is_counted_and_warned(tmp_path):
    folder = _mixed(tmp_path)
    report = ImportReport()
    records = {r.patient_id: r for r in iter_patients(folder, report=report)}
    assert set(records) == {MRN, "p2"}
    assert not records[MRN].of_type("Condition")  # a Bundle is a closed world
    assert [c["id"] for c in records["p2"].of_type("Condition")] == ["c2"]
    assert report.bundle_refs == {"Condition": 1} and not report.orphans
    (issue,) = report.issues
    assert (issue.where, issue.resource, issue.field) == ("Condition.ndjson line 2",
                                                          "Condition", "subject")
    assert "refers to a patient held in a Bundle; Bundles are read as closed worlds" \
        in issue.problem
    warning = drop_warning(report.to_dict())
    assert warning is not None and "1 loose resource not attached: it refers to a patient " \
        "held in a Bundle; Bundles are read as closed worlds" in warning
    assert MRN not in str(report.to_dict(file_names=True)) + warning


def test_a_loose_resource_of_a_bundle_patient_fails_strict_naming_file_and_line(tmp_path):
    folder = _mixed(tmp_path)
    with pytest.raises(FHIRValidationError) as info:
        list(iter_patients(folder, strict=True))
    msg = str(info.value)
    assert msg.startswith("Condition.ndjson line 2: Condition.subject: refers to a patient "
                          "held in a Bundle; Bundles are read as closed worlds")
    assert "(strict mode)" in msg and MRN not in msg


def test_cli_ingest_warns_of_and_strict_refuses_a_loose_resource_of_a_bundle_patient(
        tmp_path):
    folder = _mixed(tmp_path)
    code, output = _ingest(tmp_path, str(folder))
    assert code == 0, output
    assert "refer to Bundle patients Condition: 1" in output
    assert "warning: FHIR input: 1 loose resource not attached: it refers to a patient held " \
        "in a Bundle" in output
    code, output = _ingest(tmp_path, str(folder), "--strict", "--overwrite")
    assert code == 2, output
    assert "Condition.ndjson line 2: Condition.subject: refers to a patient held in a " \
        "Bundle" in output and "Traceback" not in output and MRN not in output


# -- item 7: the strict orphan refusal names the first orphan --------------------------------

def test_the_strict_orphan_refusal_names_the_first_orphan_by_file_and_line(tmp_path):
    ndjson(tmp_path / "Patient.ndjson", patient("p1"))
    ndjson(tmp_path / "Encounter.ndjson", encounter("e1", "Patient/p1"),
           encounter("e2", f"Patient/{MRN}"))
    ndjson(tmp_path / "Condition.ndjson", condition("c1", f"Patient/{MRN}"))
    with pytest.raises(FHIRValidationError) as info:
        list(iter_patients(tmp_path, strict=True))
    msg = str(info.value)
    # Condition.ndjson is read before Encounter.ndjson (sorted order)
    assert msg.startswith("Condition.ndjson line 1: Condition.subject: refers to a Patient "
                          "that is not in the input (orphan)"), msg
    assert "1 patient reference(s) in loose input point to no Patient" in msg
    assert MRN not in msg


@pytest.mark.parametrize("text", ["02/04/1974", "yesterday", "", "Apr 2 1974"])
def test_a_birth_date_string_that_is_no_date_is_said_as_such(tmp_path, text):
    f = ndjson(tmp_path / "Patient.ndjson", patient("p1") | {"birthDate": text})
    with pytest.raises(FHIRValidationError) as info:
        list(iter_patients(f, strict=True))
    msg = str(info.value)
    assert ("Patient.ndjson line 1: Patient: birthDate: not a FHIR date/dateTime (YYYY, "
            "YYYY-MM, YYYY-MM-DD or dateTime with timezone)") in msg
    assert "value_error" not in msg and (not text or text not in msg)


def test_a_nested_date_string_that_is_no_date_is_said_as_such(tmp_path):
    enc = encounter("e1", "Patient/p1") | {"period": {"start": "last week"}}
    ndjson(tmp_path / "Patient.ndjson", patient("p1"))
    ndjson(tmp_path / "Encounter.ndjson", enc)
    report = ImportReport()
    list(iter_patients(tmp_path, report=report))
    (issue,) = report.issues
    assert issue.field == "period.start" and issue.problem.startswith(
        "not a FHIR date/dateTime (YYYY, YYYY-MM"), issue


# -- item 5: a resource in a Bulk file named for another type --------------------------------

def _misfiled(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    ndjson(folder / "Patient.ndjson", patient("p1"))
    ndjson(folder / "Condition.000.ndjson", condition("c1", "Patient/p1"),
           encounter("e1", "Patient/p1"), condition("c2", "Patient/p1"),
           encounter("e2", "Patient/p1"))
    return folder


def test_a_resource_in_a_file_named_for_another_type_is_counted_and_warned(tmp_path):
    folder = _misfiled(tmp_path)
    report = ImportReport()
    (record,) = iter_patients(folder, report=report)
    # read as what it is (the resource itself is valid), but never in silence
    assert len(record.of_type("Encounter")) == 2 and len(record.of_type("Condition")) == 2
    assert report.misfiled == {"Encounter": 2}
    assert report.to_dict()["in_files_named_for_another_type"] == {"Encounter": 2}
    assert [(i.where, i.resource, i.field) for i in report.issues] == [
        ("Condition.000.ndjson line 2", "Encounter", "resourceType"),
        ("Condition.000.ndjson line 4", "Encounter", "resourceType")]
    assert report.warnings == [
        "Condition.000.ndjson: 2 line(s) hold a resource of another type than the file's name "
        "says (Condition), the first at line 2; read as their own type; --strict fails on "
        "them instead"]


def test_a_resource_in_a_file_named_for_another_type_fails_strict_naming_file_and_line(
        tmp_path):
    with pytest.raises(FHIRValidationError) as info:
        list(iter_patients(_misfiled(tmp_path), strict=True))
    msg = str(info.value)
    assert msg.startswith("Condition.000.ndjson: 2 FHIR issue(s) (strict mode)")
    assert ("Condition.000.ndjson line 2: Encounter: resourceType: an Encounter in a file "
            "named for Condition resources\n") in msg + "\n"
    code, output = _ingest(tmp_path, str(tmp_path / "in"), "--strict")
    assert code == 2 and "Condition.000.ndjson line 2: Encounter: resourceType" in output


@pytest.mark.parametrize("name", ["Condition.ndjson", "Condition_part00012.ndjson.gz",
                                  "Condition-1.jsonl"])
def test_bulk_file_names_say_their_type(tmp_path, name):
    import gzip

    data = orjson.dumps(encounter("e1", "Patient/p1")) + b"\n"
    (tmp_path / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    ndjson(tmp_path / "Patient.ndjson", patient("p1"))
    report = ImportReport()
    list(iter_patients(tmp_path, report=report))
    assert report.misfiled == {"Encounter": 1}


# -- item 6: a Bundle entry that lost its resource -------------------------------------------

def _entry_lost(tmp_path: Path, kind: str, request: dict | None = None) -> Path:
    path = bundle(tmp_path / "b.json", patient("p1"), condition("c1", "urn:uuid:p1"),
                  kind=kind)
    doc = orjson.loads(path.read_bytes())
    lost: dict = {"fullUrl": f"urn:uuid:{MRN}"}
    if request is not None:
        lost["request"] = request
    doc["entry"].insert(1, lost)
    path.write_bytes(orjson.dumps(doc))
    return path


@pytest.mark.parametrize(("kind", "request_"), [
    ("collection", None), ("document", None), ("transaction", {"method": "POST", "url": "x"}),
    ("batch", {"method": "PUT", "url": "x"}), ("transaction", None)])
def test_an_entry_without_resource_fails_strict_naming_file_and_entry(tmp_path, kind, request_):
    f = _entry_lost(tmp_path, kind, request_)
    with pytest.raises(FHIRValidationError) as info:
        list(iter_patients(f, strict=True))
    msg = str(info.value)
    assert msg.startswith("b.json: 1 FHIR issue(s) (strict mode)")
    assert (f"b.json entry[1]: resource: entry has no resource (a {kind} Bundle entry needs "
            "one)\n") in msg + "\n"
    assert MRN not in msg


def test_an_entry_without_resource_is_counted_and_warned_naming_file_and_entry(tmp_path):
    f = _entry_lost(tmp_path, "transaction", {"method": "POST", "url": "Condition"})
    doc = orjson.loads(f.read_bytes())
    # requests that carry no body (GET, HEAD, DELETE) are no issue
    doc["entry"] += [{"request": {"method": m, "url": "Patient/x"}}
                     for m in ("GET", "HEAD", "DELETE")]
    f.write_bytes(orjson.dumps(doc))
    report = ImportReport()
    (record,) = iter_patients(f, report=report)
    assert len(record.of_type("Condition")) == 1
    assert report.skipped == {"Bundle entry without resource": 4}
    (issue,) = report.issues
    assert (issue.where, issue.field) == ("b.json entry[1]", "resource")
    assert report.warnings == ["b.json: 1 transaction Bundle entry without a resource "
                               "skipped, the first at entry[1]; --strict fails on them instead"]
    code, output = _ingest(tmp_path, str(f), "--strict")
    assert code == 2 and "b.json entry[1]: resource: entry has no resource" in output

