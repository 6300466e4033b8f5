"""Run fhirsynth, the independent-marginals baseline and the peers side by side.

Every method fits on the same 80% of each dataset, samples as many rows as the 20% real
holdout, and is scored with the same metrics on the same public discretisation; the
holdout itself is scored as a "synthetic" table to show the sampling-noise floor.  Peers run
as subprocesses of benchmarks/.peers-venv (see peers/setup.sh) and are skipped when it is
absent.  ``--wiring`` is the epsilon = 1000 check that each method reaches the floor.

    .venv/bin/python -m benchmarks.run_peers            # full grid
    .venv/bin/python -m benchmarks.run_peers --quick    # smoke run
    .venv/bin/python -m benchmarks.run_peers --wiring   # epsilon = 1000 wiring check
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from benchmarks.baseline import IndependentMarginals
from benchmarks.data import Dataset, load_dataset, read_table, write_public_domain
from benchmarks.metrics import SOURCE, evaluate, floor

HERE = Path(__file__).resolve().parent
PEERS_PY = HERE / ".peers-venv" / "bin" / "python"
RAW = HERE / "results" / "raw"
PEERS = {
    "datasynthesizer": ["datasynthesizer_adapter.py"],
    "mst": ["mbi_adapter.py", "--method", "mst"],
    "aim": ["mbi_adapter.py", "--method", "aim"],
    "sdv": ["sdv_adapter.py"],  # GaussianCopula, not private: epsilon is ignored
}
IN_PROCESS = ("independent", "fhirsynth", "fhirsynth-zcdp")
#: delta of the peers' zCDP runs (the adapters' default); fhirsynth-zcdp uses the same
PEER_DELTA = 1e-9


def fhirsynth_available() -> bool:
    try:
        from fhirsynth.synthesizer import Synthesizer  # noqa: F401
    except ImportError:
        return False
    return True


def run_in_process(method: str, ds: Dataset, eps: float, seed: int, n: int) -> dict:
    """Fit and sample an in-project method; peak memory is this process's high-water mark."""
    t0 = time.perf_counter()
    if method == "independent":
        model = IndependentMarginals(ds.spec, epsilon=eps, random_state=seed).fit(ds.train)
    else:
        from fhirsynth.synthesizer import Synthesizer
        # fhirsynth: pure eps-DP (Laplace); fhirsynth-zcdp: Gaussian under zCDP with the
        # peers' delta
        delta = PEER_DELTA if method == "fhirsynth-zcdp" else 0.0
        model = Synthesizer(ds.spec, epsilon=eps, delta=delta, random_state=seed).fit(ds.train)
    t1 = time.perf_counter()
    outputs, seconds = {}, {}
    # fhirsynth's default balanced sampling, and the same model sampled i.i.d. (the
    # "-iid" rows): the difference is Monte-Carlo noise of the sampler, not the model
    modes = [(method, None)] if method == "independent" else [
        (method, "balanced"), (f"{method}-iid", "iid")]
    for label, sampling in modes:
        t = time.perf_counter()
        outputs[label] = model.sample(n) if sampling is None else model.sample(
            n, sampling=sampling)
        seconds[label] = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {"outputs": outputs, "fit_seconds": t1 - t0,
            "sample_seconds": seconds, "peak_rss_mb": rss,
            "rss_note": "in-process: high-water mark of the runner"}


def peer_label(method: str, aim_rounds: int | None) -> tuple[str, list[str]]:
    """Method label and extra adapter arguments: AIM with a set number of rounds is reported
    as ``aim-r<rounds>`` so it is never mistaken for AIM's default (16 rounds per column)."""
    if method == "aim" and aim_rounds is not None:
        return f"aim-r{aim_rounds}", ["--aim-rounds", str(aim_rounds)]
    return method, []


def run_peer(method: str, ds: Dataset, eps: float, seed: int, n: int,
             timeout: float, reuse: bool = False, aim_rounds: int | None = None) -> dict:
    """Run one peer adapter in the peers venv and read back its CSV(s) and meta JSON
    (``reuse``: rescore the outputs of an earlier run of the same cell instead)."""
    label, extra = peer_label(method, aim_rounds)
    work = RAW / ds.name
    work.mkdir(parents=True, exist_ok=True)
    train_csv = work / "train.csv"
    if not train_csv.exists():
        ds.train.to_csv(train_csv, index=False)
    domain = write_public_domain(ds.spec, work / "domain.json")
    stem = work / f"{label}-eps{eps:g}-seed{seed}"
    cmd = [str(PEERS_PY), str(HERE / "peers" / PEERS[method][0]), *PEERS[method][1:],
           "--train", str(train_csv), "--domain", str(domain), "--epsilon", str(eps),
           "--seed", str(seed), "--n", str(n), "--out", f"{stem}.csv",
           "--meta", f"{stem}.json", *extra]
    if not (reuse and Path(f"{stem}.json").exists()):
        with open(f"{stem}.log", "w") as log:
            subprocess.run(cmd, check=True, timeout=timeout, stdout=log,
                           stderr=subprocess.STDOUT)
    meta = json.loads(Path(f"{stem}.json").read_text())
    samp = meta["sample_seconds"]
    if isinstance(samp, dict):  # mst/aim: one CSV per sampling kind
        outputs = {f"{label}-{k}": f"{stem}.{k}.csv" for k in samp}
        samp = {f"{label}-{k}": v for k, v in samp.items()}
    else:
        outputs, samp = {label: f"{stem}.csv"}, {label: samp}
    frames = {name: read_table(Path(path), ds.spec) for name, path in outputs.items()}
    raw = {name: pd.read_csv(path, dtype=str, keep_default_na=False)
           for name, path in outputs.items()}
    return {"outputs": frames, "raw": raw, "fit_seconds": meta["fit_seconds"],
            "sample_seconds": samp, "peak_rss_mb": meta["peak_rss_mb"],
            "rss_note": "child process ru_maxrss"}


