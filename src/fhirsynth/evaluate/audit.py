"""Empirical privacy audit: a lower bound on epsilon that a broken release cannot pass.

The harness runs a release mechanism many times on two neighbouring cohorts, D and
D' = D plus one planted patient, scores each output with a distinguishing test, picks a
threshold on one half of the runs and measures false-positive and false-negative rates on the
other half.  Clopper-Pearson upper bounds of those rates turn into a lower bound on the
epsilon the release really has (:func:`epsilon_lower_bound`).  A correct (epsilon, delta)-DP
release keeps the bound below its claim with the stated confidence; a leak pushes it above.
Internal validation only: the audit reads the private data freely and is never shared as is.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from fhirsynth.domain import TableSpec
from fhirsynth.encode import decode, encode
from fhirsynth.errors import ConfigError

__all__ = [
    "AuditResult",
    "Release",
    "Score",
    "audit_scores",
    "count_matches",
    "epsilon_from_rates",
    "epsilon_lower_bound",
    "neighbouring_cohorts",
    "rare_record",
    "rate_bounds",
    "record_log_probability",
    "record_probabilities",
    "run_audit",
]

logger = logging.getLogger(__name__)

#: ``release(df, seed) -> output``: one full run of the mechanism under audit
Release = Callable[[pd.DataFrame, int], Any]
#: ``score(output) -> float``: larger means "the planted patient was in the input"
Score = Callable[[Any], float]


# ------------------------------------------------------------------ statistics
def rate_bounds(k: Any, n: int, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """One-sided Clopper-Pearson bounds of a binomial rate.

    Parameters
    ----------
    k : int or array of int
        Observed counts (errors) out of ``n`` trials.
    n : int
        Number of trials, > 0.
    confidence : float
        Coverage of *each* one-sided bound, in (0, 1).

    Returns
    -------
    (lower, upper) : arrays
        ``P(rate >= lower) >= confidence`` and ``P(rate <= upper) >= confidence``.
    """
    k = np.asarray(k, dtype=float)
    if n <= 0:
        raise ConfigError(f"number of trials ({n}) must be positive")
    alpha = 1.0 - confidence
    with np.errstate(invalid="ignore"):
        upper = np.where(k >= n, 1.0, stats.beta.ppf(confidence, k + 1, n - k))
        lower = np.where(k <= 0, 0.0, stats.beta.ppf(alpha, k, n - k + 1))
    return np.asarray(lower, float), np.asarray(upper, float)


def epsilon_from_rates(fpr: Any, fnr: Any, delta: float = 0.0) -> np.ndarray:
    """The epsilon an (epsilon, delta)-DP mechanism needs to allow a test with these rates.

    Any test of D against D' under (epsilon, delta)-DP has ``FPR + e^eps FNR >= 1 - delta``
    and ``FNR + e^eps FPR >= 1 - delta`` (Kairouz et al. 2015), so
    ``eps >= max(log((1 - delta - FNR) / FPR), log((1 - delta - FPR) / FNR), 0)``.
    """
    fpr = np.asarray(fpr, dtype=float)
    fnr = np.asarray(fnr, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.log(np.maximum(1.0 - delta - fnr, 0.0) / fpr)
        b = np.log(np.maximum(1.0 - delta - fpr, 0.0) / fnr)
    a = np.where(np.isnan(a), -np.inf, a)
    b = np.where(np.isnan(b), -np.inf, b)
    return np.maximum(np.maximum(a, b), 0.0)


def epsilon_lower_bound(
    fp: Any, n_neg: int, fn: Any, n_pos: int, *, delta: float = 0.0, confidence: float = 0.95
) -> np.ndarray:
    """A lower confidence bound on epsilon from observed error counts.

    Both rates are replaced by Clopper-Pearson upper bounds at ``1 - (1 - confidence) / 2``
    each, so that by a union bound the result holds with probability ``>= confidence``.
    """
    per_rate = 1.0 - (1.0 - confidence) / 2.0
    _, fpr_hi = rate_bounds(fp, n_neg, per_rate)
    _, fnr_hi = rate_bounds(fn, n_pos, per_rate)
    return epsilon_from_rates(fpr_hi, fnr_hi, delta)


# --------------------------------------------------------------------- result
@dataclass(frozen=True, kw_only=True)
class AuditResult:
    """Outcome of one audit; ``epsilon_lower`` is the number to compare with the claim.

    ``epsilon_lower`` is a one-sided lower confidence bound at level ``confidence`` on the
    epsilon of the release (Clopper-Pearson upper bounds of both error rates, union bound).
    ``interval_low`` .. ``interval_high`` is a two-sided ``confidence`` interval for the
    epsilon the chosen test demonstrates (both rates bounded on both sides, union bound over
    the four bounds), and ``epsilon_point`` uses the observed rates.  ``fpr`` / ``fnr`` are
    measured on the evaluation half only.
    """

    claimed_epsilon: float
    delta: float
    trials: int
    n_eval: int
    threshold: float
    direction: int
    fpr: float
    fnr: float
    epsilon_lower: float
    epsilon_point: float
    interval_low: float
    interval_high: float
    confidence: float
    seconds: float

    @property
    def flagged(self) -> bool:
        """Whether the release demonstrably leaks more than it claims."""
        return self.epsilon_lower > self.claimed_epsilon

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["flagged"] = self.flagged
        return d


def _errors(neg: np.ndarray, pos: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False positives (neg > t) and false negatives (pos <= t) for each threshold."""
    neg_s, pos_s = np.sort(neg), np.sort(pos)
    fp = len(neg_s) - np.searchsorted(neg_s, t, side="right")
    fn = np.searchsorted(pos_s, t, side="right")
    return fp, fn


