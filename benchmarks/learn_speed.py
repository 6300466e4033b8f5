"""Speed and quality benchmarks of the DP Bayesian network (not part of the test suite).

Run: ``.venv/bin/python benchmarks/learn_speed.py [--quick]``.  Prints a table of fit times
(Adult at eps=1, a 71k x 52 generated table, growth with rows and columns), sampling time
for 1,000,000 x 30 and the ratio to pgmpy's ``simulate``, and 1-way / 2-way TVD on Adult.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from fhirsynth.domain import Column, TableSpec, load_spec
from fhirsynth.encode import encode
from fhirsynth.model import FittedModel, Node
from fhirsynth.sample import sample_model
from fhirsynth.synthesizer import Synthesizer

#: the shared folder: $FHIRSYNTH_SHARED, else ../shared beside the repository
SHARED = Path(os.environ.get("FHIRSYNTH_SHARED") or
              Path(__file__).resolve().parents[2] / "shared").expanduser()
DATA = SHARED / "data" / "tabular"


def random_network(d: int, seed: int = 0) -> FittedModel:
    """A random network: categorical (2-12 states) and integer (0..99) columns, <= 2 parents."""
    rng = np.random.default_rng(seed)
    cols, nodes = [], []
    for j in range(d):
        if j % 4 == 3:
            col = Column(name=f"x{j}", kind="numeric", bounds=(0.0, 99.0), integer=True,
                         nullable=False)
        else:
            k = int(rng.integers(2, 13))
            col = Column(name=f"x{j}", categories=tuple(f"s{i}" for i in range(k)),
                         nullable=False)
        cols.append(col)
        card = col.n_states
        cand = [i for i in range(j) if cols[i].n_states <= 12]
        parents = tuple(f"x{i}" for i in rng.choice(cand, size=min(len(cand), 2),
                                                    replace=False)) if cand else ()
        pcard = int(np.prod([cols[int(p[1:])].n_states for p in parents]))
        cpd = rng.dirichlet(np.full(card, 0.5), size=pcard).T
        nodes.append(Node(col.name, col.state_labels(), parents, cpd))
    spec = TableSpec(name=f"random{d}", columns=tuple(cols))
    return FittedModel(spec=spec, nodes=nodes, budget={"steps": []})


def timed(f):
    t = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t


def fit_time(spec, df, eps=1.0) -> tuple[Synthesizer, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return timed(lambda: Synthesizer(spec, epsilon=eps, random_state=0).fit(df))


def tvd(spec: TableSpec, a: pd.DataFrame, b: pd.DataFrame) -> tuple[float, float]:
    ea, eb = encode(spec, a), encode(spec, b)
    one, two = [], []
    for j, k in enumerate(ea.cards):
        pa = np.bincount(ea.codes[:, j], minlength=k) / ea.n_rows
        pb = np.bincount(eb.codes[:, j], minlength=k) / eb.n_rows
        one.append(0.5 * np.abs(pa - pb).sum())
    for i, j in itertools.combinations(range(len(ea.cards)), 2):
        m = ea.cards[i] * ea.cards[j]
        pa = np.bincount(ea.codes[:, i] * ea.cards[j] + ea.codes[:, j], minlength=m) / ea.n_rows
        pb = np.bincount(eb.codes[:, i] * eb.cards[j] + eb.codes[:, j], minlength=m) / eb.n_rows
        two.append(0.5 * np.abs(pa - pb).sum())
    return float(np.mean(one)), float(np.mean(two))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="skip the 1M-row fit")
    args = ap.parse_args()
    spec = load_spec(DATA / "adult.schema.json")
    adult = pd.read_csv(DATA / "adult.csv", dtype=str)
    synth, t = fit_time(spec, adult)
    print(f"fit Adult {adult.shape[0]} x {adult.shape[1]} eps=1: {t:.2f} s "
          f"(degree used {synth.model_.info['degree_used']})")

    big = random_network(52, seed=1)
    df71, _ = sample_model(big, 71_000, rng=np.random.default_rng(1))
    _, t = fit_time(big.spec, df71)
    print(f"fit generated 71000 x 52 eps=1: {t:.2f} s")

    net15 = random_network(15, seed=2)
    for n in (10_000, 100_000) + (() if args.quick else (1_000_000,)):
        df, _ = sample_model(net15, n, rng=np.random.default_rng(2))
        _, t = fit_time(net15.spec, df)
        print(f"fit rows growth: {n} x 15: {t:.2f} s")
    for d in (13, 26, 52):
        net = random_network(d, seed=3)
        df, _ = sample_model(net, 50_000, rng=np.random.default_rng(3))
        _, t = fit_time(net.spec, df)
        print(f"fit columns growth: 50000 x {d}: {t:.2f} s")

    net30 = random_network(30, seed=4)
    df30, _ = sample_model(net30, 50_000, rng=np.random.default_rng(4))
    s30, _ = fit_time(net30.spec, df30)
    out, t = timed(lambda: s30.sample(1_000_000, random_state=1))
    print(f"sample 1,000,000 x 30 (decoded DataFrame): {t:.2f} s")
    from fhirsynth.sample import sample_codes

    _, t_codes = timed(lambda: sample_codes(s30.model_, 1_000_000, np.random.default_rng(1)))
    print(f"sample 1,000,000 x 30 (codes only): {t_codes:.2f} s")
    n_small = 20_000
    net = s30.model_.network
    _, t_pg = timed(lambda: net.simulate(n_samples=n_small, show_progress=False, seed=1))
    _, t_me = timed(lambda: s30.sample(n_small, random_state=1))
    print(f"pgmpy simulate {n_small} rows: {t_pg:.2f} s; ours {t_me:.3f} s; "
          f"ratio {t_pg / t_me:.0f}x")

    rng = np.random.default_rng(0)
    idx = rng.permutation(len(adult))
    cut = int(0.8 * len(adult))
    train, test = adult.iloc[idx[:cut]], adult.iloc[idx[cut:]]
    floor = tvd(spec, train, test)
    print(f"Adult holdout floor (train 80% vs test 20%): 1-way {floor[0]:.4f} "
          f"2-way {floor[1]:.4f}")
    for eps in (1.0, 1000.0):
        s, _ = fit_time(spec, train, eps)
        syn = s.sample(len(test), random_state=2)
        r_real = tvd(spec, adult, s.sample(len(adult), random_state=3))
        r_test = tvd(spec, test, syn)
        print(f"Adult eps={eps:g}: vs real 1-way {r_real[0]:.4f} 2-way {r_real[1]:.4f}; "
              f"vs holdout 1-way {r_test[0]:.4f} 2-way {r_test[1]:.4f}")


if __name__ == "__main__":
    main()
