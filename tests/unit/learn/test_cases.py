"""Hostile cases owned by the learner: 010, 011, 013, 015, 016, 018 (../shared/cases)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fhirsynth.config import LearnConfig
from fhirsynth.domain import load_spec
from fhirsynth.errors import EvidenceError, LowUtilityWarning, SpecError, TooFewRowsError
from fhirsynth.synthesizer import Synthesizer

SCHEMAS = Path(__file__).resolve().parents[2] / "data" / "learn"
pytestmark = pytest.mark.shared_data


def _read(shared_cases: Path, case: str, name: str = "input.csv", **kw) -> pd.DataFrame:
    return pd.read_csv(shared_cases / case / name, keep_default_na=False, **kw)


def _impossible(o: pd.DataFrame) -> dict[str, float]:
    return {
        "deceased=no with a death year": ((o.deceased == "no") & o.death_year.notna()).mean(),
        "deceased=yes without a year": ((o.deceased == "yes") & o.death_year.isna()).mean(),
        "age<15 with smoking status": ((o.age < 15) & o.smoking_status.notna()).mean(),
        "non-diabetic with HbA1c": ((o.diabetes == "no") & o.hba1c_percent.notna()).mean(),
    }


@pytest.fixture(scope="module")
def case010(shared_cases):
    spec = load_spec(SCHEMAS / "case010.schema.json")
    return spec, _read(shared_cases, "010-missing-not-at-random", dtype=str)


def test_010_noiseless_has_no_impossible_rows_and_keeps_missing_rates(case010) -> None:
    spec, df = case010
    s = Synthesizer(spec, epsilon=1.0, random_state=0).fit(df, _noiseless=True)
    out = s.sample(2000, random_state=1)
    assert "patient_id" not in out.columns
    assert all(v == 0 for v in _impossible(out).values())
    for col in ("death_year", "smoking_status", "hba1c_percent"):
        real = (df[col].str.strip() == "").mean()
        assert abs(out[col].isna().mean() - real) < 0.05


def test_010_eps1_declared_structure_keeps_impossible_rows_below_five_percent(
    shared_cases,
) -> None:
    # the schema declares, as public knowledge of how the fields are recorded, which
    # column each missingness depends on; the noisy tables then keep the structure.
    # Averaged over 8 independent fits each impossible combination stays < 5% of rows
    # (single fits at n = 400 exceed 5% for some seeds: noise, not model structure).
    spec = load_spec(SCHEMAS / "case010-declared.schema.json")
    df = _read(shared_cases, "010-missing-not-at-random", dtype=str)
    rates = []
    for seed in range(8):
        s = Synthesizer(spec, epsilon=1.0, random_state=seed).fit(df)
        assert s.model_.graph()["death_year"] == ["deceased"]
        assert not any(st["name"].startswith("structure") and "death_year" in st["name"]
                       for st in s.model_.budget["steps"])
        rates.append(list(_impossible(s.sample(2000, random_state=seed)).values()))
    assert np.all(np.mean(rates, axis=0) < 0.05)


@pytest.mark.xfail(strict=True, reason="known gap: without declared structure, at n=400 and "
                   "eps=1 the DP structure search rarely finds the missingness parents")
def test_010_eps1_impossible_rows_below_five_percent(case010) -> None:
    spec, df = case010
    s = Synthesizer(spec, epsilon=1.0, random_state=0).fit(df)
    out = s.sample(2000, random_state=1)
    assert max(_impossible(out).values()) < 0.05


def test_011_constant_columns_fit_and_keep_dtypes(shared_cases) -> None:
    spec = load_spec(SCHEMAS / "case011.schema.json")
    df = _read(shared_cases, "011-constant-column", dtype=str)
    s = Synthesizer(spec, epsilon=1.0, random_state=0).fit(df)
    assert set(s.model_.info["constant_columns"]) == {"country", "fhir_version"}
    out = s.sample(1000, random_state=2)
    assert (out["country"] == "US").all() and (out["fhir_version"] == "4.0.1").all()
    assert pd.api.types.is_string_dtype(out["country"])
    assert pd.api.types.is_integer_dtype(out["systolic_bp"])
    assert not any(str(v).startswith("<") for v in out["country"])
    noiseless = Synthesizer(spec, epsilon=1.0, random_state=0).fit(df, _noiseless=True)
    assert not np.isnan(np.concatenate([n.cpd.ravel() for n in noiseless.model_.nodes])).any()


@pytest.mark.parametrize("dtype", [str, "category"])
def test_013_shifted_and_string_domains(shared_cases, dtype) -> None:
    spec = load_spec(SCHEMAS / "case013.schema.json")
    df = pd.read_csv(shared_cases / "013-non-zero-based-and-string-domains" / "input.csv",
                     dtype=dtype)
    s = Synthesizer(spec, epsilon=1.0, random_state=0).fit(df)
    for ev in (None, ["sex=f"], {"sex": "m"}):
        out = s.sample(3000, evidence=ev, random_state=3)
        ages = out["age_years"].astype(int)
        assert ages.between(3, 18).all()
        assert set(out["sex"]) <= {"f", "m"}
    assert set(s.sample(500, evidence={"sex": "f"}, random_state=4)["sex"]) == {"f"}
    with pytest.raises(EvidenceError, match="'x' is not in its declared domain; allowed: f, m"):
        s.sample(10, evidence=["sex=x"])
    exact = Synthesizer(spec, epsilon=1.0, random_state=0).fit(df, _noiseless=True)
    out = exact.sample(20_000, random_state=5)
    young = out["age_years"].astype(int) <= 9
    assert (out["asthma"][young] == "yes").mean() > (out["asthma"][~young] == "yes").mean()


def test_015_tiny_tables(shared_cases) -> None:
    spec = load_spec(SCHEMAS / "case015.schema.json")
    case = "015-tiny-dataset-singleton-category"
    one = _read(shared_cases, case, "input-one-row.csv", dtype=str).assign(zip3="")
    with pytest.raises(TooFewRowsError, match="need at least 50 rows .*got 1$"):
        Synthesizer(spec, epsilon=1.0).fit(one)
    twelve = _read(shared_cases, case, "input-twelve-rows.csv", dtype=str)
    with pytest.raises(TooFewRowsError, match="got 12"):
        Synthesizer(spec, epsilon=1.0).fit(twelve)
    s = Synthesizer(spec, epsilon=1.0, config=LearnConfig(allow_few_rows=True),
                    random_state=0)
    with pytest.warns(LowUtilityWarning):
        s.fit(twelve)
    out = s.sample(5000, random_state=6)
    assert "Fibrodysplasia ossificans progressiva" not in set(out["primary_condition"].dropna())
    assert "027" not in set(out["zip3"].dropna())


def test_016_bounds_come_from_the_schema(shared_cases) -> None:
    df = _read(shared_cases, "016-bounds-learned-from-data", dtype=str)
    with pytest.raises(SpecError, match="annual_cost_usd.*needs public bounds"):
        load_spec(SCHEMAS / "case016-nobounds.schema.json")
    spec = load_spec(SCHEMAS / "case016.schema.json")
    out = Synthesizer(spec, epsilon=1.0, random_state=0).fit(df).sample(20_000, random_state=7)
    assert out["age"].between(0, 110).all() and not (out["age"] == 119).any()
    assert out["annual_cost_usd"].between(0, 500_000).all()
    assert not np.isclose(out["annual_cost_usd"], 9875432.10).any()
    assert out["bmi"].between(10, 80).all()
    # 71.3 lies inside the declared bounds, so sampling (to 2 decimals) may draw it: no more
    # often than a uniform draw inside its bin does (the outlier row is not reproduced)
    edges = spec["bmi"].bin_edges()
    k = np.searchsorted(edges, 71.3, side="right") - 1
    in_bin = int(out["bmi"].between(edges[k], edges[k + 1], inclusive="left").sum())
    expected = in_bin * 0.01 / (edges[k + 1] - edges[k])
    assert int(np.isclose(out["bmi"], 71.3).sum()) <= expected + 5 * np.sqrt(expected) + 3


def test_018_split_adds_up_to_the_requested_total(shared_cases) -> None:
    spec = load_spec(SCHEMAS / "case018.schema.json")
    df = _read(shared_cases, "018-epsilon-budget-split-and-exhaustion", dtype=str)
    for seed in (1, 2):
        s = Synthesizer(spec, epsilon=1.5, random_state=seed).fit(df)
        steps = s.model_.budget["steps"]
        assert math.fsum(st["epsilon"] for st in steps) == pytest.approx(1.5, abs=1e-12)
        assert {f"table {c}" for c in spec.names} <= {st["name"] for st in steps}
        assert "sequential" in s.model_.budget["composition"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for bad, name in ((0, "epsilon"), (-1, "epsilon"), (float("nan"), "epsilon")):
            with pytest.raises(ValueError, match=name):
                Synthesizer(spec, epsilon=bad)
        with pytest.raises(ValueError, match="delta"):
            Synthesizer(spec, epsilon=1.5, delta=1.0)
