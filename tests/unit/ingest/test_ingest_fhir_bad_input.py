"""Bad input: each fault gives one clear InputError naming where and what, never a value."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import orjson
import pytest

from fhirsynth.errors import FHIRValidationError, FHIRVersionError, InputError
from fhirsynth.ingest.fhir import ImportReport, iter_patients


def patient(pid: str, **extra: object) -> dict:
    return {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1970-05",
            **extra}


def condition(cid: str, ref: str) -> dict:
    return {"resourceType": "Condition", "id": cid, "subject": {"reference": ref},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]}}


def bundle(*resources: dict, full_urls: bool = True) -> dict:
    entries = []
    for r in resources:
        e: dict = {"resource": r}
        if full_urls:
            e["fullUrl"] = f"urn:uuid:{r['id']}"
        entries.append(e)
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def write(path: Path, doc: object) -> Path:
    path.write_bytes(orjson.dumps(doc))
    return path


def test_malformed_json_names_line_and_column(tmp_path):
    f = tmp_path / "broken.json"
    f.write_text('{\n  "resourceType": "Bundle",\n  "entry": [\n    {"resource": }\n  ]\n}')
    with pytest.raises(InputError, match=r"broken\.json: malformed JSON at line 4, column"):
        list(iter_patients(f))


def test_malformed_ndjson_line_names_file_and_line(tmp_path):
    f = tmp_path / "Patient.ndjson"
    lines = [orjson.dumps(patient("a")).decode(), orjson.dumps(patient("b")).decode()[:-5],
             orjson.dumps(patient("c")).decode()]
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"Patient\.ndjson: line 2: malformed JSON"):
        list(iter_patients(f))


def test_truncated_gzip(tmp_path):
    data = gzip.compress(b"\n".join(orjson.dumps(patient(f"p{i}")) for i in range(2000)))
    f = tmp_path / "Patient.ndjson.gz"
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"Patient\.ndjson\.gz: truncated or corrupt gzip"):
        list(iter_patients(f))
    g = tmp_path / "bundle.json.gz"
    g.write_bytes(gzip.compress(orjson.dumps(bundle(patient("x"))))[:-12])
    with pytest.raises(InputError, match=r"bundle\.json\.gz: truncated or corrupt gzip"):
        list(iter_patients(g))


def test_json_that_is_not_fhir(tmp_path):
    f = write(tmp_path / "config.json", {"name": "Jane Roe", "items": [1, 2]})
    with pytest.raises(InputError) as info:
        list(iter_patients(f))
    assert "config.json: not a FHIR resource or Bundle (no resourceType)" in str(info.value)
    assert "Jane" not in str(info.value)


def test_non_fhir_file_in_a_folder_is_skipped_and_counted(tmp_path):
    write(tmp_path / "a.json", bundle(patient("p1")))
    (tmp_path / "log.ndjson").write_text('{"exportId": "1", "eventId": "kickoff"}\n')
    report = ImportReport()
    assert [r.patient_id for r in iter_patients(tmp_path, report=report)] == ["p1"]
    assert report.files_skipped == {"not FHIR (no resourceType)": 1}


def test_r5_resource_names_type_and_version(tmp_path):
    usage = {"resourceType": "MedicationUsage", "id": "mu1", "status": "recorded",
             "subject": {"reference": "urn:uuid:p1"}}
    f = write(tmp_path / "r5.json", bundle(patient("p1"), usage))
    with pytest.raises(FHIRVersionError) as info:
        list(iter_patients(f))
    msg = str(info.value)
    assert "r5.json entry[1]" in msg and "MedicationUsage" in msg
    assert "FHIR R5" in msg and "configured for FHIR R4" in msg


def test_stu3_resource_names_type_and_version(tmp_path):
    req = {"resourceType": "ProcedureRequest", "id": "pr1", "status": "active",
           "intent": "order", "subject": {"reference": "Patient/p1"}}
    f = write(tmp_path / "stu3.json", req)
    with pytest.raises(FHIRVersionError, match=r"stu3\.json: ProcedureRequest: .*FHIR STU3"):
        list(iter_patients(f))


def test_stu3_core_profile_is_detected(tmp_path):
    obs = patient("p1", meta={"profile": ["http://hl7.org/fhir/STU3/StructureDefinition/Patient"]})
    with pytest.raises(FHIRVersionError, match="p.json: Patient: .*FHIR STU3"):
        list(iter_patients(write(tmp_path / "p.json", obs)))


def test_us_core_stu3_named_profile_is_not_mistaken_for_stu3(tmp_path):
    p = patient("p1", meta={"profile": [
        "http://hl7.org/fhir/us/core/STU3.1.1/StructureDefinition/us-core-patient"]})
    assert [r.patient_id for r in iter_patients(write(tmp_path / "p.json", p))] == ["p1"]


def test_orphan_subject_is_reported_not_a_phantom_patient(tmp_path):
    f = write(tmp_path / "b.json", bundle(patient("p1"), condition("c1", "Patient/404"),
                                          condition("c2", "urn:uuid:p1")))
    report = ImportReport()
    records = list(iter_patients(f, report=report))
    assert [r.patient_id for r in records] == ["p1"]
    assert [c["id"] for c in records[0].of_type("Condition")] == ["c2"]
    assert report.orphans == {"Condition": 1}
    (issue,) = report.issues
    assert issue.resource == "Condition" and "orphan" in issue.problem
    with pytest.raises(FHIRValidationError, match="orphan"):
        list(iter_patients(f, strict=True))


def test_orphan_in_ndjson_is_reported(tmp_path):
    (tmp_path / "Patient.ndjson").write_bytes(orjson.dumps(patient("p1")) + b"\n")
    (tmp_path / "Condition.ndjson").write_bytes(
        orjson.dumps(condition("c1", "Patient/p1")) + b"\n"
        + orjson.dumps(condition("c2", "Patient/nobody")) + b"\n")
    report = ImportReport()
    records = list(iter_patients(tmp_path, report=report))
    assert [r.patient_id for r in records] == ["p1"]
    assert report.orphans == {"Condition": 1}
    assert report.patients == 1
    with pytest.raises(FHIRValidationError, match="point to no Patient"):
        list(iter_patients(tmp_path, strict=True))


def test_two_patients_with_one_id_in_one_bundle(tmp_path):
    f = write(tmp_path / "dup.json", bundle(patient("p1"), condition("c", "Patient/p1"),
                                            patient("p1", gender="male")))
    with pytest.raises(InputError) as info:
        list(iter_patients(f))
    assert "Patient id is defined twice: at dup.json entry[0] and at dup.json entry[2]" in str(
        info.value) and "p1 " not in str(info.value)


def test_two_patients_with_one_id_across_files(tmp_path):
    write(tmp_path / "a.json", bundle(patient("p1")))
    (tmp_path / "b.ndjson").write_bytes(orjson.dumps(patient("p1")) + b"\n")
    with pytest.raises(InputError, match=r"defined twice: at a\.json entry\[0\] and at "
                                         r"b\.ndjson line 1"):
        list(iter_patients(tmp_path))


def test_empty_directory(tmp_path):
    with pytest.raises(InputError, match="folder holds no FHIR files"):
        list(iter_patients(tmp_path))


def test_missing_path(tmp_path):
    with pytest.raises(InputError, match="no such file or directory"):
        list(iter_patients(tmp_path / "nope.json"))


def test_remote_manifest_output_is_refused(tmp_path):
    write(tmp_path / "manifest.json", {"transactionTime": "2024-01-01T00:00:00Z",
                                       "output": [{"type": "Patient",
                                                   "url": "https://x.test/Patient.ndjson"}]})
    with pytest.raises(InputError, match="remote URL"):
        list(iter_patients(tmp_path / "manifest.json"))


def test_manifest_reads_its_local_outputs(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "P.ndjson").write_bytes(orjson.dumps(patient("p1")) + b"\n")
    (out / "C.ndjson").write_bytes(orjson.dumps(condition("c1", "Patient/p1")) + b"\n")
    manifest = {"transactionTime": "2024-01-01T00:00:00Z", "request": "x",
                "output": [{"type": "Patient", "url": "out/P.ndjson"},
                           {"type": "Condition", "url": (out / "C.ndjson").as_uri()}]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    report = ImportReport()
    (rec,) = list(iter_patients(tmp_path / "manifest.json", report=report))
    assert rec.patient_id == "p1" and len(rec.of_type("Condition")) == 1
    assert report.files == ["P.ndjson", "C.ndjson"]


def test_a_folder_of_csv_files_is_told_how_csv_input_works(tmp_path):
    # a trial gave the Synthea CSV export folder; the error only listed FHIR extensions
    for name in ("patients.csv", "conditions.csv", "encounters.csv"):
        (tmp_path / name).write_text("Id,X\n1,2\n")
    with pytest.raises(InputError) as err:
        list(iter_patients(tmp_path))
    msg = str(err.value)
    assert "folder holds no FHIR files" in msg and "3 CSV file(s)" in msg
    assert "conditions.csv" in msg and "--schema" in msg and "docs/csv-input.md" in msg


@pytest.mark.parametrize(("entry", "kind", "field"), [
    ("Jane Roe 1974-05-02", "entry is a string, not an object", ""),
    (12345, "entry is a number, not an object", ""),
    ([patient("p9")], "entry is a list, not an object", ""),
    ({"resource": "Jane Roe"}, "entry.resource is a string, not an object", "resource"),
    ({"resource": None}, "entry.resource is null, not an object", "resource"),
])
def test_a_bundle_entry_that_is_not_an_object_fails_strict_and_is_counted_lenient(
        tmp_path, entry, kind, field):
    doc = bundle(patient("p1"), condition("c1", "urn:uuid:p1"), patient("p2"))
    doc["entry"].insert(3, entry)
    f = write(tmp_path / "b.json", doc)
    with pytest.raises(FHIRValidationError) as info:
        list(iter_patients(f, strict=True))
    msg = str(info.value)
    assert msg.startswith("b.json: 1 FHIR issue(s) (strict mode)")
    assert f"b.json entry[3]: {field + ': ' if field else ''}{kind}" in msg
    assert "Jane" not in msg and "12345" not in msg and "p9" not in msg

    report = ImportReport()
    assert [r.patient_id for r in iter_patients(f, report=report)] == ["p1", "p2"]
    assert report.skipped == {"Bundle entry that is not an object": 1}
    (issue,) = report.issues
    assert issue.where == "b.json entry[3]" and kind in issue.problem
    (warning,) = report.warnings
    assert "b.json: 1 Bundle entry skipped" in warning and "the first at entry[3]" in warning
    assert "--strict" in warning and "Jane" not in warning


@pytest.mark.parametrize("kind", ["batch-response", "transaction-response", "history"])
def test_a_bundle_entry_without_resource_is_still_a_quiet_skip(tmp_path, kind):
    # a batch-response or history entry legitimately has no resource: not an issue
    doc = bundle(patient("p1")) | {"type": kind}
    doc["entry"].append({"fullUrl": "urn:uuid:x", "response": {"status": "201 Created"}})
    f = write(tmp_path / "b.json", doc)
    report = ImportReport()
    assert [r.patient_id for r in iter_patients(f, report=report, strict=True)] == ["p1"]
    assert report.skipped == {"Bundle entry without resource": 1} and not report.issues
