"""Adapter for smartnoise-synth's MST and AIM (private-pgm ``mbi``), run in the peers venv.

The mechanisms are smartnoise's own (``MSTSynthesizer.MST`` and ``AIMSynthesizer.AIM``), fed
with codes over the PUBLIC domain: smartnoise's table transformer is bypassed because its
LabelTransformer reads the category list off the data.  Sampling comes in two forms:

* ``shipped``: ``MarkovRandomField.synthetic_data()`` with its default ``method="round"``,
  which is what ``snsynth``'s ``sample()`` calls.  Within each group of parent values it
  hands out child values by row rank (randomised rounding of the conditional counts), so
  rows are not independent draws: two children of the same parent are filled in the same
  row order and come out correlated beyond what the model says.
* ``iid``: the same fitted model sampled with ``method="sample"`` (mbi's own i.i.d. path:
  every row draws each column from its conditional given the row's sampled parents with a
  fresh uniform), so each row is an independent draw from the fitted graphical model.

Noise is drawn by OpenDP's sampler (smartnoise ``gaussian_noise``) and cannot be seeded;
``--seed`` seeds numpy (selection, sampling, decompression), so repeated runs differ.
"""

from __future__ import annotations

import io
import sys
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402


def main() -> None:
    args = _common.parse_args([
        ("--method", {"choices": ["mst", "aim"], "required": True}),
        ("--sampling", {"choices": ["shipped", "iid", "both"], "default": "both"}),
        ("--aim-rounds", {"type": int, "default": None}),
    ])
    from mbi import Dataset, Domain
    from snsynth.aim import AIMSynthesizer
    from snsynth.mst import MSTSynthesizer
    from snsynth.utils import cdp_rho

    np.random.seed(args.seed)
    domain = _common.load_domain(args.domain)
    train = _common.read_train(args.train, domain)
    codes = _common.encode(train, domain)
    names = [f"col{j}" for j in range(len(domain))]
    cards = [c["n_states"] for c in domain]
    data = Dataset({n: codes[:, j] for j, n in enumerate(names)}, domain=Domain(names, cards))

    log = io.StringIO()
    with _common.Timer() as fit_t, redirect_stdout(log):
        if args.method == "mst":
            synth = MSTSynthesizer(epsilon=float(args.epsilon), delta=args.delta)
            synth.MST(data, float(args.epsilon), args.delta)
            undo = synth.undo_compress_fn
        else:
            synth = AIMSynthesizer(epsilon=float(args.epsilon), delta=args.delta,
                                   rounds=args.aim_rounds)
            synth.rho = cdp_rho(float(args.epsilon), args.delta)
            workload = synth.get_workload(data, degree=2, max_cells=synth.max_cells)
            synth.AIM(data, workload)
            undo = None
    model = synth.synthesizer

    kinds = ["shipped", "iid"] if args.sampling == "both" else [args.sampling]
    rng = np.random.default_rng(args.seed)
    meta = {"method": args.method, "fit_seconds": fit_t.seconds, "sample_seconds": {},
            "cliques": [[names.index(a) for a in cl] for cl in model.cliques]}
    for kind in kinds:
        with _common.Timer() as t:
            how = "round" if kind == "shipped" else "sample"
            ds = model.synthetic_data(rows=args.n, method=how)
            if undo is not None:
                ds = undo(ds)
            out = _common.decode(ds.df[names].to_numpy(), domain, rng)
        meta["sample_seconds"][kind] = t.seconds
        path = args.out if len(kinds) == 1 else args.out.replace(".csv", f".{kind}.csv")
        meta["peak_rss_mb"] = _common.peak_rss_mb()
        _common.write_outputs(out, meta, path, args.meta)


if __name__ == "__main__":
    main()
