import copy
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from fhirsynth.domain import TableSpec
from fhirsynth.encode import encode
from fhirsynth.errors import SpecError
from fhirsynth.ingest.features import (
    ExtractReport,
    default_spec_path,
    extract_row,
    extract_table,
    load_feature_spec,
    spec_reads,
)
from fhirsynth.ingest.records import PatientRecord
from fhirsynth.ingest.units import convert

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def spec() -> TableSpec:
    return load_feature_spec()


def _patient(**kw):
    p = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1980-05-05"}
    p.update(kw)
    return p


def _rec(patient=None, **resources):
    return PatientRecord(patient_id="p1", patient=patient or _patient(), resources=resources,
                         source="t.json")


def _obs(code, value, unit, when="2020-01-01", **kw):
    o = {"resourceType": "Observation", "id": f"o{code}{when}", "status": "final",
         "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
         "effectiveDateTime": when,
         "valueQuantity": {"value": value, "code": unit, "system": "http://unitsofmeasure.org"}}
    o.update(kw)
    return o


def _cond(code, system="http://snomed.info/sct", **kw):
    c = {"resourceType": "Condition", "id": f"c{code}",
         "code": {"coding": [{"system": system, "code": code}]}}
    c.update(kw)
    return c


# ---------------------------------------------------------------------------- the spec
def test_default_spec_loads_from_package_and_compliance_symlink(spec):
    assert default_spec_path().is_file()
    via_compliance = load_feature_spec(ROOT / "compliance" / "feature-spec.yaml")
    assert via_compliance.fingerprint() == spec.fingerprint()
    assert spec.reference_date == "2026-01-01"
    assert spec["age"].bounds == (0.0, 90.0)
    flags = [c for c in spec.columns if c.source and c.source["from"] == "condition"]
    assert len(flags) >= 20
    names = spec.names
    assert all(n == n.lower() and " " not in n for n in names)


def test_spec_reads_lists_only_read_elements(spec):
    reads = spec_reads(spec)
    assert {"birthDate", "gender", "extension", "address"} <= reads["Patient"]
    assert "name" not in reads["Patient"] and "telecom" not in reads["Patient"]
    assert "identifier" not in reads["Patient"]
    assert {"component", "valueQuantity", "dataAbsentReason"} <= reads["Observation"]
    assert "medicationReference" in reads["MedicationRequest"]
    assert "MedicationStatement" in reads


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"from": "patient", "field": "nickname"}, "field 'nickname' is not one of"),
        ({"from": "patient", "field": "gendr"}, "; did you mean 'gender'?"),
        ({"from": "condition"}, "needs snomed, icd10cm or icd9cm"),
        ({"from": "observation", "loinc": ["1-1"]}, "needs its target 'unit'"),
        ({"from": "encounter", "class": ["AMB"]}, "needs 'years' > 0"),
        ({"from": "medication"}, "either 'rxnorm' or 'count'"),
        ({"from": "claims"}, "from ('claims') must be one of"),
        ("age", "must be a mapping with a 'from' key"),
    ],
)
def test_invalid_rules_raise_spec_error(tmp_path, source, message):
    p = tmp_path / "s.yaml"
    p.write_text(json.dumps({"reference_date": "2026-01-01", "columns": [
        {"name": "x", "type": "boolean", "source": source}]}))
    with pytest.raises(SpecError, match=re.escape(message)):
        load_feature_spec(p)