def _choose_threshold(
    neg: np.ndarray, pos: np.ndarray, delta: float, confidence: float
) -> tuple[float, int]:
    """Threshold and direction that maximise the lower bound on the selection half."""
    best = (-1.0, 0.0, 1)
    for direction in (1, -1):
        n_, p_ = direction * neg, direction * pos
        cands = np.unique(np.concatenate([n_, p_, [-np.inf]]))
        fp, fn = _errors(n_, p_, cands)
        lb = epsilon_lower_bound(fp, len(n_), fn, len(p_), delta=delta, confidence=confidence)
        i = int(np.argmax(lb))
        if lb[i] > best[0]:
            best = (float(lb[i]), float(cands[i]), direction)
    return best[1], best[2]


def audit_scores(
    scores_d: Any,
    scores_dprime: Any,
    *,
    claimed_epsilon: float,
    delta: float = 0.0,
    confidence: float = 0.95,
    threshold: tuple[float, int] | None = None,
    seed: int = 0,
    seconds: float = 0.0,
) -> AuditResult:
    """Turn the scores of runs on D (negatives) and D' (positives) into an :class:`AuditResult`.

    Parameters
    ----------
    scores_d, scores_dprime : array-like of float
        One score per run; larger should mean "D'".
    claimed_epsilon, delta : float
        The guarantee under audit.
    confidence : float
        Joint confidence of the bound.
    threshold : (float, int), optional
        A fixed a-priori rule ``direction * score > threshold`` means "D'"; all runs are then
        used for evaluation.  Otherwise the rule is chosen on a random half of the runs
        (the one maximising the bound there) and evaluated on the other half.
    seed : int
        Seed of the random split.
    seconds : float
        Wall time of the runs, carried into the result.
    """
    neg = np.asarray(scores_d, dtype=float)
    pos = np.asarray(scores_dprime, dtype=float)
    if neg.ndim != 1 or pos.ndim != 1 or min(len(neg), len(pos)) < 2:
        raise ConfigError("an audit needs at least two scores on each side")
    if np.isnan(neg).any() or np.isnan(pos).any():
        raise ConfigError("a distinguishing score returned NaN")
    if threshold is None:
        rng = np.random.default_rng(seed)
        neg, pos = rng.permutation(neg), rng.permutation(pos)
        hn, hp = len(neg) // 2, len(pos) // 2
        t, direction = _choose_threshold(neg[:hn], pos[:hp], delta, confidence)
        neg, pos = neg[hn:], pos[hp:]
    else:
        t, direction = float(threshold[0]), int(threshold[1])
        if direction not in (1, -1):
            raise ConfigError(f"threshold direction ({direction}) must be 1 or -1")
    fp, fn = _errors(direction * neg, direction * pos, np.array([t]))
    n_neg, n_pos = len(neg), len(pos)
    one_sided = 1.0 - (1.0 - confidence) / 2.0  # two rates
    two_sided = 1.0 - (1.0 - confidence) / 4.0  # two rates, both ends
    _, fpr_hi = rate_bounds(fp, n_neg, one_sided)
    _, fnr_hi = rate_bounds(fn, n_pos, one_sided)
    fpr_lo2, fpr_hi2 = rate_bounds(fp, n_neg, two_sided)
    fnr_lo2, fnr_hi2 = rate_bounds(fn, n_pos, two_sided)
    result = AuditResult(
        claimed_epsilon=float(claimed_epsilon),
        delta=float(delta),
        trials=int(len(np.asarray(scores_d))),
        n_eval=int(min(n_neg, n_pos)),
        threshold=t,
        direction=direction,
        fpr=float(fp[0] / n_neg),
        fnr=float(fn[0] / n_pos),
        epsilon_lower=float(epsilon_from_rates(fpr_hi, fnr_hi, delta)[0]),
        epsilon_point=float(epsilon_from_rates(fp / n_neg, fn / n_pos, delta)[0]),
        interval_low=float(epsilon_from_rates(fpr_hi2, fnr_hi2, delta)[0]),
        interval_high=float(epsilon_from_rates(fpr_lo2, fnr_lo2, delta)[0]),
        confidence=confidence,
        seconds=seconds,
    )
    logger.info(
        "audit: claimed eps %g, empirical lower bound %.3f (%d runs per side)",
        claimed_epsilon, result.epsilon_lower, result.trials,
    )
    return result


