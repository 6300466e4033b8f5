"""Hostile cases 001-004, 006-009 (reader part), each with a sibling input of the same fault."""

from __future__ import annotations

import copy
import gzip
import shutil
import time
from pathlib import Path

import orjson
import pytest
from fhir.resources.R4B.documentreference import DocumentReference
from fhir_core.fhirabstractmodel import FHIRAbstractModel
from pydantic import ValidationError

from fhirsynth.errors import FHIRValidationError, FHIRVersionError
from fhirsynth.ingest.fhir import ImportReport, ReaderConfig, iter_patients

pytestmark = pytest.mark.shared_data


def load(shared_cases: Path, case: str) -> tuple[Path, object]:
    (path,) = [p for p in (shared_cases / case).iterdir() if p.name.startswith("input")]
    raw = path.read_bytes()
    return path, orjson.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)


def write(path: Path, doc: object) -> Path:
    path.write_bytes(orjson.dumps(doc))
    return path


def codes(resource: dict, key: str) -> list[str]:
    return [c["code"] for c in resource[key]["coding"]]


def read(paths, **kw):
    report = ImportReport()
    return list(iter_patients(paths, report=report, **kw)), report


# -- 001: R4 data read with R4 (R4B) models -------------------------------------------------

@pytest.mark.parametrize("mode", ["needed", "full"])
def test_001_r4_bundle_reads_with_r4_models(shared_cases, mode):
    path, _ = load(shared_cases, "001-r4-bundle-under-r5-models")
    (rec,), report = read(path, config=ReaderConfig(validation=mode))
    assert codes(rec.of_type("MedicationRequest")[0], "medicationCodeableConcept") == ["314076"]
    assert codes(rec.of_type("MedicationStatement")[0], "medicationCodeableConcept") == [
        "197361"]
    assert report.resources_accepted["Organization"] == 1
    assert report.issue_count == 0


def test_001_r5_resource_type_fails_naming_type_and_version(shared_cases, tmp_path):
    _, doc = load(shared_cases, "001-r4-bundle-under-r5-models")
    doc = copy.deepcopy(doc)
    doc["entry"][3]["resource"]["resourceType"] = "MedicationUsage"
    with pytest.raises(FHIRVersionError, match=r"entry\[3\]: MedicationUsage: .*FHIR R5.*R4"):
        list(iter_patients(write(tmp_path / "r5.json", doc)))


def test_001_sibling_r5_shaped_medicationrequest_is_dropped_and_reported(shared_cases, tmp_path):
    _, doc = load(shared_cases, "001-r4-bundle-under-r5-models")
    doc = copy.deepcopy(doc)
    mr = doc["entry"][2]["resource"]
    mr["medication"] = {"concept": mr.pop("medicationCodeableConcept")}
    (rec,), report = read(write(tmp_path / "r5shape.json", doc))
    assert rec.of_type("MedicationRequest") == []
    problems = {(i.field, i.problem) for i in report.issues}
    assert ("medication", "unknown element, dropped (an element of FHIR R5, not R4)") in problems
    assert ("medication[x]", "required element missing") in problems
    assert report.dropped == {"MedicationRequest: required element missing": 1}


def test_001_unsupported_version_setting(shared_cases):
    from fhirsynth.errors import ConfigError
    path, _ = load(shared_cases, "001-r4-bundle-under-r5-models")
    with pytest.raises(ConfigError, match=r"fhir_version \('R5'\) is not supported"):
        list(iter_patients(path, fhir_version="R5"))


# -- 002: extension without url --------------------------------------------------------------

def _with_patient(tmp_path: Path, case_file: Path, pid: str) -> Path:
    shutil.copy(case_file, tmp_path / case_file.name)
    write(tmp_path / "patient.json", {"resourceType": "Patient", "id": pid, "gender": "female"})
    return tmp_path


