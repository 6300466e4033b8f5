"""Safe Harbor scan: a planted violation of every kind is found, clean outputs pass."""

import datetime as dt
import gzip
import json

import pandas as pd
import pytest

from fhirsynth.evaluate.safe_harbor import KINDS, load_restricted_zip3, scan_fhir, scan_table
from fhirsynth.evaluate.safe_harbor_fhir import scan_resources
from harbor_names import (
    RED_TEAM_AGES,
    RED_TEAM_BIRTH_YEARS,
    RED_TEAM_NOT_AGES,
    RED_TEAM_UNIT_AGES,
    RUN_TOGETHER_AGES,
    RUN_TOGETHER_BIRTH_YEARS,
    RUN_TOGETHER_NOT_AGES,
)

TODAY = dt.date(2026, 1, 1)
N = 3


def _kinds(report):
    return {(f.kind, f.field) for f in report.findings}


PLANTED = {
    # column: (values, expected kind)
    "first_name": (["Ann"] * N, "names"),
    "street": (["1 Main St"] * N, "geographic"),
    "zip": (["02139"] * N, "geographic"),
    "zip3": (["036", "059", "021"], "geographic"),
    "visit": (["2020-03-04"] * N, "dates"),
    "age": ([91, 40, 95], "ages_over_89"),
    "birth_year": ([1920, 1990, 1991], "ages_over_89"),
    "contact": (["(617) 555-0100"] * N, "phone"),
    "fax": (["x"] * N, "fax"),
    "note": (["write to a@b.org"] * N, "email"),
    "misc": (["id 123-45-6789"] * N, "ssn"),
    "mrn": (["x"] * N, "mrn"),
    "member_id": (["x"] * N, "health_plan"),
    "account": (["x"] * N, "account"),
    "drivers_license": (["x"] * N, "licence"),
    "vin": (["x"] * N, "vehicle"),
    "device_id": (["x"] * N, "device"),
    "homepage_text": (["see https://example.org/p"] * N, "url"),
    "host": (["10.1.2.3"] * N, "ip"),
    "fingerprint": (["x"] * N, "biometric"),
    "photo": (["x"] * N, "photo"),
    "thumb": (["data:image/png;base64,AAAA"] * N, "photo"),
    "ref": (["1b4e28ba-2fa1-11d2-883f-0016d3cca427"] * N, "other_unique_id"),
}


def test_every_kind_is_planted():
    assert {k for _, k in PLANTED.values()} == set(KINDS)


@pytest.mark.parametrize("column", sorted(PLANTED))
def test_planted_violation_is_found(column):
    values, kind = PLANTED[column]
    rep = scan_table(pd.DataFrame({column: values, "sex": ["f"] * N}), today=TODAY)
    assert not rep.passed
    assert (kind, column) in _kinds(rep)
    assert {f.field for f in rep.findings} == {column}


def test_counts_and_no_values_in_findings():
    rep = scan_table(pd.DataFrame({c: v for c, (v, _) in PLANTED.items()}), today=TODAY)
    by_field = {f.field: f for f in rep.findings}
    assert by_field["age"].count == 2 and by_field["birth_year"].count == 1
    assert by_field["zip3"].count == 2  # 036 and 059 restricted, 021 allowed
    text = json.dumps(rep.to_dict())
    for values, _ in PLANTED.values():
        for v in values:
            if isinstance(v, str) and len(v) > 2:
                assert v not in text


def test_clean_table_passes_and_exempt_key():
    df = pd.DataFrame({
        "id": ["1b4e28ba-2fa1-11d2-883f-0016d3cca427", "2b4e28ba-2fa1-11d2-883f-0016d3cca427"],
        "sex": ["f", "m"], "age": [44, 89], "zip3": ["000", "021"], "birth_year": [1990, 2000],
        "bmi": [22.5, 30.1], "smoking": ["never", "former"],
    })
    rep = scan_table(df, exempt=["id"], today=TODAY)
    assert rep.passed, rep.findings
    assert not scan_table(df, today=TODAY).passed  # without the exemption the id is flagged


def test_restricted_list_matches_compliance_copy(root):
    zips = load_restricted_zip3()
    assert len(zips) == 17 and "036" in zips and "893" in zips
    assert load_restricted_zip3(root / "compliance" / "restricted-zip3.csv") == zips


