"""Property: whatever JSON sits in an element, the reader yields or raises a FhirsynthError."""

from __future__ import annotations

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhirsynth.errors import FhirsynthError
from fhirsynth.ingest.fhir import ImportReport, ReaderConfig, iter_patients

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 2**62) | st.floats(allow_nan=False)
    | st.text(max_size=12) | st.sampled_from(["2020", "2015-03-04T10:00:00", "#x", "Patient/p",
                                              "urn:uuid:p"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["url", "reference", "div", "coding", "code", "id", "value",
                         "resourceType", "extension", "zz"]), inner, max_size=3),
    max_leaves=8)

TEMPLATE = [
    {"resourceType": "Patient", "id": "p", "gender": "female", "birthDate": "1950"},
    {"resourceType": "Observation", "id": "o", "status": "final",
     "code": {"coding": [{"code": "8480-6"}]}, "subject": {"reference": "urn:uuid:p"},
     "valueQuantity": {"value": 120}},
    {"resourceType": "MedicationRequest", "id": "m", "status": "active", "intent": "order",
     "contained": [{"resourceType": "Medication", "id": "x"}],
     "medicationReference": {"reference": "#x"}, "subject": {"reference": "Patient/p"}},
]
KEYS = ["id", "text", "extension", "contained", "subject", "code", "valueQuantity", "status",
        "medicationReference", "meta", "birthDate", "gender", "component", "effectiveDateTime"]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.integers(0, 2), key=st.sampled_from(KEYS), value=json_values,
       full=st.booleans(), loose=st.booleans())
def test_any_element_value_never_crashes(tmp_path, which, key, value, full, loose):
    resources = [dict(r) for r in TEMPLATE]
    resources[which][key] = value
    if loose:
        data = b"\n".join(orjson.dumps(r) for r in resources)
        path = tmp_path / "x.ndjson"
    else:
        data = orjson.dumps({"resourceType": "Bundle", "type": "collection", "entry": [
            {"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources]})
        path = tmp_path / "x.json"
    path.write_bytes(data)
    report = ImportReport()
    try:
        records = list(iter_patients(path, report=report, config=ReaderConfig(
            validation="full" if full else "needed")))
    except FhirsynthError:
        return
    assert len(records) <= 1
    for rec in records:
        orjson.dumps([rec.patient, rec.resources])  # records stay plain JSON
    orjson.dumps(report.to_dict())


def test_contained_resource_with_a_bad_resource_type_is_an_issue_not_a_crash(tmp_path):
    # found by the property above: the R4B models raise KeyError / TypeError here
    for bad in ("", "zz", None):
        resources = [dict(r) for r in TEMPLATE]
        resources[2]["contained"] = [{"resourceType": bad, "id": "x"}]
        path = tmp_path / "x.ndjson"
        path.write_bytes(b"\n".join(orjson.dumps(r) for r in resources))
        report = ImportReport()
        try:
            list(iter_patients(path, report=report, config=ReaderConfig(validation="full")))
        except FhirsynthError as exc:
            assert "resourceType" in str(exc) or "contained" in str(exc)
            continue
        text = orjson.dumps(report.to_dict()).decode()
        assert '"field":"contained"' in text and "unknown or missing resourceType" in text
