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

from fhirsynth.domain import Column
from fhirsynth.learn.parameters import project_counts
from fhirsynth.model import Node

__all__ = ["COARSE_GROUPS", "coarse_groups", "combine_marginal", "rake_to_marginals",
           "refine_with_coarse"]

#: numeric columns with at least twice this many value states also get a coarse histogram
COARSE_GROUPS = 16

#: rows drawn to estimate the parents' joint distribution during raking
RAKE_ROWS = 100_000
_IPF_ROUNDS = 20


def coarse_groups(col: Column, max_groups: int = COARSE_GROUPS) -> np.ndarray | None:
    """``groups[state]``: the state's equal-width bin (of ``max_groups``) over the bounds.

    None unless the column is numeric with at least twice ``max_groups`` value states
    (fewer gain too little from grouping).  A ``<missing>`` state gets a group of its own.
    Depends on the spec only.
    """
    if col.kind != "numeric" or col.bounds is None:
        return None
    n_value = col.n_states - (1 if col.nullable else 0)
    if n_value < 2 * max_groups:
        return None
    e = col.bin_edges()
    values = np.array([*col.point_masses, *((e[:-1] + e[1:]) / 2)], float)
    if values.size != n_value:
        return None
    lo, hi = col.bounds
    cut = np.linspace(lo, hi, max_groups + 1)[1:-1]
    _, groups = np.unique(np.searchsorted(cut, values, side="right"), return_inverse=True)
    groups = groups.astype(np.int64)
    if col.nullable:
        groups = np.append(groups, groups.max() + 1)
    return groups


def refine_with_coarse(
    fine: np.ndarray, var_fine: float, coarse: np.ndarray, var_coarse: float,
    groups: np.ndarray, total: float | None = None,
) -> np.ndarray:
    """Counts over the fine states from a fine and a coarse noisy histogram (consistent).

    Group totals combine the coarse cells with the fine cells' group sums by inverse
    variance (``var_fine`` and ``var_coarse`` per cell); each group's total is then shared
    among its states in proportion to the projected fine histogram (uniformly where that
    is empty).  Both inputs are released noisy values: post-processing only.
    """
    g = int(groups.max()) + 1
    size = np.bincount(groups, minlength=g).astype(float)
    fg = np.bincount(groups, weights=fine, minlength=g)
    w_f = 1.0 / (var_fine * size)
    w_c = 1.0 / var_coarse
    comb = project_counts((w_f * fg + w_c * coarse) / (w_f + w_c), total)
    f = project_counts(fine, total)
    fsum = np.bincount(groups, weights=f, minlength=g)
    share = np.where(fsum[groups] > 0, f / np.where(fsum[groups] > 0, fsum[groups], 1.0),
                     1.0 / size[groups])
    return comb[groups] * share


def combine_marginal(
    direct: np.ndarray | None, eps_direct: float | None, table: np.ndarray,
    eps_table: float | None, total: float | None = None, *,
    coarse: np.ndarray | None = None, eps_coarse: float | None = None,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """Inverse-variance combination of a noisy histogram and a noisy table's row sums.

    ``direct`` has Laplace variance ``2 / eps_direct**2`` per cell; the row sums of
    ``table`` (child x configurations) have ``configs * 2 / eps_table**2``.  None (no
    noise) means an exact measurement, which is then used alone; ``direct`` None uses the
    row sums alone.  ``total`` (an estimate of the number of rows) is the total the
    estimate is projected to.  ``coarse`` (a noisy histogram over the ``groups`` of the
    states, at ``eps_coarse``) is merged in by :func:`refine_with_coarse`.
    """
    rows = table.sum(axis=1)
    if eps_table is None:
        est, var = (rows if direct is None else direct), 0.0
    elif direct is None:
        est, var = rows, 2.0 * table.shape[1] / eps_table**2
    elif eps_direct is None:
        est, var = direct, 0.0
    else:
        w1 = eps_direct**2
        w2 = eps_table**2 / table.shape[1]
        est = (w1 * direct + w2 * rows) / (w1 + w2)
        var = 2.0 / (w1 + w2)
    if coarse is not None and groups is not None and eps_coarse is not None and var > 0:
        p = refine_with_coarse(est, var, coarse, 2.0 / eps_coarse**2, groups, total)
    else:
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
