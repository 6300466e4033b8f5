"""TEMPORARY metric code for the benchmark, used only until ``fhirsynth.evaluate`` lands.

Owns: marginal TVD (1-, 2- and a fixed sample of 3-way, on the shared <= 16-bin public
discretisation), the mean absolute difference of pairwise Cramér's V, TSTR/TRTR AUC, and
the exact-match rate and DCR ratio.  ``benchmarks/metrics.py`` picks fhirsynth.evaluate
when it exists; this module is deleted once the runner uses the project's implementation.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

from benchmarks.data import discretise, metric_edges
from fhirsynth.domain import TableSpec

N_TRIPLES = 64
DCR_ROWS = 1000
DCR_REFERENCE = 5000


def _joint(codes: np.ndarray, cards: list[int]) -> np.ndarray:
    flat = np.ravel_multi_index(codes.T, cards)
    p = np.bincount(flat, minlength=int(np.prod(cards))).astype(float)
    return p / max(p.sum(), 1.0)


def marginal_tvd(real: pd.DataFrame, syn: pd.DataFrame, spec: TableSpec,
                 seed: int = 0) -> dict[str, float]:
    """Mean and worst TVD over all 1- and 2-way and N_TRIPLES fixed 3-way marginals."""
    r, s = discretise(real, spec), discretise(syn, spec)
    cards = [int(max(r[c].max(), s[c].max())) + 1 for c in r.columns]
    rc, sc = r.to_numpy(np.int64), s.to_numpy(np.int64)
    d = rc.shape[1]
    out: dict[str, float] = {}
    triples = list(itertools.combinations(range(d), 3))
    pick = np.random.default_rng(seed).choice(len(triples), min(N_TRIPLES, len(triples)),
                                              replace=False)
    for k, sets in ((1, [(j,) for j in range(d)]),
                    (2, list(itertools.combinations(range(d), 2))),
                    (3, [triples[i] for i in sorted(pick)])):
        tv = [0.5 * np.abs(_joint(rc[:, list(a)], [cards[j] for j in a])
                           - _joint(sc[:, list(a)], [cards[j] for j in a])).sum() for a in sets]
        out[f"tvd{k}_mean"], out[f"tvd{k}_max"] = float(np.mean(tv)), float(np.max(tv))
    return out


def _cramers_v(x: np.ndarray, y: np.ndarray) -> float:
    _, xi = np.unique(x, return_inverse=True)
    _, yi = np.unique(y, return_inverse=True)
    tab = np.bincount(xi * (yi.max() + 1) + yi, minlength=(xi.max() + 1) * (yi.max() + 1))
    tab = tab.reshape(xi.max() + 1, yi.max() + 1).astype(float)
    n = tab.sum()
    if n == 0 or min(tab.shape) < 2:
        return 0.0
    exp = tab.sum(1, keepdims=True) @ tab.sum(0, keepdims=True) / n
    chi2 = np.nansum((tab - exp) ** 2 / np.where(exp > 0, exp, np.nan))
    return float(np.sqrt(chi2 / n / (min(tab.shape) - 1)))


def cramers_v_error(real: pd.DataFrame, syn: pd.DataFrame, spec: TableSpec) -> float:
    """Mean |V_real - V_syn| over all column pairs (same discretisation as the TVD)."""
    r, s = discretise(real, spec), discretise(syn, spec)
    errs = [abs(_cramers_v(r[a].to_numpy(), r[b].to_numpy())
                - _cramers_v(s[a].to_numpy(), s[b].to_numpy()))
            for a, b in itertools.combinations(r.columns, 2)]
    return float(np.mean(errs))


def _features(df: pd.DataFrame, spec: TableSpec) -> tuple[np.ndarray, np.ndarray, list[bool]]:
    cols = [c for c in spec.modelled if c.name != spec.target]
    disc = discretise(df, spec)
    x = np.column_stack([
        pd.to_numeric(df[c.name], errors="coerce").to_numpy(float) if c.kind == "numeric"
        else disc[c.name].to_numpy(float) for c in cols])
    y = (df[spec.target].astype(str).to_numpy() == str(spec.positive)).astype(int)
    return x, y, [c.kind != "numeric" for c in cols]


def tstr_auc(train: pd.DataFrame, holdout: pd.DataFrame, spec: TableSpec,
             seed: int = 0) -> float:
    """AUC on the real holdout of a gradient-boosted classifier trained on ``train``."""
    x, y, cat = _features(train, spec)
    xh, yh, _ = _features(holdout, spec)
    if len(np.unique(y)) < 2:
        return 0.5
    clf = HistGradientBoostingClassifier(max_iter=50, categorical_features=np.array(cat),
                                         random_state=seed)
    with threadpool_limits(1):  # OpenMP on a shared 2-core box thrashes; one thread is faster
        clf.fit(x, y)
        return float(roc_auc_score(yh, clf.predict_proba(xh)[:, 1]))


def _embed(df: pd.DataFrame, spec: TableSpec) -> np.ndarray:
    """Rows as vectors whose L1 distance is a Gower-like distance (numeric diff over the
    public range, 1 per categorical mismatch, missing as a state of its own)."""
    parts = []
    for c in spec.modelled:
        if c.kind == "numeric":
            assert c.bounds is not None
            lo, hi = c.bounds
            v = (pd.to_numeric(df[c.name], errors="coerce").to_numpy(float) - lo) / (hi - lo)
            parts.append(np.nan_to_num(v, nan=-1.0)[:, None])
        else:
            codes = discretise(df[[c.name]], _one(spec, c.name))[c.name].to_numpy()
            parts.append(0.5 * np.eye(len(c.categories) + 2)[codes])
    return np.hstack(parts)


def _one(spec: TableSpec, name: str) -> TableSpec:
    return TableSpec(name=spec.name, columns=(spec[name],))


def _nearest_l1(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    nn = NearestNeighbors(n_neighbors=1, metric="manhattan", algorithm="brute").fit(b)
    return nn.kneighbors(a)[0][:, 0]


def privacy_proxies(train: pd.DataFrame, holdout: pd.DataFrame, syn: pd.DataFrame,
                    spec: TableSpec, seed: int = 0) -> dict[str, float]:
    """Exact-match rate (synthetic rows equal to a training row, raw values) and DCR ratio
    (median distance of synthetic rows to their nearest training row over the same for the
    real holdout; below 1 means closer to the training rows than fresh real rows are)."""
    names = [c.name for c in spec.modelled]
    key = lambda df: pd.util.hash_pandas_object(  # noqa: E731
        df[names].astype(str), index=False).to_numpy()
    exact = float(np.isin(key(syn), key(train)).mean())
    rng = np.random.default_rng(seed)
    tr = _embed(train.iloc[rng.permutation(len(train))[:DCR_REFERENCE]], spec)
    take = lambda df: df.iloc[rng.permutation(len(df))[:DCR_ROWS]]  # noqa: E731
    d_syn = np.median(_nearest_l1(_embed(take(syn), spec), tr))
    d_hold = np.median(_nearest_l1(_embed(take(holdout), spec), tr))
    return {"exact_match": exact, "dcr_ratio": float(d_syn / d_hold) if d_hold > 0 else
            float("nan"), "dcr_syn_median": float(d_syn), "dcr_holdout_median": float(d_hold)}


def evaluate(train: pd.DataFrame, holdout: pd.DataFrame, syn: pd.DataFrame,
             spec: TableSpec, seed: int = 0) -> dict[str, float]:
    """Every benchmark metric of one synthetic table against the real train/holdout."""
    out = marginal_tvd(train, syn, spec, seed=0)
    out["cramers_v_err"] = cramers_v_error(train, syn, spec)
    out["tstr_auc"] = tstr_auc(syn, holdout, spec, seed)
    out.update(privacy_proxies(train, holdout, syn, spec, seed))
    return out


__all__ = ["cramers_v_error", "evaluate", "marginal_tvd", "metric_edges", "privacy_proxies",
           "tstr_auc"]