def run_audit(
    release: Release,
    score: Score,
    d: pd.DataFrame,
    d_prime: pd.DataFrame,
    *,
    trials: int,
    claimed_epsilon: float,
    delta: float = 0.0,
    confidence: float = 0.95,
    threshold: tuple[float, int] | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> AuditResult:
    """Run ``release`` ``trials`` times on each cohort and audit the scores.

    Every run gets its own seed from one seeded stream, so an audit is reproducible.
    ``progress(done, total)`` is called after each run when given.
    """
    if trials < 2:
        raise ConfigError(f"trials ({trials}) must be at least 2")
    seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=(2, trials))
    total = 2 * trials
    scores = np.empty((2, trials))
    start = time.perf_counter()
    for i in range(trials):
        for side, table in enumerate((d, d_prime)):
            scores[side, i] = float(score(release(table, int(seeds[side, i]))))
            if progress is not None:
                progress(2 * i + side + 1, total)
    return audit_scores(
        scores[0], scores[1],
        claimed_epsilon=claimed_epsilon, delta=delta, confidence=confidence,
        threshold=threshold, seed=seed + 1, seconds=time.perf_counter() - start,
    )


# ------------------------------------------------------------ planted patient
def rare_record(
    spec: TableSpec, table: pd.DataFrame, *, fixed: Mapping[str, int] | None = None
) -> dict[str, int]:
    """Codes of a patient as distinguishable as possible from ``table``.

    For each modelled column the least frequent state in ``table`` is chosen (ties go to
    the highest code that is not ``<missing>``), so the record is a combination of rare
    states across all columns.  This reads the data: it is an internal audit device only.
    ``fixed`` overrides the code of named columns.
    """
    enc = encode(spec, table)
    out: dict[str, int] = {}
    for j, col in enumerate(spec.modelled):
        counts = np.bincount(enc.codes[:, j], minlength=enc.cards[j]).astype(float)
        if col.nullable and len(counts) > 1:
            counts[-1] = np.inf
        rarest = np.flatnonzero(counts == counts.min())
        out[col.name] = int(rarest[-1])
    for name, code in (fixed or {}).items():
        out[name] = int(code)
    return out


