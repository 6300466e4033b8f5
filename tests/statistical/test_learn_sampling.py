"""Sampling: marginals match the model, exact conditionals match pgmpy, the seed contract.

Both sampling modes: "iid" (independent rows) and "balanced" (systematic sampling within
parent groups in random row order).  Balanced counts vary less than multinomial ones, so
a chi-square test against the model is conservative for them: it still fails on any bias.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chisquare

from fhirsynth.domain import Column
from fhirsynth.encode import decode_column, encode
from fhirsynth.errors import EvidenceError
from fhirsynth.evidence import parse_evidence
from fhirsynth.model import FittedModel, Node
from fhirsynth.sample import _draw, _uniforms, decode_categorical, sample_codes, sample_model
from learn_nets import SPEC, exact_joint, known_model

ALPHA = 1e-4


@pytest.fixture(scope="module")
def model() -> FittedModel:
    return known_model()


def _freq(df: pd.DataFrame, cols: list[str]) -> np.ndarray:
    enc = encode(SPEC, df)
    idx = [enc.columns.index(c) for c in cols]
    cards = [enc.cards[i] for i in idx]
    flat = np.ravel_multi_index(tuple(enc.codes[:, i] for i in idx), cards)
    return np.bincount(flat, minlength=int(np.prod(cards))).reshape(cards)


def _chi2_ok(observed: np.ndarray, probs: np.ndarray) -> float:
    obs, p = observed.ravel(), probs.ravel()
    keep = p > 0
    assert obs[~keep].sum() == 0  # never a state the model forbids
    return float(chisquare(obs[keep], p[keep] / p[keep].sum() * obs.sum()).pvalue)


MODES = pytest.mark.parametrize("sampling", ["balanced", "iid"])


@MODES
def test_sampled_marginals_match_the_model(model, sampling) -> None:
    df, p_e = sample_model(model, 100_000, rng=np.random.default_rng(5), sampling=sampling)
    assert p_e == 1.0
    for col in ["A", "B", "C", "D", "E"]:
        assert _chi2_ok(_freq(df, [col]), exact_joint(model, [col])) > ALPHA
    assert _chi2_ok(_freq(df, ["A", "C", "D"]), exact_joint(model, ["A", "C", "D"])) > ALPHA


@MODES
def test_columns_are_drawn_independently_per_row(model, sampling) -> None:
    # E is independent of everything: its pairing with A must be the product distribution
    df, _ = sample_model(model, 50_000, rng=np.random.default_rng(6), sampling=sampling)
    joint = np.einsum("a,e->ae", exact_joint(model, ["A"]), exact_joint(model, ["E"]))
    assert _chi2_ok(_freq(df, ["A", "E"]), joint) > ALPHA


@pytest.mark.parametrize("evidence", [
    ["D=true", "A in a0,a1"],
    ["C=c2"],
    ["B=false", "E>=5"],
])
@MODES
def test_conditional_samples_match_variable_elimination(model, evidence, sampling) -> None:
    cols = ["A", "B", "C", "D", "E"]
    joint = exact_joint(model, cols)
    cons = parse_evidence(SPEC, evidence)
    w = joint.copy()
    for name, c in cons.items():
        shape = [1] * len(cols)
        shape[cols.index(name)] = -1
        w = w * c.weights.reshape(shape)
    df, p_e = sample_model(model, 60_000, evidence=evidence, rng=np.random.default_rng(8),
                           sampling=sampling)
    assert p_e == pytest.approx(w.sum(), rel=1e-9)
    assert _chi2_ok(_freq(df, cols), w / w.sum()) > ALPHA
    if "E>=5" in evidence:
        assert df["E"].min() >= 5 and df["E"].max() <= 10


def test_probability_zero_evidence_is_refused() -> None:
    m = known_model()
    zero_b = Node("B", m.by_name["B"].states, ("A",),
                  np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]))
    m2 = FittedModel(spec=m.spec, nodes=[zero_b if n.name == "B" else n for n in m.nodes],
                     budget={})
    with pytest.raises(EvidenceError, match="probability zero"):
        sample_model(m2, 10, evidence=["B=true"], rng=np.random.default_rng(0))


@pytest.mark.parametrize("evidence,match", [
    (["nope=1"], "unknown column 'nope'.*allowed columns: A, B"),
    (["A=a9"], "'a9' is not in its declared domain; allowed: a0, a1, a2"),
    (["E>=11"], "selects no value of column .E.; allowed: numbers in \\[0, 10\\]"),
    (["E>=6", "E<4"], "contradict each other: E>=6 and E<4 together allow no value"),
    (["A>=1"], "only =, != and 'in'"),
    (["A"], "not of the form"),
    (["E!=3"], "use ranges"),
])
def test_bad_evidence_is_a_clear_error(model, evidence, match) -> None:
    with pytest.raises(EvidenceError, match=match):
        sample_model(model, 5, evidence=evidence, rng=np.random.default_rng(0))


def test_seeded_runs_are_identical_and_unseeded_runs_differ(model) -> None:
    from fhirsynth.synthesizer import Synthesizer

    s = Synthesizer.__new__(Synthesizer)
    s.model_ = model
    a = s.sample(2000, random_state=11).to_csv(index=False).encode()
    b = s.sample(2000, random_state=11).to_csv(index=False).encode()
    assert a == b
    c = s.sample(2000).to_csv(index=False).encode()
    d = s.sample(2000).to_csv(index=False).encode()
    assert c != d and c != a
    e1 = s.sample(500, evidence=["E>=3"], random_state=4).to_csv(index=False).encode()
    e2 = s.sample(500, evidence=["E>=3"], random_state=4).to_csv(index=False).encode()
    assert e1 == e2


@pytest.mark.parametrize("col", [
    Column(name="c", categories=("a", "b", "zz")),
    Column(name="c", categories=("a", "b"), other=True, nullable=False),
    Column(name="c", categories=("x",), other=True, nullable=True),
])
def test_fast_categorical_decoding_equals_decode_column(col) -> None:
    codes = np.random.default_rng(0).integers(0, col.n_states, 5000)
    expected = decode_column(col, codes, np.random.default_rng(0))
    pd.testing.assert_series_equal(decode_categorical(col, codes), expected)


def test_guide_table_draws_match_the_table() -> None:
    rng = np.random.default_rng(3)
    table = np.array([[0.0, 0.5, 0.2], [0.3, 0.0, 0.0], [0.0, 0.5, 0.8], [0.7, 0.0, 0.0]])
    cfg = rng.integers(0, 3, 90_000)
    s = _draw(table, cfg, rng.random(cfg.size))
    for c in range(3):
        obs = np.bincount(s[cfg == c], minlength=4)
        assert _chi2_ok(obs, table[:, c]) > ALPHA


def test_not_equal_evidence_excludes_the_value(model) -> None:
    df, p_e = sample_model(model, 2000, evidence=["A!=a0", "D!=true"],
                           rng=np.random.default_rng(1))
    assert set(df["A"]) <= {"a1", "a2"} and not df["D"].astype(bool).any()
    # P(A != a0) * P(D = false | A != a0) is below P(A != a0) = 0.5 of the known network
    assert 0 < p_e < 0.5


# ----------------------------------------------------------------------- balanced sampling
def test_balanced_uniforms_take_one_stratum_each_within_every_group() -> None:
    rng = np.random.default_rng(2)
    cfg = rng.integers(0, 7, 5003)
    u = _uniforms(cfg, rng, balanced=True)
    assert ((u >= 0) & (u < 1)).all()
    for c in range(7):
        k = int((cfg == c).sum())
        np.testing.assert_array_equal(np.sort(np.floor(u[cfg == c] * k)), np.arange(k))


def test_balanced_counts_are_within_one_of_their_expectation(model) -> None:
    n = 10_007
    codes, _ = sample_codes(model, n, np.random.default_rng(4), sampling="balanced")
    for nd in model.nodes:
        cfg = np.zeros(n, np.int64)
        for p in nd.parents:
            cfg = cfg * model.by_name[p].card + codes[p]
        for c in np.unique(cfg):
            rows = cfg == c
            got = np.bincount(codes[nd.name][rows], minlength=nd.card)
            assert np.abs(got - rows.sum() * nd.cpd[:, c]).max() < 1, (nd.name, c)
    # the same under iid sampling is off by far more than one (multinomial spread)
    iid, _ = sample_codes(model, n, np.random.default_rng(4), sampling="iid")
    p_a = model.by_name["A"].cpd[:, 0]
    assert np.abs(np.bincount(iid["A"], minlength=3) - n * p_a).max() > 1


def test_balanced_columns_depend_on_nothing_but_their_parents(model) -> None:
    # C's only parent is B: within each B group, C must be independent of A (a generator
    # that fills each group in row order instead of a random order correlates them)
    from scipy.stats import chi2_contingency

    df, _ = sample_model(model, 60_000, rng=np.random.default_rng(9), sampling="balanced")
    abc = _freq(df, ["A", "B", "C"])
    for b in range(abc.shape[1]):
        assert chi2_contingency(abc[:, b, :]).pvalue > ALPHA


@pytest.mark.parametrize("evidence", [None, ["D=true"]])
def test_every_balanced_row_has_the_model_distribution(model, evidence) -> None:
    # over repeated small samples, the first and the last row each follow P(A, C, D)
    # (given the evidence): balancing changes how rows vary together, not any row's law
    cols = ["A", "C", "D"]
    joint = exact_joint(model, cols)
    if evidence:
        joint = joint * parse_evidence(SPEC, evidence)["D"].weights.reshape(1, 1, -1)
    cons = parse_evidence(SPEC, evidence) if evidence else None
    rng = np.random.default_rng(12)
    first, last = np.zeros(joint.shape), np.zeros(joint.shape)
    for _ in range(4000):
        codes, _ = sample_codes(model, 5, rng, cons, sampling="balanced")
        first[codes["A"][0], codes["C"][0], codes["D"][0]] += 1
        last[codes["A"][-1], codes["C"][-1], codes["D"][-1]] += 1
    assert _chi2_ok(first, joint / joint.sum()) > ALPHA
    assert _chi2_ok(last, joint / joint.sum()) > ALPHA


def test_unknown_sampling_mode_is_a_clear_error(model) -> None:
    from fhirsynth.errors import ConfigError

    with pytest.raises(ConfigError, match="sampling .'stratified'. must be one of balanced, iid"):
        sample_model(model, 5, rng=np.random.default_rng(0), sampling="stratified")
