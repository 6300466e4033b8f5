"""Adapter for SDV's GaussianCopulaSynthesizer: a non-private reference point.

Runs in the peers venv.  SDV is installed with ``--no-deps`` (its declared dependencies
pull torch for the neural synthesizers; the Gaussian copula needs none of it).  The model
is not differentially private: ``--epsilon`` is ignored, and the results are a reference for
what a classical synthesizer reaches on the same split, never a competitor on privacy.

Metadata comes from the public domain, never from the data: categorical columns are
``categorical``; integer columns with one public state per integer and at most 20 values are
``categorical`` over that integer list (the rule the DataSynthesizer adapter uses); other
numeric columns are ``numerical`` (SDV's default marginal, fitted to the training rows).
SDV fixes its sampling seed unless told otherwise; ``--seed`` is passed to it.  Output values are
clipped to the public bounds, integer columns rounded, categories kept as declared strings.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
from datasynthesizer_adapter import _per_integer  # noqa: E402


def main() -> None:
    args = _common.parse_args()
    from sdv.metadata import Metadata
    from sdv.single_table import GaussianCopulaSynthesizer

    domain = _common.load_domain(args.domain)
    train = _common.read_train(args.train, domain)
    columns = {}
    frame = train.copy()
    for c in domain:
        if c["kind"] == "numeric" and not _per_integer(c):
            columns[c["name"]] = {"sdtype": "numerical"}  # integers rounded on output
        else:
            columns[c["name"]] = {"sdtype": "categorical"}
            if c["kind"] == "numeric":
                frame[c["name"]] = train[c["name"]].round().astype("Int64").astype("string")
    metadata = Metadata.load_from_dict({"tables": {"t": {"columns": columns}}})
    np.random.seed(args.seed)
    with _common.Timer() as fit_t:
        synth = GaussianCopulaSynthesizer(metadata, enforce_min_max_values=True)
        synth.fit({"t": frame})
        synth._set_random_state(args.seed)
    with _common.Timer() as samp_t:
        syn = synth.sample(num_rows=args.n)
        syn = syn["t"] if isinstance(syn, dict) else syn
        out = pd.DataFrame(index=syn.index)
        for c in domain:
            s = syn[c["name"]]
            if c["kind"] == "numeric":
                x = pd.to_numeric(s, errors="coerce").clip(*c["bounds"])
                out[c["name"]] = (x.round().astype("Int64") if c["integer"]
                                  else x.astype("Float64"))
            else:
                out[c["name"]] = s.astype("string")
    meta = {"method": "sdv-gaussiancopula", "private": False,
            "fit_seconds": fit_t.seconds, "sample_seconds": samp_t.seconds,
            "peak_rss_mb": _common.peak_rss_mb()}
    _common.write_outputs(out, meta, args.out, args.meta)


if __name__ == "__main__":
    main()
