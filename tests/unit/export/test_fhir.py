import json
import re
import uuid
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fhir.resources.R4B import get_fhir_model_class

from fhirsynth.domain import TableSpec
from fhirsynth.encode import decode
from fhirsynth.errors import ExportError
from fhirsynth.export.fhir import window_years, write_fhir
from fhirsynth.ingest.features import extract_row, extract_table, load_feature_spec
from fhirsynth.ingest.records import PatientRecord

DATE_LIKE = re.compile(r'"\d{4}-\d{2}(-\d{2})?(T[^"]*)?"')


@pytest.fixture(scope="module")
def spec() -> TableSpec:
    return load_feature_spec()


def _sampled_table(spec: TableSpec, n: int, seed: int) -> pd.DataFrame:
    """Rows drawn uniformly over the public domain (what a sampler could produce)."""
    rng = np.random.default_rng(seed)
    cols = spec.modelled
    codes = np.column_stack([rng.integers(0, c.n_states, n) for c in cols])
    return decode(spec, [c.name for c in cols], codes, rng)


def _read(paths: dict[str, Path]) -> dict[str, list[dict]]:
    return {t: [json.loads(line) for line in p.read_text().splitlines()]
            for t, p in paths.items()}


def _records(out: dict[str, list[dict]]) -> list[PatientRecord]:
    recs = {p["id"]: PatientRecord(patient_id=p["id"], patient=p, source="out")
            for p in out["Patient"]}
    for rtype, items in out.items():
        for r in items:
            if rtype != "Patient":
                pid = r["subject"]["reference"].split("/", 1)[1]
                recs[pid].resources.setdefault(rtype, []).append(r)
    return list(recs.values())


def test_every_resource_validates_and_references_resolve(spec, tmp_path):
    df = _sampled_table(spec, 60, seed=3)
    paths = write_fhir(df, spec, tmp_path / "fhir", rng_or_seed=11)
    assert set(paths) >= {"Patient", "Condition", "Observation", "Encounter",
                          "MedicationRequest"}
    out = _read(paths)
    assert len(out["Patient"]) == 60
    ids = {p["id"] for p in out["Patient"]}
    assert all(uuid.UUID(i).version == 4 for i in ids)
    for rtype, items in out.items():
        model = get_fhir_model_class(rtype)
        for r in items:
            model.model_validate(r)
            if rtype != "Patient":
                assert r["subject"]["reference"].split("/", 1)[1] in ids
    text = "\n".join(p.read_text() for p in paths.values())
    assert not DATE_LIKE.search(text)  # no month/day precision anywhere
    for key in ('"name"', '"telecom"', '"identifier"', '"line"', '"postalCode"', '"city"'):
        assert key not in text
    assert [x.name for x in (tmp_path / "fhir").iterdir() if x.name.startswith(".")] == []


def test_every_extension_has_url(spec, tmp_path):
    df = _sampled_table(spec, 40, seed=5)
    out = _read(write_fhir(df, spec, tmp_path, rng_or_seed=1))

    def walk(node):
        if isinstance(node, dict):
            for e in node.get("extension", []):
                assert e.get("url")
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(out)


def test_round_trip_through_the_extractor(spec, tmp_path):
    df = _sampled_table(spec, 50, seed=9)
    out = _read(write_fhir(df, spec, tmp_path, rng_or_seed=2))
    back = extract_table(_records(out), spec)
    assert len(back) == len(df)
    by_kind = {c.name: (c.source or {}).get("from") for c in spec.columns}
    for col in spec.modelled:
        kind, field = by_kind[col.name], (col.source or {}).get("field")
        a, b = df[col.name], back[col.name]
        if kind == "condition" or (kind == "medication" and col.kind == "boolean"):
            assert a.tolist() == b.tolist(), col.name
        elif kind == "patient" and field in ("gender", "birth_sex", "race", "ethnicity",
                                             "marital_status", "deceased"):
            # "multiple" races export as a text-only race extension (which races is unknown)
            expected = a.fillna("NA").astype(str).replace("multiple", "NA")
            assert expected.tolist() == b.fillna("NA").astype(str).tolist(), col.name
        elif kind == "patient" and field == "birth_year":
            assert a.fillna(-1).tolist() == b.fillna(-1).tolist(), col.name
        elif kind == "observation" and col.kind == "numeric":
            assert np.allclose(a.astype(float), b.astype(float), atol=0.01, equal_nan=True)
        elif kind == "observation":
            assert a.fillna("NA").tolist() == b.fillna("NA").tolist(), col.name
        elif kind == "encounter":
            # synthetic year-precision periods inside the spec's window: every count reads back
            assert a.astype(int).tolist() == b.astype(int).tolist(), col.name
    encounter_cols = [c.name for c in spec.modelled if (c.source or {}).get("from") ==
                      "encounter"]
    assert len(encounter_cols) == 3 and df[encounter_cols].to_numpy().sum() > 0


