"""Safe Harbor findings decided by the spec alone (``spec_findings``), before any data."""

from __future__ import annotations

import datetime as _dt

import pytest

from fhirsynth.domain import TableSpec
from fhirsynth.errors import SpecError
from fhirsynth.evaluate.safe_harbor_spec import check_spec_safe_harbor, spec_findings
from fhirsynth.ingest.features import load_feature_spec
from harbor_names import (
    RED_TEAM_AGES,
    RED_TEAM_BIRTH_YEARS,
    RED_TEAM_NOT_AGES,
    RED_TEAM_UNIT_AGES,
    RUN_TOGETHER_AGES,
    RUN_TOGETHER_BIRTH_YEARS,
    RUN_TOGETHER_NOT_AGES,
)

TODAY = _dt.date(2026, 1, 1)


def _spec(**columns: dict) -> TableSpec:
    return TableSpec.from_dict({"name": "t", "columns": columns})


def _kinds(spec: TableSpec) -> dict[str, str]:
    return {f.column: f.kind for f in spec_findings(spec, today=TODAY)}


def test_age_bounds_decide_the_age_rule() -> None:
    num = {"type": "numeric", "nullable": False}
    assert _kinds(_spec(age={**num, "bounds": [0, 100]})) == {"age": "ages_over_89"}
    assert _kinds(_spec(age={**num, "bounds": [0, 90]})) == {"age": "ages_over_89"}
    assert _kinds(_spec(age={**num, "bounds": [0, 89]})) == {}
    assert _kinds(_spec(age={**num, "bounds": [0, 90], "source": {"top_code": 90}})) == {}
    # a top code above 90 is not Safe Harbor's "90 or older"
    assert _kinds(_spec(age={**num, "bounds": [0, 95], "source": {"top_code": 95}})) == {
        "age": "ages_over_89"}
    # bounds beyond the declared top code
    assert _kinds(_spec(age={**num, "bounds": [0, 100], "source": {"top_code": 90}})) == {
        "age": "ages_over_89"}
    # categories holding ages above 89
    assert _kinds(_spec(age_at_admission={"type": "categorical",
                                          "domain": ["80", "95"]})) == {
        "age_at_admission": "ages_over_89"}
    # a column not modelled never reaches the output
    assert _kinds(_spec(age={**num, "bounds": [0, 100], "role": "drop"})) == {}


def test_zip_birth_year_names_and_category_values() -> None:
    spec = _spec(
        zip={"type": "categorical", "domain": ["02139", "10001"]},
        zip3={"type": "categorical", "domain": ["021", "036"]},  # 036 is restricted
        postal_ok={"type": "categorical", "domain": ["021", "000"]},
        birth_year={"type": "numeric", "bounds": [1900, 2026], "integer": True},
        birth_year_ok={"type": "numeric", "bounds": [1950, 2026], "integer": True},
        email={"type": "categorical", "domain": ["a", "b"]},
        visit={"type": "categorical", "domain": ["2020-03-01", "2021-04-02"]},
        patient_id={"type": "categorical", "domain": ["x"], "role": "key"},
    )
    found = {f.column: (f.kind, f.rule) for f in spec_findings(spec, today=TODAY)}
    assert found == {
        "zip": ("geographic", "ZIP longer than 3 digits"),
        "zip3": ("geographic", "restricted ZIP3 not set to 000"),
        "birth_year": ("ages_over_89", "birth year implies age > 89"),
        "email": ("email", "column name"),
        "visit": ("dates", "category list value"),
    }


def test_default_fhir_spec_passes() -> None:
    # its age is top-coded at 90 and its birth year is derived (suppressed for ages 89+)
    assert spec_findings(load_feature_spec(None), today=TODAY) == []


def test_fhir_patient_rules_are_post_processed_not_refused() -> None:
    # the FHIR path sets synthetic ages at or above the top code to it and rebuilds the
    # birth year from the age (harmonise), so wide bounds there are not a finding
    age = {"type": "numeric", "bounds": [0, 100], "integer": True,
           "source": {"from": "patient", "field": "age", "top_code": 90}}
    year = {"type": "numeric", "bounds": [1900, 2026], "integer": True,
            "source": {"from": "patient", "field": "birth_year"}}
    assert _kinds(_spec(age=age, birth_year=year)) == {}
    assert _kinds(_spec(birth_year=year)) == {"birth_year": "ages_over_89"}  # no age to derive
    too_high = {**age, "source": {"from": "patient", "field": "age", "top_code": 100}}
    assert _kinds(_spec(age=too_high)) == {"age": "ages_over_89"}