def neighbouring_cohorts(
    spec: TableSpec, table: pd.DataFrame, record: Mapping[str, int], *, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """D (``table`` restricted to the spec's modelled columns) and D' = D + the planted record.

    The planted record is decoded from its codes with the public domain (a value inside its
    bin for numeric columns) and appended as the last row.
    """
    names = [c.name for c in spec.modelled]
    codes = np.array([[record[n] for n in names]], dtype=np.int32)
    planted = decode(spec, names, codes, rng=np.random.default_rng(seed))
    d = table[names].reset_index(drop=True)
    d_prime = pd.concat([d, planted], ignore_index=True)
    return d, d_prime


# ------------------------------------------------------------- distinguishers
def count_matches(spec: TableSpec, synthetic: pd.DataFrame, record: Mapping[str, int]) -> int:
    """How many rows of ``synthetic`` fall in exactly the planted record's cell (codes)."""
    enc = encode(spec, synthetic)
    target = np.array([record[c] for c in enc.columns])
    return int(np.all(enc.codes == target, axis=1).sum())


def record_log_probability(model: Any, record: Mapping[str, Any]) -> float:
    """Log-probability of ``record`` under the model (see :func:`record_probabilities`)."""
    p = record_probabilities(model, record)
    return -math.inf if (p <= 0).any() else float(np.log(p).sum())


def record_probabilities(model: Any, record: Mapping[str, Any]) -> np.ndarray:
    """``P(x_j | parents of x_j)`` of each modelled node at ``record``.

    ``model`` is either a fitted model with ``nodes`` in topological order (each with
    ``name``, ``states``, ``parents``, ``cpd`` of shape ``(states, parent configurations)``
    with the first parent slowest, and a deterministic ``mapping`` for coarsening nodes),
    or a pgmpy network (``get_cpds()`` of ``TabularCPD``).  A record value is looked up in
    the node's state names first and taken as a code otherwise.  Their product is the
    model probability of the record; their sum is a distinguisher that ``-inf`` does not
    saturate.
    """
    if hasattr(model, "nodes") and not hasattr(model, "get_cpds"):
        return _nodes_probabilities(model.nodes, record)
    out = []
    for cpd in model.get_cpds():
        index = []
        for var in cpd.variables:
            names = list((getattr(cpd, "state_names", None) or {}).get(var, ()))
            index.append(_state_index(names, record[var]))
        out.append(float(np.asarray(cpd.values)[tuple(index)]))
    return np.array(out)


def _state_index(names: list[Any], value: Any) -> int:
    return names.index(value) if value in names else int(value)


def _nodes_probabilities(nodes: Any, record: Mapping[str, Any]) -> np.ndarray:
    value: dict[str, int] = {}
    card: dict[str, int] = {}
    out = []
    for node in nodes:
        card[node.name] = len(node.states)
        mapping = getattr(node, "mapping", None)
        if mapping is not None:
            value[node.name] = int(np.asarray(mapping)[value[node.parents[0]]])
            continue
        value[node.name] = _state_index(list(node.states), record[node.name])
        cfg = 0
        for p in node.parents:
            cfg = cfg * card[p] + value[p]
        out.append(float(np.asarray(node.cpd)[value[node.name], cfg]))
    return np.array(out)
