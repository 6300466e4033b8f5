"""Speed and memory of the FHIR reader (``fhirsynth.ingest.fhir.iter_patients``).

1. Resources per second on the shared Synthea bundles (300 patients, 90,541 resources) in the
   default mode (projection validation) and in full validation mode; CPU seconds of this
   process (one core) and wall seconds are both reported, cold (first read in the process,
   model imports included) and warm.
2. Peak RSS while reading ~1 GB of Bulk NDJSON generated into a temporary folder from the
   invented fixture cohort generator (deleted afterwards); measured in a child process.

Usage: ``python benchmarks/ingest_speed.py [--bundles DIR] [--gb 1.0] [--skip-rss]
[--skip-bundles]``
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: the shared folder: $FHIRSYNTH_SHARED, else ../shared beside the repository
SHARED = Path(os.environ.get("FHIRSYNTH_SHARED") or
              ROOT.parent / "shared").expanduser()
DEFAULT_BUNDLES = SHARED / "data" / "fhir" / "synthea-r4" / "bundles"


def read_all(path: Path, validation: str) -> dict[str, float]:
    from fhirsynth.ingest.fhir import ImportReport, ReaderConfig, iter_patients

    report = ImportReport()
    cpu, wall = time.process_time(), time.perf_counter()
    patients = sum(1 for _ in iter_patients(path, report=report,
                                            config=ReaderConfig(validation=validation)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    n = sum(report.resources_read.values())
    return {"patients": patients, "resources": n, "cpu_s": round(cpu, 2),
            "wall_s": round(wall, 2), "resources_per_cpu_s": round(n / cpu),
            "resources_per_wall_s": round(n / wall), "issues": report.issue_count}


def make_ndjson(folder: Path, gigabytes: float) -> tuple[int, int]:
    """Write ~``gigabytes`` of Bulk NDJSON (one file per type); returns (bytes, patients)."""
    spec = importlib.util.spec_from_file_location("make_cohort",
                                                  ROOT / "fixtures" / "make_cohort.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    rng = random.Random(7)
    base = []
    for i in range(200):
        p = gen.Person(rng, i)
        resources = gen.resources_of(p)
        kinds = {r["id"]: r["resourceType"] for r in resources}
        lines: dict[str, list[bytes]] = {}
        for r in resources:
            lines.setdefault(r["resourceType"], []).append(
                json.dumps(gen.as_relative(r, kinds), separators=(",", ":")).encode())
        base.append((p.id.encode(), lines))
    handles = {}
    size = patients = 0
    target = int(gigabytes * 1e9)
    copy = 0
    while size < target:
        for pid, lines in base:
            new = pid[:-8] + f"{copy:08x}".encode()
            for rtype, items in lines.items():
                fh = handles.get(rtype)
                if fh is None:
                    fh = handles[rtype] = open(folder / f"{rtype}.ndjson", "wb")  # noqa: SIM115
                for line in items:
                    data = line.replace(pid, new) + b"\n"
                    fh.write(data)
                    size += len(data)
            patients += 1
            if size >= target:
                break
        copy += 1
    for fh in handles.values():
        fh.close()
    return size, patients


def child(folder: str) -> None:
    stats = read_all(Path(folder), "needed")
    stats["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(stats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=Path, default=DEFAULT_BUNDLES)
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--skip-bundles", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    results: dict[str, object] = {}
    if args.skip_bundles:
        pass
    elif args.bundles.is_dir():
        results["default_cold"] = read_all(args.bundles, "needed")
        results["default_warm"] = read_all(args.bundles, "needed")
        results["full_warm"] = read_all(args.bundles, "full")
        for k, v in results.items():
            print(f"{k:14s} {v}")
    else:
        print(f"skipping the bundle benchmark: {args.bundles} not found")

    if not args.skip_rss:
        folder = Path(tempfile.mkdtemp(prefix="fhirsynth-bench-"))
        try:
            t = time.perf_counter()
            size, patients = make_ndjson(folder, args.gb)
            print(f"generated {size / 1e9:.2f} GB NDJSON, {patients} patients "
                  f"in {time.perf_counter() - t:.0f} s")
            out = subprocess.run([sys.executable, __file__, "--child", str(folder)],
                                 check=True, capture_output=True, text=True)
            stats = json.loads(out.stdout.strip().splitlines()[-1])
            stats["input_gb"] = round(size / 1e9, 2)
            results["ndjson_1gb"] = stats
            print(f"ndjson         {stats}")
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "ingest_speed.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
