"""Fit a differentially private Bayesian network (PrivBayes family) to an encoded table.

:func:`fit_model` is the only function of the package that reads patient rows for
learning.  It plans the budget split before touching the data (noisy count, structure,
one conditional table per column), runs the structure search (:mod:`.structure`) and the
noisy tables (:mod:`.tables`, :mod:`.parameters`, :mod:`.marginals`) through one
:class:`~fhirsynth.privacy.budget.Accountant`, and returns a
:class:`~fhirsynth.model.FittedModel` that holds DP outputs only.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import warnings

import numpy as np
import pandas as pd

from fhirsynth.config import WIDE_CHILD_STATES, LearnConfig
from fhirsynth.domain import MISSING, Column, TableSpec
from fhirsynth.encode import encode
from fhirsynth.errors import ConfigError, LowUtilityWarning, TooFewRowsError
from fhirsynth.learn.marginals import (
    coarse_groups,
    parent_sums,
    rake_to_marginals,
    refine_with_coarse,
    set_bin_slopes,
)
from fhirsynth.learn.parameters import noise_step, noisy_joint, pooled_total, project_counts
from fhirsynth.learn.structure import (
    choose_first,
    greedy_structure,
    parent_code,
    selection_for,
)
from fhirsynth.learn.tables import (
    OneWay,
    adaptive_groups,
    auto_marginal_share,
    build_column,
    measure_column,
    noisy_totals,
    plan_one_way,
    plan_tables,
)
from fhirsynth.model import FittedModel, Node
from fhirsynth.privacy.budget import Accountant, PrivacyBudget
from fhirsynth.privacy.noise import Noise

__all__ = ["MAX_SEED", "check_degree", "check_random_state", "check_rows", "fit_model",
           "parent_variants"]

logger = logging.getLogger(__name__)

#: the mechanism and composition of every step of a ``_noiseless`` (test) fit's budget table
NOISELESS_MECHANISM = "none (noiseless test mode)"
NOISELESS_COMPOSITION = ("none: noiseless test mode (exact counts, best-score selections, no "
                         "noise drawn): not differentially private at any epsilon")

#: largest degree tried when LearnConfig.degree is None
AUTO_MAX_DEGREE = 4


def _runs(n_value: int, k: int, labels: list[str], nullable: bool) -> tuple[np.ndarray, list[str]]:
    mapping = np.empty(n_value + (1 if nullable else 0), np.int64)
    names = []
    for g, run in enumerate(np.array_split(np.arange(n_value), k)):
        mapping[run] = g
        a, b = labels[run[0]], labels[run[-1]]
        names.append(a if a == b else f"{a} .. {b}")
    if nullable:
        mapping[-1] = k
        names.append(MISSING)
    return mapping, names


def parent_variants(col: Column, groups: int) -> list[tuple[np.ndarray | None, list[str], str]]:
    """Public ways a column may enter a parent set: ``[(mapping, labels, suffix)]``.

    ``mapping[state] = group`` (None: the column as it is).  Numeric columns with more
    than ``groups`` value states enter as ``groups`` contiguous runs; numeric columns with
    more than 3 value states may also enter as 3 runs; nullable columns may also enter as
    present / ``<missing>``.  Small tables can then afford a parent where the full one
    would drown in noise.  Depends on the spec only.
    """
    labels = col.state_labels()
    n_value = len(labels) - (1 if col.nullable else 0)
    out: list[tuple[np.ndarray | None, list[str], str]] = []
    if col.kind == "numeric" and n_value > groups:
        m, names = _runs(n_value, groups, labels, col.nullable)
        out.append((m, names, f"~g{groups}"))
    else:
        out.append((None, labels, ""))
    if col.kind == "numeric" and n_value > 3:
        m, names = _runs(n_value, 3, labels, col.nullable)
        out.append((m, names, "~g3"))
    if col.nullable and n_value > 1:
        m = np.zeros(len(labels), np.int64)
        m[-1] = 1
        out.append((m, ["<present>", MISSING], "~present"))
    return out


def _declared(spec: TableSpec, active: list[str]) -> dict[str, list[str]]:
    """Public parent sets from the spec's ``structure: {column: [parents]}`` entry, and those
    its ``constraints`` imply for the columns the entry leaves undeclared."""
    raw = spec.options.get("structure") or {}
    if not isinstance(raw, dict):
        raise ConfigError("spec 'structure' must map a column to a list of parent columns")
    modelled = {c.name for c in spec.modelled}
    out: dict[str, list[str]] = {}
    for child, ps in raw.items():
        if not isinstance(ps, list):
            raise ConfigError(f"spec structure for column {child!r} must be a list of columns")
        for name in [child, *ps]:
            if name not in modelled:
                raise ConfigError(f"spec structure names {name!r}, which is not a modelled "
                                  "column")
        if child in active:
            out[str(child)] = [str(p) for p in ps if p in active and p != child]
    # the schema's row rules tell dependencies too (fhirsynth.constraints.implied_parents)
    from fhirsynth.constraints import implied_parents, parse_rules

    rules = parse_rules(spec, spec.options.get("constraints"))
    implied = implied_parents(rules, {str(c): [str(p) for p in ps] for c, ps in raw.items()})
    for child, ps in implied.items():
        kept = [p for p in ps if p in active]
        if child in active and kept:
            out[child] = kept
    return out


def _declared_items(
    child: int, ps: list[int], cards: list[int], gcards: list[list[int]], config: LearnConfig,
    cell_limit: float,
) -> tuple[tuple[int, int], ...]:
    """The finest variants of declared parents within ``max_parent_states``.

    Declared parents are public knowledge of how the data are recorded; they are kept as
    fine as the parent cap allows, without the theta-usefulness limit.
    """
    limit = config.max_parent_states
    combos = list(itertools.product(*(range(len(gcards[p])) for p in ps)))
    size = [math.prod(gcards[p][v] for p, v in zip(ps, c, strict=True)) for c in combos]
    fits = [i for i in range(len(combos)) if size[i] <= limit]
    best = max(fits, key=lambda i: size[i]) if fits else min(range(len(combos)),
                                                              key=lambda i: size[i])
    return tuple(sorted(zip(ps, combos[best], strict=True)))


def _child_groups(
    col: Column, card: int, cell_limit: float, config: LearnConfig
) -> np.ndarray | None:
    """Public groups over which a numeric child's tables are measured (None: every state).

    ``child_groups`` equal-width groups (``wide_child_groups`` for columns with more than
    :data:`~fhirsynth.config.WIDE_CHILD_STATES` states), when the fine child could not carry
    even one numeric parent in its ``parent_groups`` groups within the theta-usefulness
    limit ``cell_limit`` (from the noisy count and the budget plan).  Depends on public
    values only.
    """
    g = config.child_groups
    if g == 0 or config.marginal_share == 0 or cell_limit >= card * config.parent_groups:
        return None
    g = g if card <= WIDE_CHILD_STATES else config.wide_child_groups
    return coarse_groups(col, g, min_states=g + 1)


def _choose_noise(
    budget: PrivacyBudget, config: LearnConfig, noisy_n: float | None, eps_count: float,
    eps_struct: float, n_sel: int, active: list[Column],
) -> Noise:
    """The noise of every step after the patient count (:meth:`Noise.choose`).

    The planned number of noisy measurements: one table per column, a coarse histogram per
    wide numeric column, and, unless the fit will be noise-bound (theta-usefulness under
    Laplace noise, from the released count), one selection and one one-way histogram per
    column with parents.  Public values only.
    """
    d = len(active)
    e_col = (budget.epsilon - eps_count - eps_struct) / max(d, 1)
    saturated = (config.degree is None and noisy_n is not None and config.theta > 0
                 and noisy_n * e_col / config.theta < config.min_table_cells)
    n_coarse = (sum(coarse_groups(c) is not None for c in active)
                if config.coarse_share > 0 else 0)
    m = d + n_coarse + (0 if saturated or eps_struct == 0 else n_sel + max(d - 1, 0))
    return Noise.choose(budget, config.mechanism, reserved=eps_count, measurements=m)


def _measure_one_way_first(
    config: LearnConfig, codes: list[np.ndarray], cards: list[int], cols: list[Column],
    first: int, declared: dict[int, tuple[tuple[int, int], ...]], total: float,
    acc: Accountant, dp_rs: object, noiseless: bool, noise: Noise,
) -> list[OneWay | None]:
    """Noisy one-way histograms of the columns the structure search may add, measured first.

    ``total`` (0: none are measured) is the budget the plan leaves for the one-way
    histograms and the tables; each column gets what :func:`plan_tables` would give the
    one-way histograms of a column with parents (:func:`plan_one_way`: a wide numeric
    column's coarse histogram too), and keeps them whatever parents it gets.  A nullable
    column with values is planned as one whose missingness gets a table of its own (no
    coarse histogram), as it will if it gets parents.
    """
    d = len(cols)
    pre: list[OneWay | None] = [None] * d
    if total <= 0 or not config.prior_score:
        return pre
    coarse = [coarse_groups(c) if config.coarse_share > 0 and not (c.nullable and k > 2)
              else None for c, k in zip(cols, cards, strict=True)]
    shares = plan_one_way(total, cards, config, [g is not None for g in coarse])
    zero = np.zeros(codes[0].size, np.int64) if d else np.zeros(0, np.int64)
    kw = {"accountant": acc, "random_state": dp_rs, "noiseless": noiseless, "noise": noise}
    for j in range(d):
        e_fine, e_coarse = shares[j]
        if j == first or j in declared or e_fine <= 0:
            continue
        hist = noisy_joint(codes[j], cards[j], zero, 1, epsilon=e_fine,
                           name=f"marginal {cols[j].name}", **kw)[:, 0]
        g = coarse[j]
        if g is None:
            pre[j] = OneWay(hist, e_fine)
            continue
        coarse_hist = noisy_joint(g[codes[j]], int(g.max()) + 1, zero, 1, epsilon=e_coarse,
                                  name=f"marginal {cols[j].name} (coarse)", **kw)[:, 0]
        pre[j] = OneWay(hist, e_fine, coarse_hist, e_coarse, g)
    return pre


def _prior(one: OneWay, groups: np.ndarray | None, k: int, total: float | None,
           noise: Noise, hist: np.ndarray | None = None,
           coarse: np.ndarray | None = None) -> np.ndarray:
    """Released one-way histograms as a distribution over the child states the search
    scores (projected onto the released patient count ``total``; None: their own noisy
    total).  A coarse histogram is merged in by inverse variance (:func:`refine_with_coarse`):
    for a wide numeric column it carries most of that column's one-way budget.  ``hist`` and
    ``coarse`` stand in for ``one``'s own arrays (the bootstrap of :func:`_prior_offsets`)."""
    hist = one.hist if hist is None else hist
    if one.coarse is not None and one.groups is not None:
        p = refine_with_coarse(hist, _variance(noise, one.eps),
                               one.coarse if coarse is None else coarse,
                               _variance(noise, one.eps_coarse), one.groups, total)
    else:
        p = project_counts(hist, total)
    if groups is not None:
        p = np.bincount(groups, weights=p, minlength=k)
    return p / p.sum() if p.sum() > 0 else np.full(k, 1.0 / k)


def _variance(noise: Noise, share: float) -> float:
    """Noise variance per cell of a count measured with budget share ``share``."""
    return 2.0 / noise.effective(share) ** 2


#: draws of the parametric bootstrap of :func:`_prior_offsets`
OFFSET_DRAWS = 20


def _prior_offsets(
    pre: list[OneWay | None], priors: list[np.ndarray | None],
    cards: list[int], cgroups: list[np.ndarray | None], scards: list[int],
    noisy_n: float | None, noise: Noise, rng: np.random.Generator,
) -> list[float]:
    """Expected offset ``n * TVD(q, exact)`` of each child's prior score, from released values.

    ``prior_score`` exceeds the exact-marginal score by up to that much for every parent
    set of a child, so children with noisier histograms (many states, little budget) would
    be favoured for it.  The offset is estimated by a parametric bootstrap: the released
    estimate ``q`` is noised again as it was measured (same mechanism and scale, the coarse
    histogram too) and projected, and ``n * TVD`` to ``q`` averaged over
    :data:`OFFSET_DRAWS` draws.  Only released values and data-independent randomness are
    read; subtracting a constant per child leaves the score's sensitivity unchanged.
    Measured (10 seeds): Adult at eps 0.1 TSTR 0.843 -> 0.852, 3-way TVD 0.1811 -> 0.1799;
    stroke at eps 1 (30 seeds) TSTR 0.674 -> 0.682; model bias unchanged elsewhere.
    """
    out = []
    for j, p in enumerate(pre):
        if p is None or priors[j] is None:
            out.append(0.0)
            continue
        # released values only: the noisy count, else the histogram's own noisy total
        n_hat = noisy_n if noisy_n is not None else max(float(p.hist.sum()), 1.0)
        fine = _prior(p, None, cards[j], noisy_n, noise) * n_hat
        coarse = None if p.groups is None else np.bincount(p.groups, weights=fine)
        draws = []
        for _ in range(OFFSET_DRAWS):
            again = fine + _draw(noise, p.eps, fine.size, rng)
            c2 = None if coarse is None else coarse + _draw(noise, p.eps_coarse,
                                                            coarse.size, rng)
            q2 = _prior(p, cgroups[j], scards[j], noisy_n, noise, again, c2)
            draws.append(0.5 * n_hat * float(np.abs(q2 - priors[j]).sum()))
        out.append(float(np.mean(draws)))
    return out


def _draw(noise: Noise, share: float, size: int, rng: np.random.Generator) -> np.ndarray:
    """Noise as a count measured with budget share ``share`` gets (data-independent)."""
    if noise.zcdp:
        return rng.normal(0.0, noise.sigma(share), size)
    return rng.laplace(0.0, 1.0 / share, size)


#: the largest seed: diffprivlib's noise takes a numpy RandomState, seeded by 32 bits
MAX_SEED = 2**32 - 1


def check_random_state(random_state: object, name: str = "random_state") -> int | None:
    """``random_state`` as an int in [0, :data:`MAX_SEED`], or None; else a ConfigError
    naming ``name`` (numpy's own errors name no argument)."""
    if random_state is None:
        return None
    if isinstance(random_state, bool) or not isinstance(random_state, int | np.integer):
        raise ConfigError(f"{name} ({random_state!r}) must be an integer or None")
    if not 0 <= int(random_state) <= MAX_SEED:
        raise ConfigError(f"{name} ({int(random_state)}) must lie in [0, 2**32 - 1], or be "
                          "None (fresh randomness from the operating system)")
    return int(random_state)


def _rngs(random_state: int | None) -> tuple[np.random.Generator, object]:
    seed = check_random_state(random_state)
    if seed is None:
        return np.random.default_rng(), None
    return np.random.default_rng(seed), np.random.RandomState(seed)


def check_rows(n: int, config: LearnConfig) -> None:
    """Refuse a table of ``n`` rows below ``min_rows`` (unless ``allow_few_rows``).

    Callers that charge a ledger call it before the charge: a refused fit spends nothing.
    """
    if n < config.min_rows and not config.allow_few_rows:
        raise TooFewRowsError(
            f"need at least {config.min_rows} rows to fit a DP model (min_rows); got {n}")


def check_degree(spec: TableSpec, config: LearnConfig) -> None:
    """Refuse a ``degree`` the spec cannot hold (more parents than other varying columns).

    From the spec alone (each modelled column's public number of states), so callers that
    charge a ledger call it before the charge: a refused fit spends nothing.
    """
    if config.degree is None:
        return
    d = sum(1 for c in spec.modelled if c.n_states >= 2)
    if config.degree > max(d - 1, 0):
        raise ConfigError(
            f"degree ({config.degree}) must be at most the number of varying modelled "
            f"columns minus one ({max(d - 1, 0)})")


def fit_model(
    spec: TableSpec,
    table: pd.DataFrame,
    budget: PrivacyBudget,
    config: LearnConfig | None = None,
    *,
    random_state: int | None = None,
    version: str = "",
    _noiseless: bool = False,
) -> tuple[FittedModel, Accountant]:
    """Fit the network; return the model and the accountant that recorded every step.

    ``random_state`` None draws every random choice from the operating system (diffprivlib's
    secure default for the noise); an integer makes the fit reproducible (tests and internal
    runs only).  ``_noiseless`` is a test hook: exact counts and best-score selections,
    with the steps still recorded; no public entry point sets it.
    """
    config = config or LearnConfig()
    enc = encode(spec, table)
    n = enc.n_rows
    if n < config.min_rows:
        check_rows(n, config)
        warnings.warn(
            f"fitting {n} training rows (a release's held-out patients are not among them), "
            f"below min_rows={config.min_rows}: the output will be dominated by noise",
            LowUtilityWarning, stacklevel=2)
    rng, dp_rs = _rngs(random_state)
    Noise.for_budget(budget, config.mechanism)  # validates before anything is read
    # the patient count is always a pure epsilon-DP Laplace step; the noise of the rest is
    # chosen after it (see below)
    noise = Noise("laplace", budget.epsilon)
    acc = Accountant(budget)
    cols = spec.modelled
    active = [j for j, k in enumerate(enc.cards) if k >= 2]
    d = len(active)
    degree = AUTO_MAX_DEGREE if config.degree is None else config.degree
    check_degree(spec, config)
    degree = min(degree, max(d - 1, 0))
    eps = budget.epsilon
    eps_count = config.count_share * eps if d else 0.0
    declared_names = _declared(spec, [cols[j].name for j in active])
    n_free = d - len(declared_names)
    n_sel = max(n_free - 1, 0) if n_free else 0
    # the share pays for d - 1 selections; declared (public) parents need fewer
    eps_struct = (config.structure_share * eps * n_sel / (d - 1)
                  if n_sel and degree >= 1 else 0.0)

    noisy_n = float(n)
    if eps_count > 0:
        acc.check(eps_count, name="patient count")
        if not _noiseless:
            noisy_n = float(noise.add(np.array([float(n)]), eps_count, dp_rs)[0])
        acc.spend(noise_step(noise, "patient count", eps_count,
                             "noisy number of patients (sets table-size limits)"))
    noisy_n = max(noisy_n, 1.0)

    codes = [enc.codes[:, j].astype(np.int64) for j in active]
    cards = [enc.cards[j] for j in active]
    variants = [parent_variants(cols[j], config.parent_groups) for j in active]
    gcodes = [[c if m is None else m[c] for m, _, _ in v] for c, v in zip(codes, variants,
                                                                          strict=True)]
    gcards = [[len(lab) for _, lab, _ in v] for v in variants]
    noise = _choose_noise(budget, config, noisy_n if eps_count > 0 and not _noiseless else None,
                          eps_count, eps_struct, n_sel, [cols[j] for j in active])
    if noise.zcdp:
        acc.composition = noise.composition(eps_count)
        acc.rho_total = noise.rho
    # the signal rules below read epsilon as a noise scale: under zCDP, the epsilon of a
    # Laplace count with the same variance
    eps_params_est = noise.effective((eps - eps_count - eps_struct) / max(d, 1))
    if config.marginal_share is None:
        config = dataclasses.replace(config, marginal_share=auto_marginal_share(
            noisy_n if eps_count > 0 and not _noiseless else None, eps_params_est))
    cell_limit = (noisy_n * eps_params_est / config.theta
                  if config.theta > 0 and eps_count > 0 and not _noiseless else math.inf)
    # numeric children with many states: tables over public groups (child_groups) while
    # the fine child could not carry one grouped numeric parent (theta-usefulness)
    cgroups = [_child_groups(cols[j], cards[i], cell_limit, config)
               for i, j in enumerate(active)]
    scodes = [c if g is None else g[c] for c, g in zip(codes, cgroups, strict=True)]
    scards = [k if g is None else int(g.max()) + 1 for k, g in zip(cards, cgroups, strict=True)]

    if (config.degree is None and cell_limit < config.min_table_cells and eps_struct > 0):
        # too few noisy rows per unit of budget for any useful table with parents (public:
        # noisy count, budget, spec): no search; its share goes to the one-way tables
        logger.info("cell limit %.1f below min_table_cells: fitting without structure",
                    cell_limit)
        eps_struct = 0.0
    # noise-bound (no table with parents would be useful): every column is on its own
    saturated = config.degree is None and cell_limit < config.min_table_cells
    names = [cols[j].name for j in active]
    declared = {names.index(c): _declared_items(names.index(c), [names.index(p) for p in ps],
                                                cards, gcards, config, cell_limit)
                for c, ps in declared_names.items()}
    first = choose_first(d, declared, names.index(spec.target)
                         if config.target_first and spec.target in names else None, rng)
    # one-way histograms of the columns the selections may add, measured first: their
    # released estimates halve the sensitivity of the structure score (prior_score)
    pre = _measure_one_way_first(
        config, codes, cards, [cols[j] for j in active], first, declared,
        eps - eps_count - eps_struct if eps_struct > 0 and n_sel > 0 else 0.0,
        acc, dp_rs, _noiseless, noise)
    # the released count when there is one; else each histogram's own noisy total (the
    # exact row count must not reach the score)
    n_released = noisy_n if eps_count > 0 and not _noiseless else None
    priors = [None if p is None else _prior(p, cgroups[j], scards[j], n_released, noise)
              for j, p in enumerate(pre)]
    offsets = None if _noiseless else _prior_offsets(pre, priors, cards, cgroups, scards,
                                                     n_released, noise, rng)
    selection = selection_for(config.selection, noise)
    if d >= 2 and (eps_struct > 0 or declared):
        structure = greedy_structure(
            scodes, scards, gcodes, gcards, degree=degree,
            max_parent_states=config.max_parent_states, cell_limit=cell_limit,
            max_candidates=config.max_candidates,
            eps_per_selection=eps_struct / n_sel if n_sel else 0.0,
            accountant=acc, rng=rng, random_state=dp_rs, noiseless=_noiseless,
            declared=declared,
            first=first if first >= 0 else None,
            first_in_every_set=(config.target_parent and config.target_first
                                and spec.target in names),
            noise=noise, priors=priors, offsets=offsets, selection=selection,
            target_margin=config.target_margin * noisy_n if n_released is not None else 0.0)
        order, psets = list(structure.order), list(structure.parents)
    else:
        order, psets = list(rng.permutation(d)), [()] * d

    pc = [parent_code([gcodes[i][v] for i, v in psets[j]], [gcards[i][v] for i, v in psets[j]],
                      n) for j in range(d)]
    # missingness gets a table of its own only where it can depend on parents
    split_missing = [cols[active[j]].nullable and cards[j] > 2 and pc[j][1] > 1
                     for j in range(d)]
    groups = [coarse_groups(cols[active[j]]) if config.coarse_share > 0 else None
              for j in range(d)]
    tgroups = [cgroups[j] if pc[j][1] > 1 and (config.rake_missing or not split_missing[j])
               else None for j in range(d)]
    tcards = [cards[j] if tgroups[j] is None else scards[j] for j in range(d)]
    pre_eps = [0.0 if p is None else p.spent for p in pre]
    # the one-way histograms measured first are part of what the plan splits
    e_left = eps - acc.spent_epsilon + math.fsum(pre_eps)
    equal = saturated and not declared_names
    plan_kw = {"equal": equal, "pre": pre_eps}
    eps_tables, eps_margs, eps_coarse = plan_tables(
        e_left, order, cards, pc, config, split_missing, [g is not None for g in groups],
        tcards, **plan_kw)
    adapt: list[np.ndarray | None] = [None] * d
    # the grouping depends on the row count: only on a released (noisy) one
    if config.child_theta > 0 and not _noiseless and eps_count > 0:
        for i, j in enumerate(order):
            if pc[j][1] == 1 and pre[j] is None:
                adapt[j] = adaptive_groups(cols[active[j]], noisy_n,
                                           noise.effective(eps_tables[i] + eps_coarse[i]),
                                           config.child_theta)
        if any(a is not None for a in adapt):
            groups = [None if adapt[j] is not None else groups[j] for j in range(d)]
            eps_tables, eps_margs, eps_coarse = plan_tables(
                e_left, order, cards, pc, config, split_missing,
                [g is not None for g in groups], tcards, **plan_kw)

    nodes: list[Node] = []
    for j in range(len(cols)):
        if enc.cards[j] < 2:
            nodes.append(Node(cols[j].name, cols[j].state_labels(), (), np.ones((1, 1))))
    used_as_parent = {iv for ps in psets for iv in ps}
    targets: dict[str, np.ndarray] = {}
    meas = [measure_column(codes[j] if adapt[j] is None else adapt[j][codes[j]],
                    cards[j] if adapt[j] is None else int(adapt[j].max()) + 1, pc[j],
                    cols[active[j]], e_j, e_m, e_c, groups[j], config, acc, dp_rs, _noiseless,
                    tgroups[j], noise, pre[j])
            for j, e_j, e_m, e_c in zip(order, eps_tables, eps_margs, eps_coarse, strict=True)]
    total = None
    if not _noiseless and config.pool_total:
        pool = [t for m in meas for t in noisy_totals(m)]
        if eps_count > 0:
            pool.append((noisy_n, 2.0 / noise.effective(eps_count) ** 2))
        total = pooled_total(pool)
    extra: dict[int, list[tuple[np.ndarray, float]]] = {j: [] for j in range(d)}
    for c, m in zip(order, meas, strict=True):
        if config.backoff:
            m["pcards"] = [gcards[i][v] for i, v in psets[c]]
        if not config.pool_parents or m["noisy_m"] is not None:
            continue
        pcards = [gcards[i][v] for i, v in psets[c]]
        for pos, (i, v) in enumerate(psets[c]):
            if variants[i][v][0] is None and not split_missing[i] and adapt[i] is None:
                got = parent_sums(m["noisy"], m["e_full"], pcards, pos)
                if got is not None:
                    extra[i].append(got)
    for j, m in zip(order, meas, strict=True):
        col = cols[active[j]]
        parents = tuple(cols[active[i]].name + variants[i][v][2] for i, v in psets[j])
        cpd, target = build_column(m, total, extra[j])
        if adapt[j] is not None:
            # measured over groups of states: each group's mass shared evenly within it
            size = np.bincount(adapt[j])
            cpd = cpd[adapt[j]] / size[adapt[j]][:, None]
        if target is not None:
            targets[col.name] = target
        nodes.append(Node(col.name, col.state_labels(), parents, cpd))
        for v, (mapping, labels, suffix) in enumerate(variants[j]):
            if (j, v) in used_as_parent and mapping is not None:
                det = np.zeros((len(labels), mapping.size))
                det[mapping, np.arange(mapping.size)] = 1.0
                nodes.append(Node(col.name + suffix, labels, (col.name,), det, col.name,
                                  mapping))
    sample = None
    if targets:
        sample = rake_to_marginals(nodes, targets, rng, frozenset(
            cols[active[j]].name for j in range(d) if split_missing[j]))
    set_bin_slopes(nodes, cols, rng, sample)
    info = {
        "n_patients_noisy": None if eps_count == 0 else round(noisy_n),
        "degree_max": degree,
        "degree_used": max((len(p) for p in psets), default=0),
        "declared_structure": declared_names,
        "constant_columns": [cols[j].name for j in range(len(cols)) if enc.cards[j] < 2],
        "config": {k: getattr(config, k) for k in config.__dataclass_fields__},
        "noise": noise.kind,
        "selection": selection,
        "delta_note": ("delta is spent by the conversion from zCDP to (epsilon, delta)-DP"
                       if noise.zcdp else
                       "delta is not used by the Laplace mechanism; it is left unspent"),
        "missing": "missing values are a state of their own of every nullable column",
    }
    if _noiseless:
        info["noiseless_test_mode"] = True
        # the steps were planned and checked as a real fit's, but nothing was drawn: the
        # budget table must not read as if Laplace or Gaussian noise had spent the epsilon
        acc.steps = [dataclasses.replace(s, mechanism=NOISELESS_MECHANISM) for s in acc.steps]
        acc.composition = NOISELESS_COMPOSITION
    logger.info("fitted %d columns, %d steps, epsilon spent %g", len(cols), len(acc.steps),
                acc.spent_epsilon)
    return FittedModel(spec=spec, nodes=nodes, budget=acc.table(), info=info,
                       version=version), acc