PATIENT = {
    "resourceType": "Patient", "id": "p1",
    "name": [{"family": "Doe", "given": ["Ann"]}],
    "telecom": [{"system": "phone", "value": "555-0100"}, {"system": "fax", "value": "1"},
                {"system": "email", "value": "a@b.org"}],
    "address": [{"line": ["1 Main"], "city": "Town", "state": "MA", "postalCode": "02139"}],
    "birthDate": "1920-05-01",
    "identifier": [
        {"type": {"coding": [{"code": "MR"}]}, "value": "m1"},
        {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "999-00-0000"},
        {"type": {"coding": [{"code": "DL"}]}, "value": "d1"},
    ],
    "photo": [{"contentType": "image/jpeg", "data": "AAAA"}],
}


def test_fhir_planted_violations(tmp_path):
    device = {"resourceType": "Device", "id": "d", "serialNumber": "s"}
    obs = {"resourceType": "Observation", "id": "o", "effectiveDateTime": "2020-01-02T10:00:00Z",
           "note": [{"text": "call 617-555-0100 or see http://x.org from 10.0.0.1"}]}
    f = tmp_path / "Patient.ndjson.gz"
    f.write_bytes(gzip.compress("\n".join(json.dumps(r) for r in (PATIENT, device, obs)).encode()))
    rep = scan_fhir([tmp_path], today=TODAY)
    kinds = {f.kind for f in rep.findings}
    assert {"names", "phone", "fax", "email", "geographic", "dates", "ages_over_89", "mrn",
            "ssn", "licence", "photo", "device", "url", "ip"} <= kinds
    assert all(f.location == "Patient.ndjson.gz" for f in rep.findings)
    assert "Doe" not in json.dumps(rep.to_dict())


def test_clean_fhir_passes():
    patient = {"resourceType": "Patient", "id": "p2", "gender": "female", "birthDate": "1980",
               "meta": {"lastUpdated": "2026-01-01T00:00:00Z",
                        "profile": ["http://hl7.org/fhir/StructureDefinition/Patient"]},
               "address": [{"state": "MA", "postalCode": "021"}]}
    cond = {"resourceType": "Condition", "id": "c", "subject": {"reference": "Patient/p2"},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]},
            "onsetDateTime": "2015"}
    bundle = {"resourceType": "Bundle", "entry": [{"fullUrl": "urn:uuid:1", "resource": patient},
                                                  {"resource": cond}]}
    rep = scan_resources([bundle], today=TODAY)
    assert rep.passed, rep.findings


@pytest.mark.parametrize(("value", "is_date"), [
    ("2020-03-04", True), ("2020-03", True), ("03/04/2020", True), ("2020.03.04", True),
    ("20200304T1000", True), ("2020-03-04T10:00:00Z", True),
    ("2010.05", False), ("12.5", False), ("1.2.10.5", False), ("2020", False),
])
def test_date_rule_precision(value, is_date):
    rep = scan_table(pd.DataFrame({"v": [value]}), today=TODAY)
    assert (("dates", "v") in _kinds(rep)) is is_date


@pytest.mark.parametrize("value", [
    "a05b1884-06e7-4c1e-9d2a-3f0b6c8e1a55",  # "1884-06" inside a random UUID
    "7c2d1999-11ab-4c3d-8e9f-0a1b2c3d4e5f",  # "1999-11" inside a random UUID
])
def test_a_uuid_key_is_not_read_as_a_date(value):
    # a release's fresh random keys (exempt from the unique-id rule) matched the year-month
    # pattern about once in 70,000 keys, flagging most large releases as unshareable
    rep = scan_table(pd.DataFrame({"id": [value]}), exempt=["id"], today=TODAY)
    assert rep.passed, rep.findings
    # a real date next to a UUID in the same value is still found
    both = scan_table(pd.DataFrame({"v": [f"{value} seen 2020-03-04"]}), today=TODAY)
    assert ("dates", "v") in _kinds(both)


