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

from collections.abc import Sequence

import numpy as np

from fhirsynth.domain import Column
from fhirsynth.learn.parameters import project_counts
from fhirsynth.model import Node

__all__ = ["COARSE_GROUPS", "coarse_groups", "combine_marginal", "parent_sums",
           "rake_to_marginals", "refine_with_coarse", "set_bin_slopes"]

#: numeric columns with at least twice this many value states also get a coarse histogram
COARSE_GROUPS = 16

#: rows drawn to estimate the parents' joint distribution during raking
RAKE_ROWS = 100_000
_IPF_ROUNDS = 20


def coarse_groups(
    col: Column, max_groups: int = COARSE_GROUPS, min_states: int | None = None
) -> np.ndarray | None:
    """``groups[state]``: the state's equal-width bin (of ``max_groups``) over the bounds.

    None unless the column is numeric with at least ``min_states`` value states (default
    twice ``max_groups``: fewer gain too little from grouping).  A ``<missing>`` state gets
    a group of its own.  Depends on the spec only.
    """
    if col.kind != "numeric" or col.bounds is None:
        return None
    n_value = col.n_states - (1 if col.nullable else 0)
    if n_value < (2 * max_groups if min_states is None else min_states):
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
    groups: np.ndarray | None = None, extra: Sequence[tuple[np.ndarray, float]] = (),
) -> np.ndarray:
    """Inverse-variance combination of a noisy histogram and a noisy table's row sums.

    ``direct`` has Laplace variance ``2 / eps_direct**2`` per cell; the row sums of
    ``table`` (child x configurations) have ``configs * 2 / eps_table**2``.  None (no
    noise) means an exact measurement, which is then used alone; ``direct`` None uses the
    row sums alone.  ``total`` (an estimate of the number of rows) is the total the
    estimate is projected to.  ``coarse`` (a noisy histogram over the ``groups`` of the
    states, at ``eps_coarse``) is merged in by :func:`refine_with_coarse`.  ``extra``:
    further unbiased estimates ``(counts, variance per cell)`` of the same histogram, e.g.
    the sums of the tables in which the column is a parent (:func:`parent_sums`).
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
    if var > 0 and extra:
        parts = [(est, var), *extra]
        w = np.array([1.0 / v for _, v in parts])
        est = sum(wi * e for wi, (e, _) in zip(w, parts, strict=True)) / w.sum()
        var = 1.0 / float(w.sum())
    if coarse is not None and groups is not None and eps_coarse is not None and var > 0:
        p = refine_with_coarse(est, var, coarse, 2.0 / eps_coarse**2, groups, total)
    else:
        p = project_counts(est, total)
    return p / p.sum() if p.sum() > 0 else np.full(p.size, 1.0 / p.size)


def parent_sums(
    table: np.ndarray, eps: float | None, parent_cards: Sequence[int], pos: int
) -> tuple[np.ndarray, float] | None:
    """A parent's histogram from a noisy (child x parent configurations) table.

    Summing the table over the child and the other parents gives an unbiased estimate of
    the ``pos``-th parent's one-way histogram, with Laplace variance ``2 * m / eps**2`` per
    cell (m cells summed).  Post-processing of a released table; None without noise.
    """
    if eps is None:
        return None
    shape = (table.shape[0], *parent_cards)
    axes = tuple(a for a in range(len(shape)) if a != pos + 1)
    est = table.reshape(shape).sum(axis=axes)
    return est, 2.0 * (table.size / est.size) / eps**2


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


def _ipf_values(cond: np.ndarray, weights: np.ndarray, target: np.ndarray) -> np.ndarray:
    """:func:`_ipf` of the value rows only: P(missing | p) (the last row) is kept as is."""
    present = 1.0 - cond[-1]
    ok = present > 0
    sub = np.zeros_like(cond[:-1])
    sub[:, ok] = cond[:-1, ok] / present[ok]
    tv = target[:-1]
    if tv.sum() <= 0 or not ok.any():
        return cond
    out = cond.copy()
    out[:-1, ok] = _ipf(sub, weights * present, tv / tv.sum())[:, ok] * present[ok]
    return out


def rake_to_marginals(
    nodes: list[Node], targets: dict[str, np.ndarray], rng: np.random.Generator,
    values_only: frozenset[str] = frozenset(),
) -> dict[str, np.ndarray]:
    """Adjust, in place and in topological order, the tables of the columns in ``targets``.

    The parents' joint distribution is estimated from ``RAKE_ROWS`` rows drawn from the
    model as adjusted so far (post-processing of DP outputs only; balanced sampling, whose
    group frequencies are within one row of the model's).  For the columns in
    ``values_only`` (``<missing>`` last) only the distribution of the values is raked and
    P(missing | parents) is kept: structural missingness stays where the tables put it.
    Returns those rows' codes by node: each node is drawn after its own adjustment, so they
    are a sample of the finished model.
    """
    from fhirsynth.sample import _config, _forward

    cards = {nd.name: nd.card for nd in nodes}
    out: dict[str, np.ndarray] = {}
    for nd in nodes:
        if nd.name in targets and nd.parents:
            cfg = _config(nd.parents, cards, out, RAKE_ROWS)
            weights = np.bincount(cfg, minlength=nd.cpd.shape[1]) / RAKE_ROWS
            ipf = _ipf_values if nd.name in values_only else _ipf
            nd.cpd = ipf(nd.cpd, weights, targets[nd.name])
        out[nd.name] = _forward(nd, cards, out, RAKE_ROWS, rng, balanced=True)
    return out


def _wide_bins(col: Column) -> bool:
    """True when a numeric column has value bins that hold more than one possible value."""
    if col.kind != "numeric" or col.bounds is None:
        return False
    e = col.bin_edges()
    if len(e) < 3:
        return False
    if col.integer:
        return bool(np.any(np.floor(e[1:]) - np.ceil(e[:-1]) >= 1))
    return True


def set_bin_slopes(nodes: list[Node], columns: Sequence[Column], rng: np.random.Generator,
                   sample: dict[str, np.ndarray] | None = None) -> None:
    """Give each numeric column node the slopes of its within-bin densities, in place.

    The slopes (:func:`fhirsynth.encode.bin_slopes`) come from the model's own one-way
    marginal of the column, estimated from ``RAKE_ROWS`` rows drawn from the finished model
    (``sample``, e.g. the rows :func:`rake_to_marginals` drew last; drawn here when None):
    post-processing of DP outputs only.  Columns whose bins hold one value each keep None.
    """
    from fhirsynth.encode import bin_slopes
    from fhirsynth.sample import _forward

    by_col = {c.name: c for c in columns}
    cards = {nd.name: nd.card for nd in nodes}
    out: dict[str, np.ndarray] = {} if sample is None else sample
    for nd in nodes:
        if sample is None:
            out[nd.name] = _forward(nd, cards, out, RAKE_ROWS, rng, balanced=True)
        col = by_col.get(nd.name)
        if nd.group_of is not None or col is None or not _wide_bins(col):
            continue
        n_pm = len(col.point_masses)
        n_bins = len(col.bin_edges()) - 1
        hist = np.bincount(out[nd.name], minlength=nd.card)[n_pm:n_pm + n_bins]
        nd.slopes = np.round(bin_slopes(hist / RAKE_ROWS), 4)
