"""Smoke test of the benchmark's in-project parts: split, baseline, metrics, runner, report.

Peers are not run here (they need benchmarks/.peers-venv and minutes of CPU); the runner
test asks only for the in-project baseline.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

bench_data = pytest.importorskip("benchmarks.data")
from benchmarks.baseline import IndependentMarginals  # noqa: E402
from benchmarks.metrics import evaluate, floor  # noqa: E402

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def adult(shared_data):
    return bench_data.load_dataset("adult", root=shared_data / "tabular", subsample=3000)


def test_split_is_fixed_and_disjoint(adult, shared_data):
    again = bench_data.load_dataset("adult", root=shared_data / "tabular", subsample=3000)
    assert len(adult.train) == 2400 and len(adult.holdout) == 600
    assert adult.train.equals(again.train)


def test_baseline_spends_exactly_epsilon_and_keeps_value_kinds(adult):
    m = IndependentMarginals(adult.spec, epsilon=1.0, random_state=3).fit(adult.train)
    assert m.accountant.spent_epsilon == pytest.approx(1.0)
    assert len(m.accountant.steps) == len(adult.spec.modelled)
    syn = m.sample(400)
    assert list(syn.columns) == [c.name for c in adult.spec.modelled]
    assert str(syn["age"].dtype) == "Int64"
    assert set(syn["sex"].dropna()) <= {"0", "1"}


def test_baseline_at_high_epsilon_matches_marginals_but_not_pairs(adult):
    syn = IndependentMarginals(adult.spec, epsilon=1e4, random_state=0).fit(
        adult.train).sample(len(adult.holdout))
    got = evaluate(adult.train, adult.holdout, syn, adult.spec)
    fl = floor(adult.train, adult.holdout, adult.spec)
    # 1-way marginals reach the sampling floor; independence breaks pairs and the classifier
    assert got["tvd1_mean"] < 2 * fl["tvd1_mean"] + 0.01
    assert got["tvd2_mean"] > fl["tvd2_mean"] + 0.02
    assert got["tstr_auc"] < fl["tstr_auc"] - 0.1
    assert fl["exact_match"] == got["exact_match_holdout"] or fl["exact_match"] >= 0


def test_copy_of_train_is_flagged(adult):
    got = evaluate(adult.train, adult.holdout, adult.train.iloc[:600], adult.spec)
    assert got["tvd1_mean"] < 0.05 and got["dcr_ratio"] < 1.0
    assert got["exact_match"] > 2 * got["exact_match_holdout"]


@pytest.mark.slow
def test_runner_quick_with_baseline_and_report(tmp_path, monkeypatch, shared_data):
    from benchmarks import make_report, run_peers

    monkeypatch.setattr(run_peers, "load_dataset", lambda name, subsample=None:
                        bench_data.load_dataset(name, root=shared_data / "tabular",
                                                subsample=subsample))
    out = tmp_path / "quick.json"
    assert run_peers.main(["--quick", "--methods", "independent", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    (rec,) = res["records"]
    assert rec["method"] == "independent" and rec["decoding"]["non_integer_values"] == 0
    assert 0 <= rec["tvd2_mean"] <= 1 and res["floors"]["adult"]["tstr_auc"] > 0.7
    md = tmp_path / "bench.md"
    assert make_report.main([str(out), "--out", str(md)]) == 0
    assert "| independent | 1 | 1 |" in md.read_text()


def test_aim_rounds_are_passed_to_aim_only_and_labelled():
    from benchmarks.run_peers import peer_label
    assert peer_label("aim", 32) == ("aim-r32", ["--aim-rounds", "32"])
    assert peer_label("aim", None) == ("aim", [])
    assert peer_label("mst", 32) == ("mst", [])