def test_many_random_uuid_keys_pass_the_scan():
    import uuid

    ids = [str(uuid.UUID(int=i * 0x9E3779B97F4A7C15F39CC0605CEDC835 % 2**128, version=4))
           for i in range(200_000)]
    rep = scan_table(pd.DataFrame({"id": ids}), exempt=["id"], today=TODAY)
    assert rep.passed, rep.findings


def test_fhir_identifier_holding_a_uuid_is_not_a_date():
    patient = {"resourceType": "Patient", "id": "p3", "gender": "male", "birthDate": "1980",
               "identifier": [{"system": "urn:example", "value":
                               "a05b1884-06e7-4c1e-9d2a-3f0b6c8e1a55"}]}
    rep = scan_resources([patient], today=TODAY)
    assert "dates" not in {f.kind for f in rep.findings}, rep.findings


def test_a_birth_year_or_an_age_under_another_name_is_scanned():
    # a trial's synthetic BIRTHDATE (the year of a birth date) of 1905 passed the scan
    df = pd.DataFrame({"BIRTHDATE": [1905, 1990], "years_old": [95, 40],
                       "DEATHDATE": [1905, 1990]})
    rep = scan_table(df, today=TODAY, birth_years=["BIRTHDATE"])
    found = {f.field: (f.rule, f.count) for f in rep.findings}
    assert found == {"BIRTHDATE": ("birth year implies age > 89", 1),
                     "years_old": ("age above 89", 1)}
    # an age column listed by the spec, whatever its name
    rep = scan_table(pd.DataFrame({"howold": [95, 40]}), today=TODAY, ages=["howold"])
    assert [(f.field, f.rule) for f in rep.findings] == [("howold", "age above 89")]


def test_a_saved_model_keeps_the_birth_years_only_its_source_rules_tell():
    from dataclasses import replace

    from fhirsynth.domain import TableSpec
    from fhirsynth.export.harmonise import age_columns, birth_year_columns, output_rules
    from fhirsynth.model import _output_rules

    spec = TableSpec.from_dict({"name": "t", "columns": {
        "BIRTHDATE": {"type": "numeric", "integer": True, "bounds": [1937, 2026],
                      "source": {"transform": "year"}},
        "birth_year": {"type": "numeric", "integer": True, "bounds": [1937, 2026]},
        "sex": {"type": "categorical", "domain": ["f", "m"]}}})
    rules = output_rules(spec)
    assert rules["birth_years"] == ["BIRTHDATE"] and "ages" not in rules  # the name tells
    saved = replace(spec, columns=tuple(replace(c, source=None) for c in spec.columns))
    assert birth_year_columns(saved) == ["birth_year"]
    assert birth_year_columns(saved, _output_rules(rules, saved)) == ["BIRTHDATE", "birth_year"]
    assert age_columns(saved, rules) == []
    with pytest.raises(ValueError, match="output.birth_years must list columns"):
        _output_rules({"birth_years": ["nope"]}, saved)


def test_camel_case_and_abbreviated_ages_and_birth_years_are_scanned():
    # a trial's `PatientAge` gave 21 synthetic rows over 89 with the scan passed
    ages = ["PatientAge", "AgeYears", "ageyrs", "age_yrs"]
    years = ["DOB_year", "birth_yr", "PatientBirthYear"]
    df = pd.DataFrame({**{n: [95, 40, 120] for n in ages},
                       **{n: [1905, 1990, 1930] for n in years},
                       "stage": [95, 4, 120], "PageCount": [95, 40, 120],
                       "Percentage": [95, 40, 99], "dosage": [1905, 100, 500]})
    found = {f.field: (f.rule, f.count) for f in scan_table(df, today=TODAY).findings}
    assert found == {**{n: ("age above 89", 2) for n in ages},
                     **{n: ("birth year implies age > 89", 2) for n in years}}


def test_run_together_ages_and_birth_years_are_scanned():
    # an age named in capitals without separators passed the scan with ages over 89
    df = pd.DataFrame({**{n: [95, 40, 120] for n in RUN_TOGETHER_AGES + RUN_TOGETHER_NOT_AGES},
                       **{n: [1905, 1990, 1930] for n in RUN_TOGETHER_BIRTH_YEARS}})
    found = {f.field: (f.rule, f.count) for f in scan_table(df, today=TODAY).findings}
    assert found == {**{n: ("age above 89", 2) for n in RUN_TOGETHER_AGES},
                     **{n: ("birth year implies age > 89", 2) for n in RUN_TOGETHER_BIRTH_YEARS}}