def test_column_without_source_is_a_spec_error(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(json.dumps({"reference_date": "2026-01-01", "columns": [
        {"name": "flag", "type": "boolean"}]}))
    with pytest.raises(SpecError, match="column 'flag' has no 'source' rule"):
        load_feature_spec(p)


def test_missing_reference_date_is_a_spec_error(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(json.dumps({"columns": [
        {"name": "g", "categories": ["male"], "source": {"from": "patient", "field": "gender"}}]}))
    with pytest.raises(SpecError, match="reference_date"):
        load_feature_spec(p)


# -------------------------------------------------------------------------- patient
@pytest.mark.parametrize(
    ("birth", "age", "year", "precision"),
    [("1974-12", 51, 1974, "month"), ("1974", 51, 1974, "year"), ("1974-12-31", 51, 1974, "day"),
     ("1936-01-02", 89, 1936, "day"), ("1936-01-01", 90, None, "day"), ("1900", 90, None, "year")],
)
def test_age_from_partial_dates_with_safe_harbor_top_code(spec, birth, age, year, precision):
    row = extract_row(_rec(_patient(birthDate=birth)), spec)
    assert row["age"] == age
    assert row["birth_year"] == year
    assert row["birth_date_precision"] == precision


def test_age_at_death_and_invalid_birth_date(spec):
    rep = ExtractReport()
    dead = _patient(birthDate="1950-06-01", deceasedDateTime="2000-07-01T00:00:00Z")
    row = extract_row(_rec(dead), spec, rep)
    assert row["age"] == 50 and row["deceased"] is True
    row = extract_row(_rec(_patient(birthDate="19740101")), spec, rep)
    assert row["age"] is None and row["birth_year"] is None
    assert rep.counts["age: invalid birthDate"] == 1
    assert "19740101" not in " ".join(str(i) for i in rep.issues)


def _race(*codes):
    return {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
            "extension": [{"url": "text", "valueString": "x"}] + [
                {"url": "ombCategory", "valueCoding": {"code": c}} for c in codes]}


@pytest.mark.parametrize(
    ("codes", "expected"),
    [(("2106-3",), "2106-3"), (("2106-3", "2054-5"), "multiple"), (("ASKU",), "ASKU"),
     (("UNK",), "UNK"), (("2135-2",), "2131-1"), ((), None)],
)
def test_race_from_us_core_extension(spec, codes, expected):
    row = extract_row(_rec(_patient(extension=[_race(*codes)])), spec)
    assert row["race"] == expected


def test_case_002_birth_sex_and_ethnicity_by_url(spec, shared_cases, read_json):
    patient = read_json(shared_cases / "002-extension-missing-url" / "input-patient.json")
    row = extract_row(_rec(patient), spec)
    assert row["birth_sex"] == "F"
    assert row["ethnicity"] == "2186-5"
    assert row["race"] is None


def test_case_002_sibling_ombcategory_not_first(spec):
    # ombCategory after other sub-extensions, a url-less extension first, birthsex last
    p = _patient(extension=[
        {"valueCode": "M"},
        {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity",
         "extension": [{"url": "text", "valueString": "Hispanic"},
                       {"url": "detailed", "valueCoding": {"code": "2148-5"}},
                       {"url": "ombCategory", "valueCoding": {"code": "2135-2"}}]},
        {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex",
         "valueCode": "M"},
    ])
    row = extract_row(_rec(p), spec)
    assert row["ethnicity"] == "2135-2" and row["birth_sex"] == "M"


def test_state_only_and_unknown_category_goes_missing(spec):
    p = _patient(address=[{"line": ["1 Main"], "city": "Boston", "state": "Massachusetts",
                           "postalCode": "02115"}], gender="robot")
    rep = ExtractReport()
    row = extract_row(_rec(p), spec, rep)
    assert row["state"] == "MA"
    assert row["gender"] is None
    assert rep.counts["gender: value outside the declared categories"] == 1


def test_case_004_age_from_partial_birth_date(spec, shared_cases, read_json, bundle_records):
    bundle = read_json(shared_cases / "004-partial-and-malformed-dates" / "input-bundle.json")
    df = extract_table(bundle_records(bundle), spec)
    assert list(df["age"]) == [51, 75]
    assert list(df["birth_date_precision"]) == ["month", "year"]
    assert list(df["diabetes_type2"]) == [True, False]
    assert list(df["hypertension"]) == [False, True]


# ----------------------------------------------------------------- conditions & obs
def test_condition_flags_snomed_and_icd10_prefixes(spec):
    row = extract_row(_rec(Condition=[
        _cond("44054006"),
        _cond("I10", system="http://hl7.org/fhir/sid/icd-10-cm"),
        _cond("J45.909", system="http://hl7.org/fhir/sid/icd-10-cm"),
        _cond("E039", system="http://fhir.mimic.mit.edu/CodeSystem/diagnosis-icd10"),
        _cond("13645005", verificationStatus={"coding": [{"code": "refuted"}]}),
        _cond("F3289", system="http://example.org/not-icd"),
    ]), spec)
    assert row["diabetes_type2"] and row["hypertension"] and row["asthma"]
    assert row["hypothyroidism"]
    assert not row["copd"] and not row["depression"]


def test_latest_observation_with_unit_conversion(spec):
    rep = ExtractReport()
    row = extract_row(_rec(Observation=[
        _obs("29463-7", 70, "kg", "2018-01-01"),
        _obs("29463-7", 176.37, "[lb_av]", "2021-03-01"),
        _obs("29463-7", 90, "kg", "2027-01-01"),  # after the reference date: ignored
        _obs("8302-2", 70, "[in_i]"),
        _obs("2093-3", 5.0, "mmol/L"),
        _obs("4548-4", 48, "mmol/mol"),
        _obs("39156-5", 30, "stone", "2021-01-01"),  # unknown unit: dropped, older one used
        _obs("39156-5", 25, "kg/m2", "2019-01-01"),
    ]), spec, rep)
    assert row["body_weight"] == pytest.approx(80.0, abs=0.01)
    assert row["body_height"] == pytest.approx(177.8)
    assert row["total_cholesterol"] == pytest.approx(193.35)
    assert row["hba1c"] == pytest.approx(6.54, abs=0.01)
    assert row["bmi"] == 25
    assert rep.counts["bmi: unknown unit"] == 1
    assert convert(1.0, "stone", "kg") is None


def test_blood_pressure_panel_components_comparator_and_absent(spec):
    panel = {"resourceType": "Observation", "id": "bp", "status": "final",
             "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
             "effectiveDateTime": "2022-02-02",
             "component": [
                 {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                  "valueQuantity": {"value": 131, "code": "mm[Hg]"}},
                 {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                  "dataAbsentReason": {"coding": [{"code": "not-performed"}]}}]}
    a1c = _obs("4548-4", 14, "%", "2022-01-01")
    a1c["valueQuantity"]["comparator"] = ">"
    rep = ExtractReport()
    row = extract_row(_rec(Observation=[panel, a1c, _obs("8462-4", 77, "mmHg", "2019-01-01")]),
                      spec, rep)
    assert row["systolic_bp"] == 131
    assert row["diastolic_bp"] == 77  # the absent newer value falls back to the older one
    assert row["hba1c"] == 14  # comparator policy "bound": the stated bound is kept
    assert rep.counts["diastolic_bp: data absent"] == 1
    assert rep.counts["hba1c: value with comparator"] == 1


@pytest.mark.parametrize("status", ["entered-in-error", "cancelled"])
def test_an_observation_entered_in_error_or_cancelled_is_no_measurement(spec, status):
    older = _obs("39156-5", 24, "kg/m2", when="2019-01-01")
    newer = _obs("39156-5", 41, "kg/m2", when="2021-01-01", status=status)
    assert extract_row(_rec(Observation=[older, newer]), spec)["bmi"] == 24
    assert pd.isna(extract_row(_rec(Observation=[newer]), spec)["bmi"])


def test_smoking_status_as_category(spec):
    obs = {"resourceType": "Observation", "id": "s", "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": "72166-2"}]},
           "effectiveDateTime": "2020-01-01",
           "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct",
                                                "code": "8517006"}]}}
    assert extract_row(_rec(Observation=[obs]), spec)["smoking_status"] == "former"


