"""Noisy conditional tables: Laplace-noised joint counts of (child, parents) made valid.

This module owns the parameter step of the fit: one noisy histogram of (child, coarsened
parents) per column (L1 sensitivity 1 under adding or removing one patient), the split of
the parameter budget across columns, and the post-processing that turns noisy counts into
conditional distributions.  Noise is drawn by diffprivlib's ``Laplace`` (or, under zCDP,
``Gaussian``) mechanism, cell by cell (about 10 microseconds a cell, measured; a fit has at
most a few hundred thousand).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from fhirsynth.privacy.budget import Accountant, Step
from fhirsynth.privacy.noise import Noise

MIX = 0.5

__all__ = ["conditional_from_counts", "noise_step", "noisy_joint", "pooled_total",
           "project_counts", "split_budget"]


def split_budget(total: float, cells: Sequence[int]) -> list[float]:
    """Epsilon per table, proportional to sqrt(cells); the parts add up to ``total`` exactly.

    With Laplace noise of scale 1/eps_i, the expected L1 error of table i is proportional
    to cells_i / eps_i; minimising the sum under sum(eps_i) = total gives
    eps_i proportional to sqrt(cells_i).
    """
    w = np.sqrt(np.asarray(cells, float))
    parts = [float(total * x / w.sum()) for x in w]
    if parts:
        parts[-1] = total - math.fsum(parts[:-1])
    return parts


def noisy_joint(
    child: np.ndarray,
    child_card: int,
    pcode: np.ndarray,
    pcard: int,
    *,
    epsilon: float,
    accountant: Accountant,
    name: str,
    random_state: object,
    noiseless: bool = False,
    noise: Noise | None = None,
) -> np.ndarray:
    """Joint counts of (child, parents), shape ``(child_card, pcard)``, with noise.

    Adding or removing one patient changes one cell by one: L1 and L2 sensitivity 1.
    ``epsilon`` is the step's share of the budget; ``noise`` says what it buys (Laplace at
    that epsilon by default, or Gaussian under zCDP).  The step is checked before the
    noise is drawn and recorded after.  ``noiseless`` (tests only) returns the exact counts
    and still records the step.
    """
    noise = noise or Noise("laplace", epsilon)
    counts = np.bincount(child.astype(np.int64) * pcard + pcode, minlength=child_card * pcard)
    counts = counts.astype(float)
    accountant.check(epsilon, name=name)
    if not noiseless:
        counts = noise.add(counts, epsilon, random_state)
    accountant.spend(noise_step(noise, name, epsilon, f"{child_card * pcard} cells"
                                + (" [noiseless test mode]" if noiseless else "")))
    # children vary along axis 0, parent configurations along axis 1
    return counts.reshape(child_card, pcard)


def noise_step(noise: Noise, name: str, share: float, detail: str) -> Step:
    """The audit step of one noisy count measurement (sensitivity 1) with ``share``."""
    if noise.zcdp:
        return Step(name=name, mechanism=noise.mechanism_name(), epsilon=share,
                    sensitivity=1.0, rho=noise.rho_of(share),
                    detail=f"{detail}; sigma {noise.sigma(share):.4g}")
    return Step(name=name, mechanism=noise.mechanism_name(), epsilon=share, sensitivity=1.0,
                detail=detail)


def project_counts(v: np.ndarray, total: float | None = None) -> np.ndarray:
    """Closest non-negative vector summing to ``total`` (Euclidean projection on the simplex).

    ``total`` None keeps the vector's own (noisy) total.  Clipping negatives alone adds
    mass to every empty cell and flattens the distribution; subtracting a common shift
    before clipping keeps the total and removes that bias.  A better estimate of the total
    (e.g. pooled over every noisy table) shifts further and zeroes more noise cells.
    A non-positive total gives zeros.
    """
    total = float(v.sum()) if total is None else float(total)
    if total <= 0:
        return np.zeros_like(v)
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - total
    k = np.arange(1, v.size + 1)
    rho = int(np.nonzero(u - css / k > 0)[0][-1])
    tau = css[rho] / (rho + 1)
    return np.maximum(v - tau, 0.0)


def _backoff(
    noisy: np.ndarray, epsilon: float, parent_cards: Sequence[int], summed: int,
    total: float | None,
) -> np.ndarray:
    """Fallback of each configuration: the mean over parents i of P(child | parent i).

    Each one-parent table is the noisy table summed over the other parents (each of its
    cells sums ``summed * (configs / parent i's states)`` noisy cells); it falls back to
    the child's marginal itself.  Post-processing only.
    """
    card, pcard = noisy.shape
    cube = noisy.reshape(card, *parent_cards)
    fb = np.zeros((card, pcard))
    for i, k in enumerate(parent_cards):
        axes = tuple(a + 1 for a in range(len(parent_cards)) if a != i)
        one = conditional_from_counts(cube.sum(axis=axes), epsilon, total,
                                      summed=summed * (pcard // k))
        idx = np.unravel_index(np.arange(pcard), tuple(parent_cards))[i]
        fb += one[:, idx]
    return fb / len(parent_cards)


def conditional_from_counts(
    noisy: np.ndarray, epsilon: float | None, total: float | None = None,
    parent_cards: Sequence[int] | None = None, *, summed: int = 1,
) -> np.ndarray:
    """P(child | parent configuration) from noisy joint counts (columns sum to one).

    Each parent configuration's counts are projected to a non-negative vector with their
    noisy total; the child's marginal (projected row sums) is mixed in with weight ``a``,
    the standard deviation of a configuration total under the noise
    (``sqrt(2 * child_card) / epsilon``).  Configurations with little noisy mass thus fall
    back to the child's noisy marginal; with ``epsilon=None`` (no noise) only empty
    configurations do.  ``total`` (an estimate of the number of rows, post-processing of
    released values) is the total the child's marginal is projected to.

    With two or more parents (``parent_cards``, first parent slowest) a configuration
    falls back, instead, to the mean of the one-parent conditionals (:func:`_backoff`), so
    a sparse configuration keeps its association with each parent.  ``summed``: noisy
    cells summed into each cell (scales ``a``).
    """
    card, pcard = noisy.shape
    marginal = project_counts(noisy.sum(axis=1), total)
    if marginal.sum() <= 0:
        marginal = np.ones(card)
    marginal = marginal / marginal.sum()
    a = 0.0 if epsilon is None else MIX * math.sqrt(2.0 * card * summed) / epsilon
    fallback = np.repeat(marginal[:, None], pcard, axis=1)
    if epsilon is not None and parent_cards is not None and len(parent_cards) > 1:
        fallback = _backoff(noisy, epsilon, parent_cards, summed, total)
    out = np.empty_like(noisy)
    for p in range(pcard):
        col = project_counts(noisy[:, p], total if pcard == 1 else None)
        mass = col.sum()
        if mass + a <= 0:
            out[:, p] = fallback[:, p]
        else:
            out[:, p] = (col + a * fallback[:, p]) / (mass + a)
    return out


def conditional_with_missing(
    noisy_missing: np.ndarray, noisy_full: np.ndarray, eps_missing: float | None,
    eps_full: float | None, total: float | None = None,
    parent_cards: Sequence[int] | None = None,
) -> np.ndarray:
    """P(child | parents) of a nullable child from two noisy tables.

    ``noisy_missing`` (2 x configs: present, missing) gives P(missing | parents);
    ``noisy_full`` (child states x configs, ``<missing>`` last) gives the distribution of
    the values among the present ones.  Measuring missingness in its own two-row table keeps
    the noise of the many value cells from leaking mass into "present" where the data are
    structurally missing (a death year for the living).  ``total``: see
    :func:`conditional_from_counts`; the values' total is then its present share.
    """
    pm = conditional_from_counts(noisy_missing, eps_missing, total, parent_cards)
    present = None if total is None else total * float(pm[0].mean())
    pv = conditional_from_counts(noisy_full[:-1], eps_full,
                                 present if noisy_full.shape[1] == 1 else None, parent_cards)
    return np.vstack([pv * pm[0], pm[1:2]])


def pooled_total(estimates: Sequence[tuple[float, float]]) -> float | None:
    """Inverse-variance mean of noisy totals ``[(value, variance)]``; None if there are none.

    Every noisy table's sum is an unbiased estimate of the number of rows (variance
    ``2 * cells / epsilon**2`` under Laplace noise); pooling them with the noisy count is
    post-processing and gives a total far more precise than any single one.
    """
    est = [(v, var) for v, var in estimates if var > 0 and math.isfinite(var)]
    if not est:
        return None
    w = np.array([1.0 / var for _, var in est])
    x = np.array([v for v, _ in est])
    return max(float((w * x).sum() / w.sum()), 1.0)