def decoding_checks(ds: Dataset, syn: pd.DataFrame, raw: pd.DataFrame | None) -> dict:
    """Integers stay integers; point-mass share of zero in integer columns vs the real data."""
    out: dict = {"non_integer_values": 0, "zero_share": {}}
    for c in ds.spec.modelled:
        if c.kind != "numeric" or not c.integer:
            continue
        vals = (raw[c.name] if raw is not None else syn[c.name].astype(str))
        vals = vals[~vals.isin(["", "<NA>", "nan", "NaN"])]
        out["non_integer_values"] += int((~vals.str.fullmatch(r"-?\d+")).sum())
        real0 = float((ds.train[c.name] == 0).mean())
        if real0 > 0.3:
            out["zero_share"][c.name] = {"real": real0,
                                         "synthetic": float((syn[c.name] == 0).mean())}
    return out


def run(datasets: list[str], epsilons: list[float], seeds: list[int], methods: list[str],
        *, subsample: int | None, n_rows: int | None, timeout: float, out: Path,
        reuse: bool = False, aim_rounds: int | None = None) -> dict:
    results: dict = {"metrics_source": SOURCE, "epsilons": epsilons, "seeds": seeds,
                     "aim_rounds": aim_rounds, "records": [], "floors": {}, "skipped": {}}
    for name in datasets:
        ds = load_dataset(name, subsample=subsample)
        n = n_rows or len(ds.holdout)
        fl = floor(ds.train, ds.holdout, ds.spec)
        results["floors"][name] = fl
        print(f"[{name}] holdout floor: tvd2 {fl['tvd2_mean']:.4f} TRTR "
              f"{fl['tstr_auc']:.3f}", flush=True)
        for method in methods:
            for eps in epsilons:
                for seed in seeds:
                    try:
                        if method in IN_PROCESS:
                            res = run_in_process(method, ds, eps, seed, n)
                        else:
                            res = run_peer(method, ds, eps, seed, n, timeout, reuse,
                                           aim_rounds)
                    except (subprocess.SubprocessError, OSError, ValueError) as exc:
                        label = peer_label(method, aim_rounds)[0]
                        results["skipped"][f"{name}/{label}/eps{eps:g}/seed{seed}"] = \
                            f"{type(exc).__name__}: {str(exc)[:300]}"
                        print(f"[{name}] {method} eps={eps:g} seed={seed}: FAILED {exc}",
                              flush=True)
                        continue
                    for variant, syn in res["outputs"].items():
                        rec = {"dataset": name, "method": variant, "epsilon": eps, "seed": seed,
                               "n": n, "fit_seconds": res["fit_seconds"],
                               "sample_seconds": res["sample_seconds"][variant],
                               "peak_rss_mb": res["peak_rss_mb"], "rss_note": res["rss_note"]}
                        rec.update(evaluate(ds.train, ds.holdout, syn, ds.spec, seed=seed))
                        raw = res.get("raw", {}).get(variant)
                        rec["decoding"] = decoding_checks(ds, syn, raw)
                        results["records"].append(rec)
                        print(f"[{name}] {variant} eps={eps:g} seed={seed}: tvd2 "
                              f"{rec['tvd2_mean']:.4f} tvd3 {rec['tvd3_mean']:.4f} auc "
                              f"{rec['tstr_auc']:.3f} fit {rec['fit_seconds']:.1f}s", flush=True)
                    _write(results, out)
    return results


def _write(results: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.part")
    tmp.write_text(json.dumps(results, indent=1, default=float))
    os.replace(tmp, out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", default=["adult", "stroke"])
    p.add_argument("--epsilons", nargs="+", type=float, default=[0.1, 1.0, 10.0])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--methods", nargs="+", default=None,
                   help="default: fhirsynth (when importable), independent and every peer")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: adult subsample of 2,000 rows, epsilon 1, one seed, n=500")
    p.add_argument("--wiring", action="store_true",
                   help="epsilon = 1000 on Adult, one seed: each method should reach the floor")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per peer run")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--reuse", action="store_true",
                   help="rescore peer outputs already in results/raw instead of refitting")
    p.add_argument("--aim-rounds", type=int, default=None,
                   help="AIM's number of rounds (smartnoise default: 16 per column); "
                        "reported as method aim-r<N>")
    a = p.parse_args(argv)
    methods = a.methods or ([*(["fhirsynth", "fhirsynth-zcdp"] if fhirsynth_available() else []),
                             "independent", *PEERS])
    skipped = {}
    if not PEERS_PY.exists():
        skipped = {m: "peers venv absent (run benchmarks/peers/setup.sh)"
                   for m in PEERS if m in methods}
        methods = [m for m in methods if m not in PEERS]
    subsample = n_rows = None
    if a.quick:
        a.datasets, a.epsilons, a.seeds, subsample, n_rows = ["adult"], [1.0], [0], 2000, 500
    if a.wiring:
        a.datasets, a.epsilons, a.seeds = ["adult"], [1000.0], [0]
    mode = "quick" if a.quick else "wiring" if a.wiring else "full"
    out = a.out or HERE / "results" / f"{mode}.json"
    res = run(a.datasets, a.epsilons, a.seeds, methods, subsample=subsample, n_rows=n_rows,
              timeout=a.timeout, out=out, reuse=a.reuse, aim_rounds=a.aim_rounds)
    res["skipped"].update(skipped)
    res["mode"] = mode
    _write(res, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
