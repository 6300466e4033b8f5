"""Fidelity of a synthetic table against a real one: marginals, associations, subgroups.

Both tables are discretised the same way from the public spec (:mod:`.discretise`); the
module computes the total variation distance (TVD) of every 1-way and 2-way marginal and of
a fixed-seed sample of 3-way marginals, pairwise Cramér's V and its mean absolute error,
per-column summaries and subgroup fidelity, and calls :mod:`.utility` for TSTR/TRTR.
Everything returned is JSON-ready.  Results describe the real data: internal report only.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from fhirsynth.domain import MISSING, TableSpec
from fhirsynth.evaluate.discretise import Discretised, checked_columns, discretise, eval_columns

__all__ = [
    "association_matrix",
    "cramers_v",
    "describe",
    "evaluate_fidelity",
    "marginal",
    "subgroup_fidelity",
    "tvd",
    "tvd_summary",
]

#: subgroup kinds and the column names that carry them (matched case-insensitively)
SUBGROUP_PATTERNS = {
    "sex": re.compile(r"^(sex|gender|administrative_?gender)$", re.I),
    "race": re.compile(r"^race$", re.I),
    "ethnicity": re.compile(r"^ethnicity$", re.I),
    "age": re.compile(r"^(age|age_?band|age_?group|age_?years)$", re.I),
}
#: public age bands (upper edges exclusive) for a numeric age column
AGE_BANDS = (0.0, 18.0, 40.0, 65.0, 90.0, math.inf)


def marginal(d: Discretised, idx: Sequence[int]) -> np.ndarray:
    """Normalised joint distribution of the columns ``idx`` (flattened, sums to 1)."""
    cards = [d.cards[i] for i in idx]
    flat = np.ravel_multi_index(tuple(d.codes[:, i] for i in idx), cards) if idx else None
    size = int(np.prod(cards))
    counts = np.bincount(flat, minlength=size).astype(float) if flat is not None else np.ones(1)
    total = counts.sum()
    return counts / total if total else counts


def tvd(real: Discretised, synth: Discretised, idx: Sequence[int]) -> float:
    """Total variation distance ``0.5 * sum |p - q|`` of one marginal."""
    return float(0.5 * np.abs(marginal(real, idx) - marginal(synth, idx)).sum())


def tvd_summary(
    real: Discretised, synth: Discretised, k: int, *, max_sets: int | None = None, seed: int = 0
) -> dict[str, Any]:
    """Mean and worst TVD over all ``k``-way marginals, or a fixed-seed sample of them."""
    sets = list(itertools.combinations(range(len(real.columns)), k))
    sampled = max_sets is not None and len(sets) > max_sets
    if sampled:
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(len(sets), size=max_sets, replace=False))
        sets = [sets[i] for i in pick]
    if not sets:
        return {"k": k, "n": 0, "sampled": False, "mean": None, "worst": None, "worst_of": []}
    vals = np.array([tvd(real, synth, s) for s in sets])
    w = int(np.argmax(vals))
    return {
        "k": k,
        "n": len(sets),
        "sampled": sampled,
        "mean": float(vals.mean()),
        "worst": float(vals[w]),
        "worst_of": [real.columns[i] for i in sets[w]],
    }


def cramers_v(counts: np.ndarray) -> float:
    """Cramér's V of a 2-D contingency table (rows/columns that are all zero are ignored)."""
    c = np.asarray(counts, dtype=float)
    c = c[c.sum(axis=1) > 0][:, c.sum(axis=0) > 0]
    n = c.sum()
    r, k = c.shape
    if n == 0 or min(r, k) < 2:
        return 0.0
    expected = np.outer(c.sum(axis=1), c.sum(axis=0)) / n
    chi2 = float(((c - expected) ** 2 / expected).sum())
    return float(math.sqrt(min(1.0, chi2 / (n * (min(r, k) - 1)))))


def association_matrix(d: Discretised) -> np.ndarray:
    """Symmetric matrix of pairwise Cramér's V (diagonal 1)."""
    m = len(d.columns)
    out = np.eye(m)
    for i, j in itertools.combinations(range(m), 2):
        joint = marginal(d, (i, j)).reshape(d.cards[i], d.cards[j]) * d.n_rows
        out[i, j] = out[j, i] = cramers_v(joint)
    return out