def test_002_extension_without_url_dropped_and_reported(shared_cases):
    path, _ = load(shared_cases, "002-extension-missing-url")
    (rec,), report = read(path)
    exts = rec.patient["extension"]
    assert [e["url"].rsplit("-", 1)[1] for e in exts] == ["birthsex", "ethnicity"]
    assert exts[0]["valueCode"] == "F"
    omb = [s for s in exts[1]["extension"] if s["url"] == "ombCategory"]
    assert omb[0]["valueCoding"]["code"] == "2186-5"
    (issue,) = report.issues
    assert issue.resource == "Patient"  # the type only: an id may be an MRN
    assert (issue.field, issue.problem) == ("extension[0]", "extension has no url, dropped")
    with pytest.raises(FHIRValidationError, match=r"extension\[0\]: extension has no url"):
        list(iter_patients(path, strict=True))


def test_002_sibling_extension_without_url_nested_in_a_value(tmp_path):
    obs = {"resourceType": "Observation", "id": "o1", "status": "final",
           "subject": {"reference": "Patient/p1"},
           "code": {"coding": [{"system": "http://loinc.org", "code": "39156-5"}]},
           "valueQuantity": {"value": 31.2, "unit": "kg/m2",
                             "extension": [{"valueString": "x"}]}}
    doc = {"resourceType": "Bundle", "type": "searchset", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p1"}}, {"resource": obs}]}
    (rec,), report = read(write(tmp_path / "b.json", doc))
    (kept,) = rec.of_type("Observation")
    assert "extension" not in kept["valueQuantity"] or kept["valueQuantity"]["extension"] == []
    assert [(i.field, i.problem) for i in report.issues] == [
        ("valueQuantity.extension[0]", "extension has no url, dropped")]


# -- 003: non-standard (STU3-era / vendor) top-level fields ----------------------------------

def test_003_unknown_fields_dropped_reported_and_strict_fails(shared_cases, tmp_path):
    path, _ = load(shared_cases, "003-nonstandard-extra-fields")
    before = FHIRAbstractModel.get_global_model_config()
    folder = _with_patient(tmp_path, path, "e6b3d0a4-2f71-4c8e-9d15-7a0c4b2e8f53")
    (rec,), report = read(folder, config=ReaderConfig(validation="full"))
    (doc,) = rec.of_type("DocumentReference")
    assert not {"class", "created", "indexed"} & doc.keys()
    assert "data" not in doc["content"][0]["attachment"]
    assert dict(report.unknown_elements["DocumentReference"]) == {
        "class": 1, "created": 1, "indexed": 1}
    assert sorted(i.field for i in report.issues) == ["class", "created", "indexed"]
    assert all(i.resource == "DocumentReference" for i in report.issues)
    with pytest.raises(FHIRValidationError) as info:
        list(iter_patients(folder, strict=True))
    assert all(f"DocumentReference: {k}: unknown element" in str(info.value)
               for k in ("class", "created", "indexed"))
    assert "d24f8a61" not in str(info.value)  # never the resource id
    # no global model state was changed: the library still rejects extras
    assert FHIRAbstractModel.get_global_model_config() == before
    with pytest.raises(ValidationError):
        DocumentReference.model_validate({"status": "current", "content": [
            {"attachment": {"contentType": "text/plain"}}], "created": "2021"})


def test_003_sibling_unknown_nested_field_and_stu3_context(tmp_path):
    obs = {"resourceType": "Observation", "id": "o1", "status": "final",
           "subject": {"reference": "urn:uuid:p1"}, "context": {"reference": "Encounter/e"},
           "code": {"coding": [{"system": "http://loinc.org", "code": "8302-2",
                                "vendorRank": 3}]},
           "valueQuantity": {"value": 171, "unit": "cm"}}
    doc = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:p1", "resource": {"resourceType": "Patient", "id": "p1"}},
        {"fullUrl": "urn:uuid:o1", "resource": obs}]}
    (rec,), report = read(write(tmp_path / "b.json", doc))
    (kept,) = rec.of_type("Observation")
    assert "context" not in kept and "vendorRank" not in kept["code"]["coding"][0]
    assert {(i.field, i.problem) for i in report.issues} == {
        ("context", "unknown element, dropped (an element of FHIR STU3, not R4)"),
        # not an element of any FHIR version: its place is named, never its key (input text)
        ("code.coding[0]", "unknown element, dropped")}


# -- 004: partial and malformed dates --------------------------------------------------------

