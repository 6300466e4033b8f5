"""Structure search: score sensitivity (brute force), noiseless recovery, accounting."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fhirsynth.config import LearnConfig
from fhirsynth.learn.structure import (
    PRIOR_SCORE_SENSITIVITY,
    SCORE_SENSITIVITY,
    prior_score,
    r_score,
)
from fhirsynth.privacy.budget import PrivacyBudget
from fhirsynth.synthesizer import Synthesizer
from learn_nets import SPEC, exact_joint


def _score(rows: np.ndarray, cx: int, cp: int) -> float:
    return r_score(rows[:, 0].astype(np.int64), cx, rows[:, 1].astype(np.int64), cp)


def test_score_sensitivity_brute_force() -> None:
    rng = np.random.default_rng(7)
    worst = 0.0
    for _ in range(150):
        cx, cp = int(rng.integers(2, 5)), int(rng.integers(2, 7))
        n = int(rng.integers(1, 25))
        rows = np.column_stack([rng.integers(0, cx, n), rng.integers(0, cp, n)])
        base = _score(rows, cx, cp)
        for x, p in itertools.product(range(cx), range(cp)):  # add any one patient
            worst = max(worst, abs(_score(np.vstack([rows, [x, p]]), cx, cp) - base))
        for i in range(n):  # remove any one patient
            worst = max(worst, abs(_score(np.delete(rows, i, axis=0), cx, cp) - base))
    assert worst <= SCORE_SENSITIVITY
    assert worst > 1.0  # the bound is not vacuous: neighbours do move the score by > 1


def test_prior_score_sensitivity_brute_force() -> None:
    # the released distribution q is fixed (the mechanism conditions on it); any q
    rng = np.random.default_rng(11)
    worst = 0.0
    for _ in range(150):
        cx, cp = int(rng.integers(2, 5)), int(rng.integers(2, 7))
        q = rng.dirichlet(np.full(cx, 0.3))
        n = int(rng.integers(1, 25))
        rows = np.column_stack([rng.integers(0, cx, n), rng.integers(0, cp, n)])

        def g(r: np.ndarray, cx=cx, cp=cp, q=q) -> float:
            return prior_score(r[:, 0].astype(np.int64), cx, r[:, 1].astype(np.int64), cp, q)

        base = g(rows)
        for x, p in itertools.product(range(cx), range(cp)):
            worst = max(worst, abs(g(np.vstack([rows, [x, p]])) - base))
        for i in range(n):
            worst = max(worst, abs(g(np.delete(rows, i, axis=0)) - base))
    assert worst <= PRIOR_SCORE_SENSITIVITY
    assert worst > 0.9  # tight: a patient in a cell with small q moves it by nearly 1


def test_prior_score_equals_r_score_with_the_exact_marginal() -> None:
    rng = np.random.default_rng(5)
    x, p = rng.integers(0, 3, 200), rng.integers(0, 4, 200)
    x[:60] = p[:60] % 3  # some dependence
    q = np.bincount(x, minlength=3) / x.size
    assert prior_score(x, 3, p, 4, q) == pytest.approx(r_score(x, 3, p, 4))
    assert r_score(x, 3, p, 4) > 10


def test_score_zero_for_independent_and_positive_for_dependent() -> None:
    x = np.repeat([0, 1], 50)
    assert r_score(x, 2, np.tile([0, 1], 50), 2) == pytest.approx(0.0)
    assert r_score(x, 2, x.copy(), 2) == pytest.approx(50.0)


def _skeleton(model) -> set[frozenset[str]]:
    return {frozenset((c, p)) for c, ps in model.graph().items() for p in ps}


def test_noiseless_fit_recovers_tree_skeleton(known_data) -> None:
    from fhirsynth.config import LearnConfig

    s = Synthesizer(SPEC, epsilon=1.0, config=LearnConfig(degree=1), random_state=0)
    s.fit(known_data, _noiseless=True)
    skel = _skeleton(s.model_)
    for edge in ({"A", "B"}, {"B", "C"}):
        assert frozenset(edge) in skel


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noiseless_fit_recovers_joint_within_sampling_error(known, known_data, seed) -> None:
    s = Synthesizer(SPEC, epsilon=1.0, random_state=seed).fit(known_data, _noiseless=True)
    cols = ["A", "B", "C", "D"]
    truth = exact_joint(known, cols)
    learned = exact_joint(s.model_, cols)
    tvd = 0.5 * np.abs(truth - learned).sum()
    # 36 cells, 30k rows: sampling error alone gives a TVD of about 0.015
    assert tvd < 0.04
    # D depends on A and C jointly: its pairwise dependences must survive
    for pair in (["A", "D"], ["C", "D"], ["A", "B"]):
        t2, l2 = exact_joint(known, pair), exact_joint(s.model_, pair)
        assert 0.5 * np.abs(t2 - l2).sum() < 0.02


def test_structure_selections_are_charged(known_data) -> None:
    s = Synthesizer(SPEC, epsilon=2.0, random_state=3).fit(known_data)
    steps = s.accountant_.steps
    sel = [st for st in steps if st.name.startswith("structure")]
    assert len(sel) == len(SPEC.columns) - 1
    # the one-way histograms of the columns the search may add come first, and their
    # released estimates make the score's sensitivity 1
    names = [st.name for st in steps]
    first_sel = names.index(sel[0].name)
    assert sum(n.startswith("marginal ") for n in names[:first_sel]) == len(SPEC.columns) - 1
    assert all(st.sensitivity == PRIOR_SCORE_SENSITIVITY for st in sel)
    assert sum(st.epsilon for st in sel) == pytest.approx(LearnConfig().structure_share * 2.0)
    assert s.accountant_.spent_epsilon == pytest.approx(PrivacyBudget(epsilon=2.0).epsilon)


@pytest.mark.parametrize("delta,setting,used", [
    (0.0, "auto", "permute-and-flip"),
    (0.0, "exponential", "exponential"),
    (1e-9, "auto", "exponential"),
    (1e-9, "permute-and-flip", "permute-and-flip"),
])
def test_selection_mechanism_follows_the_noise(known_data, delta, setting, used) -> None:
    # auto: permute-and-flip under pure eps-DP, the exponential mechanism under zCDP,
    # where its bounded range gives eps0 = sqrt(8 rho) instead of sqrt(2 rho)
    config = LearnConfig(selection=setting, mechanism="gaussian" if delta else "laplace")
    s = Synthesizer(SPEC, epsilon=2.0, delta=delta, random_state=3,
                    config=config).fit(known_data)
    sel = [st for st in s.accountant_.steps if st.name.startswith("structure")]
    assert sel and {st.mechanism for st in sel} == {f"{used} (diffprivlib)"}
    assert s.model_.info["selection"] == used
    if delta:
        factor = 8 if used == "exponential" else 2
        for st in sel:
            e0 = float(st.detail.split("mechanism epsilon ")[1].split(" ")[0])
            assert e0 ** 2 / factor == pytest.approx(st.rho, rel=1e-3)
            assert f"rho = epsilon^2 / {factor}" in st.detail
    assert s.accountant_.spent_epsilon == pytest.approx(2.0)


def test_without_prior_score_the_r_score_is_used(known_data) -> None:
    s = Synthesizer(SPEC, epsilon=2.0, random_state=3,
                    config=LearnConfig(prior_score=False)).fit(known_data)
    steps = s.accountant_.steps
    sel = [st for st in steps if st.name.startswith("structure")]
    assert sel and all(st.sensitivity == SCORE_SENSITIVITY for st in sel)
    assert not any(st.name.startswith("marginal ")
                   for st in steps[:steps.index(sel[0])])
    assert s.accountant_.spent_epsilon == pytest.approx(2.0)


def test_prior_offsets_grow_with_the_noise_of_the_released_estimate() -> None:
    from fhirsynth.learn import _prior, _prior_offsets
    from fhirsynth.learn.tables import OneWay
    from fhirsynth.privacy.noise import Noise

    counts = np.array([400.0, 300, 200, 50, 30, 10, 5, 5] * 2)
    n = counts.sum()
    noise = Noise("laplace", 1.0)
    pre = [OneWay(counts, 0.005), OneWay(counts, 100.0)]
    priors = [_prior(p, None, counts.size, n, noise) for p in pre]
    off = _prior_offsets(pre, priors, [counts.size] * 2, [None, None], [counts.size] * 2,
                         n, noise, np.random.default_rng(0))
    # Laplace scale 200 per cell against 2,000 rows: a large offset; scale 0.01: almost none
    assert off[0] > 100 * off[1]
    assert off[1] < 1.0 and off[0] > 50.0


def test_prior_merges_the_coarse_histogram_of_a_wide_numeric_column() -> None:
    # a wide numeric column spends most of its one-way budget on its coarse histogram; the
    # score's prior must use it: with a precise coarse histogram and a fine one drowned in
    # noise, the prior's group masses follow the coarse histogram
    from fhirsynth.learn import _prior
    from fhirsynth.learn.tables import OneWay
    from fhirsynth.privacy.noise import Noise

    rng = np.random.default_rng(4)
    groups = np.repeat(np.arange(4), 8)
    truth = np.repeat([500.0, 300.0, 150.0, 50.0], 8) / 8
    fine = truth + rng.laplace(0.0, 1.0 / 0.002, truth.size)      # scale 500 per cell
    coarse = np.bincount(groups, weights=truth) + rng.laplace(0.0, 1.0, 4)
    noise = Noise("laplace", 1.0)
    want = np.bincount(groups, weights=truth) / truth.sum()
    merged = _prior(OneWay(fine, 0.002, coarse, 1.0, groups), groups, 4, 1000.0, noise)
    alone = _prior(OneWay(fine, 0.002), groups, 4, 1000.0, noise)
    # Laplace(1) on 1,000 rows: within 0.01 per group; the fine sums alone are far off
    assert np.abs(merged - want).max() < 0.01
    assert np.abs(alone - want).max() > 0.1


def test_without_a_released_count_the_score_never_reads_the_row_count(known_data, monkeypatch):
    # count_share 0: the priors and offsets use each histogram's own noisy total
    import fhirsynth.learn as learn

    seen = []
    real = learn._prior_offsets

    def spy(pre, priors, cards, cgroups, scards, noisy_n, noise, rng):
        seen.append(noisy_n)
        return real(pre, priors, cards, cgroups, scards, noisy_n, noise, rng)

    monkeypatch.setattr(learn, "_prior_offsets", spy)
    Synthesizer(SPEC, epsilon=2.0, random_state=3,
                config=LearnConfig(count_share=0.0, degree=2)).fit(known_data)
    Synthesizer(SPEC, epsilon=2.0, random_state=3).fit(known_data)
    assert seen[0] is None
    assert seen[1] is not None and seen[1] != len(known_data)  # the noisy count


def test_a_parent_set_the_target_cannot_join_is_a_candidate_only_with_a_margin() -> None:
    from fhirsynth.learn.structure import _with_target

    # column 0 is the binary target; column 1 (6 states) and 2 (7 states) are free
    gcards, cards = [[2], [6], [7]], [2, 6, 7]
    with_t = (2, ((0, 0),))
    pair = (2, ((1, 0),))        # 7 x 6 = 42 cells; with the target 84
    both = (2, ((0, 0), (1, 0)))
    # cell limit 60: the target cannot join the pair (84 > 60)
    got = _with_target([with_t, pair], 0, gcards, cards, 3, 256, 60.0, 10.0)
    assert got == [with_t, pair]
    assert _with_target([with_t, pair], 0, gcards, cards, 3, 256, 60.0, 0.0) == [with_t]
    # cell limit 100: it can (84 <= 100), so the pair is left to the set with the target
    assert _with_target([with_t, pair, both], 0, gcards, cards, 3, 256, 100.0,
                        10.0) == [with_t, both]
    # degree 1: no set can hold the target beside another parent
    assert _with_target([with_t, pair], 0, gcards, cards, 1, 256, 1000.0, 10.0) == [with_t, pair]
    # no candidate with the target: every candidate stays
    assert _with_target([pair], 0, gcards, cards, 3, 256, 60.0, 0.0) == [pair]


def test_the_margin_lets_a_strong_association_beside_the_target_win() -> None:
    # noiseless: the best candidate wins
    from fhirsynth.learn.structure import greedy_structure
    from fhirsynth.privacy.budget import Accountant

    rng = np.random.default_rng(0)
    n = 2000
    t = rng.integers(0, 2, n)
    a = 3 * t + rng.integers(0, 3, n)  # a follows the target: it joins first, under it
    c = np.where(rng.random(n) < 0.9, a, rng.integers(0, 6, n))  # c follows a closely
    codes, cards = [t, a, c], [2, 6, 6]
    gcodes, gcards = [[x] for x in codes], [[k] for k in cards]

    def chosen(margin: float, limit: float) -> tuple:
        p = greedy_structure(
            codes, cards, gcodes, gcards, degree=2, max_parent_states=256, cell_limit=limit,
            max_candidates=100, eps_per_selection=0.1,
            accountant=Accountant(PrivacyBudget(epsilon=10.0)), rng=np.random.default_rng(1),
            random_state=1, noiseless=True, first=0, first_in_every_set=True,
            target_margin=margin)
        return p.parents[2]

    # 6 x 6 x 2 = 72 cells do not fit a limit of 50: without a margin c gets the target only
    assert chosen(0.0, 50.0) == ((0, 0),)
    assert chosen(0.05 * n, 50.0) == ((1, 0),)
    # a margin larger than the association keeps the target
    assert chosen(2.0 * n, 50.0) == ((0, 0),)
    # where the target fits beside a, the set holds both
    assert chosen(0.05 * n, 100.0) == ((0, 0), (1, 0))