def _numeric_values(table: pd.DataFrame, name: str, bounds: tuple[float, float]) -> np.ndarray:
    x = pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    x = x[np.isfinite(x)]
    return np.clip(x, *bounds)


def describe(spec: TableSpec, table: pd.DataFrame) -> list[dict[str, Any]]:
    """Per-column statistics of ONE table (state shares; numeric mean, sd and quartiles).

    Used for the synthetic table's own statistics in the shareable report.
    """
    cols = eval_columns(spec, table)
    d = discretise(spec, table, cols)
    out = []
    for j, col in enumerate(cols):
        shares = np.bincount(d.codes[:, j], minlength=d.cards[j]) / max(d.n_rows, 1)
        entry: dict[str, Any] = {
            "column": col.name,
            "kind": col.kind,
            "states": list(d.labels[j]),
            "shares": [float(s) for s in shares],
            "missing": float(shares[-1]),
        }
        if col.kind == "numeric" and col.bounds is not None:
            x = _numeric_values(table, col.name, col.bounds)
            if x.size:
                q = np.quantile(x, [0.25, 0.5, 0.75])
                entry |= {"mean": float(x.mean()), "sd": float(x.std()),
                          "q1": float(q[0]), "median": float(q[1]), "q3": float(q[2])}
        out.append(entry)
    return out


def column_summaries(
    spec: TableSpec, real: pd.DataFrame, synth: pd.DataFrame, dr: Discretised, ds: Discretised
) -> list[dict[str, Any]]:
    """Per column: 1-way TVD, missing shares, and for numeric columns means and sds."""
    out = []
    for j, name in enumerate(dr.columns):
        col = spec[name]
        entry: dict[str, Any] = {
            "column": name,
            "kind": col.kind,
            "tvd": tvd(dr, ds, (j,)),
            "real_missing": float(np.mean(dr.codes[:, j] == dr.cards[j] - 1)),
            "synth_missing": float(np.mean(ds.codes[:, j] == ds.cards[j] - 1)),
        }
        if col.kind == "numeric" and col.bounds is not None:
            xr = _numeric_values(real, name, col.bounds)
            xs = _numeric_values(synth, name, col.bounds)
            for tag, x in (("real", xr), ("synth", xs)):
                entry[f"{tag}_mean"] = float(x.mean()) if x.size else None
                entry[f"{tag}_sd"] = float(x.std()) if x.size else None
        out.append(entry)
    return out


def _group_codes(spec: TableSpec, d: Discretised, table: pd.DataFrame, name: str):
    """Group code and label per row for a subgroup column (numeric age -> public bands)."""
    col = spec[name]
    j = d.index(name)
    if col.kind != "numeric":
        return d.codes[:, j], list(d.labels[j])
    x = pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    band = np.searchsorted(np.asarray(AGE_BANDS[1:-1]), x, side="right")
    band[~np.isfinite(x)] = len(AGE_BANDS) - 1
    labels = [f"{a:g}-{b - 1:g}" for a, b in zip(AGE_BANDS[:-2], AGE_BANDS[1:-1], strict=False)]
    labels += [f"{AGE_BANDS[-2]:g}+", MISSING]
    return band, labels


def subgroup_fidelity(
    spec: TableSpec, real: pd.DataFrame, synth: pd.DataFrame, dr: Discretised, ds: Discretised,
    *, min_rows: int = 20,
) -> list[dict[str, Any]]:
    """Per subgroup (sex/gender, race, ethnicity, age band): sizes, mean 1-way TVD within the
    group, and the target's positive rate, real vs synthetic.  Groups with fewer than
    ``min_rows`` real rows are listed with ``small: true`` and no TVD."""
    out = []
    target = spec.target if spec.target in dr.columns else None
    for kind, pattern in SUBGROUP_PATTERNS.items():
        for name in (c for c in dr.columns if pattern.match(c)):
            gr, labels = _group_codes(spec, dr, real, name)
            gs, _ = _group_codes(spec, ds, synth, name)
            others = [j for j, c in enumerate(dr.columns) if c != name]
            for g, label in enumerate(labels):
                mr, ms = gr == g, gs == g
                nr, ns = int(mr.sum()), int(ms.sum())
                if nr == 0 and ns == 0:
                    continue
                entry: dict[str, Any] = {
                    "kind": kind, "column": name, "group": label,
                    "real_share": nr / max(dr.n_rows, 1), "synth_share": ns / max(ds.n_rows, 1),
                    "real_rows": nr, "small": nr < min_rows,
                }
                if nr >= min_rows and ns > 0:
                    sub_r = Discretised(dr.columns, dr.codes[mr], dr.cards, dr.labels)
                    sub_s = Discretised(ds.columns, ds.codes[ms], ds.cards, ds.labels)
                    # a table whose only column is the subgroup column has nothing to compare
                    # within the group (no mean of an empty list)
                    if others:
                        entry["mean_tvd"] = float(np.mean([tvd(sub_r, sub_s, (j,))
                                                           for j in others]))
                    if target is not None:
                        entry |= _positive_rates(spec, sub_r, sub_s, target)
                out.append(entry)
    return out


