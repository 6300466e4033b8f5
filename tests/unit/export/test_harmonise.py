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
