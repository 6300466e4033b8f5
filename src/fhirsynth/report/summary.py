"""Public facts of a fitted model for the shareable report, and warnings about its utility.

Everything here is computed from the released model (DP outputs) and the public spec:
:func:`model_summary` gives the report its method, graph, the model's one-way marginals on
the evaluation's public bins, and how missingness was modelled; :func:`utility_notes` warns,
from the noisy count and the budget plan, when noise dominates or no structure search ran.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["MISSINGNESS", "independent_columns", "input_columns", "missingness_by_column",
           "model_summary", "structure_searched", "utility_notes"]

#: the report's figures use the evaluation's public bins
MAX_EVAL_BINS_FOR_REPORT = 16
#: noisy patients x median table epsilon below which the run warns that noise dominates
LOW_SIGNAL = 10.0


MISSINGNESS = (
    "Missing values are modelled, not imputed: in every nullable column \"missing\" is a "
    "state of its own, learned jointly with the other columns by the same DP measurements, "
    "so missingness that depends on other columns (not missing at random) can be kept as "
    "far as the network's structure and the noise allow. Columns declared not nullable "
    "have no missing state.")


def _bin_spread(col: Any, a: float, b: float, last: bool, eval_edges: np.ndarray) -> np.ndarray:
    """How a model bin [a, b) of a numeric column (``last``: [a, b]) falls into the
    evaluation bins: in proportion to the integers of each part for an integer column,
    else to the length of each part (the synthetic values inside a bin are drawn across it,
    so its mass is spread the same way, not put where its midpoint falls)."""
    from fhirsynth.evaluate.discretise import discretise_column

    if col.integer:
        ints = np.arange(math.ceil(a), math.floor(b) + 1, dtype=float)
        ints = ints[(ints >= a) & ((ints <= b) if last else (ints < b))]
        if ints.size:
            codes = discretise_column(col, pd.Series(ints, dtype="float64"))
            return np.bincount(codes, minlength=len(eval_edges) - 1)[: len(eval_edges) - 1] \
                / ints.size
    lo, hi = np.maximum(eval_edges[:-1], a), np.minimum(eval_edges[1:], b)
    part = np.clip(hi - lo, 0.0, None)
    if part.sum() <= 0:  # a bin of zero width: where its value falls
        out = np.zeros(len(eval_edges) - 1)
        out[int(discretise_column(col, pd.Series([float(a)]))[0])] = 1.0
        return out
    return part / part.sum()


def _on_eval_states(col: Any, values: np.ndarray) -> tuple[list[str], np.ndarray]:
    """A model marginal moved onto the evaluation states of the column (the same states as
    the synthetic statistics beside it): a point mass goes where its value falls, a value bin
    is spread over the evaluation bins it overlaps (:func:`_bin_spread`; a trial saw the
    released marginal spike at every fourth bin when 20 model bins went to 16 by their
    midpoints), missing to missing."""
    from fhirsynth.domain import MISSING, OTHER
    from fhirsynth.evaluate.discretise import _labels, discretise_column, eval_edges

    labels = _labels(col, MAX_EVAL_BINS_FOR_REPORT)
    out = np.zeros(len(labels))
    model_labels = col.state_labels()
    if col.kind == "numeric":
        edges = col.bin_edges()
        ev = eval_edges(col, MAX_EVAL_BINS_FOR_REPORT)
        n_point = len(col.point_masses)
        points = discretise_column(col, pd.Series([float(p) for p in col.point_masses],
                                                  dtype="float64"))
        np.add.at(out, points, values[:n_point])
        n_bins = len(edges) - 1
        for i in range(n_bins):
            share = _bin_spread(col, float(edges[i]), float(edges[i + 1]), i == n_bins - 1, ev)
            out[: len(ev) - 1] += values[n_point + i] * share
        if len(model_labels) > n_point + n_bins:  # the missing state
            out[labels.index(MISSING)] += values[n_point + n_bins:len(model_labels)].sum()
        return labels, out
    index = {lab: i for i, lab in enumerate(labels)}
    codes = np.array([index.get(lab, index[OTHER] if lab != MISSING else index[MISSING])
                      for lab in model_labels])
    np.add.at(out, codes, values[: len(codes)])
    return labels, out


def missingness_by_column(model: Any) -> list[dict[str, Any]]:
    """How each nullable modelled column's missingness was modelled: its parents in the
    released network and whether the schema declared them (public and DP facts only)."""
    declared = model.info.get("declared_structure") or {}
    graph = model.graph()
    out = []
    for col in model.spec.modelled:
        if not col.nullable or col.n_states < 2:
            continue
        parents = graph.get(col.name, [])
        out.append({"column": col.name, "parents": parents,
                    "source": ("declared" if col.name in declared else
                               "learned" if parents else "none")})
    return out


def _missingness_line(m: dict[str, Any]) -> str:
    if not m["parents"]:
        return (f"{m['column']}: missing or not is independent of the other columns in the "
                "model (no parent)")
    how = ("declared in the schema" if m["source"] == "declared"
           else "chosen by the DP structure search")
    return f"{m['column']}: missing or not depends on {', '.join(m['parents'])} ({how})"


#: forward draws of the released model behind the report's released one-way marginals
MARGINAL_DRAWS = 200_000


def model_summary(model: Any, *, notes: Sequence[str] = (),
                  import_report: dict[str, Any] | None = None,
                  output_columns: Sequence[str] | None = None) -> dict[str, Any]:
    """Public facts of a fitted model for the shareable report.

    ``released_marginals`` are the one-way marginals the released model implies, read off
    :data:`MARGINAL_DRAWS` forward draws of the model with a fixed seed (post-processing of
    DP outputs, so they may be shown beside the synthetic data's own shares; standard error
    at most 0.0011 per share).  Exact inference is not used: on a dense network of many
    columns (a large cohort or a large epsilon) variable elimination needs tables of
    billions of cells, while the draws take about a second.  The rest is data-independent:
    how missingness is modelled, the columns the public schema declares constant (one
    state), warnings of the fit (``notes``) and, for CSV input, the class and treatment of
    each input column in this run (from the header and the schema, never from cell values;
    see :func:`input_columns`, checked against ``output_columns`` when given).
    """
    from fhirsynth.sample import sample_codes

    codes, _ = sample_codes(model, MARGINAL_DRAWS, np.random.default_rng(0))
    marginals = []
    for name in model.columns:
        node = model.by_name[name]
        if node.parents:
            values = np.bincount(codes[name], minlength=node.card) / MARGINAL_DRAWS
        else:
            values = np.asarray(node.cpd[:, 0], float)
        states, values = _on_eval_states(model.spec[name], values)
        marginals.append({"columns": [name], "states": states,
                          "values": np.round(values, 6).tolist()})
    return {
        "method": "PrivBayes-style DP Bayesian network (fhirsynth)",
        "graph": model.graph(),
        "released_marginals": marginals,
        "n_patients_noisy": model.info.get("n_patients_noisy"),
        "missingness": MISSINGNESS,
        "missingness_by_column": [_missingness_line(m) for m in missingness_by_column(model)],
        "constant_columns": [c.name for c in model.spec.modelled if c.n_states == 1],
        "constraints": list((model.output or {}).get("constraints") or []),
        "notes": list(notes),
        "input_columns": input_columns(import_report, output_columns),
    }


def input_columns(import_report: dict[str, Any] | None,
                  output_columns: Sequence[str] | None = None) -> list[dict[str, str]]:
    """Class and treatment of each input column in this run (names and classes only).

    The treatment is the reader's (``modelled``, ``transformed (year) as birth_year``,
    ``regenerated ...``, ``omitted (...)``).  Given the ``output_columns`` of the synthetic
    table, a column said to feed output columns none of which the output holds is reported
    as ``omitted (not in the output)``: the table states what the release contains.
    """
    rows = []
    for name, v in ((import_report or {}).get("columns") or {}).items():
        v = v or {}
        treatment = str(v.get("treatment", ""))
        feeds = list(v.get("output") or [])
        if output_columns is not None and feeds and not set(feeds) & set(output_columns):
            treatment = "omitted (not in the output)"
        rows.append({"column": str(name), "role": str(v.get("role", "")),
                     "treatment": treatment})
    return rows


def measurement_noise(budget_table: Mapping[str, Any]) -> dict[str, float]:
    """Standard deviation of the noise on one released cell of each column's one-way
    measurement, in patients, from the budget table alone.

    The one-way histogram ``marginal X`` when the column has one, else its table
    ``table X`` (a column without parents is measured there).  Laplace at epsilon e:
    sqrt(2) / e; Gaussian under zCDP with rho r: 1 / sqrt(2 r).
    """
    out: dict[str, float] = {}
    for st in budget_table.get("steps", []):
        name = str(st.get("name", ""))
        kind, _, col = name.partition(" ")
        if kind not in ("marginal", "table") or not col or col.endswith(")"):
            continue
        rho, eps = st.get("rho"), float(st.get("epsilon") or 0.0)
        sd = (1.0 / math.sqrt(2.0 * float(rho)) if rho else
              math.sqrt(2.0) / eps if eps > 0 else math.inf)
        if kind == "marginal" or col not in out:
            out[col] = sd
    return out


def structure_searched(model: Any) -> bool:
    """Whether the fit ran the DP structure search (a ``structure`` step in its budget)."""
    return any(str(s.get("name", "")).startswith("structure")
               for s in model.budget.get("steps", []))


def independent_columns(model: Any) -> bool:
    """Whether every column was sampled on its own: no structure search ran and the released
    network has no parent anywhere (the fit found too little signal for tables with parents)."""
    return (not structure_searched(model) and not model.info.get("degree_used")
            and len(model.columns) > 1)


def single_value_columns(model: Any) -> list[str]:
    """Modelled columns that the released model gives one value only, whatever the parents:
    the noise left no mass on any other state (a public one-state column is not counted).
    Read from the model's tables (released), so it may be said in the shareable report."""
    constant = set(model.info.get("constant_columns") or ())
    out = []
    for node in model.nodes:
        if node.group_of is not None or node.name in constant or node.card < 2:
            continue
        if int((np.asarray(node.cpd) > 0).any(axis=1).sum()) == 1:
            out.append(node.name)
    return out


