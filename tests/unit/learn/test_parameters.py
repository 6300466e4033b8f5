"""Noisy tables: budget split, projection, conditionals, fall-back to the marginal."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fhirsynth.learn.parameters import (
    conditional_from_counts,
    noisy_joint,
    project_counts,
    split_budget,
)
from fhirsynth.privacy.budget import Accountant, PrivacyBudget


@pytest.mark.parametrize("cells", [[4], [2, 3, 50], [100] * 52, [2, 700, 9, 1]])
def test_split_budget_adds_up_exactly(cells: list[int]) -> None:
    parts = split_budget(0.7, cells)
    assert math.fsum(parts) == pytest.approx(0.7, abs=1e-15)
    assert all(p > 0 for p in parts)
    # more cells, more budget (sqrt rule)
    order = np.argsort(cells, kind="stable")
    assert np.all(np.diff(np.asarray(parts)[order]) >= -1e-15)


def test_project_counts_keeps_total_and_is_non_negative() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        v = rng.normal(3, 5, int(rng.integers(1, 30)))
        p = project_counts(v)
        assert np.all(p >= 0)
        if v.sum() > 0:
            assert p.sum() == pytest.approx(v.sum())
        else:
            assert not p.any()
    v = np.array([5.0, 2.0, 1.0])
    assert np.allclose(project_counts(v), v)  # already valid: unchanged


def test_conditional_columns_sum_to_one_and_empty_configs_fall_back() -> None:
    counts = np.array([[10.0, 0.0, 3.0], [30.0, 0.0, 1.0]])
    cond = conditional_from_counts(counts, None)
    assert np.allclose(cond.sum(axis=0), 1.0)
    assert np.allclose(cond[:, 0], [0.25, 0.75])
    assert np.allclose(cond[:, 1], [13 / 44, 31 / 44])  # the child's marginal
    noisy = counts + np.random.default_rng(1).laplace(0, 5, counts.shape)
    cond = conditional_from_counts(noisy, 0.2)
    assert np.all(cond >= 0) and np.allclose(cond.sum(axis=0), 1.0)


def test_noisy_joint_records_one_step_with_sensitivity_one() -> None:
    acc = Accountant(PrivacyBudget(epsilon=1.0))
    child = np.array([0, 1, 1, 2])
    out = noisy_joint(child, 3, np.zeros(4, np.int64), 1, epsilon=0.25, accountant=acc,
                      name="table x", random_state=np.random.RandomState(0))
    assert out.shape == (3, 1)
    assert not np.allclose(out[:, 0], [1, 2, 1])  # noise was added
    (step,) = acc.steps
    assert (step.name, step.epsilon, step.sensitivity) == ("table x", 0.25, 1.0)


def test_noisy_joint_refuses_to_pass_the_budget_before_drawing() -> None:
    from fhirsynth.errors import PrivacyBudgetError

    acc = Accountant(PrivacyBudget(epsilon=0.1))
    with pytest.raises(PrivacyBudgetError, match="table y"):
        noisy_joint(np.array([0, 1]), 2, np.zeros(2, np.int64), 1, epsilon=0.2,
                    accountant=acc, name="table y", random_state=None)
    assert acc.steps == []


def test_ipf_meets_the_target_marginal_and_keeps_zeros() -> None:
    from fhirsynth.learn.marginals import _ipf

    rng = np.random.default_rng(4)
    cond = rng.dirichlet(np.ones(4), size=3).T
    cond[0, 1] = 0.0
    cond[:, 1] /= cond[:, 1].sum()
    weights = np.array([0.5, 0.3, 0.2])
    target = np.array([0.1, 0.2, 0.3, 0.4])
    out = _ipf(cond, weights, target)
    assert np.allclose(out.sum(axis=0), 1.0)
    assert np.allclose(out @ weights, target, atol=1e-6)
    assert out[0, 1] == 0.0


def test_combine_marginal_weights_by_inverse_variance() -> None:
    from fhirsynth.learn.marginals import combine_marginal

    direct = np.array([10.0, 30.0])
    table = np.array([[20.0, 20.0], [10.0, 10.0]])  # row sums 40, 20
    assert np.allclose(combine_marginal(direct, None, table, None), [0.25, 0.75])
    # equal per-cell variance: direct eps^2 = 1, table eps^2 / 2 configs = 1
    assert np.allclose(combine_marginal(direct, 1.0, table, math.sqrt(2.0)),
                       [25 / 50, 25 / 50])
