"""Empirical privacy-risk tests of a synthetic table against its training rows and a holdout.

Exact matches, distance to closest record (DCR) synthetic -> train vs synthetic -> holdout, a
distance-based membership-inference attack (members = training rows, non-members = holdout
rows), and an attribute-inference test (nearest synthetic record on the other columns
predicts a sensitive column).  Distances are Gower-like: L1 over numeric values scaled by
their declared range and half-weighted one-hot categories, so one mismatching category
costs 1.  Every comparison uses equal-sized, fixed-seed subsamples of train and holdout,
reported in ``subsample``.  These are tests, not guarantees: DP is the guarantee.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from fhirsynth.domain import Column, TableSpec
from fhirsynth.evaluate.discretise import checked_columns, discretise

__all__ = ["evaluate_privacy", "feature_matrix", "nearest_distances"]


def feature_matrix(cols: Sequence[Column], table: pd.DataFrame) -> np.ndarray:
    """Rows in a space where L1 distance is the mixed-type (Gower-like) distance."""
    parts = []
    spec = TableSpec(name="eval", columns=tuple(cols))
    d = discretise(spec, table, cols)
    for j, col in enumerate(cols):
        if col.kind == "numeric" and col.bounds is not None:
            lo, hi = col.bounds
            x = pd.to_numeric(table[col.name], errors="coerce").to_numpy(
                dtype=float, na_value=np.nan)
            miss = ~np.isfinite(x)
            scaled = (np.clip(np.where(miss, lo, x), lo, hi) - lo) / (hi - lo)
            parts += [scaled[:, None], 0.5 * np.stack([miss, ~miss], axis=1).astype(float)]
        else:
            onehot = np.zeros((d.n_rows, d.cards[j]))
            onehot[np.arange(d.n_rows), d.codes[:, j]] = 0.5
            parts.append(onehot)
    return np.hstack(parts) if parts else np.zeros((len(table), 0))


def nearest_distances(query: np.ndarray, ref: np.ndarray, chunk: int = 512) -> np.ndarray:
    """L1 distance of each query row to its nearest row of ``ref`` (chunked numpy)."""
    from sklearn.metrics import pairwise_distances

    out = np.empty(len(query))
    for s in range(0, len(query), chunk):
        dist = pairwise_distances(query[s:s + chunk], ref, metric="manhattan")
        out[s:s + chunk] = dist.min(axis=1)
    return out


def _row_keys(m: np.ndarray) -> np.ndarray:
    """Hashable key of each row (rounded, so float noise does not hide a copy)."""
    r = np.ascontiguousarray(np.round(m, 9))
    return r.view(np.dtype((np.void, r.dtype.itemsize * r.shape[1]))).ravel()


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    return float(roc_auc_score(y, np.r_[pos, neg]))


def _take(m: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return m if len(m) <= n else m[np.sort(rng.choice(len(m), size=n, replace=False))]


def _attribute_inference(
    cols: list[Column], sensitive: str, members: pd.DataFrame, non_members: pd.DataFrame,
    synth: pd.DataFrame, seed: int,
) -> dict[str, Any]:
    """Attacker knows every other column of a real row and copies the sensitive value of the
    nearest synthetic row.  Accuracy on members vs non-members: a gap is a leak signal."""
    known = [c for c in cols if c.name != sensitive]
    target = [c for c in cols if c.name == sensitive]
    spec = TableSpec(name="eval", columns=tuple(target))
    ys = discretise(spec, synth, target).codes[:, 0]
    xs = feature_matrix(known, synth)
    acc = {}
    for tag, frame in (("members", members), ("non_members", non_members)):
        y = discretise(spec, frame, target).codes[:, 0]
        xq = feature_matrix(known, frame)
        from sklearn.metrics import pairwise_distances_argmin

        nn = pairwise_distances_argmin(xq, xs, metric="manhattan")
        acc[tag] = float(np.mean(ys[nn] == y))
    majority = np.bincount(ys).argmax()
    y_non = discretise(spec, non_members, target).codes[:, 0]
    return {
        "column": sensitive,
        "accuracy_members": acc["members"],
        "accuracy_non_members": acc["non_members"],
        "advantage": acc["members"] - acc["non_members"],
        "baseline_majority": float(np.mean(y_non == majority)),
    }


def evaluate_privacy(
    spec: TableSpec,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    *,
    sensitive: Sequence[str] | None = None,
    max_rows: int = 2_000,
    seed: int = 0,
) -> dict[str, Any]:
    """Privacy-risk tests of ``synthetic`` (JSON-ready; internal report only).

    Parameters
    ----------
    spec : TableSpec
        Public spec; its modelled columns are compared.
    train, holdout : pandas.DataFrame
        Real rows the synthesizer saw, and real rows it did not.
    synthetic : pandas.DataFrame
        Synthetic rows.
    sensitive : sequence of str, optional
        Columns for the attribute-inference test; default ``spec.options["sensitive"]`` or
        else the spec's target.
    max_rows : int
        Size of every fixed-seed subsample (train, holdout and synthetic alike).
    seed : int
        Seed of the subsamples (evaluation only; never part of a release).

    Raises
    ------
    TableInputError
        A table lacks a modelled column of the spec or has no rows (an empty holdout
        included): one error naming each table and what it lacks
        (:func:`~fhirsynth.evaluate.discretise.checked_columns`).
    """
    rng = np.random.default_rng(seed)
    cols = checked_columns(spec, "evaluate_privacy", train=train, holdout=holdout,
                           synthetic=synthetic)
    n = min(max_rows, len(train), len(holdout))
    tr_idx = np.sort(rng.choice(len(train), size=n, replace=False))
    ho_idx = np.sort(rng.choice(len(holdout), size=n, replace=False))
    sy_idx = np.sort(rng.choice(len(synthetic), size=min(max_rows, len(synthetic)), replace=False))
    tr, ho = train.iloc[tr_idx], holdout.iloc[ho_idx]
    sy = synthetic.iloc[sy_idx]
    xt, xh, xs = feature_matrix(cols, tr), feature_matrix(cols, ho), feature_matrix(cols, sy)

    # exact matches over the whole synthetic table, against equal-sized real subsets
    xs_all = feature_matrix(cols, synthetic)
    keys_s = _row_keys(xs_all)
    match_train = float(np.isin(keys_s, _row_keys(xt)).mean()) if len(keys_s) else 0.0
    match_hold = float(np.isin(keys_s, _row_keys(xh)).mean()) if len(keys_s) else 0.0

    d_train, d_hold = nearest_distances(xs, xt), nearest_distances(xs, xh)
    med_t, med_h = float(np.median(d_train)), float(np.median(d_hold))
    closer = float(np.mean(d_train < d_hold) + 0.5 * np.mean(d_train == d_hold))
    # membership inference: members closer to the synthetic data look "in"
    dm, dn = nearest_distances(xt, xs), nearest_distances(xh, xs)
    result: dict[str, Any] = {
        "subsample": {"train": n, "holdout": n, "synthetic": len(sy_idx), "fixed_seed": True},
        "columns": [c.name for c in cols],
        "exact_match": {"train": match_train, "holdout": match_hold},
        "dcr": {
            "median_train": med_t,
            "median_holdout": med_h,
            "ratio": (med_t / med_h) if med_h > 0 else (1.0 if med_t == 0 else None),
            "share_closer_to_train": closer,
            "p05_train": float(np.quantile(d_train, 0.05)),
            "p05_holdout": float(np.quantile(d_hold, 0.05)),
        },
        "membership_inference": {
            "attack": "distance to closest synthetic record",
            "auc": _auc(-dm, -dn),
        },
    }
    names = [c.name for c in cols]
    chosen = list(sensitive) if sensitive is not None else list(
        spec.options.get("sensitive", []) or ([spec.target] if spec.target else []))
    result["attribute_inference"] = [
        _attribute_inference(cols, s, tr, ho, sy, seed) for s in chosen if s in names
    ]
    return result