def test_004_partial_dates_kept_malformed_reported_without_values(shared_cases):
    path, _ = load(shared_cases, "004-partial-and-malformed-dates")
    recs, report = read(path)
    by_id = {r.patient_id[-1]: r for r in recs}
    assert by_id["1"].patient["birthDate"] == "1974-12"
    assert by_id["2"].patient["birthDate"] == "1950"
    assert by_id["1"].of_type("Condition")[0]["onsetDateTime"] == "2020"
    assert by_id["2"].of_type("Condition") == [] and by_id["2"].of_type("Observation") == []
    got = {(i.resource, i.field, i.problem) for i in report.issues}
    assert got == {
        ("Condition", "onsetDateTime", "dateTime has a time but no timezone"),
        ("Observation", "effectiveDateTime",
         "not a FHIR date/dateTime (YYYY, YYYY-MM, YYYY-MM-DD or dateTime with timezone)")}
    text = orjson.dumps(report.to_dict()).decode()
    assert "20251001" not in text and "2015-03-04T10" not in text and "1970-01-01" not in text
    with pytest.raises(FHIRValidationError) as info:
        list(iter_patients(path, strict=True))
    assert "onsetDateTime" in str(info.value) and "effectiveDateTime" in str(info.value)
    assert "20251001" not in str(info.value)


def test_004_sibling_impossible_date_and_naive_time_elsewhere(tmp_path):
    proc = {"resourceType": "Procedure", "id": "pr", "status": "completed",
            "subject": {"reference": "Patient/p"}, "performedDateTime": "2019-02-30",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "1"}]}}
    med = {"resourceType": "MedicationRequest", "id": "mr", "status": "active", "intent": "order",
           "subject": {"reference": "Patient/p"}, "authoredOn": "2021-05-06T08:30",
           "medicationCodeableConcept": {"coding": [{"code": "314076"}]}}
    pat = {"resourceType": "Patient", "id": "p", "birthDate": "1988"}
    ndjson = b"\n".join(orjson.dumps(r) for r in (pat, proc, med))
    (tmp_path / "all.ndjson").write_bytes(ndjson)
    (rec,), report = read(tmp_path / "all.ndjson")
    assert rec.patient["birthDate"] == "1988" and rec.resources == {}
    assert {(i.where, i.field, i.problem) for i in report.issues} == {
        ("all.ndjson line 2", "performedDateTime", "not a real calendar date or time"),
        ("all.ndjson line 3", "authoredOn", "dateTime has a time but no timezone")}


def test_004_sibling_dates_given_as_json_numbers_or_booleans(tmp_path):
    # the models read a number as seconds since 1970: 20200101 was kept as a date
    pats = [{"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": 1974},
            {"resourceType": "Patient", "id": "p2", "gender": "male", "birthDate": "1960"}]
    obs = {"resourceType": "Observation", "id": "o1", "status": "final",
           "subject": {"reference": "Patient/p2"}, "effectiveDateTime": 20200101,
           "code": {"coding": [{"system": "http://loinc.org", "code": "39156-5"}]},
           "valueQuantity": {"value": 31, "unit": "kg/m2"}}
    kept = {**obs, "id": "o2", "effectiveDateTime": "2021", "issued": 20210304}
    cond = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p2"},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003"}]},
            "onsetDateTime": True}
    doc = {"resourceType": "Bundle", "type": "collection",
           "entry": [{"resource": r} for r in (*pats, obs, kept, cond)]}
    path = write(tmp_path / "b.json", doc)
    (rec,), report = read(path)
    assert rec.patient_id == "p2" and "Condition" not in rec.resources
    (o,) = rec.of_type("Observation")  # issued is not read: dropped, the Observation kept
    assert o["id"] == "o2" and "issued" not in o
    assert {(i.where, i.resource, i.field, i.problem) for i in report.issues} == {
        ("b.json entry[0]", "Patient", "birthDate",
         "a number where FHIR has a date/dateTime string"),
        ("b.json entry[2]", "Observation", "effectiveDateTime",
         "a number where FHIR has a date/dateTime string"),
        ("b.json entry[3]", "Observation", "issued",
         "a number where FHIR has a date/dateTime string; element dropped"),
        ("b.json entry[4]", "Condition", "onsetDateTime",
         "a boolean where FHIR has a date/dateTime string")}
    text = orjson.dumps(report.to_dict()).decode()
    assert "20200101" not in text and "1974" not in text and "20210304" not in text
    with pytest.raises(FHIRValidationError) as info:
        list(iter_patients(path, strict=True))
    assert "b.json: 4 FHIR issue(s)" in str(info.value) and "20200101" not in str(info.value)