def test_case_001_round_trip_as_r4(spec, tmp_path, shared_cases):
    bundle = json.loads((shared_cases / "001-r4-bundle-under-r5-models" /
                         "input-r4-bundle.json").read_text())
    by_type: dict[str, list] = {}
    for e in bundle["entry"]:
        by_type.setdefault(e["resource"]["resourceType"], []).append(e["resource"])
    patient = by_type.pop("Patient")[0]
    rec = PatientRecord(patient_id=patient["id"], patient=patient, resources=by_type)
    df = pd.DataFrame([extract_row(rec, spec)])
    out = _read(write_fhir(df, spec, tmp_path, rng_or_seed=4))
    assert out["Patient"][0]["birthDate"] == "1961"
    assert patient["id"] not in json.dumps(out)
    meds = out["MedicationRequest"]
    assert len(meds) == 1 and "medicationCodeableConcept" in meds[0]
    for rtype, items in out.items():
        for r in items:
            get_fhir_model_class(rtype).model_validate(r)


def test_invalid_generated_resource_writes_nothing(spec, tmp_path):
    df = _sampled_table(spec, 3, seed=1)
    df["marital_status"] = pd.Series([" M", "M", "M"], dtype="string")  # invalid code
    with pytest.raises(ExportError, match="Patient does not validate"):
        write_fhir(df, spec, tmp_path / "out", rng_or_seed=1)
    assert list((tmp_path / "out").iterdir()) == []


def test_ids_are_reproducible_with_a_seed_only(spec, tmp_path):
    df = _sampled_table(spec, 5, seed=2)
    a = write_fhir(df, spec, tmp_path / "a", rng_or_seed=7)["Patient"].read_text()
    b = write_fhir(df, spec, tmp_path / "b", rng_or_seed=7)["Patient"].read_text()
    c = write_fhir(df, spec, tmp_path / "c")["Patient"].read_text()
    assert a == b and a != c


def _encounters(out: dict[str, list[dict]]) -> dict[str, list[dict]]:
    by_patient: dict[str, list[dict]] = {}
    for e in out.get("Encounter", []):
        by_patient.setdefault(e["subject"]["reference"].split("/", 1)[1], []).append(e)
    return by_patient


def test_encounter_periods_are_synthetic_years_in_the_window_after_birth(spec, tmp_path):
    df = _sampled_table(spec, 80, seed=12)
    out = _read(write_fhir(df, spec, tmp_path, rng_or_seed=5))
    ref = date.fromisoformat(spec.reference_date)
    window = set(window_years(ref, 10))
    assert window == set(range(ref.year - 10, ref.year))  # 1 July of 2016..2025
    births = {p["id"]: int(p["birthDate"]) for p in out["Patient"] if "birthDate" in p}
    encounters = _encounters(out)
    assert sum(len(v) for v in encounters.values()) == int(
        df[["encounters_ambulatory_10y", "encounters_emergency_10y",
            "encounters_inpatient_10y"]].to_numpy().sum())
    years_seen = set()
    for pid, items in encounters.items():
        for e in items:
            start = e["period"]["start"]
            assert re.fullmatch(r"\d{4}", start) and set(e["period"]) == {"start"}
            assert int(start) in window
            if pid in births and births[pid] <= max(window):
                assert int(start) >= births[pid]
            years_seen.add(int(start))
    assert len(years_seen) >= 5  # drawn at random, not one fixed year


