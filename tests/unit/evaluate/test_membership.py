"""Distance-based membership inference: a copy of the training data is caught, a fresh
sample from the same population is not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fhirsynth.domain import Column, TableSpec
from fhirsynth.errors import ConfigError
from fhirsynth.evaluate.membership import membership_inference_auc, min_distances

SPEC = TableSpec(
    name="t",
    columns=(
        Column(name="sex", categories=("female", "male")),
        Column(name="age", kind="numeric", bounds=(0, 100)),
        Column(name="hba1c", kind="numeric", bounds=(3, 15)),
    ),
)


def _population(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "sex": rng.choice(["female", "male"], n),
        "age": rng.uniform(18, 90, n),
        "hba1c": rng.normal(6.5, 1.2, n),
    })


def test_min_distance_is_zero_for_a_copy_and_handles_missing() -> None:
    t = _population(5, 0)
    t.loc[2, "age"] = np.nan
    assert np.allclose(min_distances(SPEC, t, t), 0.0)
    other = t.copy()
    other.loc[2, "age"] = 40.0
    # row 2 now differs only in 'age' being missing on one side: a positive distance
    assert min_distances(SPEC, t.iloc[[2]], other.iloc[[2]])[0] > 0
    assert min_distances(SPEC, t.iloc[[2]], other.iloc[[2]])[0] == pytest.approx(
        min_distances(SPEC, other.iloc[[2]], t.iloc[[2]])[0])


def test_copy_of_training_data_is_caught() -> None:
    train, holdout = _population(300, 1), _population(300, 2)
    assert membership_inference_auc(train, holdout, train.copy(), SPEC, seed=0) > 0.99


def test_independent_sample_gives_chance_auc() -> None:
    train, holdout, synth = _population(300, 3), _population(300, 4), _population(1000, 5)
    # AUC standard error with 300 + 300 targets is about 0.024: 0.1 is four of them
    assert abs(membership_inference_auc(train, holdout, synth, SPEC, seed=0) - 0.5) < 0.1


def test_empty_inputs_are_errors() -> None:
    t = _population(10, 6)
    with pytest.raises(ConfigError):
        membership_inference_auc(t, t.iloc[:0], t, SPEC)
    with pytest.raises(ConfigError):
        membership_inference_auc(t, t, t.iloc[:0], SPEC)