def test_error_names_the_file_the_column_and_the_fix_without_values() -> None:
    spec = _spec(age={"type": "numeric", "bounds": [0, 100]},
                 visit={"type": "categorical", "domain": ["2020-03-01"]})
    with pytest.raises(SpecError) as err:
        check_spec_safe_harbor(spec, "/data/p.schema.json", today=TODAY)
    msg = str(err.value)
    assert msg.startswith("/data/p.schema.json: ")
    assert "column 'age'" in msg and "top_code" in msg and "bounds at 89" in msg
    assert "column 'visit'" in msg and "reduce it to a year" in msg
    assert "2020-03-01" not in msg  # a category value is never quoted
    check_spec_safe_harbor(_spec(age={"type": "numeric", "bounds": [0, 89]}), "x")


def test_restricted_zip3_names_the_list_and_the_count_but_no_prefix() -> None:
    spec = _spec(zip3={"type": "categorical", "domain": ["021", "036", "059", "102"]})
    with pytest.raises(SpecError) as err:
        check_spec_safe_harbor(spec, "z.schema.json", today=TODAY)
    msg = str(err.value)
    assert "3 of the 17 restricted ZIP3 prefixes" in msg  # 036, 059 and 102
    assert "compliance/restricted-zip3.csv" in msg and "as 000" in msg
    assert not any(z in msg for z in ("036", "059", "102"))


def test_year_of_a_birth_date_under_any_name_is_a_birth_year() -> None:
    """Trial finding: BIRTHDATE with the `year` transform passed with bounds [1900, 2026]."""
    year = {"type": "numeric", "integer": True, "source": {"transform": "year"}}
    for name in ("BIRTHDATE", "dob", "date_of_birth", "Patient Born"):
        spec = _spec(**{name: {**year, "bounds": [1900, 2026]}})
        found = spec_findings(spec, today=TODAY)
        assert [(f.column, f.rule) for f in found] == [(name, "birth year implies age > 89")]
        assert "raise it to 1937 or later" in found[0].why
        assert _kinds(_spec(**{name: {**year, "bounds": [1937, 2026]}})) == {}
    # another column's birth date, by the transform's source column
    spec = _spec(yr={**year, "bounds": [1900, 2026],
                     "source": {"column": "BIRTHDATE", "transform": "year"}})
    assert _kinds(spec) == {"yr": "ages_over_89"}
    # a year listed as categories
    spec = _spec(BIRTHDATE={"type": "categorical", "domain": ["1930", "1950"],
                            "source": {"transform": "year"}})
    assert _kinds(spec) == {"BIRTHDATE": "ages_over_89"}
    # the year of another date is not a birth year
    assert _kinds(_spec(DEATHDATE={**year, "bounds": [1900, 2026]})) == {}


def test_a_birth_year_said_by_the_description_or_a_fhir_rule() -> None:
    num = {"type": "numeric", "integer": True, "bounds": [1900, 2026]}
    assert _kinds(_spec(yr={**num, "description": "year of birth"})) == {"yr": "ages_over_89"}
    # a count described with "born" is not a year
    assert _kinds(_spec(n={"type": "numeric", "bounds": [0, 20],
                           "description": "children born in the household"})) == {}
    rule = {**num, "source": {"from": "patient", "field": "birth_year"}}
    assert _kinds(_spec(yr=rule)) == {"yr": "ages_over_89"}


def test_an_age_under_another_name_is_an_age() -> None:
    num = {"type": "numeric", "integer": True, "bounds": [0, 110]}
    assert _kinds(_spec(years_old=num)) == {"years_old": "ages_over_89"}
    assert _kinds(_spec(AGE_YEARS=num)) == {"AGE_YEARS": "ages_over_89"}
    # the FHIR patient age rule under any name, with a top code above 90
    rule = {**num, "source": {"from": "patient", "field": "age", "top_code": 110}}
    assert _kinds(_spec(howold=rule)) == {"howold": "ages_over_89"}


#: names that hold an age or a birth year only once camelCase and abbreviations are read
AGE_NAMES = ("PatientAge", "AgeYears", "ageyrs", "age_yr", "AgeAtDiagnosis")
BIRTH_YEAR_NAMES = ("DOB_year", "birth_yr", "PatientBirthYear", "DOBYear")
#: names that merely contain "age" (or nothing of an age): never ages (``image`` is left
#: out: it is a photo by name)
NOT_AGES = ("stage", "Stage", "page", "PageCount", "average", "dosage", "DosageMg", "usage",
            "ImageCount", "language", "percentage", "Percentage", "mileage", "Mileage",
            "age_group", "AgeMonths", "teenage")


