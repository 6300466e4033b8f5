"""Distance-based membership inference against a released synthetic table, as one number.

The attacker scores each target patient by minus its distance to the closest synthetic row:
training members should sit closer to the synthetic data than holdout patients if the
generator memorised them.  The AUC of that score (members = 1, holdout = 0) is 0.5 for a
release that reveals nothing about membership.  The distance is the one of
:mod:`fhirsynth.evaluate.privacy` (``feature_matrix`` / ``nearest_distances``), so this
function and the report's ``membership_inference`` entry measure the same attack.
Internal validation only: it reads raw rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from fhirsynth.domain import TableSpec
from fhirsynth.errors import ConfigError
from fhirsynth.evaluate.discretise import eval_columns
from fhirsynth.evaluate.privacy import feature_matrix, nearest_distances

__all__ = ["membership_inference_auc", "min_distances"]


def min_distances(spec: TableSpec, targets: pd.DataFrame, synthetic: pd.DataFrame) -> np.ndarray:
    """Mixed-type distance from each target row to its closest synthetic row."""
    cols = eval_columns(spec, targets, synthetic)
    if not cols:
        raise ConfigError("the tables share no modelled column of the spec")
    if len(synthetic) == 0:
        raise ConfigError("the synthetic table is empty")
    return nearest_distances(feature_matrix(cols, targets), feature_matrix(cols, synthetic))


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
        Public domain of the modelled columns.
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
    members = train.iloc[np.sort(rng.choice(len(train), size=m, replace=False))]
    others = holdout.iloc[np.sort(rng.choice(len(holdout), size=m, replace=False))]
    targets = pd.concat([members, others], ignore_index=True)
    scores = -min_distances(spec, targets, synthetic)
    labels = np.r_[np.ones(m), np.zeros(m)]
    return float(roc_auc_score(labels, scores))
