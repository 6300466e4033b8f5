"""Growth of fit and sample time and of peak memory with rows and columns.

Adult is bootstrapped (rows drawn with replacement, fixed seed) to 10k, 45k, 200k and 1M
rows; each size is fitted at epsilon = 1 and sampled to the same number of rows in a fresh
subprocess, so each peak RSS is that size's own.  A generated 50-column table (45k rows)
shows growth with columns.  Not part of the test suite.

    .venv/bin/python -m benchmarks.growth [--out benchmarks/results/growth.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SIZES = (10_000, 45_000, 200_000, 1_000_000)


def one(kind: str, n: int) -> dict:
    """Fit and sample one table in this process; times and the process's peak RSS."""
    from fhirsynth.synthesizer import Synthesizer

    if kind == "adult":
        from benchmarks.data import SHARED_TABULAR, read_table
        from fhirsynth.domain import load_spec

        spec = load_spec(SHARED_TABULAR / "adult.schema.json")
        full = read_table(SHARED_TABULAR / "adult.csv", spec)
        idx = np.random.default_rng(0).integers(0, len(full), n)
        df = full.iloc[idx].reset_index(drop=True)
    else:
        from benchmarks.learn_speed import random_network
        from fhirsynth.sample import sample_model

        net = random_network(50, seed=5)
        df, _ = sample_model(net, n, rng=np.random.default_rng(5))
        spec = net.spec
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        s = Synthesizer(spec, epsilon=1.0, random_state=0).fit(df)
        t1 = time.perf_counter()
        s.sample(n, random_state=1)
        t2 = time.perf_counter()
    return {"table": kind, "rows": n, "columns": len(spec.modelled),
            "fit_seconds": t1 - t0, "sample_seconds": t2 - t1,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            "rss_before_fit_mb": rss0}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=HERE / "results" / "growth.json")
    p.add_argument("--one", nargs=2, metavar=("KIND", "ROWS"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.one:
        print(json.dumps(one(a.one[0], int(a.one[1]))))
        return 0
    runs = [("adult", n) for n in SIZES] + [("generated", 45_000)]
    rows = []
    for kind, n in runs:
        out = subprocess.run([sys.executable, "-m", "benchmarks.growth", "--one", kind, str(n)],
                             check=True, capture_output=True, text=True, cwd=HERE.parent)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(r)
        print(f"{r['table']:9s} {r['rows']:>9,} x {r['columns']:2d}: fit {r['fit_seconds']:6.2f} s"
              f"  sample {r['sample_seconds']:6.2f} s  peak {r['peak_rss_mb']:6.0f} MB",
              flush=True)
    a.out.write_text(json.dumps({"runs": rows}, indent=1))
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