@pytest.mark.parametrize("name", AGE_NAMES)
def test_camel_case_and_abbreviated_ages_are_ages(name: str) -> None:
    """Trial finding: `PatientAge` bounded [0, 120] passed the pre-check (and the scan)."""
    num = {"type": "numeric", "integer": True}
    others = {n: {**num, "bounds": [0, 120]} for n in NOT_AGES}  # token boundaries count
    found = spec_findings(_spec(**{name: {**num, "bounds": [0, 120]}}, **others), today=TODAY)
    assert [(f.column, f.rule) for f in found] == [(name, "age above 89")]
    assert "top_code" in found[0].fix
    assert _kinds(_spec(**{name: {**num, "bounds": [0, 89]}})) == {}
    assert _kinds(_spec(**{name: {**num, "bounds": [0, 90], "source": {"top_code": 90}}})) == {}


@pytest.mark.parametrize("name", BIRTH_YEAR_NAMES)
def test_camel_case_and_abbreviated_birth_years_are_birth_years(name: str) -> None:
    num = {"type": "numeric", "integer": True}
    found = spec_findings(_spec(**{name: {**num, "bounds": [1900, 2026]}}), today=TODAY)
    assert [(f.column, f.rule) for f in found] == [(name, "birth year implies age > 89")]
    assert _kinds(_spec(**{name: {**num, "bounds": [1937, 2026]}})) == {}


def test_the_year_of_a_camel_case_birth_date_is_a_birth_year() -> None:
    year = {"type": "numeric", "integer": True, "bounds": [1900, 2026]}
    spec = _spec(birth={**year, "source": {"column": "PatientBirthDate", "transform": "year"}},
                 PatientBirthDate={**year, "source": {"transform": "year"}})
    assert _kinds(spec) == {"birth": "ages_over_89", "PatientBirthDate": "ages_over_89"}



def test_run_together_names_are_read_word_by_word() -> None:
    """Trial remainder: `PATIENTAGE` bounded [0, 120] passed the pre-check and the scan."""
    from fhirsynth.evaluate.safe_harbor import is_age_name, is_birth_date_name, is_birth_year_name

    assert [n for n in RUN_TOGETHER_AGES if not is_age_name(n)] == []
    assert [n for n in RUN_TOGETHER_NOT_AGES + ("IMAGE",) if is_age_name(n)] == []
    assert [n for n in RUN_TOGETHER_BIRTH_YEARS if not is_birth_year_name(n)] == []
    assert [n for n in RUN_TOGETHER_BIRTH_YEARS if is_age_name(n)] == []
    assert [n for n in ("YEARLY", "BIRTHWEIGHT", "YOBBO", "AGEYEARS") if is_birth_year_name(n)] \
        == []
    # the year of a birth date named without separators is a birth year
    assert all(map(is_birth_date_name, ("DATEOFBIRTH", "PATIENTDOB", "PATIENTBIRTHDATE")))
    assert not any(map(is_birth_date_name, ("ADOBE", "REBIRTH", "DOBUTAMINE")))


def test_run_together_ages_and_birth_years_are_refused_by_the_pre_check() -> None:
    num = {"type": "numeric", "integer": True}
    cols = {**{n: {**num, "bounds": [0, 120]} for n in RUN_TOGETHER_AGES + RUN_TOGETHER_NOT_AGES},
            **{n: {**num, "bounds": [1900, 2026]} for n in RUN_TOGETHER_BIRTH_YEARS}}
    found = {f.column: f.rule for f in spec_findings(_spec(**cols), today=TODAY)}
    assert found == {**{n: "age above 89" for n in RUN_TOGETHER_AGES},
                     **{n: "birth year implies age > 89" for n in RUN_TOGETHER_BIRTH_YEARS}}
    with pytest.raises(SpecError, match=r"column 'PATIENTAGE': its bounds end at 120"):
        check_spec_safe_harbor(_spec(PATIENTAGE={**num, "bounds": [0, 120]}), "p.schema.json",
                               today=TODAY)
    # the year transform of a birth date named without separators, under another name
    yr = {**num, "bounds": [1900, 2026], "source": {"column": "DATEOFBIRTH", "transform": "year"}}
    assert _kinds(_spec(yr=yr)) == {"yr": "ages_over_89"}
    # within the limits, they pass
    ok = {**{n: {**num, "bounds": [0, 90], "source": {"top_code": 90}} for n in RUN_TOGETHER_AGES},
          **{n: {**num, "bounds": [1937, 2026]} for n in RUN_TOGETHER_BIRTH_YEARS}}
    assert spec_findings(_spec(**ok), today=TODAY) == []


