"""Safe Harbor post-processing of synthetic rows: ages, birth years (fhirsynth.export.harmonise)."""

import numpy as np
import pandas as pd

from fhirsynth.export.harmonise import harmonise, output_rules
from fhirsynth.ingest.features import load_feature_spec


def _rows() -> pd.DataFrame:
    return pd.DataFrame({
        "age": pd.array([0, 40, 40, 88, 89, 90, None], dtype="Int64"),
        "deceased": [False, False, True, False, False, True, False],
    })


def test_birth_years_follow_the_age_and_safe_harbor() -> None:
    spec = load_feature_spec()
    out = harmonise(spec, _rows(), np.random.default_rng(0))
    ref = output_rules(spec)["reference_year"]
    year = out["birth_year"]
    alive = ~out["deceased"] & out["age"].notna() & (out["age"] < 89)
    assert set((ref - out["age"] - year)[alive].tolist()) <= {0, 1}
    assert year[out["age"] >= 89].isna().all() and year[out["age"].isna()].isna().all()


def test_no_birth_year_where_the_age_is_the_age_at_death() -> None:
    # trial 12: the deceased got 2026 - age, as if alive at the reference date
    spec = load_feature_spec()
    assert output_rules(spec)["deceased"] == "deceased"
    out = harmonise(spec, _rows(), np.random.default_rng(0))
    assert out.loc[out["deceased"], "birth_year"].isna().all()
    assert out.loc[[0, 1, 3], "birth_year"].notna().all()


def test_an_age_at_the_reference_date_keeps_the_birth_year_of_the_deceased() -> None:
    spec = load_feature_spec()
    for col in spec.columns:
        if col.name == "age":
            col.source.pop("at")
    rules = output_rules(spec)
    assert "deceased" not in rules
    out = harmonise(spec, _rows(), np.random.default_rng(0), rules)
    assert out.loc[2, "birth_year"] in (rules["reference_year"] - 40,
                                        rules["reference_year"] - 41)


def test_birth_years_follow_the_reference_day() -> None:
    # trial 13: with a reference date of 1 January, half the birth years were a year late
    spec = load_feature_spec()  # reference date 2026-01-01: a birthday has rarely passed
    rules = output_rules(spec)
    assert rules["birthday_passed"] == round(1 / 365, 6)
    rows = pd.DataFrame({"age": pd.array([40] * 4000, dtype="Int64"),
                         "deceased": [False] * 4000})
    year = harmonise(spec, rows, np.random.default_rng(1), rules)["birth_year"]
    # aged 40 on 1 January 2026: born in 1985, or in 1986 only with a birthday on 1 January
    # (binomial(4000, 1/365): mean 11, sd 3.3)
    assert (year == 1986).sum() <= 11 + 5 * 3.3 and set(year) == {1985, 1986}
    mid = dict(rules, birthday_passed=0.5)  # a reference date in early July
    year = harmonise(spec, rows, np.random.default_rng(2), mid)["birth_year"]
    assert abs((year == 1986).mean() - 0.5) < 5 * (0.25 / 4000) ** 0.5


def test_saved_birth_years_of_a_model_without_the_list() -> None:
    import datetime as dt
    from dataclasses import replace

    from fhirsynth.domain import TableSpec
    from fhirsynth.export.harmonise import output_rules, saved_birth_years

    year = {"type": "numeric", "integer": True, "bounds": [1900, 2026]}
    spec = TableSpec.from_dict({"name": "t", "columns": {
        "BIRTHDATE": {**year, "source": {"transform": "year"}},
        "PatientDOB": {"type": "categorical", "domain": ["1920", "1950"],
                       "source": {"transform": "year"}},
        "yr": {**year, "source": {"column": "dob", "transform": "year"}},
        "admitted": {**year, "bounds": [1990, 2026]},
        "dob_note": {"type": "categorical", "domain": ["a", "b"]},
        "birth_weight": {"type": "numeric", "bounds": [1000, 2500]},  # grams, not a date
        "income": {"type": "numeric", "bounds": [0, 200000]}}})
    saved = replace(spec, columns=tuple(replace(c, source=None) for c in spec.columns))
    today = dt.date(2026, 1, 1)
    rules, unknown = saved_birth_years(saved, {"top_codes": {}}, today)
    assert rules == {"top_codes": {}, "birth_years": ["BIRTHDATE", "PatientDOB"]}
    # admitted: from 1990, no year of it implies an age over 89; the weight in grams between
    # 1000 and 2500 cannot be told from years either
    assert unknown == ["yr", "birth_weight"]
    assert saved_birth_years(saved, None, dt.date(2090, 1, 1))[1] == ["yr", "admitted",
                                                                      "birth_weight"]
    # a model that recorded the list says it all
    fresh = output_rules(spec)
    assert fresh["birth_years"] == ["BIRTHDATE", "PatientDOB", "yr"]
    assert saved_birth_years(saved, fresh, today) == (fresh, [])
