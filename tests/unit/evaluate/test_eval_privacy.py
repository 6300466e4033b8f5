"""Privacy-risk tests: exact matches and distances by hand, attacks on a copying 'synthesizer'."""

import numpy as np
import pandas as pd
import pytest

from fhirsynth.domain import Column, TableSpec
from fhirsynth.evaluate.privacy import evaluate_privacy, feature_matrix, nearest_distances

SPEC = TableSpec(name="p", target="c", columns=(
    Column(name="n", kind="numeric", bounds=(0, 10), nullable=True),
    Column(name="c", categories=("a", "b"), nullable=False, role="target"),
))


def test_gower_like_distance_by_hand():
    cols = list(SPEC.columns)
    x = feature_matrix(cols, pd.DataFrame({"n": [0.0, 5.0, None], "c": ["a", "b", "a"]}))
    d = lambda i, j: float(np.abs(x[i] - x[j]).sum())  # noqa: E731
    assert d(0, 1) == pytest.approx(0.5 + 1.0)  # |0-5|/10 + one category mismatch
    assert d(0, 2) == pytest.approx(1.0)  # present vs missing counts as one mismatch
    assert nearest_distances(x[:1], x[1:]).tolist() == pytest.approx([1.0])


def test_exact_match_rates_by_hand():
    train = pd.DataFrame({"n": [1.0, 2.0, 3.0, 4.0], "c": ["a", "a", "b", "b"]})
    hold = pd.DataFrame({"n": [6.0, 7.0, 8.0, 9.0], "c": ["a", "b", "a", "b"]})
    synth = pd.DataFrame({"n": [1.0, 5.5, 5.5, 5.5], "c": ["a", "a", "b", "a"]})
    r = evaluate_privacy(SPEC, train, hold, synth, max_rows=10)
    assert r["exact_match"] == {"train": 0.25, "holdout": 0.0}
    assert r["subsample"]["train"] == 4


def _mixed(n, rng):
    return pd.DataFrame({"n": rng.uniform(0, 10, n).round(6), "c": rng.choice(["a", "b"], n)})


def test_copying_the_training_rows_is_detected():
    rng = np.random.default_rng(0)
    train, hold = _mixed(400, rng), _mixed(400, rng)
    copy = train.sample(400, replace=True, random_state=1).reset_index(drop=True)
    fresh = _mixed(400, rng)
    leak = evaluate_privacy(SPEC, train, hold, copy, max_rows=400)
    safe = evaluate_privacy(SPEC, train, hold, fresh, max_rows=400)
    assert leak["exact_match"]["train"] > 0.9 and leak["exact_match"]["holdout"] == 0.0
    assert leak["membership_inference"]["auc"] > 0.75
    assert leak["dcr"]["share_closer_to_train"] > 0.8
    # fresh draws from the same distribution: attacks near chance (400 vs 400, sd of AUC ~ .02)
    assert abs(safe["membership_inference"]["auc"] - 0.5) < 0.1
    assert 0.8 < safe["dcr"]["ratio"] < 1.25
    assert [a["column"] for a in safe["attribute_inference"]] == ["c"]


def test_subsamples_are_equal_sized_and_say_so():
    rng = np.random.default_rng(2)
    r = evaluate_privacy(SPEC, _mixed(900, rng), _mixed(300, rng), _mixed(500, rng), max_rows=250)
    assert r["subsample"] == {"train": 250, "holdout": 250, "synthetic": 250, "fixed_seed": True}