@pytest.mark.parametrize(("born", "died", "before"), [
    ("1974-05-01", "1960-01-01T00:00:00Z", True), ("1974-05", "1974-04-30", True),
    ("1974", "1974-01-01", False), ("1974-05-01", "1974-05-01T10:00:00Z", False),
    ("1974-05", "1974", False)])
def test_004_sibling_death_before_birth_drops_the_date_and_keeps_deceased(
        tmp_path, born, died, before):
    pat = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": born,
           "deceasedDateTime": died}
    path = write(tmp_path / "p.json", pat)
    (rec,), report = read(path)
    if not before:
        assert rec.patient["deceasedDateTime"] == died and not report.issues
        return
    assert "deceasedDateTime" not in rec.patient and rec.patient["deceasedBoolean"] is True
    assert rec.patient["birthDate"] == born
    (issue,) = report.issues
    assert (issue.where, issue.resource, issue.field) == ("p.json", "Patient",
                                                           "deceasedDateTime")
    assert issue.problem.startswith("deceasedDateTime is before birthDate")
    assert report.elements_dropped == {"Patient.deceasedDateTime": 1}
    assert died[:4] not in orjson.dumps(report.to_dict()).decode()
    with pytest.raises(FHIRValidationError, match=r"p\.json: Patient: deceasedDateTime") as err:
        list(iter_patients(path, strict=True))
    # trial 20: strict mode said what lenient reading does ("the date is dropped, the
    # patient kept as deceased"), though it fails instead
    (strict,) = err.value.issues
    assert strict.problem == "deceasedDateTime is before birthDate"


# -- 006: narrative without div ---------------------------------------------------------------

def test_006_one_bad_narrative_loses_nothing_else(shared_cases):
    path, _ = load(shared_cases, "006-narrative-without-div")
    recs, report = read(path)
    assert [r.patient_id for r in recs] == ["p-1001", "p-1002"]
    assert all("text" not in r.patient for r in recs)
    assert sum(report.resources_read.values()) == 2
    assert sum(report.resources_accepted.values()) == 2
    (issue,) = report.issues
    assert issue.where.endswith("entry[1]") and issue.field == "text.div"
    with pytest.raises(FHIRValidationError, match=r"entry\[1\]: Patient: text\.div"):
        list(iter_patients(path, strict=True))


def test_006_sibling_condition_and_contained_narratives(tmp_path):
    cond = {"resourceType": "Condition", "id": "c", "subject": {"reference": "Patient/p"},
            "text": {"status": "generated"},
            "contained": [{"resourceType": "Practitioner", "id": "d", "name": [{"family": "Q"}],
                           "text": {"status": "generated", "div": "<div>Dr Q</div>"}}],
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "195967001"}]}}
    doc = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p"}}, {"resource": cond}]}
    (rec,), report = read(write(tmp_path / "b.json", doc))
    (kept,) = rec.of_type("Condition")
    assert "text" not in kept and "text" not in kept["contained"][0]
    assert "name" not in kept["contained"][0]
    assert [(i.where, i.field) for i in report.issues] == [("b.json entry[1]", "text.div")]


# -- 007: reference styles, entries without fullUrl, dangling --------------------------------

