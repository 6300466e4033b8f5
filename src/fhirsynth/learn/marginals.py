"""One-way marginals: measured on their own and imposed on the conditional tables.

Classic PrivBayes loses the one-way marginals: a child's marginal is implied by noisy
tables over many parent configurations and drifts towards uniform.  This module owns the
fix: each column with parents also gets a noisy one-way histogram (a recorded step), its
best estimate combines that histogram with the table's row sums by inverse variance, and a
post-processing pass (iterative proportional fitting, in topological order) rescales each
conditional table so that the model's marginal of the column matches the estimate while
its parent-to-child association is kept.  Post-processing only: no budget is spent here.
"""

from __future__ import annotations

import numpy as np

from fhirsynth.learn.parameters import project_counts
from fhirsynth.model import Node

__all__ = ["combine_marginal", "rake_to_marginals"]

#: rows drawn to estimate the parents' joint distribution during raking
RAKE_ROWS = 100_000
_IPF_ROUNDS = 20


def combine_marginal(
    direct: np.ndarray, eps_direct: float | None, table: np.ndarray, eps_table: float | None,
    total: float | None = None,
) -> np.ndarray:
    """Inverse-variance combination of a noisy histogram and a noisy table's row sums.

    ``direct`` has Laplace variance ``2 / eps_direct**2`` per cell; the row sums of
    ``table`` (child x configurations) have ``configs * 2 / eps_table**2``.  None (no
    noise) means an exact measurement, which is then used alone.  ``total`` (an estimate
    of the number of rows) is the total the estimate is projected to.
    """
    rows = table.sum(axis=1)
    if eps_direct is None or eps_table is None:
        est = direct
    else:
        w1 = eps_direct**2
        w2 = eps_table**2 / table.shape[1]
        est = (w1 * direct + w2 * rows) / (w1 + w2)
    p = project_counts(est, total)
    return p / p.sum() if p.sum() > 0 else np.full(p.size, 1.0 / p.size)


def _ipf(cond: np.ndarray, weights: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rescale P(x | p) so that sum_p weights[p] P(x | p) = target, columns still sum to 1."""
    joint = cond * weights[None, :]
    keep = weights > 0
    for _ in range(_IPF_ROUNDS):
        have = joint.sum(axis=1)
        scale = np.divide(target, have, out=np.ones_like(target), where=have > 0)
        joint = joint * scale[:, None]
        col = joint.sum(axis=0)
        joint[:, keep] *= weights[keep] / np.where(col[keep] > 0, col[keep], 1.0)
    out = cond.copy()
    col = joint.sum(axis=0)
    ok = keep & (col > 0)
    out[:, ok] = joint[:, ok] / col[ok]
    return out


def rake_to_marginals(
    nodes: list[Node], targets: dict[str, np.ndarray], rng: np.random.Generator
) -> None:
    """Adjust, in place and in topological order, the tables of the columns in ``targets``.

    The parents' joint distribution is estimated from ``RAKE_ROWS`` rows drawn from the
    model as adjusted so far (post-processing of DP outputs only).
    """
    from fhirsynth.sample import _config, _forward

    cards = {nd.name: nd.card for nd in nodes}
    out: dict[str, np.ndarray] = {}
    for nd in nodes:
        if nd.name in targets and nd.parents:
            cfg = _config(nd.parents, cards, out, RAKE_ROWS)
            weights = np.bincount(cfg, minlength=nd.cpd.shape[1]) / RAKE_ROWS
            nd.cpd = _ipf(nd.cpd, weights, targets[nd.name])
        out[nd.name] = _forward(nd, cards, out, RAKE_ROWS, rng)
