"""Fidelity metrics on tiny tables whose values are worked out by hand."""

import math

import numpy as np
import pandas as pd
import pytest

from fhirsynth.domain import MISSING, OTHER, Column, TableSpec
from fhirsynth.evaluate.discretise import discretise
from fhirsynth.evaluate.fidelity import (
    association_matrix,
    cramers_v,
    describe,
    evaluate_fidelity,
    tvd,
    tvd_summary,
)
from fhirsynth.evaluate.utility import ml_utility

SPEC = TableSpec(
    name="tiny",
    columns=(
        Column(name="a", categories=("x", "y"), nullable=False),
        Column(name="b", categories=("u", "v"), nullable=False),
    ),
)
REAL = pd.DataFrame({"a": ["x", "x", "y", "y"], "b": ["u", "v", "u", "v"]})
SYNTH = pd.DataFrame({"a": ["x", "y", "y", "y"], "b": ["u", "u", "u", "v"]})


def test_one_and_two_way_tvd_by_hand():
    dr, ds = discretise(SPEC, REAL), discretise(SPEC, SYNTH)
    # a: real (1/2, 1/2), synth (1/4, 3/4) -> 0.5 * (1/4 + 1/4)
    assert tvd(dr, ds, (0,)) == pytest.approx(0.25)
    # b: real (1/2, 1/2), synth (3/4, 1/4)
    assert tvd(dr, ds, (1,)) == pytest.approx(0.25)
    # (a, b): real 1/4 each; synth xu 1/4, yu 1/2, yv 1/4, xv 0 -> 0.5 * (0 + 1/4 + 1/4 + 0)
    assert tvd(dr, ds, (0, 1)) == pytest.approx(0.25)
    s = tvd_summary(dr, ds, 1)
    assert s["n"] == 2 and s["mean"] == pytest.approx(0.25) and s["worst"] == pytest.approx(0.25)
    assert tvd(dr, dr, (0, 1)) == 0.0


def test_cramers_v_by_hand():
    assert cramers_v(np.array([[2, 0], [0, 2]])) == pytest.approx(1.0)
    assert cramers_v(np.array([[1, 1], [1, 1]])) == pytest.approx(0.0)
    # n = 8, expected 2 per cell, chi2 = 4 * 1/2 = 2, V = sqrt(2 / 8)
    assert cramers_v(np.array([[3, 1], [1, 3]])) == pytest.approx(0.5)
    # empty rows/columns (unused states) are ignored; one row left -> 0
    assert cramers_v(np.array([[3, 1], [0, 0]])) == 0.0


def test_association_error_by_hand():
    # real: a and b independent (V = 0); synth table [[1,0],[2,1]]:
    # n=4, rows (1,3), cols (3,1); expected [[.75,.25],[2.25,.75]]
    # chi2 = .0625/.75 + .0625/.25 + .0625/2.25 + .0625/.75 = 4/9 -> V = sqrt(1/9) = 1/3
    res = evaluate_fidelity(SPEC, REAL, SYNTH, utility=False)
    assert association_matrix(discretise(SPEC, SYNTH))[0, 1] == pytest.approx(1 / 3)
    assert res["cramers_v"]["mean_abs_diff"] == pytest.approx(1 / 3)
    assert res["tvd"]["2way"]["worst_of"] == ["a", "b"]


def test_numeric_bins_come_from_declared_bounds_and_dirty_values_get_states():
    col = Column(name="w", kind="numeric", bounds=(0, 100))  # 20 bins by default -> 16
    spec = TableSpec(name="n", columns=(col,))
    d = discretise(spec, pd.DataFrame({"w": ["7", "150", None, "abc", "-3"]}))
    labels = d.labels[0]
    assert len(labels) == 16 + 2 and labels[-2:] == (OTHER, MISSING)
    assert d.codes[:, 0].tolist() == [1, 15, 17, 16, 0]


