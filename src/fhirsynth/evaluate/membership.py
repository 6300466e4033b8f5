"""Distance-based membership inference against a released synthetic table.

The attacker scores each target patient by minus its distance to the closest synthetic row:
training members should sit closer to the synthetic data than holdout patients if the
generator memorised them.  The AUC of that score (members = 1, holdout = 0) is 0.5 for a
release that reveals nothing about membership.  Internal validation only: it reads raw rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from fhirsynth.domain import TableSpec
from fhirsynth.encode import encode
from fhirsynth.errors import ConfigError

__all__ = ["membership_inference_auc", "min_distances"]

#: rows of the synthetic table compared at once (memory: chunk * n_synthetic * n_columns)
_CHUNK = 256


def _features(spec: TableSpec, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per-column comparable values and a mask of numeric columns.

    Categorical and boolean columns become their state codes (compared for equality);
    numeric columns become values scaled to [0, 1] by the public bounds, NaN when missing.
    """
    enc = encode(spec, table)
    out = enc.codes.astype(float)
    numeric = np.zeros(len(enc.columns), dtype=bool)
    for j, col in enumerate(spec.modelled):
        if col.kind != "numeric":
            continue
        assert col.bounds is not None
        lo, hi = col.bounds
        x = pd.to_numeric(table[col.name], errors="coerce").to_numpy(float)
        out[:, j] = (np.clip(x, lo, hi) - lo) / (hi - lo)
        numeric[j] = True
    return out, numeric


def _pair_distance(a: np.ndarray, b: np.ndarray, numeric: np.ndarray) -> np.ndarray:
    """Mean per-column distance between each row of ``a`` and each row of ``b``."""
    x = a[:, None, :]
    y = b[None, :, :]
    d = np.where(numeric, np.abs(x - y), (x != y).astype(float))
    if numeric.any():
        nx, ny = np.isnan(x), np.isnan(y)
        d = np.where(numeric & nx & ny, 0.0, d)
        d = np.where(numeric & (nx ^ ny), 1.0, d)
    return d.mean(axis=2)


def min_distances(spec: TableSpec, targets: pd.DataFrame, synthetic: pd.DataFrame) -> np.ndarray:
    """Distance from each target row to its closest synthetic row (Gower-style, in [0, 1])."""
    t, numeric = _features(spec, targets)
    s, _ = _features(spec, synthetic)
    if len(s) == 0:
        raise ConfigError("the synthetic table is empty")
    out = np.empty(len(t))
    for i in range(0, len(t), _CHUNK):
        out[i:i + _CHUNK] = _pair_distance(t[i:i + _CHUNK], s, numeric).min(axis=1)
    return out


def membership_inference_auc(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    spec: TableSpec,
    seed: int = 0,
    *,
    max_targets: int = 1000,
) -> float:
    """AUC of the distance-to-closest-synthetic-record membership attack.

    Parameters
    ----------
    train : DataFrame
        Patients the synthetic data was generated from (members).
    holdout : DataFrame
        Patients from the same population that were not used (non-members).
    synthetic : DataFrame
        The released synthetic table.
    spec : TableSpec
        Public domain of the modelled columns (all three tables are encoded with it).
    seed : int
        Seed for drawing equally many targets from each side.
    max_targets : int
        At most this many targets per side.

    Returns
    -------
    float
        ROC AUC of ``-min distance`` for members (1) against non-members (0); 0.5 means no
        membership signal, 1.0 means every member is closer than every non-member.
    """
    m = min(len(train), len(holdout), max_targets)
    if m < 1:
        raise ConfigError("membership inference needs at least one member and one non-member")
    rng = np.random.default_rng(seed)
    members = train.iloc[rng.choice(len(train), size=m, replace=False)]
    others = holdout.iloc[rng.choice(len(holdout), size=m, replace=False)]
    targets = pd.concat([members, others], ignore_index=True)
    scores = -min_distances(spec, targets, synthetic)
    labels = np.r_[np.ones(m), np.zeros(m)]
    return float(roc_auc_score(labels, scores))
