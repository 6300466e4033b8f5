"""Input faults from QA trial 16: NDJSON read as NDJSON whatever its first line, encodings
named, over-long lines refused, and no input string echoed in a message."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from fhirsynth.errors import FHIRValidationError, InputError
from fhirsynth.ingest import sources
from fhirsynth.ingest.fhir import ImportReport, iter_patients


def patient(pid: str) -> dict:
    return {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1970-05"}


def ndjson(path: Path, *docs: object) -> Path:
    data = b"".join(orjson.dumps(d) + b"\n" for d in docs)
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


# -- item 1: an NDJSON file is NDJSON whatever its first line --------------------------------

@pytest.mark.parametrize("first", [{"id": "x"}, {"resourceType": 42}])
@pytest.mark.parametrize("name", ["Patient.ndjson", "Patient.jsonl.gz"])
def test_a_bad_first_ndjson_line_skips_that_line_only(tmp_path, first, name):
    folder = tmp_path / "in"
    folder.mkdir()
    ndjson(folder / name, first, patient("p1"), patient("p2"))
    # a file without a single resource (a Bulk export's log) is still skipped as not FHIR
    ndjson(folder / "log.ndjson", {"eventId": "kickoff"}, {"eventId": "done"})
    report = ImportReport()
    records = list(iter_patients(folder, report=report))
    assert sorted(r.patient_id for r in records) == ["p1", "p2"]
    assert report.files_skipped == {"not FHIR (no resourceType)": 1}
    assert report.skipped == {"NDJSON line without resourceType": 1}
    assert [(i.where, i.field) for i in report.issues] == [(f"{name} line 1", "resourceType")]
    assert any(w.startswith(f"{name}: 1 line(s) skipped") for w in report.warnings)


def test_a_bad_first_ndjson_line_fails_strict_naming_file_line_and_field(tmp_path):
    f = ndjson(tmp_path / "Patient.ndjson", {"resourceType": 42}, patient("p1"))
    with pytest.raises(FHIRValidationError) as info:
        list(iter_patients(f, strict=True))
    assert "Patient.ndjson line 1: resourceType: line is not a FHIR resource" in str(info.value)


# -- item 7: encodings named -----------------------------------------------------------------

def test_a_non_utf8_byte_in_an_ndjson_line_is_named_as_such(tmp_path):
    f = tmp_path / "Patient.ndjson"
    f.write_bytes(orjson.dumps(patient("p1")) + b"\n"
                  + b'{"resourceType": "Patient", "id": "\xe9"}\n')
    with pytest.raises(InputError, match=r"^Patient\.ndjson: line 2: not UTF-8 at byte 36"):
        list(iter_patients(f))


@pytest.mark.parametrize("name", ["Patient.ndjson", "bundle.json"])
@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le"])
def test_utf16_input_says_utf16_is_not_supported(tmp_path, name, encoding):
    f = tmp_path / name
    f.write_bytes(orjson.dumps(patient("p1")).decode().encode(encoding) + "\n".encode(encoding))
    with pytest.raises(InputError) as info:
        list(iter_patients(f))
    assert "UTF-16" in str(info.value) and "malformed JSON" not in str(info.value)
    assert str(info.value).startswith(name)


# -- item 6: over-long lines and documents ---------------------------------------------------

def test_an_ndjson_line_over_the_cap_is_refused_naming_file_and_line(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "MAX_LINE_BYTES", 1000)
    f = tmp_path / "Patient.ndjson.gz"
    f.write_bytes(gzip.compress(orjson.dumps(patient("p1")) + b"\n" + b" " * 5000 + b"\n"))
    with pytest.raises(InputError, match=r"^Patient\.ndjson\.gz: line 2: longer than"):
        list(iter_patients(f))


def test_a_json_document_over_the_cap_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "MAX_JSON_BYTES", 1000)
    f = tmp_path / "b.json.gz"
    f.write_bytes(gzip.compress(b" " * 5000 + orjson.dumps(patient("p1"))))
    with pytest.raises(InputError, match=r"^b\.json\.gz: larger than"):
        list(iter_patients(f))


# -- item 2: no string of the input in a message ---------------------------------------------

CANARY_TYPE = "ZqxcanaryWobblefoot"
CANARY_KEY = "MRN-CANARY-771"


def _bundle(*resources: dict) -> dict:
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources]}


def test_an_unknown_resource_type_is_counted_never_named(tmp_path):
    from fhirsynth.ingest.report import drop_warning

    f = tmp_path / "b.json"
    f.write_bytes(orjson.dumps(_bundle(patient("p1"), {"resourceType": CANARY_TYPE,
                                                       "id": "w"})))
    report = ImportReport()
    assert len(list(iter_patients(f, report=report))) == 1
    shown = str(report.to_dict()) + str(drop_warning(report.to_dict()))
    assert CANARY_TYPE not in shown
    assert "1 resource dropped as invalid (1 of an unknown resource type)" in str(
        drop_warning(report.to_dict()))
    with pytest.raises(FHIRValidationError) as info:
        list(iter_patients(f, strict=True))
    assert CANARY_TYPE not in str(info.value) and "unknown resource type" in str(info.value)


def test_an_unknown_element_key_is_counted_never_named(tmp_path):
    obs = {"resourceType": "Observation", "id": "o1", "status": "final",
           "subject": {"reference": "urn:uuid:p1"},
           "code": {"coding": [{"system": "http://loinc.org", "code": "8302-2",
                                CANARY_KEY: 1}]}}
    f = tmp_path / "b.json"
    f.write_bytes(orjson.dumps(_bundle(dict(patient("p1"), **{CANARY_KEY: "x"}), obs)))
    report = ImportReport()
    assert len(list(iter_patients(f, report=report))) == 1
    assert CANARY_KEY not in str(report.to_dict())
    assert report.unknown_elements["Patient"] == {"(unknown element)": 1}
    assert report.unknown_elements["Observation"] == {"code.coding.(unknown element)": 1}
    with pytest.raises(FHIRValidationError) as info:
        list(iter_patients(f, strict=True))
    assert CANARY_KEY not in str(info.value)
    assert "b.json entry[0]: Patient: unknown element, dropped" in str(info.value)
