"""Fidelity benchmark of the DP Bayesian network against an independent baseline and a floor.

Run: ``.venv/bin/python benchmarks/quality.py [--datasets adult,stroke,synthea]
[--eps 0.1,1,10] [--seeds 3] [--set key=value ...] [--no-utility]``.

For each dataset and epsilon it fits fhirsynth and an independent-marginals baseline (every
column's noisy one-way histogram at eps / d, Laplace, projected onto the simplex; no
structure) on a fixed 80 % training split, samples as many rows as the split has, and scores
them with :func:`fhirsynth.evaluate.fidelity.evaluate_fidelity` against the training rows
(TSTR on the 20 % holdout).  The holdout floor compares the training rows with the holdout
itself: what an exact copy of the distribution would score at that holdout size.  Synthea
(300 patients, no target) trains on all rows and its floor compares two random halves.
Numbers are mean +- sd over seeds.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from fhirsynth.config import LearnConfig
from fhirsynth.domain import load_spec
from fhirsynth.evaluate.fidelity import evaluate_fidelity
from fhirsynth.synthesizer import Synthesizer

#: the shared folder: $FHIRSYNTH_SHARED, else ../shared beside the repository
SHARED = Path(os.environ.get("FHIRSYNTH_SHARED") or
              Path(__file__).resolve().parents[2] / "shared").expanduser()
DATA = SHARED / "data"
SYNTHEA_CACHE = Path("/tmp/q_synthea300.parquet")
METRICS = ("1way", "2way", "3way", "cramer", "tstr")


def load(name: str):
    if name == "synthea":
        from fhirsynth.ingest import read_input
        from fhirsynth.ingest.features import load_feature_spec

        spec = load_feature_spec(None)
        if SYNTHEA_CACHE.exists():
            table = pd.read_parquet(SYNTHEA_CACHE)
        else:
            table, _ = read_input([DATA / "fhir" / "synthea-r4" / "bundles"], spec)
            table.to_parquet(SYNTHEA_CACHE)
        return spec, table
    spec = load_spec(DATA / "tabular" / f"{name}.schema.json")
    return spec, pd.read_csv(DATA / "tabular" / f"{name}.csv", dtype=str)


def split(spec, table: pd.DataFrame):
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(table))
    if spec.target is None:
        half = len(table) // 2
        return table, None, (table.iloc[idx[:half]], table.iloc[idx[half:]])
    cut = int(0.8 * len(table))
    train, test = table.iloc[idx[:cut]], table.iloc[idx[cut:]]
    return train, test, (train, test)


def scores(spec, real, synth, test, utility: bool) -> dict[str, float]:
    r = evaluate_fidelity(spec, real, synth, real_test=test,
                          utility=utility and test is not None)
    u = r.get("utility", {})
    return {"1way": r["tvd"]["1way"]["mean"], "2way": r["tvd"]["2way"]["mean"],
            "3way": r["tvd"]["3way"]["mean"], "cramer": r["cramers_v"]["mean_abs_diff"],
            "tstr": u.get("tstr", float("nan")) if u else float("nan"),
            "trtr": u.get("trtr", float("nan")) if u else float("nan")}


def baseline_config() -> LearnConfig:
    return LearnConfig(structure_share=0.0, count_share=0.0, degree=0, marginal_share=0.0,
                       coarse_share=0.0, pool_total=False)


def run(spec, train, test, eps: float, seed: int, config: LearnConfig, utility: bool):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        s = Synthesizer(spec, epsilon=eps, config=config, random_state=seed).fit(train)
        fit_s = time.perf_counter() - t
        syn = s.sample(len(train), random_state=seed + 100)
    out = scores(spec, train, syn, test, utility)
    out["fit_s"] = fit_s
    return out


def fmt(vals: list[float]) -> str:
    a = np.asarray(vals, float)
    if np.all(np.isnan(a)):
        return "-"
    return f"{np.nanmean(a):.4f}±{np.nanstd(a):.4f}"


def parse_set(items: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for it in items:
        k, v = it.split("=", 1)
        if v in ("None", "none"):
            out[k] = None
        elif v in ("true", "false"):
            out[k] = v == "true"
        else:
            try:
                out[k] = int(v)
            except ValueError:
                try:
                    out[k] = float(v)
                except ValueError:
                    out[k] = v
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="adult,stroke,synthea")
    ap.add_argument("--eps", default="0.1,1,10")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--set", nargs="*", default=[], help="LearnConfig overrides key=value")
    ap.add_argument("--no-utility", action="store_true")
    ap.add_argument("--no-baseline", action="store_true")
    args = ap.parse_args()
    config = LearnConfig(**parse_set(args.set))
    utility = not args.no_utility
    print(f"{'dataset':8} {'eps':>5} {'method':11} " + " ".join(f"{m:>15}" for m in METRICS)
          + f" {'fit s':>6}")
    for name in args.datasets.split(","):
        spec, table = load(name)
        train, test, (fa, fb) = split(spec, table)
        floor = scores(spec, fa, fb, test, utility)
        floor["tstr"] = floor["trtr"]  # the floor's TSTR column: train on real, test on real
        for eps in (float(e) for e in args.eps.split(",")):
            methods = [("fhirsynth", config)]
            if not args.no_baseline:
                methods.append(("independent", baseline_config()))
            for label, cfg in methods:
                runs = [run(spec, train, test, eps, seed, cfg, utility)
                        for seed in range(args.seeds)]
                print(f"{name:8} {eps:5g} {label:11} "
                      + " ".join(f"{fmt([r[m] for r in runs]):>15}" for m in METRICS)
                      + f" {np.mean([r['fit_s'] for r in runs]):6.2f}", flush=True)
        print(f"{name:8} {'':>5} {'floor':11} "
              + " ".join(f"{fmt([floor[m]]):>15}" for m in METRICS), flush=True)


if __name__ == "__main__":
    main()
