"""Greedy PrivBayes structure search with a DP selection mechanism.

This module owns the scores of a (child, parent set) pair and their sensitivities, the
candidate parent sets (bounded by degree, coarsened domain product and theta-usefulness)
and the greedy loop that adds one column per selection (permute-and-flip under pure
epsilon-DP, the exponential mechanism under zCDP: :data:`SELECTIONS`).  The first
column is the spec's target (public) or else chosen uniformly at random without looking at
the data.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from diffprivlib.mechanisms import Exponential, PermuteAndFlip

from fhirsynth.privacy.budget import Accountant, Step
from fhirsynth.privacy.noise import Noise

__all__ = ["PRIOR_SCORE_SENSITIVITY", "SCORE_SENSITIVITY", "SELECTIONS", "Parents",
           "choose_first", "greedy_structure", "prior_score", "r_score", "selection_for"]

logger = logging.getLogger(__name__)

#: sensitivity of :func:`r_score` under adding or removing one patient (see r_score)
SCORE_SENSITIVITY = 2.0
#: sensitivity of :func:`prior_score` (see prior_score)
PRIOR_SCORE_SENSITIVITY = 1.0

#: selection mechanisms: (diffprivlib class, audit name, bounded range for zCDP)
SELECTIONS = {
    "exponential": (Exponential, "exponential (diffprivlib)", True),
    "permute-and-flip": (PermuteAndFlip, "permute-and-flip (diffprivlib)", False),
}


def selection_for(setting: str, noise: Noise) -> str:
    """The selection mechanism of a fit: ``setting`` ("auto": permute-and-flip under pure
    epsilon-DP, where it is never worse in expected score than the exponential mechanism
    at the same epsilon (McKenna & Sheldon 2020); the exponential mechanism under zCDP,
    where its bounded range buys four times the epsilon0^2 for the same rho)."""
    if setting == "auto":
        return "exponential" if noise.zcdp else "permute-and-flip"
    return setting


def r_score(child: np.ndarray, child_card: int, pcode: np.ndarray, pcard: int) -> float:
    """Dependence score ``f = 1/2 * sum_{x,p} |c_xp - c_x c_p / n|`` in counts (n times R).

    ``R(X, Pi) = 1/2 ||P[X, Pi] - P[X] P[Pi]||_1`` is PrivBayes' score of low sensitivity;
    in counts it does not grow with n.

    Sensitivity: add one patient with cell (x0, p0) to a table C of n rows, giving C' with
    n + 1 rows.  The count part changes by one in one cell (L1 change 1).  The product part
    changes from ``c_x c_p^T / n`` to ``(c_x + e)(c_p + e)^T / (n + 1)``, i.e. by
    ``A + B`` with ``A = -c_x c_p^T / (n (n + 1))`` (L1 mass ``n / (n + 1)``) and
    ``B = (e c_p^T + c_x e^T + e e^T) / (n + 1)`` (L1 mass ``(2n + 1) / (n + 1)``).  By
    the triangle inequality the L1 norm of the difference inside ``f`` changes by at most
    ``1 + (3n + 1) / (n + 1) < 4``, so ``|f(C') - f(C)| < 2``.  Removing a patient is the
    same bound read backwards.  Hence :data:`SCORE_SENSITIVITY` = 2 for every n; the test
    suite checks it by brute force on random small neighbours.
    """
    n = child.shape[0]
    if n == 0 or pcard <= 1 or child_card <= 1:
        return 0.0
    joint = np.bincount(child * pcard + pcode, minlength=child_card * pcard)
    joint = joint.reshape(child_card, pcard).astype(float)
    cx = joint.sum(axis=1)
    cp = joint.sum(axis=0)
    return 0.5 * float(np.abs(joint - np.outer(cx, cp) / n).sum())


def prior_score(child: np.ndarray, child_card: int, pcode: np.ndarray, pcard: int,
                prior: np.ndarray) -> float:
    """Dependence score ``g = 1/2 * sum_{x,p} |c_xp - q_x c_p|`` against a released ``q``.

    ``q`` is a distribution of the child released before the selection (its noisy one-way
    histogram, projected onto the simplex): public for the mechanism, which conditions on
    it (adaptive composition).  With ``q_x = c_x / n`` this is :func:`r_score`'s ``f``;
    otherwise ``|g - f| <= n * TVD(q, c / n)`` for every parent set, an offset that does
    not depend on the parents.

    Sensitivity: add one patient with cell (x0, p0).  Only column p0 changes: ``c_x0p0``
    and ``c_p0`` grow by one, so the term of x0 moves by at most ``1 - q_x0`` and each
    other term by at most ``q_x``; the L1 sum moves by at most ``2 (1 - q_x0)``, and
    ``|g' - g| <= 1 - q_x0 <= 1``.  Removing a patient is the same bound read backwards.
    Hence :data:`PRIOR_SCORE_SENSITIVITY` = 1, half of ``f``'s bound for the same signal:
    a selection with this score weighs candidates as one with twice the epsilon would with
    ``f`` (checked by brute force in ``tests/unit/learn/test_structure.py``).
    """
    n = child.shape[0]
    if n == 0 or pcard <= 1 or child_card <= 1:
        return 0.0
    joint = np.bincount(child * pcard + pcode, minlength=child_card * pcard)
    joint = joint.reshape(child_card, pcard).astype(float)
    return 0.5 * float(np.abs(joint - np.outer(prior, joint.sum(axis=0))).sum())


def choose_first(d: int, declared: dict[int, tuple[Item, ...]], first: int | None,
                 rng: np.random.Generator) -> int:
    """The column that starts the network: ``first`` if it may (a free column or a declared
    root), else one of those uniformly at random (no data read); -1 if there is none."""
    free = [j for j in range(d) if j not in declared]
    roots = [j for j in declared if not declared[j]]
    if first is None or first not in (free or roots):
        return int(rng.choice(free or roots)) if (free or roots) else -1
    return first


def parent_code(
    gcodes: Sequence[np.ndarray], gcards: Sequence[int], n: int
) -> tuple[np.ndarray, int]:
    """Combined parent configuration (first parent slowest, as pgmpy orders its columns)."""
    code = np.zeros(n, np.int64)
    card = 1
    for c, k in zip(gcodes, gcards, strict=True):
        code = code * k + c
        card *= k
    return code, card


#: a parent: (column index, variant index) - see fhirsynth.learn.parent_variants
Item = tuple[int, int]


@dataclass(frozen=True)
class Parents:
    """Chosen parent sets: ``parents[j]`` are (column, variant) items; ``order`` insertion."""

    order: tuple[int, ...]
    parents: tuple[tuple[Item, ...], ...]


def greedy_structure(
    codes: Sequence[np.ndarray],
    cards: Sequence[int],
    gcodes: Sequence[Sequence[np.ndarray]],
    gcards: Sequence[Sequence[int]],
    *,
    degree: int,
    max_parent_states: int,
    cell_limit: float,
    max_candidates: int,
    eps_per_selection: float,
    accountant: Accountant,
    rng: np.random.Generator,
    random_state: object,
    noiseless: bool = False,
    declared: dict[int, tuple[Item, ...]] | None = None,
    first: int | None = None,
    first_in_every_set: bool = False,
    noise: Noise | None = None,
    priors: Sequence[np.ndarray | None] | None = None,
    offsets: Sequence[float] | None = None,
    selection: str = "exponential",
    target_margin: float = 0.0,
) -> Parents:
    """Add columns one by one, each with its parent set chosen by a DP selection.

    Columns with ``declared`` (public) parents are added, with those parents and without
    any spend, as soon as their parents are in the network; the others are chosen by the
    mechanism, one selection each after the first (``eps_per_selection`` 0: uniformly at
    random, without parents).

    Parameters
    ----------
    codes, cards
        Child codes and domain sizes of the columns (all with more than one state).
    gcodes, gcards
        Per column, the codes and sizes of each way it may enter a parent set
        (``gcodes[j][v]``: variant v of column j, e.g. coarsened into contiguous groups).
    degree
        Largest parent set.
    max_parent_states
        Largest product of parent domain sizes.
    cell_limit
        Largest ``child_card * parent product`` (theta-usefulness); ``inf`` disables it.
    max_candidates
        Cap on scored candidates per selection (see :class:`~fhirsynth.config.LearnConfig`).
    eps_per_selection
        Budget share of each selection (``len(codes) - 1`` of them).
    accountant
        Checked before and charged after each selection.
    rng
        Data-independent randomness: the first column and candidate subsampling.
    random_state
        Passed to diffprivlib (None: its secure default).
    noiseless
        Test hook: take the best candidate instead of the mechanism (still recorded).
    declared
        Public parent sets declared in the spec, by column.
    first
        Column to start the network with (public, e.g. the spec's target), if it has no
        declared parents; None: chosen uniformly at random.
    first_in_every_set
        Keep only candidates whose parent set contains the first column (when any does):
        the target then is a parent of every column (a tree-augmented naive Bayes shape),
        except where the limits leave it no room and ``target_margin`` > 0.
    noise
        What a selection's share buys (default pure epsilon-DP: the share is the
        mechanism's epsilon; zCDP: ``sqrt(8 rho_i)`` for the exponential mechanism,
        ``sqrt(2 rho_i)`` for permute-and-flip).
    priors
        Per column, a released distribution of its (child) states, or None.  When every
        column a selection may add has one, candidates are scored by :func:`prior_score`
        (sensitivity 1) instead of :func:`r_score` (sensitivity 2).
    offsets
        Per column, a public constant subtracted from its prior scores (the expected
        offset of its released estimate; see ``fhirsynth.learn._prior_offsets``).
    selection
        A key of :data:`SELECTIONS` (the caller resolves "auto" with :func:`selection_for`).
    target_margin
        With ``first_in_every_set``: a parent set the first column cannot join (degree or
        size limits) stays a candidate, scored this much (counts; a public constant)
        below the sets with the first column (:func:`_with_target`); 0: it is dropped.
        A constant per candidate leaves the score's sensitivity unchanged.
    """
    from fhirsynth.errors import ConfigError

    declared = declared or {}
    noise = noise or Noise("laplace", 1.0)
    if selection not in SELECTIONS:
        raise ConfigError(f"selection ({selection!r}) must be one of {', '.join(SELECTIONS)}")
    mech_cls, mech_name, bounded = SELECTIONS[selection]
    d = len(codes)
    n_rows = codes[0].shape[0] if d else 0
    free = [j for j in range(d) if j not in declared]
    first = choose_first(d, declared, first, rng)
    if first < 0:
        raise ConfigError("the declared structure has a cycle: every column has parents")
    n_sel = len(free) - (1 if first in free else 0)
    order = [first]
    parents: dict[int, tuple[Item, ...]] = {first: declared.get(first, ())}
    useful = min(max_parent_states, cell_limit / min(cards)) if d else 0
    pool: list[tuple[Item, ...]] = []  # parent sets of two or more columns
    prods: list[int] = []
    cache: dict[tuple[int, tuple[Item, ...]], float] = {}
    # the released one-way estimates halve the score's sensitivity when every column the
    # selections may add has one
    use_prior = priors is not None and all(priors[j] is not None for j in free if j != first)
    sensitivity = PRIOR_SCORE_SENSITIVITY if use_prior else SCORE_SENSITIVITY
    how = "the score against the released one-way estimates" if use_prior else "the R score"

    def scored(child: int, pc: np.ndarray, pk: int) -> float:
        if use_prior:
            return prior_score(codes[child], cards[child], pc, pk, priors[child])
        return r_score(codes[child], cards[child], pc, pk)

    def score(child: int, pset: tuple[Item, ...]) -> float:
        key = (child, pset)
        if key not in cache:
            pc, pk = parent_code([gcodes[i][v] for i, v in pset],
                                 [gcards[i][v] for i, v in pset], n_rows)
            cache[key] = scored(child, pc, pk)
        return cache[key]

    def items(col: int) -> list[Item]:
        return [(col, v) for v in range(len(gcards[col]))]

    step = spent = 0
    while len(order) < d:
        new = order[-1]
        if degree >= 2:
            others = order[:-1]
            for size in range(1, degree):
                for comb in itertools.combinations(others, size):
                    for pick in itertools.product(*(items(c) for c in (*comb, new))):
                        prod = math.prod(gcards[i][v] for i, v in pick)
                        if prod <= useful:
                            pool.append(tuple(sorted(pick)))
                            prods.append(prod)
        ready = [j for j in declared
                 if j not in parents and all(p in parents for p, _ in declared[j])]
        if ready:
            order.append(ready[0])
            parents[ready[0]] = declared[ready[0]]
            continue
        remaining = [j for j in free if j not in parents]
        if not remaining:
            raise ConfigError("the declared structure has a cycle")
        step += 1
        if eps_per_selection <= 0 and not noiseless:
            child = int(rng.choice(remaining))
            order.append(child)
            parents[child] = ()
            continue
        parr = np.asarray(prods, float)
        singles: list[tuple[int, tuple[Item, ...]]] = []
        valid = []
        for child in remaining:
            limit = min(max_parent_states, cell_limit / cards[child])
            ok = [(child, (it,)) for p in order for it in items(p)
                  if degree >= 1 and gcards[it[0]][it[1]] <= limit]
            singles.extend(ok or [(child, ())])
            valid.append(np.flatnonzero(parr <= limit))
        total = sum(len(v) for v in valid)
        room = max(0, max_candidates - len(singles))
        picks = np.arange(total) if total <= room else np.sort(
            rng.choice(total, size=room, replace=False))
        bounds = np.cumsum([0, *(len(v) for v in valid)])
        multi = []
        for idx in picks.tolist():
            ci = int(np.searchsorted(bounds, idx, side="right")) - 1
            multi.append((remaining[ci], pool[int(valid[ci][idx - int(bounds[ci])])]))
        cands = singles + multi
        if first_in_every_set:
            cands = _with_target(cands, first, gcards, cards, degree, max_parent_states,
                                 cell_limit, target_margin)
        if not multi and all(not p for _, p in singles) and not noiseless:
            # no candidate has parents: the choice does not depend on the data, so it is
            # made at random and spends nothing (the budget is left to the tables)
            child = int(rng.choice(remaining))
            order.append(child)
            parents[child] = ()
            continue
        # one parent code per distinct parent set, scored for every child that needs it
        todo: dict[tuple[Item, ...], list[int]] = {}
        for c, p in cands:
            if (c, p) not in cache:
                todo.setdefault(p, []).append(c)
        for pset, children in todo.items():
            pc, pk = parent_code([gcodes[i][v] for i, v in pset],
                                 [gcards[i][v] for i, v in pset], n_rows)
            for c in children:
                cache[(c, pset)] = scored(c, pc, pk)
        utility = [score(c, p) - (offsets[c] if offsets is not None and use_prior else 0.0)
                   + (target_margin if first_in_every_set and any(i == first for i, _ in p)
                      else 0.0)
                   for c, p in cands]
        # numbered by the selections that spend (one with no candidate with parents is made
        # at random and recorded nowhere), out of the selections planned
        spent += 1
        name = f"structure {spent} (of up to {n_sel})"
        e0 = noise.selection_epsilon(eps_per_selection, bounded_range=bounded)
        if noiseless:
            idx = int(np.argmax(utility))
        else:
            accountant.check(eps_per_selection, name=name)
            mech = mech_cls(epsilon=e0, sensitivity=sensitivity, utility=utility,
                            random_state=random_state)
            idx = int(mech.randomise())
        accountant.spend(Step(
            name=name, mechanism=mech_name, epsilon=eps_per_selection,
            sensitivity=sensitivity, rho=noise.rho_of(eps_per_selection)
            if noise.zcdp else None,
            detail=f"chose 1 of {len(cands)} (column, parents) candidates by {how}"
            + (f"; mechanism epsilon {e0:.4g} (rho = epsilon^2 / {8 if bounded else 2})"
               if noise.zcdp else "")
            + (" [noiseless test mode]" if noiseless else ""),
        ))
        child, pset = cands[idx]
        order.append(child)
        parents[child] = pset
        logger.debug("structure step %d: column %d <- %s", step, child, pset)
    return Parents(order=tuple(order), parents=tuple(parents[j] for j in range(d)))


def _with_target(
    cands: list[tuple[int, tuple[Item, ...]]], target: int, gcards: Sequence[Sequence[int]],
    cards: Sequence[int], degree: int, max_parent_states: float, cell_limit: float,
    margin: float,
) -> list[tuple[int, tuple[Item, ...]]]:
    """The candidates of a search that keeps the target in every parent set.

    A parent set with the target stays; one without it stays only when ``margin`` > 0 and
    the target could not join it (the set has ``degree`` parents already, or with the
    target in its smallest variant it would pass ``max_parent_states`` or the
    theta-usefulness limit ``cell_limit``), so that a strong association the limits leave no
    room for beside the target (Adult's marital status and relationship at eps 0.1) may
    still be chosen; the caller scores those ``margin`` below the sets with the target.
    When no candidate has the target, all stay.  Public values only.
    """
    tcard = min(gcards[target])

    def has_target(pset: tuple[Item, ...]) -> bool:
        return any(i == target for i, _ in pset)

    def target_fits(child: int, pset: tuple[Item, ...]) -> bool:
        prod = math.prod(gcards[i][v] for i, v in pset) * tcard
        return len(pset) < degree and prod <= min(max_parent_states, cell_limit / cards[child])

    keep = [(c, p) for c, p in cands
            if has_target(p) or (margin > 0 and p and not target_fits(c, p))]
    return keep if any(has_target(p) for _, p in keep) else cands
