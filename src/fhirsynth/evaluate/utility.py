"""Machine-learning utility: train on synthetic, test on real (TSTR) against train on real (TRTR).

Features are the public one-hot codes of the evaluation discretisation (:mod:`.discretise`),
the classifier a logistic regression (fast, deterministic).  Binary targets are scored by
ROC AUC with the spec's positive state, other targets by accuracy.  Training sets larger
than ``max_train`` rows are subsampled with a fixed seed; the result says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from fhirsynth.domain import TableSpec
from fhirsynth.evaluate.discretise import Discretised, discretise, eval_columns

__all__ = ["ml_utility"]


def _one_hot(d: Discretised, feats: list[int]) -> sparse.csr_matrix:
    offsets = np.cumsum([0] + [d.cards[j] for j in feats])
    n = d.n_rows
    rows = np.repeat(np.arange(n), len(feats))
    cols = (d.codes[:, feats] + offsets[:-1]).ravel()
    data = np.ones(rows.size)
    return sparse.csr_matrix((data, (rows, cols)), shape=(n, int(offsets[-1])))


def _subsample(d: Discretised, n: int, rng: np.random.Generator) -> Discretised:
    if d.n_rows <= n:
        return d
    keep = np.sort(rng.choice(d.n_rows, size=n, replace=False))
    return Discretised(d.columns, d.codes[keep], d.cards, d.labels)


def _score(
    train: Discretised, test: Discretised, feats: list[int], t: int, pos: int | None, seed: int
) -> float | None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, roc_auc_score

    y_train, y_test = train.codes[:, t], test.codes[:, t]
    if pos is not None:
        y_train, y_test = (y_train == pos).astype(int), (y_test == pos).astype(int)
    if np.unique(y_test).size < 2:
        return None
    if np.unique(y_train).size < 2:
        # a model that saw one class predicts it for everyone: chance-level ranking
        return 0.5 if pos is not None else float(np.mean(y_test == y_train[0]))
    clf = LogisticRegression(max_iter=300, C=1.0, random_state=seed)
    clf.fit(_one_hot(train, feats), y_train)
    x_test = _one_hot(test, feats)
    if pos is not None:
        return float(roc_auc_score(y_test, clf.predict_proba(x_test)[:, 1]))
    return float(accuracy_score(y_test, clf.predict(x_test)))


def ml_utility(
    spec: TableSpec,
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    *,
    real_test: pd.DataFrame | None = None,
    max_train: int = 20_000,
    seed: int = 0,
) -> dict[str, Any]:
    """TSTR and TRTR scores for the spec's target (JSON-ready).

    Parameters
    ----------
    spec : TableSpec
        Public spec; ``spec.target`` is predicted from all other evaluated columns.
    real, synthetic : pandas.DataFrame
        Real training rows and synthetic rows.
    real_test : pandas.DataFrame, optional
        Real rows unseen by the synthesizer; otherwise a fixed-seed 30 % of ``real`` is the
        test set and TRTR trains on the other 70 % (TSTR then tests on rows the synthesizer
        saw, which flatters it slightly; the result notes this).
    max_train : int
        Training rows kept per model (fixed-seed subsample).
    seed : int
        Seed of the split, subsamples and the classifier (evaluation only).
    """
    if spec.target is None:
        return {"target": None, "note": "the spec declares no target"}
    rng = np.random.default_rng(seed)
    frames = [real, synthetic] + ([real_test] if real_test is not None else [])
    cols = eval_columns(spec, *frames)
    if spec.target not in [c.name for c in cols]:
        return {"target": spec.target, "note": "the target is missing from a table"}
    dr, ds = discretise(spec, real, cols), discretise(spec, synthetic, cols)
    note = "test set: real holdout rows unseen by the synthesizer"
    if real_test is not None:
        dt = discretise(spec, real_test, cols)
    else:
        perm = rng.permutation(dr.n_rows)
        cut = int(0.7 * dr.n_rows)
        dt = Discretised(dr.columns, dr.codes[perm[cut:]], dr.cards, dr.labels)
        dr = Discretised(dr.columns, dr.codes[perm[:cut]], dr.cards, dr.labels)
        note = "test set: a 30% split of the training rows (no holdout given)"
    t = dr.index(spec.target)
    feats = [j for j in range(len(cols)) if j != t]
    tcol = spec[spec.target]
    n_values = tcol.n_states - (1 if tcol.nullable else 0)
    from fhirsynth.evaluate.fidelity import positive_state

    binary = tcol.kind in ("boolean", "categorical") and n_values == 2
    pos = positive_state(spec, dr, spec.target) if binary else None
    trtr_train, tstr_train = _subsample(dr, max_train, rng), _subsample(ds, max_train, rng)
    trtr = _score(trtr_train, dt, feats, t, pos, seed)
    tstr = _score(tstr_train, dt, feats, t, pos, seed)
    return {
        "target": spec.target,
        "metric": "roc_auc" if pos is not None else "accuracy",
        "model": "logistic regression on one-hot public bins",
        "trtr": trtr,
        "tstr": tstr,
        "ratio": (tstr / trtr) if (tstr is not None and trtr) else None,
        "n_train_real": trtr_train.n_rows,
        "n_train_synthetic": tstr_train.n_rows,
        "n_test": dt.n_rows,
        "note": note,
    }