def test_encounter_counts_in_window(spec):
    def enc(cls, start):
        return {"resourceType": "Encounter", "id": f"e{cls}{start}", "status": "finished",
                "class": {"code": cls}, "period": {"start": start}}
    row = extract_row(_rec(Encounter=[enc("AMB", "2020-05-01T10:00:00Z"),
                                      enc("AMB", "2025-12-31"), enc("AMB", "2010-01-01"),
                                      enc("EMER", "2024-01-01"), enc("IMP", "2026-06-01")]), spec)
    assert row["encounters_ambulatory_10y"] == 2
    assert row["encounters_emergency_10y"] == 1
    assert row["encounters_inpatient_10y"] == 0


# -------------------------------------------------------------------------- medications
def test_case_001_both_medication_codes_reach_the_row(spec, shared_cases, read_json,
                                                      bundle_records):
    bundle = read_json(shared_cases / "001-r4-bundle-under-r5-models" / "input-r4-bundle.json")
    recs = bundle_records(bundle)
    row = extract_row(recs[0], spec)
    assert row["active_medications"] == 2
    assert row["on_antihypertensive"] is True
    # each code alone sets the flag: neither resource type is dropped
    for rtype in ("MedicationRequest", "MedicationStatement"):
        only = copy.copy(recs[0])
        only.resources = {rtype: recs[0].resources[rtype]}
        r = extract_row(only, spec)
        assert r["on_antihypertensive"] is True and r["active_medications"] == 1


