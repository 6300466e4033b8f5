"""The benchmark's metrics: a thin flattening of the project's ``fhirsynth.evaluate``.

Fidelity (TVD of all 1- and 2-way and 64 fixed-seed 3-way marginals on the public <= 16-bin
discretisation, pairwise Cramér's V error, TSTR/TRTR AUC) comes from
``evaluate_fidelity``; exact-match rate and DCR ratio from ``evaluate_privacy``.  No metric
is computed here: the benchmark uses the project's single implementation.
"""

from __future__ import annotations

import pandas as pd

from fhirsynth.domain import TableSpec
from fhirsynth.evaluate import evaluate_fidelity, evaluate_privacy

SOURCE = "fhirsynth.evaluate (evaluate_fidelity, evaluate_privacy)"
N_TRIPLES = 64

__all__ = ["N_TRIPLES", "SOURCE", "evaluate", "floor"]


def evaluate(train: pd.DataFrame, holdout: pd.DataFrame, syn: pd.DataFrame,
             spec: TableSpec, seed: int = 0) -> dict[str, float | None]:
    """Every benchmark metric of ``syn`` against the real train rows and real holdout."""
    fid = evaluate_fidelity(spec, train, syn, real_test=holdout, max_triples=N_TRIPLES,
                            seed=0)
    out: dict[str, float | None] = {}
    for k in (1, 2, 3):
        t = fid["tvd"][f"{k}way"]
        out[f"tvd{k}_mean"], out[f"tvd{k}_max"] = t["mean"], t["worst"]
    out["cramers_v_err"] = fid["cramers_v"]["mean_abs_diff"]
    util = fid.get("utility", {})
    out["tstr_auc"], out["trtr_auc"] = util.get("tstr"), util.get("trtr")
    priv = evaluate_privacy(spec, train, holdout, syn, seed=seed)
    out["exact_match"] = priv["exact_match"]["train"]
    out["exact_match_holdout"] = priv["exact_match"]["holdout"]
    out["dcr_ratio"] = priv["dcr"]["ratio"]
    out["mia_auc"] = priv["membership_inference"]["auc"]
    return out


def floor(train: pd.DataFrame, holdout: pd.DataFrame, spec: TableSpec) -> dict:
    """The sampling-noise floor: the real holdout scored as if it were synthetic (its TSTR
    column is replaced by TRTR, since training on the test rows would be meaningless)."""
    out = evaluate(train, holdout, holdout, spec)
    out["tstr_auc"] = out["trtr_auc"]
    return out
