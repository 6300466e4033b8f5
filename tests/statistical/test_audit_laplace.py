"""The audit harness against a real Laplace histogram and three deliberately broken variants.

The correct mechanism is a joint histogram over the PUBLIC domain of three columns with
diffprivlib Laplace noise (sensitivity 1 under add/remove one patient): its empirical lower
bound must stay at or below the claimed epsilon.  The broken variants (noise off, epsilon
scaled up 100x, a category list read off the data) must be flagged.  They live here only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from diffprivlib.mechanisms import Laplace

from fhirsynth.domain import Column, TableSpec
from fhirsynth.encode import encode
from fhirsynth.evaluate.audit import neighbouring_cohorts, rare_record, run_audit

TRIALS = 1000  # per side; half chooses the threshold, half measures the rates

SPEC = TableSpec(
    name="audit-toy",
    columns=(
        Column(name="sex", categories=("female", "male"), nullable=False),
        Column(name="smoker", categories=("never", "former", "current"), nullable=False),
        Column(name="dx", categories=("none", "t2d", "copd", "ckd", "sickle"), nullable=False),
    ),
)


def _cohort() -> pd.DataFrame:
    rng = np.random.default_rng(20261204)
    n = 40
    return pd.DataFrame({
        "sex": rng.choice(["female", "male"], n),
        "smoker": rng.choice(["never", "former", "current"], n, p=[0.6, 0.3, 0.1]),
        "dx": rng.choice(["none", "t2d", "copd", "ckd"], n, p=[0.5, 0.3, 0.1, 0.1]),
    })


def _cell(spec: TableSpec, codes: np.ndarray) -> np.ndarray:
    cards = [c.n_states for c in spec.modelled]
    return np.ravel_multi_index(tuple(codes.T), cards)


_COUNTS: dict[int, tuple[pd.DataFrame, np.ndarray]] = {}


def _true_counts(df: pd.DataFrame) -> np.ndarray:
    """Exact joint counts over the public domain (memoised per cohort object: the audit
    passes the same two cohorts thousands of times, and encoding dominates the run time)."""
    hit = _COUNTS.get(id(df))
    if hit is None or hit[0] is not df:
        size = int(np.prod([c.n_states for c in SPEC.modelled]))
        hit = (df, np.bincount(_cell(SPEC, encode(SPEC, df).codes), minlength=size))
        _COUNTS[id(df)] = hit
    return hit[1]


def laplace_histogram(epsilon: float) -> Callable[[pd.DataFrame, int], np.ndarray]:
    """Correct: noisy joint histogram over the public domain, Laplace(1/epsilon) per cell."""
    def release(df: pd.DataFrame, seed: int) -> np.ndarray:
        counts = _true_counts(df)
        mech = Laplace(epsilon=epsilon, sensitivity=1.0, random_state=np.random.RandomState(seed))
        return np.array([mech.randomise(float(c)) for c in counts])

    return release


def noise_off(df: pd.DataFrame, seed: int) -> np.ndarray:
    """Broken: the true counts."""
    return _true_counts(df).astype(float)


def domain_from_data(epsilon: float) -> Callable[[pd.DataFrame, int], tuple]:
    """Broken: the dx category list is read off the data, then the histogram is noised."""

    def release(df: pd.DataFrame, seed: int) -> tuple:
        observed = tuple(sorted(df["dx"].astype(str).unique()))
        cols = [c if c.name != "dx" else Column(name="dx", categories=observed, nullable=False)
                for c in SPEC.columns]
        spec = TableSpec(name="leaky", columns=tuple(cols))
        size = int(np.prod([c.n_states for c in spec.modelled]))
        counts = np.bincount(_cell(spec, encode(spec, df).codes), minlength=size)
        mech = Laplace(epsilon=epsilon, sensitivity=1.0, random_state=np.random.RandomState(seed))
        return observed, np.array([mech.randomise(float(c)) for c in counts])

    return release


@pytest.fixture(scope="module")
def setting() -> tuple[pd.DataFrame, pd.DataFrame, int, str]:
    d0 = _cohort()
    record = rare_record(SPEC, d0)
    d, d_prime = neighbouring_cohorts(SPEC, d0, record)
    cell = int(_cell(SPEC, np.array([[record[c.name] for c in SPEC.modelled]]))[0])
    label = SPEC["dx"].categories[record["dx"]]
    return d, d_prime, cell, label


def test_planted_patient_is_a_rare_combination(setting) -> None:
    d, d_prime, cell, label = setting
    assert len(d_prime) == len(d) + 1
    assert label == "sickle"  # declared but absent from D: the rarest state
    assert not (_cell(SPEC, encode(SPEC, d).codes) == cell).any()
    assert (_cell(SPEC, encode(SPEC, d_prime).codes) == cell).sum() == 1


@pytest.mark.parametrize("epsilon", [0.5, 1.0, 4.0])
def test_correct_laplace_histogram_is_not_flagged(setting, epsilon: float) -> None:
    d, d_prime, cell, _ = setting
    res = run_audit(laplace_histogram(epsilon), lambda out: out[cell], d, d_prime,
                    trials=TRIALS, claimed_epsilon=epsilon, seed=1)
    assert not res.flagged
    assert res.epsilon_lower <= epsilon
    assert res.interval_low <= res.epsilon_lower <= res.epsilon_point <= res.interval_high


def test_audit_has_power_on_a_correct_mechanism(setting) -> None:
    # Laplace(1/4) on a 0-vs-1 count: at threshold 1/2 both error rates are exp(-2)/2 ~ 0.068,
    # i.e. eps_point ~ 2.6; with 500 evaluation runs the 95% bound is well above 1.5.
    d, d_prime, cell, _ = setting
    res = run_audit(laplace_histogram(4.0), lambda out: out[cell], d, d_prime,
                    trials=TRIALS, claimed_epsilon=4.0, seed=2)
    assert res.epsilon_lower > 1.5


@pytest.mark.parametrize("claimed", [0.5, 1.0])
def test_noise_off_is_flagged(setting, claimed: float) -> None:
    d, d_prime, cell, _ = setting
    res = run_audit(noise_off, lambda out: out[cell], d, d_prime,
                    trials=TRIALS, claimed_epsilon=claimed, seed=3)
    assert res.flagged
    # perfect separation on 500 runs per side: log((1 - u) / u), u = 1 - 0.025 ** (1 / 500)
    assert res.fpr == 0 and res.fnr == 0
    assert res.epsilon_lower > 4.5


def test_epsilon_scaled_up_is_flagged(setting) -> None:
    d, d_prime, cell, _ = setting
    res = run_audit(laplace_histogram(100 * 0.5), lambda out: out[cell], d, d_prime,
                    trials=TRIALS, claimed_epsilon=0.5, seed=4)
    assert res.flagged
    assert res.epsilon_lower > 3.0


def test_domain_from_data_is_flagged(setting) -> None:
    d, d_prime, _, label = setting
    res = run_audit(domain_from_data(1.0), lambda out: float(label in out[0]), d, d_prime,
                    trials=TRIALS, claimed_epsilon=1.0, seed=5)
    assert res.flagged
    assert res.epsilon_lower > 4.5


def test_fixed_a_priori_threshold_uses_all_runs(setting) -> None:
    d, d_prime, cell, _ = setting
    res = run_audit(laplace_histogram(1.0), lambda out: out[cell], d, d_prime,
                    trials=400, claimed_epsilon=1.0, threshold=(0.5, 1), seed=6)
    assert res.n_eval == 400 and res.threshold == 0.5
    # both rates are exp(-1/2)/2 ~ 0.30 for Laplace(1) around 0 and 1
    assert abs(res.fpr - 0.303) < 0.08 and abs(res.fnr - 0.303) < 0.08
    assert not res.flagged