def test_case_008_contained_medication(spec, shared_cases, read_json):
    mr = read_json(shared_cases / "008-contained-medication" / "input-medicationrequest.json")
    row = extract_row(_rec(MedicationRequest=[mr]), spec)
    assert row["on_diabetes_medication"] is True and row["active_medications"] == 1
    assert "Okonkwo" not in json.dumps(row, default=str)
    # sibling: a #ref that names no contained resource is reported, not a crash
    bad = copy.deepcopy(mr)
    bad["medicationReference"]["reference"] = "#nope"
    rep = ExtractReport()
    row = extract_row(_rec(MedicationRequest=[bad]), spec, rep)
    assert row["on_diabetes_medication"] is False and row["active_medications"] == 0
    assert rep.counts["unresolved medication reference"] == 1
    assert rep.issues[0].field == "medicationReference"


def test_cases_007_asthma_and_hypertension(spec, shared_cases, read_json, bundle_records):
    bundles = read_json(shared_cases / "007-references-urn-uuid-no-fullurl" / "input-bundles.json")
    one = extract_table(bundle_records(bundles[0]), spec)
    two = extract_table(bundle_records(bundles[1]), spec)
    assert len(one) == 1 and bool(one["asthma"][0])
    assert len(two) == 1 and bool(two["asthma"][0]) and bool(two["hypertension"][0])
    assert not bool(two["diabetes_type2"][0])  # the dangling Patient/404 condition


# ------------------------------------------------------------------------------ table
def test_planted_canaries_never_reach_the_table(spec):
    canaries = [f"CANARY{i:03d}" for i in range(18)]
    p = _patient(
        id=canaries[0], identifier=[{"system": canaries[1], "value": canaries[2]}],
        name=[{"family": canaries[3], "given": [canaries[4]], "text": canaries[5]}],
        telecom=[{"system": "phone", "value": canaries[6]}],
        address=[{"line": [canaries[7]], "city": canaries[8], "postalCode": canaries[9],
                  "state": "CA", "district": canaries[10]}],
        text={"status": "generated", "div": f"<div>{canaries[11]}</div>"},
        contact=[{"name": {"family": canaries[12]},
                  "telecom": [{"system": "email", "value": canaries[13]}]}],
        photo=[{"url": canaries[14]}],
        extension=[
            {"url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName",
             "valueString": canaries[15]},
            {"url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
             "valueAddress": {"city": canaries[16]}},
            {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
             "extension": [{"url": "text", "valueString": canaries[17]},
                           {"url": "ombCategory", "valueCoding": {"code": "2028-9"}}]}],
        birthDate="1960-03-04")
    rec = PatientRecord(patient_id=canaries[0], patient=p, source="canary.json")
    df = extract_table([rec], spec)
    blob = df.to_csv() + json.dumps(df.to_dict(orient="list"), default=str)
    assert not [c for c in canaries if c in blob]
    assert "1960-03-04" not in blob and "03-04" not in blob
    assert df["state"][0] == "CA" and df["race"][0] == "2028-9"


