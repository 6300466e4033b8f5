"""Adapter for DataSynthesizer, correlated attribute mode (PrivBayes, degree k=2).

Runs in the peers venv.  The public domain is declared, never inferred: categorical columns
get their declared list through ``categorical_attribute_domain_file`` (values are written
with a ``c_`` prefix so pandas keeps them strings, and the prefix is stripped on output);
integer columns with one public state per integer and at most 20 values are declared
categorical over that integer list; other numeric columns get their public bounds through
``numerical_attribute_ranges`` and DataSynthesizer's own equal-width histogram (20 bins,
fhirsynth's default) with uniform draws inside a bin, rounded for integer columns.  (Declaring
Adult's 85-100-value integer columns categorical kept greedy_bayes running > 15 min on this
machine; the histogram route loses exact point masses such as capital-gain 0.)

Compatibility shim: DataSynthesizer 0.1.13 breaks on numpy 2 (see ``main``).

Caveats (DataSynthesizer as shipped): it also stores an un-noised missing rate per column
in its description, and its 1-way histograms get Laplace noise with the same epsilon on top
of the epsilon/2 + epsilon/2 spent on the network (so it spends more than ``--epsilon``).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

PREFIX = "c_"


#: integer columns with at most this many public values are declared categorical over the
#: integer list (DataSynthesizer's own default category_threshold); wider ones use its
#: equal-width histogram, which is far faster in greedy_bayes but smears point masses
MAX_CATEGORICAL_INTEGERS = 20


def _per_integer(c: dict) -> bool:
    e = np.asarray(c["edges"])
    return (bool(c["integer"]) and np.allclose(np.diff(e), 1.0) and float(e[0]) % 1 == 0.5
            and len(e) - 1 <= MAX_CATEGORICAL_INTEGERS)


def main() -> None:
    args = _common.parse_args([("--k", {"type": int, "default": 2})])
    import DataSynthesizer.DataGenerator as generator_module
    from DataSynthesizer.DataDescriber import DataDescriber
    from DataSynthesizer.DataGenerator import DataGenerator

    # numpy 2 prints parent tuples as "(np.int64(3),)" and DataGenerator eval()s those
    # keys in a module that never imported numpy: give it the name (no behaviour change).
    generator_module.np = np

    domain = _common.load_domain(args.domain)
    train = _common.read_train(args.train, domain)
    dtypes, is_cat, ranges, cats = {}, {}, {}, {}
    frame = pd.DataFrame(index=train.index)
    bins = 20
    for c in domain:
        name, s = c["name"], train[c["name"]]
        if c["kind"] != "numeric":
            frame[name] = s.map(lambda v: v if pd.isna(v) else PREFIX + v)
            dtypes[name], is_cat[name] = "String", True
            cats[name] = [PREFIX + v for v in c["categories"]]
        elif _per_integer(c):
            frame[name] = s.round().astype("Int64")
            dtypes[name], is_cat[name] = "Integer", True
            lo, hi = int(np.ceil(c["bounds"][0])), int(np.floor(c["bounds"][1]))
            cats[name] = list(range(lo, hi + 1))
        else:
            frame[name] = s
            dtypes[name] = "Integer" if c["integer"] else "Float"
            is_cat[name] = False
            ranges[name] = list(c["bounds"])
            bins = len(c["edges"]) - 1
    with tempfile.TemporaryDirectory() as tmp:
        train_csv, dom_json, desc_json = (f"{tmp}/train.csv", f"{tmp}/dom.json", f"{tmp}/d.json")
        frame.to_csv(train_csv, index=False)
        Path(dom_json).write_text(json.dumps(cats))
        with _common.Timer() as fit_t:
            describer = DataDescriber(histogram_bins=bins, category_threshold=0)
            describer.describe_dataset_in_correlated_attribute_mode(
                train_csv, k=args.k, epsilon=args.epsilon, attribute_to_datatype=dtypes,
                attribute_to_is_categorical=is_cat,
                attribute_to_is_candidate_key={c["name"]: False for c in domain},
                categorical_attribute_domain_file=dom_json,
                numerical_attribute_ranges=ranges, seed=args.seed)
            describer.save_dataset_description_to_file(desc_json)
        with _common.Timer() as samp_t:
            gen = DataGenerator()
            gen.generate_dataset_in_correlated_attribute_mode(args.n, desc_json, seed=args.seed)
            syn = gen.synthetic_dataset
            out = pd.DataFrame(index=syn.index)
            for c in domain:
                s = syn[c["name"]]
                if c["kind"] != "numeric":
                    out[c["name"]] = s.map(
                        lambda v: pd.NA if pd.isna(v) else str(v)[len(PREFIX):]).astype("string")
                elif c["integer"]:
                    out[c["name"]] = pd.to_numeric(s).round().astype("Int64")
                else:
                    out[c["name"]] = pd.to_numeric(s).astype("Float64")
    meta = {"method": "datasynthesizer", "k": args.k, "fit_seconds": fit_t.seconds,
            "sample_seconds": samp_t.seconds, "peak_rss_mb": _common.peak_rss_mb(),
            "network": describer.bayesian_network}
    _common.write_outputs(out, meta, args.out, args.meta)


if __name__ == "__main__":
    main()