#: an age in another unit, the unit, and units per year (a Julian year of 365.25 days)
OTHER_UNITS = (("age_months", "months", 12.0), ("AgeInWeeks", "weeks", 365.25 / 7),
               ("AGEDAYS", "days", 365.25), ("patient_age_mo", "months", 12.0),
               ("age_days_at_admission", "days", 365.25))


@pytest.mark.parametrize(("name", "unit", "per_year"), OTHER_UNITS)
def test_an_age_in_months_weeks_or_days_is_held_to_89_years_in_its_unit(
        name: str, unit: str, per_year: float) -> None:
    """[0, 1500] months (125 years) passed the pre-check in silence."""
    import math

    most = math.floor(89 * per_year)  # no age over 89 years is within it
    top = math.floor(90 * per_year)  # "90 years or older"
    num = {"type": "numeric", "integer": True}
    assert _kinds(_spec(**{name: {**num, "bounds": [0, most]}})) == {}
    with pytest.raises(SpecError) as err:
        check_spec_safe_harbor(_spec(**{name: {**num, "bounds": [0, most + 1]}}), "u.schema.json",
                               today=TODAY)
    msg = str(err.value)
    assert f"column {name!r}: it is an age in {unit}, and its bounds end at {most + 1}" in msg
    assert f"above {most} {unit} (89 years)" in msg and f"\"top_code\": {top}" in msg
    assert _kinds(_spec(**{name: {**num, "bounds": [0, top],
                                  "source": {"top_code": top}}})) == {}
    found = spec_findings(_spec(**{name: {**num, "bounds": [0, top + 1],
                                          "source": {"top_code": top + 1}}}), today=TODAY)
    assert [(f.column, f.rule) for f in found] == [(name, f"age in {unit} above 89 years")]
    assert f"top code ({top + 1}) is above {top} {unit} (90 years)" in found[0].why
    cats = {"type": "categorical", "domain": ["1", str(most + 1)]}
    assert _kinds(_spec(**{name: cats})) == {name: "ages_over_89"}
    # a band or a year-unit age keeps its own rule
    assert _kinds(_spec(age_group={**num, "bounds": [0, 2000]})) == {}


def test_the_red_teams_ages_and_birth_years_are_refused_by_the_pre_check() -> None:
    """Red team F1/F4: these names passed the pre-check with ages to 120 and birth years
    from 1900; an age in months or days after its event was held to 89 as if in years."""
    from fhirsynth.evaluate.safe_harbor import AGE_LIMITS

    num = {"type": "numeric", "integer": True}
    units = dict(RED_TEAM_UNIT_AGES)
    cols = {**{n: {**num, "bounds": [0, 120]} for n in RED_TEAM_AGES + RED_TEAM_NOT_AGES},
            **{n: {**num, "bounds": [1900, 2026]} for n in RED_TEAM_BIRTH_YEARS},
            **{n: {**num, "bounds": [0, AGE_LIMITS[u][0] + 1]} for n, u in units.items()}}
    found = {f.column: f.rule for f in spec_findings(_spec(**cols), today=TODAY)}
    assert found == {**{n: "age above 89" for n in RED_TEAM_AGES},
                     **{n: "birth year implies age > 89" for n in RED_TEAM_BIRTH_YEARS},
                     **{n: f"age in {u} above 89 years" for n, u in units.items()}}
    # within the limits (the unit's own for months and days: [0, 216] months is no refusal)
    ok = {**{n: {**num, "bounds": [0, 90], "source": {"top_code": 90}} for n in RED_TEAM_AGES},
          **{n: {**num, "bounds": [1937, 2026]} for n in RED_TEAM_BIRTH_YEARS},
          **{n: {**num, "bounds": [0, AGE_LIMITS[u][0]]} for n, u in units.items()},
          "age_at_visit_months": {**num, "bounds": [0, 216]}}
    assert spec_findings(_spec(**ok), today=TODAY) == []