def test_table_is_typed_and_encodes(spec):
    recs = [_rec(), _rec(_patient(id="p2", birthDate="2001"))]
    recs[1].patient_id = "p2"
    df = extract_table(recs + [recs[0]], spec)  # the repeated patient folds into one row
    assert len(df) == 2
    assert df["age"].dtype == "Int64" and df["bmi"].dtype == "float64"
    assert df["asthma"].dtype == "boolean" and df["gender"].dtype == pd.StringDtype()
    enc = encode(spec, df)
    assert enc.codes.shape == (2, len(spec.modelled))


@pytest.mark.shared_data
def test_synthea_bundles_extract_and_encode(spec, shared_data, read_json, bundle_records):
    files = sorted((shared_data / "fhir" / "synthea-r4" / "bundles").glob("*.json.gz"))[:40]
    recs = [r for f in files for r in bundle_records(read_json(f), f.name)]
    rep = ExtractReport()
    df = extract_table(recs, spec, rep)
    assert len(df) == len(recs) >= 30
    assert df["age"].between(0, 90).all()
    assert df["systolic_bp"].notna().mean() > 0.9
    assert set(df["smoking_status"].dropna()) <= {"never", "former", "current", "unknown"}
    encode(spec, df)


@pytest.mark.shared_data
def test_mimic_ndjson_icd9_and_icd10_flags(spec, shared_data):
    import dataclasses
    import gzip

    folder = shared_data / "fhir" / "mimic-iv-demo-fhir-2022" / "25-patients"

    def ndjson(name):
        with gzip.open(folder / name, "rt", encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]

    recs = {p["id"]: PatientRecord(patient_id=p["id"], patient=p, source="mimic")
            for p in ndjson("Patient.ndjson.gz")}
    n_cond = 0
    for c in ndjson("Condition.ndjson.gz"):
        pid = c["subject"]["reference"].split("/", 1)[1]
        if pid in recs:
            recs[pid].resources.setdefault("Condition", []).append(c)
            n_cond += 1
    assert n_cond > 100
    # MIMIC shifts dates about a century forward: a custodian moves the reference date too
    shifted = dataclasses.replace(spec, reference_date="2200-01-01")
    df = extract_table(recs.values(), shifted)
    assert len(df) == len(recs)
    assert df["age"].notna().all()
    assert df["hypertension"].sum() >= 5
    assert df["race"].notna().all() and df["birth_sex"].notna().all()
    assert not df.drop(columns=["birth_date_precision"]).isin(
        [p.patient["name"][0]["family"] for p in recs.values()]).any().any()


def test_case_007_sibling_icd10_and_absolute_references(spec, bundle_records):
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p9", "birthDate": "1990"}},
        {"resource": {"resourceType": "Condition", "id": "k1",
                      "subject": {"reference": "http://ehr.example.test/fhir/Patient/p9"},
                      "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm",
                                           "code": "J45.20"}]}}},
        {"resource": {"resourceType": "Condition", "id": "k2",
                      "subject": {"reference": "Patient/p9"},
                      "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm",
                                           "code": "I50.9"}]}}},
        {"resource": {"resourceType": "Condition", "id": "k3",
                      "subject": {"reference": "Patient/nobody"},
                      "code": {"coding": [{"system": "http://snomed.info/sct",
                                           "code": "13645005"}]}}},
    ]}
    df = extract_table(bundle_records(bundle), spec)
    assert len(df) == 1
    assert bool(df["asthma"][0]) and bool(df["heart_failure"][0]) and not bool(df["copd"][0])


def test_a_missing_unit_is_not_called_unknown_and_component_paths_are_named(spec):
    rep = ExtractReport()
    no_unit = _obs("39156-5", 30, None, "2021-01-01")
    panel = {"resourceType": "Observation", "id": "bp1", "status": "final",
             "effectiveDateTime": "2021-01-01",
             "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
             "component": [{"code": {"coding": [{"system": "http://loinc.org",
                                                  "code": "8480-6"}]},
                            "valueQuantity": {"value": 120, "code": "bar"}}]}
    extract_row(_rec(Observation=[no_unit, panel]), spec, rep)
    assert rep.counts["bmi: missing unit"] == 1 and "bmi: unknown unit" not in rep.counts
    assert rep.counts["systolic_bp: unknown unit"] == 1
    text = " ".join(str(i) for i in rep.issues)
    assert "component.valueQuantity.code" in text
