"""Frozen, keyword-only configuration of the differentially private Bayesian network.

:class:`LearnConfig` holds every knob of a fit: how the total budget is split between the
noisy patient count, the structure search and the noisy conditional tables, how large a
parent set may be, and the minimum cohort size.  Values are validated once, here, and every
message names the field and its value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from fhirsynth.errors import ConfigError

#: a numeric child with more value states than this is grouped into ``wide_child_groups``
WIDE_CHILD_STATES = 32

__all__ = ["LearnConfig"]


def _share(name: str, value: float, *, zero_ok: bool) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    lo_ok = ok and (value >= 0 if zero_ok else value > 0)
    if not (lo_ok and value < 1):
        rng = "[0, 1)" if zero_ok else "(0, 1)"
        raise ConfigError(f"{name} ({value!r}) must be a number in {rng}")


@dataclass(frozen=True, kw_only=True)
class LearnConfig:
    """How a fit spends its budget and shapes its network.

    Parameters
    ----------
    structure_share : float, in [0, 1), default 0.1
        Share of epsilon for the greedy structure search (exponential mechanism, one
        selection per column after the first).  0 gives a network without edges (every
        column independent); the share is then given to the conditional tables.
    count_share : float, in [0, 1), default 0.02
        Share of epsilon for one noisy patient count (Laplace, sensitivity 1).  The count
        sets the theta-usefulness limit on table sizes and, when ``degree`` is None, the
        degree.  0 skips the count: ``degree`` must then be given and only
        ``max_parent_states`` limits the tables.
    degree : int or None, default None
        Largest number of parents of a column (PrivBayes' k).  None: up to 4, each
        candidate limited by theta-usefulness computed from the noisy count.
    max_parent_states : int, >= 2, default 256
        Largest product of the (coarsened) domain sizes of a parent set.
    parent_groups : int, >= 2, default 8
        Numeric columns with more states than this enter a parent set coarsened into this
        many contiguous groups of states (plus ``<missing>``); as a child they keep every
        state.  Grouping is public: it depends on the spec only.
    theta : float, >= 0, default 4.0
        Theta-usefulness: a (child, parents) table is a candidate only if
        ``noisy_count * epsilon_per_table / cells >= theta``.  0 disables the filter.
    min_table_cells : int, >= 1, default 16
        When ``degree`` is None and theta-usefulness (from the noisy count) allows no
        table of this many cells, the structure search is skipped and its share goes to
        the one-way tables: with so little signal per cell, an independent model is more
        accurate than noisy dependencies.
    max_candidates : int, >= 1, default 2000
        Cap on the (child, parents) candidates scored per selection.  Every one-parent
        candidate is always scored; larger parent sets above the cap are sampled uniformly
        at random with data-independent randomness.
    marginal_share : float in [0, 1), or None (default)
        For a column with parents: the share of its table budget spent on a separate
        one-way histogram, which the conditional table is then raked to (post-processing).
        0 skips it (classic PrivBayes).  None sets it from the signal per column, the noisy
        patient count times the budget of one column's tables
        (:func:`fhirsynth.learn.tables.auto_marginal_share`): 0.6 where the tables are
        noise-bound (up to 400), 0.3 where they are not (3,000 and more), log-linear
        between; 0.6 when the count is skipped.
    coarse_share : float, in [0, 1), default 0.75
        For a numeric column with 32 or more value states (and no separate missing
        table): the share of its one-way budget spent on a histogram over 16 equal-width
        groups of its states; the fine histogram then shares each group's combined total
        among its states (post-processing).  0 skips it.
    child_theta : float, >= 0, default 4.0
        A numeric column without parents whose histogram would have fewer than
        ``child_theta`` noisy rows per unit of noise scale per state
        (``noisy_count * epsilon / states``) is measured over 16, 8, 4 or 2 equal-width
        groups of its states instead, each group's mass spread evenly over its states.
        0 disables it.
    child_groups : int, 0 or >= 2, default 6
        While the theta-usefulness limit (from the noisy count) is below a numeric column's
        states times ``parent_groups``, a numeric child with more value states than this has
        its tables measured over this many equal-width groups of its states
        (``wide_child_groups`` above :data:`WIDE_CHILD_STATES` states; ``<missing>``
        apart).  The states within a group share its mass in proportion to the column's
        one-way estimate and raking matches the fine marginal; the structure search scores
        and sizes the child on its groups, so it can afford more parents.  Grouping is
        public (spec, budget, noisy count).  0 keeps every state.  6 for columns of up to 32
        states measured best (model bias, stroke at eps 1, 250 seeds: 3-way TVD 0.106 ->
        0.101 against 8; Adult unchanged at eps 1, 0.174 -> 0.171 at eps 0.1).
    wide_child_groups : int, >= 2, default 16
        The groups of a grouped numeric child with more than :data:`WIDE_CHILD_STATES`
        value states (Adult's ages and hours); see ``child_groups``.
    missing_share : float, in (0, 1), default 0.5
        For a nullable column with two or more values and parents: the share of its table
        budget spent on a separate (present, missing) x parents table; the rest measures
        the values.  A nullable column without parents has one histogram with a missing
        state (a separate table could not carry any structure).
        Structural missingness (a death year only for the deceased) then survives the noise
        of the many value cells.
    pool_total : bool, default True
        Project every noisy histogram onto the total pooled (inverse-variance) from the
        noisy count and every noisy table's sum (post-processing), instead of its own
        noisy total.
    pool_parents : bool, default True
        Also estimate a column's one-way histogram from every noisy table in which it is an
        (uncoarsened) parent, combined by inverse variance (post-processing).
    rake_missing : bool, default True
        Give a nullable column with a missing-or-not table (and parents) a one-way
        histogram of its values too, and rake the distribution of its values to it
        (P(missing | parents) is kept from the missing-or-not table).
    backoff : bool, default True
        A sparse parent configuration of a table with two or more parents falls back to
        the mean of the one-parent conditionals (from the same noisy table) rather than to
        the child's marginal (post-processing).
    prior_score : bool, default True
        Measure the one-way histograms of the columns the structure search may add before
        the search, and score candidates against those released estimates
        (:func:`fhirsynth.learn.structure.prior_score`, sensitivity 1 instead of the R
        score's 2): the same selections weigh candidates as if they had twice their epsilon.
        The histograms keep their budget and their use afterwards.
    target_first : bool, default True
        Start the network with the spec's target column (public), so that every other
        column may take it as a parent; False: the first column is chosen at random.
    target_parent : bool, default True
        With ``target_first``: only parent sets that contain the target are candidates
        (when the size limits allow one), so the target is a parent of every column;
        except, with ``target_margin`` > 0, a parent set the target cannot join (the set
        has ``degree`` parents, or the target would take it past theta-usefulness).
    target_margin : float, >= 0, default 0.2
        With ``target_parent``: how much lower a parent set without the target is scored
        than one with it, as a share of the noisy patient count (the score is a count: n
        times the dependence); a strong association the cell limit leaves no room for
        beside the target may then still be chosen.  0: such sets are not candidates.
        Not used without a noisy count (``count_share`` 0).  Measured (docs/learning.md):
        Adult at eps 0.1, worst 2-way TVD 0.44 -> 0.31, 3-way 0.169 -> 0.160, TSTR
        0.851 -> 0.839; no change at eps 1 or on stroke.
    mechanism : {"auto", "laplace", "gaussian"}, default "auto"
        How the budget becomes noise (:mod:`fhirsynth.privacy.noise`).  "laplace": pure
        epsilon-DP, Laplace counts and exponential-mechanism selections whose epsilons
        add up; a positive delta is left unspent.  "gaussian": zero-concentrated DP,
        Gaussian counts, the rhos add up to the rho that implies (epsilon, delta); needs
        delta > 0; the patient count stays a pure epsilon-DP Laplace step.  Far less noise
        where many tables share the budget (wide tables).  "auto": "gaussian" when delta > 0
        and the plan has more measurements than about ln(1/delta), where it gives less
        noise (:meth:`fhirsynth.privacy.noise.Noise.choose`), else "laplace".
    selection : {"auto", "exponential", "permute-and-flip"}, default "auto"
        The mechanism of the structure selections (diffprivlib's ``Exponential`` or
        ``PermuteAndFlip``).  Permute-and-flip (McKenna & Sheldon 2020) is epsilon-DP with
        the same sensitivity and never worse in expected score; under zCDP it is only known
        to be epsilon0^2 / 2-zCDP, where the exponential mechanism is epsilon0^2 / 8-zCDP
        (bounded range), so the same rho buys it half the epsilon0.  "auto":
        permute-and-flip under pure epsilon-DP, the exponential mechanism under zCDP.
    min_rows : int, >= 1, default 50
        Refuse cohorts smaller than this with :class:`TooFewRowsError`.  The test is on
        the exact row count, before anything is released: a fitted model reveals only that
        the cohort reached the threshold.  The refusal message quotes the count; it goes to
        the custodian running the fit and into no shareable output.
    allow_few_rows : bool, default False
        Fit cohorts below ``min_rows`` anyway (with a :class:`LowUtilityWarning`).
    """

    structure_share: float = 0.1
    count_share: float = 0.02
    degree: int | None = None
    max_parent_states: int = 256
    parent_groups: int = 8
    theta: float = 4.0
    min_table_cells: int = 16
    max_candidates: int = 2000
    marginal_share: float | None = None
    coarse_share: float = 0.75
    child_theta: float = 4.0
    child_groups: int = 6
    wide_child_groups: int = 16
    missing_share: float = 0.5
    pool_total: bool = True
    pool_parents: bool = True
    rake_missing: bool = True
    backoff: bool = True
    prior_score: bool = True
    target_first: bool = True
    target_parent: bool = True
    target_margin: float = 0.2
    mechanism: Literal["auto", "laplace", "gaussian"] = "auto"
    selection: Literal["auto", "exponential", "permute-and-flip"] = "auto"
    min_rows: int = 50
    allow_few_rows: bool = False

    def __post_init__(self) -> None:
        _share("structure_share", self.structure_share, zero_ok=True)
        _share("count_share", self.count_share, zero_ok=True)
        _share("missing_share", self.missing_share, zero_ok=False)
        if self.marginal_share is not None:
            _share("marginal_share", self.marginal_share, zero_ok=True)
        _share("coarse_share", self.coarse_share, zero_ok=True)
        if self.structure_share + self.count_share >= 1:
            raise ConfigError(
                f"structure_share + count_share ({self.structure_share + self.count_share:g}) "
                "must be < 1 so that the conditional tables get budget"
            )
        for name, low in (("max_parent_states", 2), ("parent_groups", 2),
                          ("wide_child_groups", 2),
                          ("max_candidates", 1), ("min_rows", 1), ("min_table_cells", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ConfigError(f"{name} ({v!r}) must be an integer >= {low}")
        cg = self.child_groups
        if isinstance(cg, bool) or not isinstance(cg, int) or not (cg == 0 or cg >= 2):
            raise ConfigError(f"child_groups ({cg!r}) must be 0 or an integer >= 2")
        if self.degree is not None and (
            isinstance(self.degree, bool) or not isinstance(self.degree, int) or self.degree < 0
        ):
            raise ConfigError(f"degree ({self.degree!r}) must be an integer >= 0 or None")
        if self.degree is None and self.count_share == 0:
            raise ConfigError("degree (None) must be given when count_share is 0")
        for name in ("theta", "child_theta", "target_margin"):
            t = getattr(self, name)
            bad = isinstance(t, bool) or not isinstance(t, int | float)
            if bad or not (t >= 0 and math.isfinite(t)):
                raise ConfigError(f"{name} ({t!r}) must be a finite number >= 0")
        if self.mechanism not in ("auto", "laplace", "gaussian"):
            raise ConfigError(f"mechanism ({self.mechanism!r}) must be 'auto', 'laplace' or "
                              "'gaussian'")
        if self.selection not in ("auto", "exponential", "permute-and-flip"):
            raise ConfigError(f"selection ({self.selection!r}) must be 'auto', 'exponential' "
                              "or 'permute-and-flip'")
        for name in ("allow_few_rows", "pool_total", "pool_parents", "rake_missing", "backoff",
                     "prior_score", "target_first", "target_parent"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} ({getattr(self, name)!r}) must be true or false")
