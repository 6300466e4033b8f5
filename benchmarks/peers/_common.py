"""Shared plumbing of the peer adapters (runs inside benchmarks/.peers-venv, not fhirsynth's).

Owns: the adapter command line, reading the public-domain JSON written by the runner,
encoding raw values to codes over that public domain, decoding codes back to each column's
own kind of value, and the timing/peak-RSS record every adapter writes beside its CSV.
Nothing here reads a domain off the data: every state comes from the domain JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

MISSING_TOKENS = ["", "N/A", "NA", "NaN", "nan", "null", "None"]


def parse_args(extra: list[tuple[str, dict]] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--train", required=True, help="training CSV (raw values)")
    p.add_argument("--domain", required=True, help="public-domain JSON written by the runner")
    p.add_argument("--epsilon", type=float, required=True)
    p.add_argument("--delta", type=float, default=1e-9)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n", type=int, required=True, help="rows to sample")
    p.add_argument("--out", required=True, help="synthetic CSV path")
    p.add_argument("--meta", required=True, help="JSON path for timings and peak memory")
    for name, kw in extra or []:
        p.add_argument(name, **kw)
    return p.parse_args()


def load_domain(path: str) -> list[dict]:
    """Columns of the public domain, in model order (see run_peers.public_domain)."""
    return json.loads(Path(path).read_text())["columns"]


def read_train(path: str, domain: list[dict]) -> pd.DataFrame:
    """Read the training CSV with categoricals as strings and numerics as floats."""
    dtypes = {c["name"]: str for c in domain if c["kind"] != "numeric"}
    df = pd.read_csv(path, dtype=dtypes, keep_default_na=False, na_values=MISSING_TOKENS)
    return df[[c["name"] for c in domain]]


def encode(df: pd.DataFrame, domain: list[dict]) -> np.ndarray:
    """Codes over the public states of each column (missing is the last state)."""
    out = np.empty((len(df), len(domain)), dtype=np.int64)
    for j, c in enumerate(domain):
        s = df[c["name"]]
        miss = s.isna().to_numpy()
        if c["kind"] == "numeric":
            x = np.clip(pd.to_numeric(s, errors="coerce").to_numpy(float), *c["bounds"])
            inner = np.asarray(c["edges"][1:-1], float)
            codes = np.searchsorted(inner, np.nan_to_num(x, nan=c["bounds"][0]), side="right")
        else:
            lookup = {v: i for i, v in enumerate(c["categories"])}
            codes = s.map(lambda v, lk=lookup: lk.get(v, -1)).fillna(-1).to_numpy(np.int64)
            if ((codes < 0) & ~miss).any():
                raise ValueError(f"column {c['name']!r}: value outside the declared categories")
        if c["nullable"]:
            codes = np.where(miss, c["n_states"] - 1, codes)
        elif miss.any():
            raise ValueError(f"column {c['name']!r}: missing values in a non-nullable column")
        out[:, j] = codes
    return out


def decode(codes: np.ndarray, domain: list[dict], rng: np.random.Generator) -> pd.DataFrame:
    """Values from codes: declared category strings; integers stay integers (one state per
    integer decodes to that integer); other numeric bins draw uniformly inside the bin."""
    data = {}
    for j, c in enumerate(domain):
        k = np.asarray(codes[:, j], dtype=np.int64)
        miss = (k == c["n_states"] - 1) if c["nullable"] else np.zeros(len(k), bool)
        if c["kind"] == "numeric":
            e = np.asarray(c["edges"], float)
            kk = np.clip(np.where(miss, 0, k), 0, len(e) - 2)
            lo, hi = e[kk], e[kk + 1]
            if c["integer"]:
                ilo, ihi = np.ceil(lo), np.floor(hi)
                last = kk == len(e) - 2
                ihi = np.where(~last & (ihi == hi) & (ihi > ilo), ihi - 1, ihi)
                ihi = np.maximum(ihi, ilo)
                v = np.minimum(ilo + np.floor(rng.random(len(k)) * (ihi - ilo + 1)), ihi)
                col = pd.array(v.astype(np.int64), dtype="Int64")
            else:
                col = pd.array(lo + rng.random(len(k)) * (hi - lo), dtype="Float64")
        else:
            cats = np.asarray(c["categories"] + [""], dtype=object)
            col = pd.array(cats[np.clip(k, 0, len(cats) - 1)], dtype="string")
        col[miss] = pd.NA
        data[c["name"]] = col
    return pd.DataFrame(data)


def peak_rss_mb() -> float:
    """Peak resident set size of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class Timer:
    def __enter__(self) -> Timer:
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.t0


def write_outputs(df: pd.DataFrame, meta: dict, out: str, meta_path: str) -> None:
    """Write the synthetic CSV and the meta JSON atomically (temp file, then rename)."""
    for path, writer in ((out, lambda p: df.to_csv(p, index=False)),
                         (meta_path, lambda p: Path(p).write_text(json.dumps(meta, indent=1)))):
        d = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=d, suffix=".part")
        os.close(fd)
        writer(tmp)
        os.replace(tmp, path)