def positive_state(spec: TableSpec, d: Discretised, target: str) -> int:
    """Code of the target's positive state (``spec.positive``, else the second state)."""
    labels = d.labels[d.index(target)]
    if spec.positive is not None and spec.positive in labels:
        return labels.index(spec.positive)
    return 1 if len(labels) > 1 else 0


def _positive_rates(spec: TableSpec, r: Discretised, s: Discretised, target: str) -> dict:
    t, pos = r.index(target), positive_state(spec, r, target)
    return {
        "real_positive_rate": float(np.mean(r.codes[:, t] == pos)),
        "synth_positive_rate": float(np.mean(s.codes[:, t] == pos)),
    }


def evaluate_fidelity(
    spec: TableSpec,
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    *,
    real_test: pd.DataFrame | None = None,
    max_triples: int = 64,
    utility: bool = True,
    seed: int = 0,
) -> dict[str, Any]:
    """All fidelity measures of ``synthetic`` against ``real`` (JSON-ready dict).

    Parameters
    ----------
    spec : TableSpec
        Public spec (target, domains).
    real : pandas.DataFrame
        Real rows the synthesizer was trained on.
    synthetic : pandas.DataFrame
        Synthetic rows.
    real_test : pandas.DataFrame, optional
        Real rows not used for training, the test set of TSTR/TRTR (otherwise a fixed-seed
        30 % split of ``real`` is held out from TRTR's training set).
    max_triples : int
        Number of 3-way marginals sampled (fixed seed) when there are more.
    utility : bool
        Whether to run the TSTR/TRTR models (the slowest part).
    seed : int
        Seed of the sampling of 3-way marginals and of the utility models (evaluation only).

    Raises
    ------
    TableInputError
        A table (``real``, ``synthetic``, a given ``real_test``) lacks a modelled column of
        the spec or has no rows: one error naming each table and the columns it lacks
        (:func:`~fhirsynth.evaluate.discretise.checked_columns`).
    """
    cols = checked_columns(spec, "evaluate_fidelity", real=real, synthetic=synthetic,
                           real_test=real_test)
    dr, ds = discretise(spec, real, cols), discretise(spec, synthetic, cols)
    vr, vs = association_matrix(dr), association_matrix(ds)
    iu = np.triu_indices(len(cols), k=1)
    result: dict[str, Any] = {
        "columns": list(dr.columns),
        "n_real": dr.n_rows,
        "n_synthetic": ds.n_rows,
        "tvd": {
            "1way": tvd_summary(dr, ds, 1),
            "2way": tvd_summary(dr, ds, 2),
            "3way": tvd_summary(dr, ds, 3, max_sets=max_triples, seed=seed),
        },
        "cramers_v": {
            "mean_abs_diff": float(np.abs(vr - vs)[iu].mean()) if iu[0].size else None,
            "real": vr.round(6).tolist(),
            "synthetic": vs.round(6).tolist(),
        },
        "columns_summary": column_summaries(spec, real, synthetic, dr, ds),
        "subgroups": subgroup_fidelity(spec, real, synthetic, dr, ds),
    }
    if utility and spec.target in dr.columns:
        from fhirsynth.evaluate.utility import ml_utility

        result["utility"] = ml_utility(spec, real, synthetic, real_test=real_test, seed=seed)
    return result
