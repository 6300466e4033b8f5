"""Per-column noisy measurements of the fit and the tables built from them.

This module owns the budget plan of the parameter step (table, one-way and coarse
histograms per column), the noisy measurements of one column (recorded steps), the choice
of coarser groups for a numeric column that would drown in noise, and the post-processing
that turns a column's released noisy arrays into its conditional table and one-way target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fhirsynth.config import LearnConfig
from fhirsynth.domain import Column
from fhirsynth.learn.marginals import coarse_groups, combine_marginal
from fhirsynth.learn.parameters import (
    conditional_from_counts,
    conditional_with_missing,
    noisy_joint,
    split_budget,
)
from fhirsynth.privacy.budget import Accountant
from fhirsynth.privacy.noise import Noise

__all__ = ["OneWay", "adaptive_groups", "auto_marginal_share", "build_column",
           "measure_column", "noisy_totals", "plan_one_way", "plan_tables"]

#: marginal_share where the tables are noise-bound and where they are not (see below)
SHARE_NOISY, SHARE_CLEAR = 0.6, 0.3
#: signal (noisy rows x epsilon of one column) below / above which those shares apply
SIGNAL_NOISY, SIGNAL_CLEAR = 400.0, 3000.0


@dataclass(frozen=True)
class OneWay:
    """A column's one-way histograms measured before the structure search (released).

    ``hist`` (every state) was measured with budget share ``eps``; a wide numeric column's
    ``coarse`` histogram over its public ``groups`` of states with ``eps_coarse``.
    """

    hist: np.ndarray
    eps: float
    coarse: np.ndarray | None = None
    eps_coarse: float = 0.0
    groups: np.ndarray | None = None

    @property
    def spent(self) -> float:
        return self.eps + self.eps_coarse


def auto_marginal_share(noisy_n: float | None, eps_per_column: float) -> float:
    """``marginal_share`` from the signal per column, ``noisy_n * eps_per_column``.

    Where each column's tables carry a few hundred noisy rows per unit of noise scale, the
    noise of their row sums is large and a separate one-way histogram pays; where they
    carry thousands, the row sums are precise and the budget is better spent on the
    association.  Measured on Adult and stroke (docs/learning.md): 0.6 at a signal of
    400 or less, 0.3 at 3,000 or more, log-linear between.  ``noisy_n`` None (no noisy
    count was released): 0.6.  Depends on released and public values only.
    """
    if noisy_n is None or eps_per_column <= 0:
        return SHARE_NOISY
    s = noisy_n * eps_per_column
    t = float(np.clip(np.log(s / SIGNAL_NOISY) / np.log(SIGNAL_CLEAR / SIGNAL_NOISY), 0, 1))
    return SHARE_NOISY + t * (SHARE_CLEAR - SHARE_NOISY)


def plan_tables(
    total: float, order: list[int], cards: list[int], pc: list[tuple[np.ndarray, int]],
    config: LearnConfig, split_missing: list[bool], coarse: list[bool],
    tcards: list[int] | None = None, *, equal: bool = False,
    pre: list[float] | None = None,
) -> tuple[list[float], list[float], list[float]]:
    """Epsilon of each column's table(s), one-way histogram and coarse histogram.

    ``marginal_share`` of the total is split over the columns' one-way histograms in
    proportion to sqrt(states), the rest over the tables in proportion to sqrt(cells).  A
    column without parents measures its marginal in its table, and a nullable column with
    a separate missing-or-not table is not raked (a noisy histogram over many sparse value
    cells would push mass into structurally missing cells): both get both parts in their
    tables.  A column with a coarse histogram (``coarse[j]``) spends ``coarse_share`` of
    its one-way part on it.  ``tcards``: states of each column's table (its groups when
    the table is measured over groups; default ``cards``).  The parts add up to ``total``.

    ``equal``: the tables' part is split in equal shares (the one-way part keeps the sqrt
    rule, and a column without parents adds it to its table).  For a fit with no useful table
    with parents (the noise-bound regime where the structure search is skipped), each column
    is an independent histogram whose error saturates when noise dominates: the sqrt rule,
    optimal while error grows linearly with the noise, starves the small columns that could
    still be estimated, while equal shares (the independent baseline's) starve the large
    ones.  The blend measured best (model bias, mean 2-way TVD of 20,000-30,000 rows against
    the training rows: stroke at eps 0.1 0.127 -> 0.121 (all equal: 0.132); Synthea 300 at
    eps 1 0.471 -> 0.465 (all equal: 0.471)).

    ``pre[j]`` > 0: column j's one-way histograms (fine, and coarse where planned) were
    measured before the structure search with that epsilon in all (:func:`plan_one_way`,
    with ``total`` then the budget left for the one-way part and the tables together, those
    histograms included); the returned one-way and coarse epsilons are 0 and the rest of
    its one-way part (``total`` may have grown by selections that spent nothing) goes to
    its tables.
    """
    if not order:
        return [], [], []
    e_marg_total = total * config.marginal_share
    tcards = cards if tcards is None else tcards
    tables = split_budget(total - e_marg_total,
                          [1 if equal else tcards[j] * pc[j][1] for j in order])
    margs = (split_budget(e_marg_total, [cards[j] for j in order])
             if e_marg_total > 0
             else [0.0] * len(order))
    coarses = [0.0] * len(order)
    for i, j in enumerate(order):
        if pre is not None and pre[j] > 0:
            tables[i] += max(margs[i] - pre[j], 0.0)
            margs[i] = 0.0
            continue
        if coarse[j] and not split_missing[j]:
            coarses[i] = margs[i] * config.coarse_share
            margs[i] -= coarses[i]
        if pc[j][1] == 1 or split_missing[j]:
            tables[i] += margs[i]
            margs[i] = 0.0
    return tables, margs, coarses


def plan_one_way(
    total: float, cards: list[int], config: LearnConfig, coarse: list[bool],
) -> list[tuple[float, float]]:
    """Epsilon of each column's fine and coarse one-way histograms as :func:`plan_tables`
    plans them for a column with parents (``marginal_share`` of ``total`` split in
    proportion to sqrt(states); ``coarse_share`` of that for the coarse histogram where
    ``coarse[j]``, else 0).  Public values only: used to measure the histograms before the
    structure search, whose score reads them."""
    if config.marginal_share == 0 or not cards:
        return [(0.0, 0.0)] * len(cards)
    margs = split_budget(total * config.marginal_share, cards)
    return [(m * (1.0 - config.coarse_share), m * config.coarse_share) if c else (m, 0.0)
            for m, c in zip(margs, coarse, strict=True)]


def measure_column(
    child: np.ndarray, card: int, pc: tuple[np.ndarray, int], col: Column, e_rest: float,
    e_marg: float, e_coarse: float, groups: np.ndarray | None, config: LearnConfig,
    acc: Accountant, dp_rs: object, noiseless: bool, tgroups: np.ndarray | None = None,
    noise: Noise | None = None, pre: tuple[np.ndarray, float] | None = None,
) -> dict[str, object]:
    """Noisy tables of one column (and its one-way histogram when it has parents).

    ``e_marg`` measures the one-way histogram (columns with parents); of ``e_rest``, for a
    nullable column with two or more values, ``missing_share`` measures the (present,
    missing) x parents table and the remainder the full table (with parents and
    ``rake_missing``: ``marginal_share`` of that remainder measures a one-way histogram).
    ``tgroups`` (public, ``<missing>`` last in its own group): the tables are measured
    over these groups of the child's states; the one-way histograms keep every state.
    ``pre``: the column's one-way histograms measured before the structure search; they
    stand for the one-way and coarse histograms (none is measured here).
    The epsilons are budget shares; ``noise`` (default Laplace) turns them into noise.
    Returns the released noisy arrays and, per array, the epsilon of a Laplace count with
    the same noise variance (None: noiseless test mode); :func:`build_column` turns them
    into a conditional table.
    """
    pcode, pcard = pc
    noise = noise or Noise("laplace", 1.0)
    kw = {"accountant": acc, "random_state": dp_rs, "noiseless": noiseless, "noise": noise}

    def eps(e: float) -> float | None:
        return None if noiseless else noise.effective(e)

    out: dict[str, object] = {"noisy_m": None, "direct": None, "coarse": None,
                              "has_parents": pcard > 1, "tgroups": tgroups}
    fine = child
    if tgroups is not None:
        child, card = tgroups[child], int(tgroups.max()) + 1
    if col.nullable and card > 2 and pcard > 1:
        e_miss = e_rest * config.missing_share
        e_full = e_rest - e_miss
        if config.rake_missing and pcard > 1 and pre is None:
            # the values' part pays for a histogram of the values (raked to later)
            e_marg = e_full * config.marginal_share
            e_full -= e_marg
        ind = (child == card - 1).astype(np.int64)
        out["noisy_m"] = noisy_joint(ind, 2, pcode, pcard, epsilon=e_miss,
                                     name=f"table {col.name} (missing or not)", **kw)
        out["e_miss"] = eps(e_miss)
    else:
        e_full = e_rest
    out["noisy"] = noisy_joint(child, card, pcode, pcard, epsilon=e_full,
                               name=f"table {col.name}", **kw)
    out["e_full"] = eps(e_full)
    child, card = fine, (card if tgroups is None else tgroups.size)
    if pre is not None:
        out["direct"], out["e_marg"] = pre.hist, eps(pre.eps)
        if pre.coarse is not None:
            out["coarse"], out["e_coarse"] = pre.coarse, eps(pre.eps_coarse)
            out["groups"] = pre.groups
    elif e_marg > 0:
        out["direct"] = noisy_joint(child, card, np.zeros(child.size, np.int64), 1,
                                    epsilon=e_marg, name=f"marginal {col.name}", **kw)[:, 0]
        out["e_marg"] = eps(e_marg)
    if e_coarse > 0 and groups is not None:
        out["coarse"] = noisy_joint(groups[child], int(groups.max()) + 1,
                                    np.zeros(child.size, np.int64), 1, epsilon=e_coarse,
                                    name=f"marginal {col.name} (coarse)", **kw)[:, 0]
        out["e_coarse"] = eps(e_coarse)
        out["groups"] = groups
    return out


def noisy_totals(meas: dict[str, object]) -> list[tuple[float, float]]:
    """(noisy total, variance) of every table of one column (Laplace: 2 cells / eps^2)."""
    out = []
    for key, e_key in (("noisy_m", "e_miss"), ("noisy", "e_full"), ("direct", "e_marg"),
                       ("coarse", "e_coarse")):
        arr = meas.get(key)
        e = meas.get(e_key)
        if arr is not None and e:
            a = np.asarray(arr)
            out.append((float(a.sum()), 2.0 * a.size / float(e) ** 2))
    return out


def build_column(
    meas: dict[str, object], total: float | None, extra: list[tuple[np.ndarray, float]],
) -> tuple[np.ndarray, np.ndarray | None]:
    """Conditional table and one-way target of one column from its noisy tables.

    ``extra``: estimates of the column's histogram from the tables where it is a parent.
    """
    noisy = meas["noisy"]
    pcards = meas.get("pcards")
    if meas["noisy_m"] is not None:
        cpd = conditional_with_missing(meas["noisy_m"], noisy, meas["e_miss"], meas["e_full"],
                                       total, pcards)
    else:
        cpd = conditional_from_counts(noisy, meas["e_full"], total, pcards)
    kw: dict[str, object] = {"extra": extra}
    if meas["coarse"] is not None:
        kw.update(coarse=meas["coarse"], eps_coarse=meas["e_coarse"], groups=meas["groups"])
    if not meas["has_parents"] and (extra or meas["coarse"] is not None
                                    or meas["direct"] is not None) \
            and meas["noisy_m"] is None:
        target = combine_marginal(meas["direct"], meas.get("e_marg"), noisy, meas["e_full"],
                                  total, **kw)
        return target[:, None], None
    tg = meas.get("tgroups")
    if meas["direct"] is None:
        if tg is not None:
            size = np.bincount(tg).astype(float)
            cpd = cpd[tg] / size[tg][:, None]
        return cpd, None
    if tg is not None:
        return _expand(cpd, tg, meas, total, kw)
    if meas["noisy_m"] is not None:
        return cpd, _missing_target(meas, total)
    return cpd, combine_marginal(meas["direct"], meas["e_marg"], noisy, meas["e_full"], total,
                                 **kw)


def _expand(
    cpd: np.ndarray, tg: np.ndarray, meas: dict[str, object], total: float | None,
    kw: dict[str, object],
) -> tuple[np.ndarray, np.ndarray]:
    """Fine table and target of a child whose table was measured over groups ``tg``.

    The target comes from the fine one-way histogram (with the coarse one and the parent
    sums); each group's conditional mass is shared among its states in proportion to the
    target.  Post-processing only.
    """
    direct, e_d = meas["direct"], meas["e_marg"]
    if meas["noisy_m"] is not None:
        # missing share from the missing-or-not table and the histogram's last cell
        rows_m = meas["noisy_m"].sum(axis=1)
        miss_t = float(rows_m[1] / max(rows_m.sum(), 1.0))
        if e_d is not None and meas["e_miss"] is not None:
            w1 = meas["e_miss"] ** 2 / meas["noisy_m"].shape[1]
            n_hat = total if total is not None else rows_m.sum()
            miss_t = (w1 * rows_m[1] + e_d**2 * direct[-1]) / (w1 + e_d**2) / max(n_hat, 1.0)
        miss = float(np.clip(miss_t, 0.0, 1.0))
        values = combine_marginal(None, None, direct[:-1, None], e_d,
                                  None if total is None else total * (1.0 - miss))
        target = np.append(values * (1.0 - miss), miss)
    else:
        target = combine_marginal(None, None, direct[:, None], e_d, total, **kw)
    gsum = np.bincount(tg, weights=target, minlength=cpd.shape[0])
    size = np.bincount(tg, minlength=cpd.shape[0]).astype(float)
    share = np.where(gsum[tg] > 0, target / np.where(gsum[tg] > 0, gsum[tg], 1.0),
                     1.0 / size[tg])
    return cpd[tg] * share[:, None], target


def _missing_target(meas: dict[str, object], total: float | None) -> np.ndarray:
    """One-way target of a nullable column with a missing-or-not table.

    The share missing comes from the missing-or-not table's row sums, combined with the
    histogram's ``<missing>`` cell; the distribution of the values from the histogram's
    value cells and the value table's row sums.  Raking uses the values' part only and
    keeps P(missing | parents), so structural missingness survives.
    """
    direct, noisy, noisy_m = meas["direct"], meas["noisy"], meas["noisy_m"]
    e_d, e_f, e_m = meas["e_marg"], meas["e_full"], meas["e_miss"]
    rows_m = noisy_m.sum(axis=1)
    if e_d is None or e_m is None:
        miss = rows_m[1] / max(rows_m.sum(), 1.0)
    else:
        w1 = e_m**2 / noisy_m.shape[1]
        w2 = e_d**2
        n_hat = total if total is not None else rows_m.sum()
        miss = (w1 * rows_m[1] + w2 * direct[-1]) / (w1 + w2) / max(n_hat, 1.0)
    miss = float(np.clip(miss, 0.0, 1.0))
    values = combine_marginal(direct[:-1], e_d, noisy[:-1], e_f,
                              None if total is None else total * (1.0 - miss))
    return np.append(values * (1.0 - miss), miss)


def adaptive_groups(
    col: Column, noisy_n: float, e_table: float, child_theta: float
) -> np.ndarray | None:
    """Coarser groups of a numeric column whose fine histogram would drown in noise.

    The largest of 16, 8, 4 or 2 equal-width groups (fewer than the column's value
    states) with ``noisy_n * e_table / groups >= child_theta``; None when the fine
    histogram already passes or the column is not numeric.  Depends only on the spec,
    the budget plan and the noisy count.
    """
    n_value = col.n_states - (1 if col.nullable else 0)
    if col.kind != "numeric" or noisy_n * e_table / n_value >= child_theta:
        return None
    for g in (16, 8, 4, 2):
        if g < n_value and (noisy_n * e_table / g >= child_theta or g == 2):
            return coarse_groups(col, g, min_states=g + 1)
    return None
