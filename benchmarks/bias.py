"""Model bias: mean TVD of many synthetic rows against the training rows (no sampling noise).

Run: ``.venv/bin/python benchmarks/bias.py --dataset stroke --eps 1 --seeds 20
[--rows 30000] [--set key=value ...] [--delta 1e-9]``.  Prints mean and sd over seeds of
the 1-, 2- and 3-way TVD; the holdout-size noise of the benchmark proper is left out, so
small method changes show.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

from benchmarks.data import load_dataset
from benchmarks.quality import parse_set
from fhirsynth.config import LearnConfig
from fhirsynth.evaluate.fidelity import evaluate_fidelity
from fhirsynth.synthesizer import Synthesizer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="stroke")
    ap.add_argument("--eps", type=float, default=1.0)
    ap.add_argument("--delta", type=float, default=0.0)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--rows", type=int, default=30000)
    ap.add_argument("--set", nargs="*", default=[], help="LearnConfig overrides key=value")
    args = ap.parse_args()
    ds = load_dataset(args.dataset)
    config = LearnConfig(**parse_set(args.set))
    res = {"1way": [], "2way": [], "3way": []}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = Synthesizer(ds.spec, epsilon=args.eps, delta=args.delta, config=config,
                            random_state=seed).fit(ds.train)
            syn = s.sample(args.rows, random_state=seed + 1000)
        r = evaluate_fidelity(ds.spec, ds.train, syn, utility=False)
        for k in res:
            res[k].append(r["tvd"][k]["mean"])
    print(f"{args.dataset} eps {args.eps} delta {args.delta} seeds {args.seeds} "
          + " ".join(f"{k} {np.mean(v):.4f}±{np.std(v):.4f}" for k, v in res.items()),
          flush=True)


if __name__ == "__main__":
    main()