def utility_notes(model: Any) -> list[str]:
    """Warnings from public and released facts only (the model's budget steps, info and
    tables): is noise likely to dominate, were all columns sampled independently, do some
    columns come out with one value only, and is the missingness of some column modelled as
    independent of everything else?"""
    out = []
    if independent_columns(model):
        config = model.info.get("config") or {}
        if model.info.get("degree_max") == 0 or config.get("structure_share") == 0:
            out.append("every column was sampled independently of the others: no association "
                       "between columns is kept, because the configuration gives the structure "
                       "search no budget or no parents (structure_share or degree 0)")
        else:
            out.append(
                "every column was sampled independently of the others: no association between "
                "columns is kept, because the signal (noisy patient count times the budget per "
                "table) was too small for any table with parents, so no structure search ran; "
                "use a larger epsilon, fewer columns or a larger cohort")
    single = single_value_columns(model)
    if single:
        names = ", ".join(single[:8]) + (f" and {len(single) - 8} more" if len(single) > 8
                                         else "")
        out.append(f"{len(single)} of {len(model.columns)} columns have a single state (one "
                   f"value, or one bin of a numeric column) in every synthetic row ({names}): "
                   "the noise left the model no mass on their other states, so the synthetic "
                   "data say nothing about them; use a larger epsilon, fewer columns or a "
                   "larger cohort")
    alone = [m["column"] for m in missingness_by_column(model) if m["source"] == "none"]
    if alone:
        why = ("no structure search ran" if not structure_searched(model)
               else "the structure search gave no parent")
        names = ", ".join(alone[:5]) + (f" and {len(alone) - 5} more nullable columns"
                                        if len(alone) > 5 else "")
        out.append(
            f"the missingness of {names} is modelled as independent of the other "
            f"columns ({why}); if it is known to depend on "
            "another column (a death year only for the deceased, a lab value only for a "
            "diagnosis), declare that in the schema's 'structure' entry (docs/learning.md) "
            "so that impossible combinations stay rare")
    noisy = model.info.get("n_patients_noisy")
    steps = [s for s in model.budget.get("steps", []) if s["name"].startswith("table ")]
    if not noisy or not steps:
        return out
    # per table, the epsilon of a Laplace count with the same noise (zCDP: sqrt(2) / sigma)
    per = sorted(2.0 * math.sqrt(s["rho"]) if s.get("rho") else s["epsilon"] for s in steps)
    eps = per[len(per) // 2]
    signal = noisy * eps
    if signal < LOW_SIGNAL:
        what = ("Gaussian noise as large as a Laplace count's at epsilon"
                if any(s.get("rho") for s in steps) else "epsilon")
        who = f"{noisy} patient" + ("" if noisy == 1 else "s")
        out.append(f"noise is likely to dominate: with a noisy count of about {who} and {what} "
                   f"{eps:.3g} per table, each table has about {signal:.1f} patients of signal "
                   "per unit of noise; raise epsilon, use fewer columns, or check the internal "
                   "report before sharing")
    return out