@pytest.mark.parametrize("split", [False, True])
def test_007_reference_styles(shared_cases, tmp_path, split):
    path, docs = load(shared_cases, "007-references-urn-uuid-no-fullurl")
    paths = [write(tmp_path / f"b{i}.json", d) for i, d in enumerate(docs)] if split else [path]
    recs, report = read(paths)
    assert len(recs) == 2
    first, second = recs
    assert codes(first.of_type("Condition")[0], "code") == ["195967001"]
    assert second.patient_id == "77"
    assert sorted(c["id"] for c in second.of_type("Condition")) == ["c-10", "c-9"]
    assert report.orphans == {"Condition": 1}
    assert [i.resource for i in report.issues] == ["Condition"]
    assert first.index["urn:uuid:8a4c2e10-6b3d-4f5e-9a7c-1d0e2f3a4b51"] is first.patient
    assert second.index["https://elsewhere.test/fhir/Patient/77/_history/3"] is second.patient


def test_007_sibling_out_of_order_history_refs_and_patient_key(tmp_path):
    imm = {"resourceType": "Immunization", "id": "i1", "status": "completed",
           "patient": {"reference": "https://h.test/r4/Patient/9/_history/2"},
           "vaccineCode": {"coding": [{"code": "140"}]}, "occurrenceDateTime": "2020-10"}
    lost = {"resourceType": "Immunization", "id": "i2", "status": "completed",
            "patient": {"reference": "urn:uuid:00000000-0000-0000-0000-000000000000"},
            "vaccineCode": {"coding": [{"code": "140"}]}, "occurrenceDateTime": "2020"}
    doc = {"resourceType": "Bundle", "type": "searchset", "entry": [
        {"resource": imm}, {"resource": lost},
        {"resource": {"resourceType": "Patient", "id": "9"}}]}
    (rec,), report = read(write(tmp_path / "b.json", doc))
    assert [i["id"] for i in rec.of_type("Immunization")] == ["i1"]
    assert report.orphans == {"Immunization": 1}
    assert report.issues[0].resource == "Immunization"


# -- 008: contained resources ----------------------------------------------------------------

def test_008_contained_medication_resolves(shared_cases, tmp_path):
    path, _ = load(shared_cases, "008-contained-medication")
    folder = _with_patient(tmp_path, path, "b1c2d3e4-f5a6-4b7c-8d9e-0a1b2c3d4e5f")
    (rec,), report = read(folder)
    (mr,) = rec.of_type("MedicationRequest")
    med = rec.resolve(mr["medicationReference"]["reference"], mr)
    assert med is not None and codes(med, "code") == ["860975"]
    assert b"Okonkwo" not in orjson.dumps([rec.patient, rec.resources])
    assert report.issue_count == 0


def test_008_sibling_dangling_contained_reference_is_reported(tmp_path):
    mr = {"resourceType": "MedicationRequest", "id": "m", "status": "active", "intent": "order",
          "contained": [{"resourceType": "Medication", "id": "med1"}],
          "medicationReference": {"reference": "#med9"}, "subject": {"reference": "Patient/p"}}
    doc = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p"}}, {"resource": mr}]}
    (rec,), report = read(write(tmp_path / "b.json", doc))
    (kept,) = rec.of_type("MedicationRequest")
    assert rec.resolve("#med9", kept) is None
    assert [(i.resource, i.field, i.problem) for i in report.issues] == [
        ("MedicationRequest", "medicationReference",
         "reference to a contained resource that is not there")]


# -- 009: huge bundle, linear time -------------------------------------------------------------

@pytest.mark.slow
def test_009_huge_bundle_fast_and_linear(shared_cases, tmp_path):
    path, doc = load(shared_cases, "009-huge-bundle-performance")
    small = dict(doc, entry=doc["entry"][:2401])
    small_path = tmp_path / "small.json.gz"
    small_path.write_bytes(gzip.compress(orjson.dumps(small)))
    warm = dict(doc, entry=doc["entry"][:50])
    list(iter_patients(write(tmp_path / "warm.json", warm)))

    t0 = time.process_time()
    (rec_small,) = list(iter_patients(small_path))
    t_small = time.process_time() - t0
    t0 = time.process_time()
    (rec,) = list(iter_patients(path))
    t_full = time.process_time() - t0

    assert len(rec.of_type("Encounter")) == 4000
    assert len(rec.of_type("Observation")) == 20000
    assert len(rec_small.of_type("Encounter")) == 400
    assert t_full < 30
    assert t_small < t_full / 4, (t_small, t_full)
