"""The custodian's ``internal/validation.pdf``: synthetic against real, for the custodian only.

Every page is marked "CUSTODIAN ONLY — contains statistics of the real data".  Sections:
overview and TVD summary, per-column summaries, real-vs-synthetic marginal plots, Cramér's V
heatmaps, TSTR/TRTR, privacy-risk tests, subgroup fidelity, the Safe Harbor scan, the
import report counts (with each input column's class and treatment) and the categories that
occur only once in the training data.  Input is the JSON of
:func:`fhirsynth.evaluate.evaluate_fidelity` and :func:`fhirsynth.evaluate.evaluate_privacy`,
plus real and synthetic state shares.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from reportlab.platypus import PageBreak, Spacer

from fhirsynth.ingest.report import issue_row
from fhirsynth.report import figures
from fhirsynth.report.pdf import CUSTODIAN_BANNER, Styles, figure, para, table

__all__ = ["internal_story"]


def _overview(ev: Mapping[str, Any], ctx: Mapping[str, Any], s: Styles) -> list[Any]:
    fid = ev.get("fidelity", {})
    rows = []
    for k in ("1way", "2way", "3way"):
        t = fid.get("tvd", {}).get(k)
        if t and t.get("n"):
            rows.append([f"{t['k']}-way marginals" + (" (sample)" if t["sampled"] else ""),
                         t["n"], t["mean"], t["worst"], ", ".join(t["worst_of"])])
    cv = fid.get("cramers_v", {}).get("mean_abs_diff")
    return [
        para("Internal validation", s.h1),
        para(CUSTODIAN_BANNER + ". Do not share this document: it compares the synthetic "
             "data with the real patients.", s.body),
        para(f"Dataset {ctx.get('dataset', '')} · run {ctx.get('run_id', '')} · created "
             f"{ctx.get('created', '')}", s.small),
        para(f"Real training rows: {fid.get('n_real', '—')}; real holdout rows: "
             f"{'none' if ctx.get('n_holdout') is None else ctx['n_holdout']}; synthetic "
             f"rows: {fid.get('n_synthetic', '—')}."
             + (f" No holdout: {ctx['no_holdout']}" if ctx.get("no_holdout") else ""),
             s.body),
        *([para(f"Real input not checked: {ctx['real_unchecked']}", s.body)]
          if ctx.get("real_unchecked") else []),
        para("Total variation distance of marginals", s.h2),
        table(["marginals", "n", "mean TVD", "worst TVD", "worst of"], rows,
              [2.4, 0.8, 1.2, 1.2, 4.4], s, align_right=(1, 2, 3)),
        Spacer(1, 4),
        para(f"Mean absolute difference of pairwise Cramér's V: "
             f"{'—' if cv is None else f'{cv:.4f}'}", s.body),
    ]


def _columns(fid: Mapping[str, Any], s: Styles) -> list[Any]:
    rows = [[c["column"], c["kind"], c["tvd"], c["real_missing"], c["synth_missing"],
             c.get("real_mean"), c.get("synth_mean"), c.get("real_sd"), c.get("synth_sd")]
            for c in fid.get("columns_summary", [])]
    return [para("Per-column summaries", s.h2),
            table(["column", "kind", "TVD", "missing real", "missing synth", "mean real",
                   "mean synth", "sd real", "sd synth"], rows,
                  [2.2, 1.2, 0.9, 1, 1, 1, 1, 1, 1], s, align_right=tuple(range(2, 9)))]


def _marginal_plots(shares: Mapping[str, Any], s: Styles) -> list[Any]:
    out: list[Any] = [PageBreak(), para("Marginals: real against synthetic", s.h1)]
    cols = list(shares.items())
    for start in range(0, len(cols), 8):
        panels = []
        for name, d in cols[start:start + 8]:
            keep = [i for i, (a, b) in enumerate(zip(d["real"], d["synthetic"], strict=False))
                    if a > 0 or b > 0]
            panels.append((name, [d["states"][i] for i in keep],
                           {"real": [d["real"][i] for i in keep],
                            "synthetic": [d["synthetic"][i] for i in keep]}))
        out.append(figure(figures.bars(panels), styles=s))
    return out


def _associations(fid: Mapping[str, Any], s: Styles) -> list[Any]:
    cv = fid.get("cramers_v", {})
    if not cv.get("real"):
        return []
    names = fid.get("columns", [])
    mats = {"real": np.asarray(cv["real"]), "synthetic": np.asarray(cv["synthetic"])}
    key = ", ".join(f"c{i + 1} = {n}" for i, n in enumerate(names)
                    if figures.plot_label(n, f"c{i + 1}", 14) == f"c{i + 1}")
    out = [PageBreak(), para("Associations (Cramér's V)", s.h1),
           figure(figures.heatmaps(mats, names), styles=s)]
    return out + ([para(f"Columns shown by position: {key}", s.small)] if key else [])


def _utility(fid: Mapping[str, Any], s: Styles) -> list[Any]:
    u = fid.get("utility")
    if not u or u.get("trtr") is None and u.get("tstr") is None:
        note = (u or {}).get("note", "no target declared in the spec")
        return [para("Machine-learning utility", s.h2), para(note, s.body)]
    rows = [["TRTR (train real, test real)", u["trtr"], u["n_train_real"]],
            ["TSTR (train synthetic, test real)", u["tstr"], u["n_train_synthetic"]],
            ["TSTR / TRTR", u.get("ratio"), ""]]
    return [para("Machine-learning utility", s.h2),
            para(f"Target {u['target']}, metric {u['metric']}, {u['model']}; "
                 f"{u['note']}; {u['n_test']} test rows.", s.body),
            table(["model", u["metric"], "training rows"], rows, [5, 2, 2], s,
                  align_right=(1, 2))]


def _privacy(pv: Mapping[str, Any] | None, s: Styles) -> list[Any]:
    out: list[Any] = [PageBreak(), para("Privacy-risk tests", s.h1)]
    if not pv or "exact_match" not in pv:
        note = (pv or {}).get("note", "Not run: no real holdout was given.")
        return out + [para(note, s.body)]
    sub, em, dcr = pv["subsample"], pv["exact_match"], pv["dcr"]
    mia = pv["membership_inference"]
    rows = [
        ["exact copies of training rows", em["train"], "holdout baseline", em["holdout"]],
        ["median DCR to train", dcr["median_train"], "to holdout", dcr["median_holdout"]],
        ["DCR ratio (train / holdout)", dcr["ratio"], "ideal", 1.0],
        ["share of synthetic rows closer to train", dcr["share_closer_to_train"], "ideal", 0.5],
        ["membership-inference AUC", mia["auc"], "ideal", 0.5],
    ]
    out += [para(f"Fixed-seed subsamples of {sub['train']} training, {sub['holdout']} holdout "
                 f"and {sub['synthetic']} synthetic rows; exact matches use the whole synthetic "
                 "table. Distances are Gower-like over the spec's columns.", s.body),
            table(["test", "value", "reference", "value"], rows, [4, 1.3, 2, 1.3], s,
                  align_right=(1, 3))]
    ai = pv.get("attribute_inference", [])
    if ai:
        out += [para("Attribute inference (nearest synthetic record on the other columns)", s.h2),
                table(["sensitive column", "accuracy members", "accuracy non-members",
                       "advantage", "majority baseline"],
                      [[a["column"], a["accuracy_members"], a["accuracy_non_members"],
                        a["advantage"], a["baseline_majority"]] for a in ai],
                      [2.6, 1.5, 1.7, 1.3, 1.5], s, align_right=(1, 2, 3, 4))]
    return out


def _subgroups(fid: Mapping[str, Any], s: Styles) -> list[Any]:
    groups = fid.get("subgroups", [])
    if not groups:
        return [para("Subgroups", s.h2),
                para("No sex/gender, race, ethnicity or age column in the spec.", s.body)]
    rows = [[g["kind"], g["column"], g["group"], g["real_share"], g["synth_share"],
             g.get("mean_tvd"), g.get("real_positive_rate"), g.get("synth_positive_rate"),
             "small" if g["small"] else ""] for g in groups]
    return [para("Subgroup fidelity", s.h2),
            table(["kind", "column", "group", "share real", "share synth", "mean TVD",
                   "pos. rate real", "pos. rate synth", "note"], rows,
                  [1, 1.4, 1.4, 1, 1, 1, 1, 1, 0.8], s, align_right=tuple(range(3, 8)))]


def _safe_harbor(sh: Mapping[str, Any], s: Styles) -> list[Any]:
    out = [para("Safe Harbor scan of the output", s.h2),
           para(("PASS: " if sh.get("passed") else "ATTENTION: ")
                + f"{len(sh.get('findings', []))} finding(s) in "
                + ", ".join(sh.get("scanned", [])), s.body)]
    if sh.get("findings"):
        out.append(table(["kind", "file", "column / field", "count", "rule"],
                         [[f["description"], f["location"], f["field"], f["count"], f["rule"]]
                          for f in sh["findings"]], [3.2, 2, 2.2, 0.9, 2], s, align_right=(3,)))
    return out


MAX_IMPORT_ROWS = 120
MAX_IMPORT_ISSUES = 40


def _column_classes(cols: Mapping[str, Any], s: Styles) -> list[Any]:
    rows = [[name, (c or {}).get("role", ""), (c or {}).get("treatment", "")]
            for name, c in cols.items()]
    return [para("Input columns: class and treatment", s.h2),
            table(["input column", "class", "treatment"], rows, [3.4, 2.6, 4], s)]


def _singletons(found: Sequence[Mapping[str, Any]], s: Styles) -> list[Any]:
    out = [para("Singleton categories in the training data", s.h2)]
    if not found:
        return out + [para("No category of a modelled column occurs exactly once.", s.body)]
    out.append(para(
        "These categories occur exactly once among the real training patients. The model "
        "only saw them through DP noise, but a unique value is a re-identification risk: "
        "consider coarsening the column or leaving the category out of the public domain. "
        "<other> stands for the values outside a column's declared domain, taken together "
        "(they are never shown). This list is a statistic of the real data and stays with "
        "the custodian.", s.body))
    out.append(table(["column", "category"], [[f["column"], f["category"]] for f in found],
                     [3.4, 6.6], s))
    return out


def _import_report(rep: Mapping[str, Any] | None, s: Styles) -> list[Any]:
    out = [para("Import report", s.h2)]
    if not rep:
        return out + [para("No import report was given.", s.body)]
    rows: list[Sequence[Any]] = []
    issues: list[Any] = []
    warnings = [str(w) for w in rep.get("warnings") or []]
    if warnings:
        out.append(para("Warnings: input dropped or changed, columns left (nearly) empty",
                        s.h2))
        out += [para(w, s.body) for w in warnings]
    for k, v in rep.items():
        if k == "warnings":
            continue
        if k == "issues" and isinstance(v, list):
            issues += v
        elif k in ("columns", "out_of_bounds") and isinstance(v, Mapping):
            continue
        elif isinstance(v, Mapping):
            for k2, v2 in v.items():
                if k2 == "issues" and isinstance(v2, list):
                    issues += v2
                elif isinstance(v2, Mapping) and all(
                        not isinstance(x, Mapping | list) for x in v2.values()):
                    rows += [[f"{k}: {k2}.{k3}", v3] for k3, v3 in v2.items()]
                elif isinstance(v2, Mapping | list):
                    rows.append([f"{k}: {k2}", len(v2)])
                else:
                    rows.append([f"{k}: {k2}", v2])
        elif isinstance(v, list):
            rows.append([f"{k} (entries)", len(v)])
        else:
            rows.append([k, v])
    out.append(table(["item", "count"], rows[:MAX_IMPORT_ROWS], [7, 3], s, align_right=(1,)))
    if isinstance(rep.get("columns"), Mapping) and rep["columns"]:
        out += _column_classes(rep["columns"], s)
    if isinstance(rep.get("out_of_bounds"), Mapping) and rep["out_of_bounds"]:
        out += _out_of_bounds(rep["out_of_bounds"], s)
    if issues:
        shown = issues[:MAX_IMPORT_ISSUES]
        out.append(para(f"First {len(shown)} of {len(issues)} issue(s) (locations and kinds only)",
                        s.h2))
        out.append(table(["place", "resource type", "field / column", "reason"],
                         [[c[:200] for c in issue_row(i)] for i in shown],
                         [2.4, 1.7, 2.3, 3.6], s))
    return out


def _out_of_bounds(found: Mapping[str, Any], s: Styles) -> list[Any]:
    def span(c: Mapping[str, Any]) -> str:
        lo, hi = (c.get("bounds") or [None, None])[:2]
        return "" if lo is None else f"[{float(lo):g}, {float(hi):g}]"

    rows = [[name, span(c), c.get("below", 0), c.get("above", 0), c.get("top_coded", 0),
             c.get("bottom_coded", 0)] for name, c in found.items()]
    return [para("Values outside the schema's bounds (clipped to them)", s.h2),
            para("Counts of input values outside each numeric column's declared bounds, "
                 "clipped to the bounds before any DP step. Values above a declared top code "
                 "are expected top-coding, and birth years before a birth-year column's lower "
                 "bound expected bottom-coding (Safe Harbor), not anomalies. These counts are "
                 "statistics of the real data and stay with the custodian.", s.body),
            table(["column", "bounds", "below", "above", "top-coded", "bottom-coded"], rows,
                  [2.6, 1.9, 1.2, 1.2, 1.4, 1.7], s, align_right=(2, 3, 4, 5))]


def internal_story(
    evaluation: Mapping[str, Any],
    shares: Mapping[str, Any],
    ctx: Mapping[str, Any],
    import_report: Mapping[str, Any] | None = None,
) -> list[Any]:
    """The flowables of ``internal/validation.pdf``."""
    s = Styles()
    fid = evaluation.get("fidelity", {})
    return [
        *_overview(evaluation, ctx, s), *_columns(fid, s), *_utility(fid, s),
        *_marginal_plots(shares, s), *_associations(fid, s),
        *_privacy(evaluation.get("privacy"), s), *_subgroups(fid, s),
        PageBreak(), *_safe_harbor(evaluation.get("safe_harbor", {}), s),
        *_import_report(import_report, s),
        *_singletons(evaluation.get("singletons") or [], s),
    ]