def test_a_newborn_after_the_window_has_no_encounter_before_birth(spec, tmp_path):
    # trial 12: a patient born in the reference year had encounters dated 2016-2025
    df = _sampled_table(spec, 4, seed=3)
    ref = date.fromisoformat(spec.reference_date)
    df["age"] = 0
    df["birth_year"] = pd.array([ref.year] * 4, dtype="Int64")
    df["encounters_ambulatory_10y"] = 0
    df["encounters_emergency_10y"] = 3
    df["encounters_inpatient_10y"] = 0
    out = _read(write_fhir(df, spec, tmp_path, rng_or_seed=4))
    births = {p["id"]: int(p["birthDate"]) for p in out["Patient"]}
    starts = [(e["subject"]["reference"].split("/", 1)[1], int(e["period"]["start"]))
              for e in out["Encounter"]]
    assert len(starts) == 12
    assert all(year == births[pid] == ref.year for pid, year in starts)


def test_window_years_edges():
    ref = date(2026, 1, 1)
    assert window_years(ref, 1) == (2025,)
    assert window_years(date(2026, 7, 1), 1) == (2026,)  # 1 July 2025 is just outside
    assert window_years(date(2026, 7, 2), 1) == (2026,)
    assert window_years(ref, 0.25) == (2025, 2026)  # no 1 July inside: the years it overlaps
    assert window_years(ref, 10)[0] == 2016 and len(window_years(ref, 10)) == 10


def test_shape_cache_validates_each_shape_once_and_never_hides_an_invalid_one(spec, tmp_path):
    # the export checks each resource shape once (ids, references and finite numbers
    # abstracted); a later row with an invalid value has a shape of its own and still fails
    from fhirsynth.export.fhir import _shape

    a = {"resourceType": "Observation", "id": str(uuid.uuid4()),
         "subject": {"reference": f"Patient/{uuid.uuid4()}"},
         "valueQuantity": {"value": 12.5, "unit": "kg", "code": "kg"}}
    b = dict(a, id=str(uuid.uuid4()), valueQuantity={"value": 80.25, "unit": "kg",
                                                     "code": "kg"})
    assert _shape(a) == _shape(b)
    assert _shape(a) != _shape(dict(a, valueQuantity={"value": 12.5, "unit": "cm",
                                                       "code": "cm"}))
    assert _shape(a) != _shape(dict(a, id="not-a-uuid"))
    df = _sampled_table(spec, 30, seed=4)
    df["marital_status"] = pd.Series(["M"] * 29 + [" M"], dtype="string")
    with pytest.raises(ExportError, match="Patient does not validate"):
        write_fhir(df, spec, tmp_path / "out", rng_or_seed=1)
    assert list((tmp_path / "out").iterdir()) == []


def test_a_bundle_is_validated_entry_by_entry_and_a_bad_entry_is_caught() -> None:
    # trial 19: validating each patient's Bundle whole made --fhir-bundles 4x slower; the
    # entries are now validated one shape at a time, and a bad one is still an ExportError
    from fhirsynth.errors import ExportError
    from fhirsynth.export.fhir import _validate_bundle, transaction_bundle

    pid = "0b7c3a52-6f0e-4c7a-9d6e-1f2a3b4c5d6e"
    patient = {"resourceType": "Patient", "id": pid, "gender": "female"}
    cond = {"resourceType": "Condition", "id": "1c7c3a52-6f0e-4c7a-9d6e-1f2a3b4c5d6e",
            "subject": {"reference": f"Patient/{pid}"},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]}}
    seen: set[bytes] = set()
    _validate_bundle(transaction_bundle([patient, cond], pid), True, seen)
    assert len(seen) == 3  # the Bundle's own fields and two entry shapes
    bad = dict(cond, onsetDateTime="yesterday")
    with pytest.raises(ExportError, match=r"Bundle entry \(Condition\) does not validate"):
        _validate_bundle(transaction_bundle([patient, bad], pid), True, seen)
    urlless = dict(patient, extension=[{"valueString": "x"}])
    with pytest.raises(ExportError, match="Patient has an extension without url"):
        _validate_bundle(transaction_bundle([urlless], pid), True, set())
