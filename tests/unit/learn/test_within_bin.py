"""Decoding inside a bin: slopes from the model's own marginal, a linear density that keeps
each bin's mass, and the model file that carries the slopes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fhirsynth.domain import Column, TableSpec
from fhirsynth.encode import bin_slopes, decode_column, encode_column
from fhirsynth.errors import ModelError
from fhirsynth.model import FittedModel
from fhirsynth.synthesizer import Synthesizer


def test_slopes_follow_the_neighbours_and_stay_a_density() -> None:
    assert np.allclose(bin_slopes(np.full(5, 0.2)), 0.0)
    rising = bin_slopes(np.array([0.1, 0.2, 0.3, 0.4]))
    # interior bins: central difference over twice the bin's own mass
    assert rising[1] == pytest.approx((0.3 - 0.1) / (2 * 0.2))
    assert rising[2] == pytest.approx((0.4 - 0.2) / (2 * 0.3))
    assert np.all(rising > 0)
    spike = bin_slopes(np.array([0.0, 0.01, 0.98, 0.01, 0.0]))
    assert spike[1] == 2.0 and spike[3] == -2.0  # clipped: the density stays >= 0
    assert bin_slopes(np.array([0.5, 0.0, 0.5]))[1] == 0.0  # empty bin: uniform
    assert bin_slopes(np.array([1.0])).tolist() == [0.0]


@pytest.mark.parametrize("a", [-2.0, -1.0, 0.0, 0.7, 2.0])
def test_draws_inside_a_bin_follow_the_linear_density(a: float) -> None:
    col = Column(name="x", kind="numeric", bounds=(0.0, 10.0), bins=10, nullable=False)
    n = 200_000
    codes = np.full(n, 4)
    x = decode_column(col, codes, np.random.default_rng(1), np.full(10, a)).to_numpy()
    t = x - 4.0
    # every value stays in its bin, so re-encoding gives the same state (mass kept)
    assert np.array_equal(encode_column(col, pd.Series(x)), codes)
    # pdf 1 + a (t - 1/2) on [0, 1]: mean 1/2 + a/12, variance 1/12 - a^2/144;
    # bound: 5 standard errors (values are rounded to 0.01, which moves the mean < 0.005)
    se = np.sqrt(1 / 12 - a * a / 144) / np.sqrt(n)
    assert abs(t.mean() - (0.5 + a / 12)) < 5 * se + 0.005
    # the share below the middle is F(1/2) = 1/2 - a/8
    assert abs(np.mean(t < 0.5) - (0.5 - a / 8)) < 5 * np.sqrt(0.25 / n) + 0.005


def test_integer_bins_draw_integers_shaped_by_the_slope() -> None:
    col = Column(name="k", kind="numeric", bounds=(0.0, 1000.0), integer=True, bins=10,
                 nullable=False)
    codes = np.full(100_000, 3)  # [300, 400): 100 integers
    up = decode_column(col, codes, np.random.default_rng(2), np.full(10, 2.0))
    flat = decode_column(col, codes, np.random.default_rng(2))
    assert str(up.dtype) == "Int64"
    v = up.to_numpy(dtype=float)
    assert v.min() >= 300 and v.max() <= 399
    # density 2t on [0, 1]: mean 2/3 of the way through the bin; uniform: half-way
    assert abs((v.mean() - 300) / 100 - 2 / 3) < 0.01
    assert abs((flat.to_numpy(dtype=float).mean() - 300) / 100 - 0.5) < 0.01


def _peaked_spec() -> TableSpec:
    return TableSpec(name="peaked", target=None, columns=(
        Column(name="bmi", kind="numeric", bounds=(10.0, 100.0), bins=20, nullable=False),
        Column(name="flag", kind="boolean", nullable=False),
    ))


def test_fitted_model_decodes_a_peaked_column_closer_than_uniform(tmp_path) -> None:
    rng = np.random.default_rng(0)
    bmi = np.clip(rng.normal(28, 6, 20_000), 10, 100)
    df = pd.DataFrame({"bmi": bmi, "flag": rng.random(20_000) < 0.3})
    syn = Synthesizer(_peaked_spec(), epsilon=4.0, random_state=0).fit(df)
    node = syn.model.by_name["bmi"]
    assert node.slopes is not None and node.slopes.shape == (20,)
    assert syn.model.by_name["flag"].slopes is None
    shaped = syn.sample(100_000, random_state=1)["bmi"].to_numpy(dtype=float)
    node.slopes = None
    uniform = syn.sample(100_000, random_state=1)["bmi"].to_numpy(dtype=float)
    fine = np.arange(10.0, 60.5, 1.0)  # 1-unit bins, finer than the model's 4.5

    def tvd(x: np.ndarray) -> float:
        p = np.histogram(bmi, fine)[0] / bmi.size
        q = np.histogram(x, fine)[0] / x.size
        return 0.5 * float(np.abs(p - q).sum())

    # the uniform draw is a staircase; the shaped draw follows the bell inside the bins
    assert tvd(shaped) < 0.5 * tvd(uniform)


def test_slopes_round_trip_and_old_models_decode_uniformly(tmp_path) -> None:
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"bmi": np.clip(rng.normal(28, 6, 2_000), 10, 100),
                       "flag": rng.random(2_000) < 0.5})
    syn = Synthesizer(_peaked_spec(), epsilon=4.0, random_state=0).fit(df)
    path = tmp_path / "m.json"
    syn.model.to_json(path)
    back = FittedModel.from_json(path)
    assert np.allclose(back.by_name["bmi"].slopes, syn.model.by_name["bmi"].slopes)
    d = syn.model.to_dict()
    for nd in d["nodes"]:
        nd.pop("slopes", None)
    assert FittedModel.from_dict(d).by_name["bmi"].slopes is None
    d["nodes"][[n["name"] for n in d["nodes"]].index("bmi")]["slopes"] = [3.0] * 20
    with pytest.raises(ModelError, match="slopes"):
        FittedModel.from_dict(d)


def test_vectorised_encoding_keeps_booleans_apart_from_ones_and_zeros() -> None:
    # hashing makes True == 1: the per-distinct-value encoding must still tell them apart
    from fhirsynth.domain import _category_str

    cat = Column(name="c", categories=("true", "1", "false", "0", "x"), nullable=False)
    rng = np.random.default_rng(4)
    pool = np.array([True, 1, "1", 1.0, False, 0, "0", " x ", "x"], dtype=object)
    vals = pd.Series(pool[rng.integers(0, pool.size, 5_000)], dtype=object)
    lookup = {c: i for i, c in enumerate(cat.categories)}
    per_row = np.array([lookup[_category_str(v).strip()] for v in vals])
    assert np.array_equal(encode_column(cat, vals), per_row)
    flag = Column(name="b", kind="boolean", nullable=False)
    got = encode_column(flag, pd.Series([True, 1, "yes", 0, False, "N", "T"], dtype=object))
    assert got.tolist() == [1, 1, 1, 0, 0, 0, 1]
    # only booleans and ones: factorising alone would fold the 1 into True
    assert encode_column(cat, pd.Series([True, 1, True], dtype=object)).tolist() == [0, 1, 0]


def test_a_model_file_with_an_edited_probability_is_refused(tmp_path) -> None:
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"bmi": np.clip(rng.normal(28, 6, 500), 10, 100),
                       "flag": rng.random(500) < 0.5})
    d = Synthesizer(_peaked_spec(), epsilon=4.0, random_state=0).fit(df).model.to_dict()
    node = next(n for n in d["nodes"] if n["name"] == "flag")
    node["cpd"][0][0] = 5.0
    with pytest.raises(ModelError, match="probabilities"):
        FittedModel.from_dict(d)