def test_a_column_of_years_no_rule_knows_is_a_finding_until_declared() -> None:
    """Red team F1 backstop: a birth year under a name no rule knows (`yr_b`, `annee`) passed
    with years from 1900; any column of years reaching before this year - 89 is now a finding,
    until the schema declares it no birth year or raises its lower bound."""
    num = {"type": "numeric", "integer": True}
    oldest = TODAY.year - 89
    cols = {"annee": {**num, "bounds": [1900, 2026]},
            "yr_b": {"type": "categorical", "domain": ["1920", "1950", "1990"]},
            "cohort_year": {**num, "bounds": [oldest - 1, TODAY.year]}}
    found = spec_findings(_spec(**cols), today=TODAY)
    assert {f.column: (f.kind, f.rule) for f in found} == {
        n: ("ages_over_89", "years that could be birth years") for n in cols}
    assert f"reaching back before {oldest}" in found[0].why
    assert '"not_a_birth_year": true' in found[0].fix
    # declared, bounded from this year - 89, or the year of another event's date: no finding
    declared = {n: {**c, "source": {"not_a_birth_year": True}} for n, c in cols.items()}
    assert spec_findings(_spec(**declared), today=TODAY) == []
    assert _kinds(_spec(annee={**num, "bounds": [oldest, 2026]})) == {}
    assert _kinds(_spec(dy={**num, "bounds": [1900, 2026],
                            "source": {"column": "DEATHDATE", "transform": "year"}})) == {}
    # not years (a weight in grams up to 5000, a count from 0), or a key: no finding
    assert _kinds(_spec(weight_g={**num, "bounds": [500, 5000]}, n={**num, "bounds": [0, 2026]},
                        yid={"type": "categorical", "domain": ["1920"], "role": "key"})) == {}
    # the declaration does not undo a birth year that a rule knows, nor the year of a bare date
    assert _kinds(_spec(birth_year={**num, "bounds": [1900, 2026],
                                    "source": {"not_a_birth_year": True}})) == {
        "birth_year": "ages_over_89"}
    assert _kinds(_spec(y={**num, "bounds": [1900, 2026],
                           "source": {"column": "date", "transform": "year"}})) == {
        "y": "ages_over_89"}
    # run refuses it before reading anything, naming the column and the declaration
    with pytest.raises(SpecError, match=r"column 'annee': its bounds are years reaching back"):
        check_spec_safe_harbor(_spec(annee=cols["annee"]), "y.schema.json", today=TODAY)


DATE_PARTS = ["birth_month", "BIRTHMONTH", "birthday_month", "dob_month", "admit_dow",
              "month_of_death", "DAYOFDISCHARGE", "death_day", "admission_quarter"]
NO_DATE_PARTS = ["los_days", "months_since_admission", "admission_type", "birth_weight",
                 "discharge_disposition", "visit_day", "month", "admit_source"]


def test_the_month_or_day_of_a_birth_admission_discharge_or_death_is_refused() -> None:
    # trial 21 / harbor helper: a birth month passed every check; Safe Harbor allows no
    # element of those dates but the year
    cols = {n: {"type": "numeric", "integer": True, "bounds": [1, 12]}
            for n in DATE_PARTS + NO_DATE_PARTS}
    kinds = _kinds(_spec(**cols))
    assert {n for n, k in kinds.items() if k == "dates"} == set(DATE_PARTS)
    with pytest.raises(SpecError, match="birth_month"):
        check_spec_safe_harbor(_spec(birth_month=cols["birth_month"]), "s.json", today=TODAY)


def test_category_values_get_a_category_fix_and_each_kind_is_named() -> None:
    # trial 23: a date among smoking_status's categories was told to "drop the date column or
    # reduce it to a year"; a list holding a phone number and a date named only one kind
    spec = _spec(smoking_status={"type": "categorical",
                                 "domain": ["never", "former", "2019-05-02", "555-867-5309"]})
    found = [f for f in spec_findings(spec, today=TODAY) if f.column == "smoking_status"]
    assert sorted(f.kind for f in found) == ["dates", "phone"]
    with pytest.raises(SpecError) as err:
        check_spec_safe_harbor(spec, "s.schema.json", today=TODAY)
    msg = str(err.value)
    assert "drop the date column" not in msg
    assert "its category list holds a date (Safe Harbor: dates); fix: remove the date from " \
           "the column's category list" in msg
    assert "its category list holds a telephone number (Safe Harbor: phone); fix: remove " \
           "the telephone number from the column's category list" in msg
    assert "2019" not in msg and "867" not in msg  # never a value
