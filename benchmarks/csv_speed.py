"""Speed of the CSV reader (``fhirsynth.ingest.csv.read_csv_table``) on Adult bootstrapped
to larger row counts: seconds, rows per second and this process's peak RSS.

The reader parses every row in Python (bad rows are collected with their line), so it is
the slow part of ``fhirsynth run TABLE.csv``: the fit of the same rows takes a few seconds
(``benchmarks/growth.py``).

Usage: ``python benchmarks/csv_speed.py [--rows 20000 200000 1000000]``
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FHIRSYNTH_SHARED") or ROOT.parent / "shared").expanduser()
TABULAR = SHARED / "data" / "tabular"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[20_000, 200_000, 1_000_000])
    args = ap.parse_args(argv)
    import pandas as pd

    from fhirsynth.domain import load_spec
    from fhirsynth.ingest.csv import read_csv_table

    spec = load_spec(TABULAR / "adult.schema.json")
    adult = pd.read_csv(TABULAR / "adult.csv", dtype=str, keep_default_na=False)
    print("| rows | read s | rows per s | peak MB |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.rows:
            path = Path(tmp) / f"adult-{n}.csv"
            adult.sample(n, replace=True, random_state=0).to_csv(path, index=False)
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                table, _ = read_csv_table(path, spec)
            s = time.perf_counter() - t
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            assert len(table) == n
            print(f"| {n:,} | {s:.2f} | {n / s:,.0f} | {peak:.0f} |", flush=True)
            path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