def test_an_age_in_months_weeks_or_days_is_scanned_against_89_years_in_its_unit():
    from fhirsynth.evaluate.safe_harbor import AGE_LIMITS

    per_year = {"years": 1.0, "months": 12.0, "weeks": 365.25 / 7, "days": 365.25}
    for unit, (most, top) in AGE_LIMITS.items():  # no age over 89 (or under 90) years is cut
        assert most <= 89 * per_year[unit] < most + 1
        assert top <= 90 * per_year[unit] < top + 1
    df = pd.DataFrame({"age_months": [1068, 1069, 1500, 12], "AGEWEEKS": [4643, 4644, 1, 1],
                       "age_in_days": [32507, 32508, 40000, 1], "AgeGroupMonths": [5000] * 4})
    found = {f.field: (f.rule, f.count) for f in scan_table(df, today=TODAY).findings}
    assert found == {"age_months": ("age in months above 89 years", 2),
                     "AGEWEEKS": ("age in weeks above 89 years", 1),
                     "age_in_days": ("age in days above 89 years", 2)}
    # a top code of 90 years in months stands for "90 years or older"
    top = scan_table(pd.DataFrame({"age_months": [1080, 1081, 12]}), today=TODAY,
                     top_coded={"age_months": 1080.0}).findings
    assert [(f.field, f.count) for f in top] == [("age_months", 1)]


def test_the_red_teams_ages_and_birth_years_are_scanned():
    """Red team F1/F4: ages over 89 passed the scan under `age_dx_yrs`, `age_of_onset`,
    `momage`, `YRSOLD`...; birth years under `YEARBORN`, `DOBYYYY`...; and an age in
    months written after its event (`age_at_visit_months`) was held to 89 as years."""
    from fhirsynth.evaluate.safe_harbor import AGE_LIMITS

    units = dict(RED_TEAM_UNIT_AGES)
    df = pd.DataFrame({**{n: [95, 40, 120] for n in RED_TEAM_AGES + RED_TEAM_NOT_AGES},
                       **{n: [1905, 1990, 1930] for n in RED_TEAM_BIRTH_YEARS},
                       # 89 years in its unit (above 89 as years) and one unit more
                       **{n: [AGE_LIMITS[u][0], AGE_LIMITS[u][0] + 1, 1]
                          for n, u in units.items()}})
    found = {f.field: (f.rule, f.count) for f in scan_table(df, today=TODAY).findings}
    assert found == {**{n: ("age above 89", 2) for n in RED_TEAM_AGES},
                     **{n: ("birth year implies age > 89", 2) for n in RED_TEAM_BIRTH_YEARS},
                     **{n: (f"age in {u} above 89 years", 1) for n, u in units.items()}}


def test_the_month_of_a_birth_or_admission_is_found_in_the_output():
    df = pd.DataFrame({"birth_month": [3, 11], "ADMITDOW": [1, 5], "los_days": [3, 11]})
    rep = scan_table(df, today=TODAY)
    assert {f.field: f.kind for f in rep.findings} == {"birth_month": "dates",
                                                      "ADMITDOW": "dates"}


def test_findings_are_counted_under_their_safe_harbor_letter():
    from fhirsynth.evaluate.safe_harbor import SafeHarborReport

    table = pd.DataFrame({"phone": ["555-123-4567"] * 3, "note": ["see 2021-03-04"] * 3,
                          "age": [95, 40, 30]})
    rep = scan_table(table, location="t.csv")
    by_letter = {k["letter"]: k for k in rep.to_dict()["identifiers"]}
    assert len(by_letter) == 18
    assert by_letter["D"]["findings"] == 1 and by_letter["D"]["kinds"] == ["phone"]
    assert by_letter["C"]["kinds"] == ["dates", "ages_over_89"]
    assert by_letter["C"]["findings"] == 2  # a date value and an age over 89
    assert by_letter["A"]["findings"] == 0
    assert {x for k in by_letter.values() for x in k["kinds"]} == set(KINDS)
    assert SafeHarborReport().to_dict()["identifiers"][17]["letter"] == "R"
