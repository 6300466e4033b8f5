"""Post-processing of released noisy tables: projection, pooled totals, coarse histograms,
parent sums, back-off and values-only raking; and that fits using them still add up."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from fhirsynth.config import LearnConfig
from fhirsynth.domain import Column, TableSpec
from fhirsynth.errors import ConfigError
from fhirsynth.learn.marginals import (
    _ipf_values,
    coarse_groups,
    combine_marginal,
    parent_sums,
    refine_with_coarse,
)
from fhirsynth.learn.parameters import conditional_from_counts, pooled_total, project_counts
from fhirsynth.synthesizer import Synthesizer


def test_projection_onto_a_given_total_is_the_euclidean_projection() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        v = rng.normal(2, 6, int(rng.integers(1, 40)))
        total = float(rng.uniform(0.5, 50))
        p = project_counts(v, total)
        assert np.all(p >= 0) and p.sum() == pytest.approx(total)
        # KKT conditions of min ||p - v||^2 on {p >= 0, sum p = total}: p = max(v - tau, 0)
        pos = p > 0
        tau = float(np.mean(v[pos] - p[pos]))
        assert np.allclose(v[pos] - p[pos], tau)
        assert np.all(v[~pos] <= tau + 1e-9)
        # no other point of the simplex is closer (random feasible competitors)
        for q in rng.dirichlet(np.ones(v.size), 5) * total:
            assert np.sum((p - v) ** 2) <= np.sum((q - v) ** 2) + 1e-9


def test_projection_recovers_noise_free_counts() -> None:
    v = np.array([0.0, 7.0, 2.0, 0.0, 11.0])
    assert np.allclose(project_counts(v, v.sum()), v)
    assert np.allclose(project_counts(v), v)


def test_projection_onto_the_true_total_zeroes_more_noise_than_clipping() -> None:
    # a sparse histogram under heavy noise: clip-and-normalise spreads mass over the empty
    # cells; projecting onto the (known) total keeps it near the true cells
    rng = np.random.default_rng(1)
    true = np.zeros(40)
    true[:3] = [200.0, 60.0, 40.0]
    err_clip, err_proj = [], []
    for _ in range(200):
        noisy = true + rng.laplace(0, 20, true.size)
        clip = np.clip(noisy, 0, None)
        err_clip.append(0.5 * np.abs(clip / clip.sum() - true / 300).sum())
        p = project_counts(noisy, 300.0)
        err_proj.append(0.5 * np.abs(p / 300 - true / 300).sum())
    assert np.mean(err_proj) < 0.6 * np.mean(err_clip)


def test_pooled_total_is_the_inverse_variance_mean() -> None:
    assert pooled_total([]) is None
    assert pooled_total([(10.0, 1.0), (20.0, 4.0)]) == pytest.approx((10 + 20 / 4) / 1.25)
    # pooling 40 noisy totals (variance 800 each) beats each one: sd 4.5 vs 28
    rng = np.random.default_rng(2)
    est = [pooled_total([(1000 + rng.laplace(0, 20), 800.0) for _ in range(40)])
           for _ in range(300)]
    assert np.std(est) < 28.3 / math.sqrt(40) * 1.25


def test_coarse_groups_are_public_contiguous_bins() -> None:
    age = Column(name="age", kind="numeric", bounds=(0.0, 84.0), integer=True, nullable=True)
    g = coarse_groups(age)
    assert g is not None and g.size == age.n_states
    assert g[-1] == g[:-1].max() + 1  # <missing> on its own
    assert np.all(np.diff(g[:-1]) >= 0) and g[:-1].max() + 1 == 16
    few = Column(name="x", kind="numeric", bounds=(0.0, 20.0), integer=True, nullable=False)
    cat = Column(name="c", categories=tuple(f"k{i}" for i in range(50)), nullable=False)
    assert coarse_groups(few) is None and coarse_groups(cat) is None


def test_refine_with_coarse_recovers_consistent_inputs_and_trusts_the_better_one() -> None:
    groups = np.array([0, 0, 0, 1, 1, 2])
    fine = np.array([5.0, 0.0, 5.0, 20.0, 10.0, 60.0])
    coarse = np.bincount(groups, weights=fine)
    assert np.allclose(refine_with_coarse(fine, 1.0, coarse, 1.0, groups, 100.0), fine)
    # a much more precise coarse histogram sets the group totals; shapes come from fine
    coarse2 = np.array([30.0, 10.0, 60.0])
    out = refine_with_coarse(fine, 1e6, coarse2, 1e-6, groups, 100.0)
    assert np.allclose(np.bincount(groups, weights=out), coarse2, atol=1e-3)
    assert out[0] == pytest.approx(out[2]) and out[1] == 0.0
    assert out[3] == pytest.approx(2 * out[4])


def test_parent_sums_give_the_parent_marginal_and_its_variance() -> None:
    rng = np.random.default_rng(3)
    cube = rng.integers(0, 9, (3, 4, 5)).astype(float)  # child x parent0 x parent1
    table = cube.reshape(3, 20)
    est, var = parent_sums(table, 0.5, [4, 5], 1)
    assert np.allclose(est, cube.sum(axis=(0, 1)))
    assert var == pytest.approx(2 * 12 / 0.25)  # 12 cells summed per parent state
    assert parent_sums(table, None, [4, 5], 0) is None


def test_combine_marginal_with_extra_estimates_weights_them_in() -> None:
    table = np.array([[10.0], [30.0]])
    a = combine_marginal(np.array([20.0, 20.0]), 1.0, table, 1.0)
    b = combine_marginal(np.array([20.0, 20.0]), 1.0, table, 1.0,
                         extra=[(np.array([10.0, 30.0]), 1e-9)])
    assert np.allclose(b, [0.25, 0.75], atol=1e-6)
    assert a[0] > b[0]


def test_backoff_falls_back_to_the_one_parent_conditionals() -> None:
    # child depends on parent 0 only (3 states of parent 1); configuration (1, 2) is empty
    cube = np.zeros((2, 2, 3))
    cube[:, 0, :] = [[90], [10]]
    cube[:, 1, :2] = [[10], [90]]
    table = cube.reshape(2, 6)
    exact = conditional_from_counts(table, None, parent_cards=[2, 3])
    assert np.allclose(exact[:, 0], [0.9, 0.1])  # no noise: the counts themselves
    plain = conditional_from_counts(table, 1.0)
    back = conditional_from_counts(table, 1.0, parent_cards=[2, 3])
    assert np.allclose(back.sum(axis=0), 1.0) and np.all(back >= 0)
    one0 = conditional_from_counts(cube.sum(axis=2), 1.0, summed=3)
    one1 = conditional_from_counts(cube.sum(axis=1), 1.0, summed=2)
    # the empty configuration (parent0=1, parent1=2) is exactly its fall-back
    assert np.allclose(back[:, 5], (one0[:, 1] + one1[:, 2]) / 2)
    # and keeps more of the parent-0 effect than the child's marginal does
    assert back[1, 5] > plain[1, 5] + 0.05


def test_values_only_raking_keeps_missingness_per_configuration() -> None:
    cond = np.array([[0.5, 0.0], [0.3, 0.0], [0.2, 1.0]])  # values x2, <missing> last
    weights = np.array([0.6, 0.4])
    out = _ipf_values(cond, weights, np.array([0.2, 0.8, 0.0]))
    assert np.allclose(out[-1], cond[-1])  # P(missing | p) kept, structural zeros kept
    assert np.allclose(out[:, 1], [0.0, 0.0, 1.0])
    present = (out[:-1] * weights).sum(axis=1)
    assert np.allclose(present / present.sum(), [0.2, 0.8], atol=1e-6)


def _wide_table(n: int, seed: int) -> tuple[TableSpec, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    spec = TableSpec(name="wide", target="y", columns=(
        Column(name="y", kind="boolean", nullable=False),
        Column(name="age", kind="numeric", bounds=(0.0, 84.0), integer=True, nullable=False),
        Column(name="lab", kind="numeric", bounds=(0.0, 40.0), integer=True, nullable=True),
        Column(name="c", categories=("a", "b", "c"), nullable=False),
    ))
    age = rng.integers(0, 85, n)
    y = rng.random(n) < 0.2 + 0.5 * (age > 60)
    lab = np.where(y, rng.integers(10, 40, n), -1)
    df = pd.DataFrame({
        "y": np.where(y, "true", "false"), "age": age.astype(str),
        "lab": pd.Series(lab.astype(str)).where(lab >= 0, ""),
        "c": rng.choice(["a", "b", "c"], n),
    })
    return spec, df


@pytest.mark.parametrize("cfg", [{}, {"coarse_share": 0.0, "rake_missing": False},
                                 {"pool_total": False, "pool_parents": False,
                                  "backoff": False, "target_first": False}])
@pytest.mark.parametrize("epsilon", [0.05, 1.0, 30.0])
def test_fits_with_new_steps_add_up_to_the_total(cfg, epsilon) -> None:
    spec, df = _wide_table(3000, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        s = Synthesizer(spec, epsilon=epsilon, config=LearnConfig(**cfg),
                        random_state=1).fit(df)
    steps = s.accountant_.steps
    assert math.fsum(st.epsilon for st in steps) == pytest.approx(epsilon, rel=1e-9)
    names = [st.name for st in steps]
    if epsilon >= 1:  # at 0.05 age drowns: measured over groups, no coarse step
        assert ("marginal age (coarse)" in names) == (cfg.get("coarse_share", 0.75) > 0)
    out = s.sample(500, random_state=2)
    assert out.shape == (500, 4)


def test_a_wide_numeric_columns_coarse_histogram_is_measured_before_the_search() -> None:
    # the structure score reads it (docs/learning.md, "Structure"); it is measured once
    spec, df = _wide_table(3000, 4)
    s = Synthesizer(spec, epsilon=2.0, random_state=1).fit(df)
    names = [st.name for st in s.accountant_.steps]
    first_sel = min(i for i, n in enumerate(names) if n.startswith("structure"))
    assert names.count("marginal age (coarse)") == 1
    assert names.index("marginal age (coarse)") < first_sel
    assert math.fsum(st.epsilon for st in s.accountant_.steps) == pytest.approx(2.0)


def test_target_starts_the_network_and_small_cohorts_skip_the_search() -> None:
    spec, df = _wide_table(3000, 5)
    s = Synthesizer(spec, epsilon=1.0, random_state=0).fit(df)
    assert not s.model_.by_name["y"].parents
    # target_parent: the target is in every parent set the search chose
    chosen = [nd for nd in s.model_.nodes if nd.mapping is None and nd.parents]
    assert chosen and all(any(p.split("~")[0] == "y" for p in nd.parents) for nd in chosen)
    assert any(st.name.startswith("structure") for st in s.accountant_.steps)
    small = Synthesizer(spec, epsilon=0.05, random_state=0).fit(df.iloc[:300])
    # noisy n * eps per table far below min_table_cells * theta: no search, no spend
    assert not any(st.name.startswith("structure") for st in small.accountant_.steps)
    assert all(not nd.parents for nd in small.model_.nodes)
    assert small.model_.budget["epsilon_spent"] == pytest.approx(0.05)


def test_drowning_numeric_roots_are_measured_over_groups() -> None:
    spec, df = _wide_table(400, 6)
    s = Synthesizer(spec, epsilon=0.2, random_state=0).fit(df)
    assert s.model_.budget["epsilon_spent"] == pytest.approx(0.2)
    age = s.model_.by_name["age"]
    assert not age.parents
    p = age.cpd[:, 0]
    assert p.sum() == pytest.approx(1.0)
    # 85 states, far fewer distinct probabilities: constant inside each group
    assert len(np.unique(np.round(p, 12))) <= 16
    cells = {st["name"]: st["detail"] for st in s.model_.budget["steps"]}
    assert cells["table age"].split()[0] in {"2", "4", "8", "16"}  # measured over groups
    fine = Synthesizer(spec, epsilon=0.2, random_state=0,
                       config=LearnConfig(child_theta=0.0)).fit(df)
    cells = {st["name"]: st["detail"] for st in fine.model_.budget["steps"]}
    assert cells["table age"].startswith("85 cells")  # every state measured


def test_child_groups_only_while_the_fine_child_cannot_carry_a_grouped_parent() -> None:
    from fhirsynth.learn import _child_groups

    spec, _ = _wide_table(10, 0)
    age = spec.columns[1]  # 85 states: more than WIDE_CHILD_STATES, so wide_child_groups
    cfg = LearnConfig()
    g = _child_groups(age, 85, 100.0, cfg)
    assert g is not None and int(g.max()) + 1 == 16
    assert np.all(np.diff(g) >= 0)  # contiguous runs of states
    assert _child_groups(age, 85, 85.0 * 8, cfg) is None  # fine child x 8 groups fits
    assert _child_groups(age, 85, 85.0 * 8 - 1, cfg) is not None
    assert _child_groups(age, 85, 100.0, LearnConfig(child_groups=0)) is None
    assert _child_groups(spec.columns[3], 3, 1.0, cfg) is None  # categorical
    small = Column(name="s", kind="numeric", bounds=(0.0, 19.0), integer=True, nullable=True)
    gs = _child_groups(small, small.n_states, 10.0, cfg)
    # 20 value states: child_groups (6) groups, <missing> alone
    assert gs is not None and int(gs.max()) + 1 == 7 and gs[-1] == 6
    wide = _child_groups(age, 85, 100.0, LearnConfig(wide_child_groups=10))
    assert wide is not None and int(wide.max()) + 1 == 10
    with pytest.raises(ConfigError):
        LearnConfig(child_groups=1)
    with pytest.raises(ConfigError, match="wide_child_groups"):
        LearnConfig(wide_child_groups=1)


def test_grouped_children_keep_every_state_and_the_budget() -> None:
    spec, df = _wide_table(3000, 7)
    fits = {}
    for cg in (8, 0):
        s = Synthesizer(spec, epsilon=1.0, random_state=0,
                        config=LearnConfig(child_groups=cg)).fit(df)
        assert math.fsum(st.epsilon for st in s.accountant_.steps) == pytest.approx(1.0)
        fits[cg] = s
    for name, n_states in (("age", 85), ("lab", 42)):
        nd = fits[8].model_.by_name[name]
        assert nd.parents and nd.cpd.shape[0] == n_states
        assert np.allclose(nd.cpd.sum(axis=0), 1.0) and np.all(nd.cpd >= 0)
    cells = {cg: int(next(st for st in s.accountant_.steps if st.name == "table age")
                     .detail.split()[0]) for cg, s in fits.items()}
    pcard = fits[8].model_.by_name["age"].cpd.shape[1]
    assert cells[8] == 16 * pcard  # measured over 16 groups
    assert cells[0] % 85 == 0  # every state
    # structural missingness of lab (missing exactly when y is false) survives grouping
    out = fits[8].sample(4000, random_state=3)
    miss = out["lab"].isna().to_numpy()
    y = out["y"].to_numpy(dtype=bool)
    assert miss[~y].mean() > 0.9 and miss[y].mean() < 0.1


def test_auto_marginal_share_follows_the_signal_per_column() -> None:
    from fhirsynth.learn.tables import SHARE_CLEAR, SHARE_NOISY, auto_marginal_share

    assert auto_marginal_share(None, 0.1) == SHARE_NOISY
    assert auto_marginal_share(1000.0, 0.0) == SHARE_NOISY
    assert auto_marginal_share(4000.0, 0.1) == SHARE_NOISY  # signal 400
    assert auto_marginal_share(30_000.0, 0.1) == pytest.approx(SHARE_CLEAR)  # 3,000
    assert auto_marginal_share(1e7, 1.0) == pytest.approx(SHARE_CLEAR)
    shares = [auto_marginal_share(n, 0.1) for n in np.geomspace(1_000, 100_000, 30)]
    assert all(a >= b for a, b in zip(shares, shares[1:], strict=False))  # monotone
    mid = auto_marginal_share(math.sqrt(400 * 3000) / 0.1, 0.1)  # log-midpoint
    assert mid == pytest.approx((SHARE_NOISY + SHARE_CLEAR) / 2)


def test_auto_share_is_resolved_in_the_model_and_an_explicit_one_is_kept() -> None:
    rng = np.random.default_rng(0)
    n = 20_000
    x = rng.integers(0, 4, n)
    df = pd.DataFrame({"a": np.where(x > 1, "p", "q"), "b": (x + rng.integers(0, 2, n)) % 4,
                       "c": rng.random(n) < 0.3})
    spec = TableSpec(name="t", target=None, columns=(
        Column(name="a", categories=("p", "q"), nullable=False),
        Column(name="b", kind="numeric", bounds=(0.0, 3.0), integer=True, nullable=False),
        Column(name="c", kind="boolean", nullable=False)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        auto = Synthesizer(spec, epsilon=4.0, random_state=0).fit(df)
        fixed = Synthesizer(spec, epsilon=4.0, random_state=0,
                            config=LearnConfig(marginal_share=0.45)).fit(df)
    # 20,000 noisy rows x ~1.2 epsilon per column: far above 3,000, the clear-signal share
    assert auto.model.info["config"]["marginal_share"] == pytest.approx(0.3)
    assert fixed.model.info["config"]["marginal_share"] == 0.45
    with pytest.raises(ConfigError, match="marginal_share"):
        LearnConfig(marginal_share=1.0)


def test_without_a_noisy_count_the_plan_does_not_depend_on_the_row_count() -> None:
    # count_share 0 releases no count: nothing may be sized by the exact number of rows
    spec = TableSpec(name="t", target=None, columns=(
        Column(name="v", kind="numeric", bounds=(0.0, 100.0), bins=40, nullable=False),
        Column(name="w", kind="numeric", bounds=(0.0, 100.0), bins=40, nullable=False)))
    cfg = LearnConfig(count_share=0.0, degree=1, structure_share=0.0)
    plans = []
    for n in (60, 60_000):
        rng = np.random.default_rng(1)
        df = pd.DataFrame({"v": rng.uniform(0, 100, n), "w": rng.uniform(0, 100, n)})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            syn = Synthesizer(spec, epsilon=1.0, random_state=0, config=cfg).fit(df)
        plans.append([(s["name"], s["epsilon"], s.get("detail")) for s in
                      syn.model.budget["steps"]])
        assert syn.model.info["config"]["marginal_share"] == 0.6
    assert plans[0] == plans[1]


def test_noise_bound_fits_split_the_tables_part_equally() -> None:
    # 60 rows, eps 0.5: no table with parents is useful, so no structure search runs and
    # the tables' part of the budget is split equally; with 20,000 rows the sqrt rule holds
    spec = TableSpec(name="t", target=None, columns=(
        Column(name="a", kind="boolean", nullable=False),
        Column(name="b", categories=tuple("pqrst"), nullable=False),
        Column(name="v", kind="numeric", bounds=(0.0, 100.0), bins=20, nullable=False)))
    eps_of = {}
    for n in (60, 20_000):
        rng = np.random.default_rng(2)
        df = pd.DataFrame({"a": rng.random(n) < 0.4, "b": rng.choice(list("pqrst"), n),
                           "v": rng.uniform(0, 100, n)})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # prior_score off: the one-way parts then stay in the plan after the search,
            # and the tables' steps alone show the split
            syn = Synthesizer(spec, epsilon=0.5, random_state=0,
                              config=LearnConfig(prior_score=False)).fit(df)
        steps = syn.model.budget["steps"]
        eps_of[n] = {s["name"]: s["epsilon"] for s in steps if s["name"].startswith("table ")}
        assert sum(s["epsilon"] for s in steps) == pytest.approx(0.5)
    small, large = eps_of[60], eps_of[20_000]
    assert not any(name.startswith("structure") for name in small)
    # the tables' part is equal, the one-way part (added to parentless tables) follows
    # sqrt(states): the binary column's share of the budget is larger than the sqrt rule's
    share = {n: e[name] / sum(e.values()) for n, e in eps_of.items()
             for name in ("table a",)}
    assert share[60] > share[20_000] and large["table a"] < large["table b"]
