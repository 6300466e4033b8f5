"""Empirical privacy audit of the real pipeline (the numbers of docs/privacy-audit.md).

Three settings, both with the default LearnConfig:

* ``toy``: the 4-column cohort of tests/statistical/test_audit_synthesizer.py (60 patients
  plus one planted patient whose diagnosis is declared but absent from D);
* ``one-column``: the toy cohort restricted to its diagnosis column, so that 95% of the
  budget goes into one noisy histogram: the audit is then close to tight;
* ``stroke``: 200 patients drawn from ../shared/data/tabular/stroke.csv (11 columns) plus the
  rarest state of every column.

Run: ``.venv/bin/python benchmarks/audit/run_audit.py --trials 2000 [--setting toy stroke]``.
Prints one JSON line per audit and a markdown table at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from fhirsynth.domain import TableSpec, load_spec
from fhirsynth.evaluate.audit import (
    neighbouring_cohorts,
    rare_record,
    record_log_probability,
    run_audit,
)
from fhirsynth.evaluate.audit_pipeline import audit_synthesizer

ROOT = Path(__file__).resolve().parents[2]
#: the shared folder: $FHIRSYNTH_SHARED, else ../shared beside the repository
SHARED = Path(os.environ.get("FHIRSYNTH_SHARED") or
              ROOT.parent / "shared").expanduser()
STROKE = SHARED / "data" / "tabular"


def toy(epsilon: float, trials: int, columns: tuple[str, ...] = ()):
    sys.path.insert(0, str(ROOT / "tests" / "statistical"))
    from test_audit_synthesizer import SPEC, _cohort

    if columns:
        SPEC = TableSpec(name="one-column", columns=tuple(SPEC[c] for c in columns))
    d0 = _cohort()[list(SPEC.names)]
    record = rare_record(SPEC, d0)
    d, d_prime = neighbouring_cohorts(SPEC, d0, record)

    from fhirsynth.synthesizer import Synthesizer

    def release(table: pd.DataFrame, seed: int):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Synthesizer(SPEC, epsilon=epsilon, random_state=seed).fit(table).model_

    return run_audit(release, lambda m: record_log_probability(m, record), d, d_prime,
                     trials=trials, claimed_epsilon=epsilon, seed=101)


def stroke(epsilon: float, trials: int):
    spec = load_spec(STROKE / "stroke.schema.json")
    table = pd.read_csv(STROKE / "stroke.csv", dtype=str, keep_default_na=False)
    return audit_synthesizer(spec, table, epsilon=epsilon, trials=trials, rows=200, seed=101)


def membership(epsilons: list[float]) -> None:
    """Distance-based membership inference on stroke: 1000 members, 1000 non-members."""
    from fhirsynth.evaluate.membership import membership_inference_auc
    from fhirsynth.synthesizer import Synthesizer

    spec = load_spec(STROKE / "stroke.schema.json")
    table = pd.read_csv(STROKE / "stroke.csv", dtype=str, keep_default_na=False)
    perm = np.random.default_rng(7).permutation(len(table))
    train, holdout = table.iloc[perm[:1000]], table.iloc[perm[1000:2000]]
    print("\n| release | MIA AUC (1000 members vs 1000 non-members, 1000 synthetic rows) |")
    print("|---|---|")
    for eps, noiseless in [*((e, False) for e in epsilons), (1.0, True)]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            synth = Synthesizer(spec, epsilon=eps, random_state=3).fit(train, _noiseless=noiseless)
        synthetic = synth.sample(1000, random_state=4)
        auc = membership_inference_auc(train, holdout, synthetic, spec, seed=5)
        label = "noise off (broken)" if noiseless else f"epsilon {eps:g}"
        print(f"| {label} | {auc:.3f} |")
    print("| the training rows themselves (worst case) | "
          f"{membership_inference_auc(train, holdout, train, spec, seed=5):.3f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--epsilons", type=float, nargs="+", default=[0.5, 1.0, 4.0])
    ap.add_argument("--setting", nargs="+", default=["one-column", "toy", "stroke"])
    ap.add_argument("--mia", action="store_true", help="Only the membership-inference table.")
    args = ap.parse_args()
    if args.mia:
        membership(args.epsilons)
        return
    rows = []
    for setting in args.setting:
        for eps in args.epsilons:
            t0 = time.perf_counter()
            if setting == "one-column":
                res = toy(eps, args.trials, ("dx",))
            else:
                res = {"toy": toy, "stroke": stroke}[setting](eps, args.trials)
            d = {"setting": setting, **res.to_dict(), "wall_s": time.perf_counter() - t0}
            print(json.dumps(d), flush=True)
            rows.append(d)
    print("\n| setting | claimed eps | fits per side | eps lower bound (95%) | point | "
          "95% interval | flagged | time |")
    print("|---|---|---|---|---|---|---|---|")
    for d in rows:
        up = "inf" if not np.isfinite(d["interval_high"]) else f"{d['interval_high']:.2f}"
        print(f"| {d['setting']} | {d['claimed_epsilon']:g} | {d['trials']} | "
              f"{d['epsilon_lower']:.2f} | {d['epsilon_point']:.2f} | "
              f"[{d['interval_low']:.2f}, {up}] | {d['flagged']} | {d['wall_s']:.0f} s |")


if __name__ == "__main__":
    main()