def test_unlisted_category_is_other_not_an_error():
    d = discretise(SPEC, pd.DataFrame({"a": ["x", "zz", None], "b": ["u", "u", "v"]}))
    assert d.codes[:, 0].tolist() == [0, 2, 3]


def test_three_way_sample_is_fixed_seed():
    rng = np.random.default_rng(0)
    cols = tuple(Column(name=f"c{i}", categories=("0", "1"), nullable=False) for i in range(7))
    spec = TableSpec(name="s", columns=cols)
    df = pd.DataFrame(rng.integers(0, 2, (200, 7)).astype(str), columns=[c.name for c in cols])
    df2 = pd.DataFrame(rng.integers(0, 2, (200, 7)).astype(str), columns=df.columns)
    a = evaluate_fidelity(spec, df, df2, max_triples=10, utility=False)["tvd"]["3way"]
    b = evaluate_fidelity(spec, df, df2, max_triples=10, utility=False)["tvd"]["3way"]
    assert a == b and a["n"] == 10 and a["sampled"] is True  # C(7,3) = 35 > 10


def test_describe_shares_sum_to_one_and_numeric_moments():
    spec = TableSpec(name="d", columns=(
        Column(name="w", kind="numeric", bounds=(0, 10), bins=2, nullable=True),))
    st = describe(spec, pd.DataFrame({"w": [1.0, 3.0, None, 9.0]}))[0]
    assert math.isclose(sum(st["shares"]), 1.0)
    assert st["missing"] == pytest.approx(0.25)
    assert st["mean"] == pytest.approx(13 / 3)


def test_subgroups_and_utility_on_a_learnable_target():
    rng = np.random.default_rng(1)
    n = 600
    sex = rng.choice(["f", "m"], n)
    x = rng.choice(["lo", "hi"], n)
    y = np.where(rng.random(n) < np.where(x == "hi", 0.9, 0.1), "1", "0")
    spec = TableSpec(name="u", target="y", positive="1", columns=(
        Column(name="sex", categories=("f", "m"), nullable=False),
        Column(name="x", categories=("lo", "hi"), nullable=False),
        Column(name="y", categories=("0", "1"), nullable=False, role="target"),
    ))
    real = pd.DataFrame({"sex": sex, "x": x, "y": y})
    shuffled = real.assign(y=rng.permutation(real["y"].to_numpy()))  # association destroyed
    good = ml_utility(spec, real.iloc[:400], real.iloc[:400], real_test=real.iloc[400:])
    bad = ml_utility(spec, real.iloc[:400], shuffled.iloc[:400], real_test=real.iloc[400:])
    assert good["metric"] == "roc_auc" and good["trtr"] > 0.8 and good["tstr"] > 0.8
    assert bad["tstr"] < 0.65
    res = evaluate_fidelity(spec, real, shuffled, utility=False)
    groups = {(g["column"], g["group"]) for g in res["subgroups"]}
    assert ("sex", "f") in groups and ("sex", "m") in groups
    f = next(g for g in res["subgroups"] if g["group"] == "f")
    assert f["real_share"] == pytest.approx(np.mean(sex == "f"))


def test_subgroup_of_a_table_with_only_the_subgroup_column_warns_nothing():
    # a legitimate one-column schema: the sex column is its own subgroup and there is no other
    # column to compare inside a group (formerly numpy's "Mean of empty slice")
    import warnings

    from fhirsynth.evaluate.fidelity import subgroup_fidelity

    spec = TableSpec(name="one", columns=(
        Column(name="sex", categories=("f", "m"), nullable=False),))
    real = pd.DataFrame({"sex": ["f"] * 30 + ["m"] * 30})
    synth = pd.DataFrame({"sex": ["f"] * 25 + ["m"] * 35})
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        groups = subgroup_fidelity(spec, real, synth, discretise(spec, real),
                                   discretise(spec, synth))
    assert {g["group"] for g in groups} == {"f", "m"}
    assert all("mean_tvd" not in g for g in groups)
    assert next(g for g in groups if g["group"] == "m")["synth_share"] == pytest.approx(35 / 60)
