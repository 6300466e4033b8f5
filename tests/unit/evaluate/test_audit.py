"""The statistics of the audit (Clopper-Pearson, epsilon from rates) and its helpers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fhirsynth.domain import Column, TableSpec
from fhirsynth.encode import encode
from fhirsynth.errors import ConfigError
from fhirsynth.evaluate.audit import (
    audit_scores,
    count_matches,
    epsilon_from_rates,
    epsilon_lower_bound,
    neighbouring_cohorts,
    rare_record,
    rate_bounds,
    record_log_probability,
)

SPEC = TableSpec(
    name="t",
    columns=(
        Column(name="sex", categories=("female", "male"), nullable=False),
        Column(name="dx", categories=("none", "t2d", "rare")),
        Column(name="age", kind="numeric", bounds=(0, 100), bins=5, nullable=False),
    ),
)


def test_rate_bounds_closed_forms() -> None:
    lo, hi = rate_bounds(0, 500, 0.975)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 500))
    lo, hi = rate_bounds(500, 500, 0.975)
    assert hi == 1.0 and lo == pytest.approx(0.025 ** (1 / 500))
    lo, hi = rate_bounds(50, 500, 0.975)
    assert lo < 0.1 < hi and hi - lo < 0.06


def test_rate_bounds_cover_the_true_rate() -> None:
    rng = np.random.default_rng(0)
    k = rng.binomial(200, 0.1, size=4000)
    lo, hi = rate_bounds(k, 200, 0.95)
    assert np.mean(hi >= 0.1) >= 0.95 and np.mean(lo <= 0.1) >= 0.95


def test_epsilon_from_rates() -> None:
    assert epsilon_from_rates(0.5, 0.5) == 0.0
    assert epsilon_from_rates(0.3, 0.9) == 0.0  # a test worse than chance shows nothing
    f = math.exp(-1) * 0.6
    assert epsilon_from_rates(f, 0.4) == pytest.approx(1.0)
    assert epsilon_from_rates(0.4, f) == pytest.approx(1.0)
    assert epsilon_from_rates(f, 0.4 - 0.01, delta=0.01) == pytest.approx(1.0)
    assert np.isinf(epsilon_from_rates(0.0, 0.0))


def test_lower_bound_of_perfect_separation() -> None:
    u = 1 - 0.025 ** (1 / 500)
    assert epsilon_lower_bound(0, 500, 0, 500) == pytest.approx(math.log((1 - u) / u))
    assert epsilon_lower_bound(0, 500, 0, 500, delta=0.1) < math.log((1 - u) / u)


def test_audit_scores_separated_and_identical() -> None:
    rng = np.random.default_rng(1)
    sep = audit_scores(rng.normal(0, 1, 1000), rng.normal(20, 1, 1000), claimed_epsilon=1.0)
    assert sep.flagged and sep.fpr == 0 and sep.fnr == 0 and sep.n_eval == 500
    same = audit_scores(rng.normal(0, 1, 1000), rng.normal(0, 1, 1000), claimed_epsilon=0.1)
    assert not same.flagged and same.epsilon_lower < 0.1
    # direction is chosen too: D' scoring lower is as telling as scoring higher
    low = audit_scores(rng.normal(20, 1, 1000), rng.normal(0, 1, 1000), claimed_epsilon=1.0)
    assert low.flagged and low.direction == -1


def test_audit_scores_rejects_bad_input() -> None:
    with pytest.raises(ConfigError):
        audit_scores([1.0], [2.0, 3.0], claimed_epsilon=1.0)
    with pytest.raises(ConfigError):
        audit_scores([1.0, np.nan], [2.0, 3.0], claimed_epsilon=1.0)
    with pytest.raises(ConfigError):
        audit_scores([1.0, 2.0], [2.0, 3.0], claimed_epsilon=1.0, threshold=(0.0, 0))


def _table() -> pd.DataFrame:
    return pd.DataFrame({
        "sex": ["female", "male", "female", "female"],
        "dx": ["none", "t2d", None, "none"],
        "age": [30.0, 45.0, 50.0, 62.0],
    })


def test_rare_record_and_neighbours() -> None:
    t = _table()
    rec = rare_record(SPEC, t)
    assert rec == {"sex": 1, "dx": 2, "age": 4}  # male; 'rare' (never <missing>); [80, 100]
    d, d_prime = neighbouring_cohorts(SPEC, t, rec)
    assert len(d) == 4 and len(d_prime) == 5
    assert encode(SPEC, d_prime).codes[-1].tolist() == [1, 2, 4]
    assert count_matches(SPEC, d_prime, rec) == 1 and count_matches(SPEC, d, rec) == 0
    assert rare_record(SPEC, t, fixed={"sex": 0})["sex"] == 0


def test_record_log_probability_matches_the_cpds() -> None:
    from pgmpy.factors.discrete import TabularCPD
    from pgmpy.models import DiscreteBayesianNetwork

    net = DiscreteBayesianNetwork([("a", "b")])
    net.add_cpds(
        TabularCPD("a", 2, [[0.3], [0.7]], state_names={"a": ["x", "y"]}),
        TabularCPD("b", 2, [[0.9, 0.2], [0.1, 0.8]], evidence=["a"], evidence_card=[2],
                   state_names={"b": ["u", "v"], "a": ["x", "y"]}),
    )
    assert record_log_probability(net, {"a": "y", "b": "u"}) == pytest.approx(math.log(0.7 * 0.2))
    assert record_log_probability(net, {"a": 0, "b": 1}) == pytest.approx(math.log(0.3 * 0.1))


def test_record_probabilities_through_fitted_nodes_and_coarsening() -> None:
    from dataclasses import dataclass

    from fhirsynth.evaluate.audit import record_probabilities

    @dataclass
    class FakeNode:
        name: str
        states: list
        parents: tuple
        cpd: np.ndarray
        mapping: np.ndarray | None = None

    @dataclass
    class FakeModel:
        nodes: list

    age = FakeNode("age", ["0", "1", "2", "3"], (), np.array([[0.1], [0.2], [0.3], [0.4]]))
    group = FakeNode("age~g", ["lo", "hi"], ("age",), np.zeros((2, 4)), np.array([0, 0, 1, 1]))
    dx = FakeNode("dx", ["a", "b"], ("age~g",), np.array([[0.9, 0.25], [0.1, 0.75]]))
    model = FakeModel([age, group, dx])
    assert record_probabilities(model, {"age": 3, "dx": "b"}).tolist() == [0.4, 0.75]
    assert record_log_probability(model, {"age": 1, "dx": 1}) == pytest.approx(math.log(0.02))
    dx.cpd[1, 0] = 0.0
    assert record_log_probability(model, {"age": 0, "dx": "b"}) == -math.inf


def test_run_audit_seeds_progress_and_fixed_rule() -> None:
    from fhirsynth.evaluate.audit import run_audit

    seen: list[tuple[int, int]] = []
    calls: list[int] = []

    def release(df: pd.DataFrame, seed: int) -> float:
        calls.append(seed)
        return float(len(df)) + np.random.default_rng(seed).normal(0, 0.1)

    d, d_prime = _table(), pd.concat([_table(), _table().iloc[:1]], ignore_index=True)
    res = run_audit(release, float, d, d_prime, trials=40, claimed_epsilon=1.0, seed=9,
                    threshold=(4.5, 1), progress=lambda a, b: seen.append((a, b)))
    assert seen[-1] == (80, 80) and len(set(calls)) == 80
    assert res.fpr == 0 and res.fnr == 0 and res.n_eval == 40 and res.flagged
    again = run_audit(release, float, d, d_prime, trials=40, claimed_epsilon=1.0, seed=9,
                      threshold=(4.5, 1))
    assert again.epsilon_lower == res.epsilon_lower and calls[:80] == calls[80:]
    with pytest.raises(ConfigError):
        run_audit(release, float, d, d_prime, trials=1, claimed_epsilon=1.0)


def test_read_table_and_write_result(tmp_path) -> None:
    import json

    from fhirsynth.errors import InputError
    from fhirsynth.evaluate.audit_pipeline import read_table, write_result

    with pytest.raises(InputError, match="not found"):
        read_table(tmp_path / "absent.csv")
    (tmp_path / "t.csv").write_text("a,b\n1,\n")
    assert read_table(tmp_path / "t.csv")["b"].tolist() == [""]
    res = audit_scores([0.0, 1.0, 0.0, 1.0], [5.0, 6.0, 5.0, 6.0], claimed_epsilon=1.0)
    write_result(res, tmp_path / "r.json")
    out = json.loads((tmp_path / "r.json").read_text())
    assert out["epsilon_lower"] == res.epsilon_lower and out["flagged"] == res.flagged
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    same = audit_scores([0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], claimed_epsilon=1.0)
    write_result(same, tmp_path / "s.json")
    assert "Infinity" not in (tmp_path / "s.json").read_text()
