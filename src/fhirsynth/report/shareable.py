"""The shareable ``report.pdf``: only DP outputs and data-independent facts.

Pages: title (dataset, date, version, epsilon and delta in large type), summary with
pass/attention marks, the DP guarantee and every step of the budget, public facts (spec
domains, software, hashes), the synthetic data's own statistics, fidelity against the
model's released noisy measurements (or a statement that none is shown), the limitations
quoted from ``docs/limitations.md``, and the configuration.  It never receives a real table.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reportlab.platypus import PageBreak, Spacer

from fhirsynth.domain import TableSpec
from fhirsynth.privacy.budget import PrivacyBudget
from fhirsynth.report import figures
from fhirsynth.report.pdf import Styles, figure, para, table
from fhirsynth.report.summary import measurement_noise
from fhirsynth.report.text import markup

__all__ = ["ShareableContext", "shareable_story"]

PASS, ATTENTION, INFO = "✓ pass", "! attention", "· info"


@dataclass
class ShareableContext:
    """Everything the shareable report may show (no real data)."""

    dataset: str
    created: str
    run_id: str
    version: str
    budget_table: Mapping[str, Any]
    spec: TableSpec
    synthetic_stats: list[dict[str, Any]]
    synthetic_columns: list[str]
    n_synthetic: int
    safe_harbor: Mapping[str, Any]
    software: Mapping[str, str]
    hashes: Mapping[str, Any]
    config: Mapping[str, Any]
    limitations: str
    model_summary: Mapping[str, Any] = field(default_factory=dict)
    #: the custodian's ledger after this release, over every source (``ledger_history``)
    ledger_history: Mapping[str, Any] | None = None


#: what a release whose noise came from --seed is (title page and summary)
TEST_RELEASE = ("TEST RELEASE, not for sharing: a fixed seed (--seed) drew the noise, so "
                "whoever knows or guesses the seed can remove it, and the release is not "
                "differentially private against them")


def _fmt_eps(x: float) -> str:
    return f"{x:g}"


def _checks(ctx: ShareableContext) -> list[tuple[str, str, str]]:
    bt = ctx.budget_table
    total, spent = float(bt["epsilon_total"]), float(bt.get("epsilon_spent", 0.0))
    steps_sum = math.fsum(float(s.get("epsilon") or 0) for s in bt.get("steps", []))
    out = []
    tol = 1e-9 * max(1.0, total)
    ok = abs(steps_sum - spent) <= tol and abs(spent - total) <= tol
    detail = f"{len(bt.get('steps', []))} steps add up to epsilon {steps_sum:.6g} of {total:g}"
    if spent < total - tol:
        detail += f"; {total - spent:.6g} declared but not spent"
    out.append(("Budget accounted", PASS if ok else ATTENTION, detail))
    delta = float(bt.get("delta_total", 0.0))
    notes = PrivacyBudget(epsilon=total, delta=delta).plausibility()
    out.append(("Epsilon and delta in the usual range", ATTENTION if notes else PASS,
                "; ".join(notes) or f"epsilon {total:g}, delta {delta:g}"))
    sh = ctx.safe_harbor
    n_find = len(sh.get("findings", []))
    out.append(("Safe Harbor scan of the output", PASS if sh.get("passed") else ATTENTION,
                "no identifier found" if sh.get("passed") else f"{n_find} finding(s), see below"))
    identifiers, leaked = _identifier_columns(ctx)
    dropped = sum(c.role == "drop" for c in ctx.spec.columns)
    unknown = [c for c in ctx.synthetic_columns if c not in ctx.spec]
    out.append(("Identifier columns excluded from the model",
                ATTENTION if leaked or unknown else PASS,
                (f"{len(identifiers)} identifier or key column(s) not modelled" if identifiers
                 else "no identifier or key column in the schema or the input header")
                + (f" ({dropped} column(s) dropped by the spec, not counted)" if dropped
                   else "")
                + (f"; present in output: {', '.join(leaked)}" if leaked else "")
                + (f"; output columns not in the spec: {', '.join(unknown)}" if unknown else "")))
    has_meas = bool(ctx.model_summary.get("released_marginals"))
    out.append(("Fidelity shown only from released DP measurements", INFO,
                "figures compare with the model's own noisy marginals" if has_meas
                else "no fidelity figure: no released measurement was provided"))
    out.append(("Synthetic patients", INFO, f"{ctx.n_synthetic} rows"))
    if ctx.config.get("reproducible_noise"):
        out.append(("Noise from a secret random source", ATTENTION, TEST_RELEASE))
    for note in ctx.model_summary.get("notes") or []:
        out.append(("Utility of this release", ATTENTION, str(note)))
    if ctx.ledger_history:
        from fhirsynth.report.readme import history_sentence

        said = history_sentence(ctx.ledger_history)
        if said:  # the custodian's spending, a privacy fact, not a utility warning
            out.append(("Releases from the custodian's ledger", INFO, said))
    return out


def _safe_harbor_kinds(sh: Mapping[str, Any], s: Styles) -> list[Any]:
    """The output scan per Safe Harbor identifier (A-R), and which shipped files it read."""
    from fhirsynth.evaluate.safe_harbor import Finding, SafeHarborReport

    kinds = sh.get("identifiers")
    if kinds is None:  # a record from before the per-identifier table: rebuild it
        kinds = SafeHarborReport([Finding(**{k: f[k] for k in ("kind", "location", "field",
                                                                 "count", "rule")})
                                  for f in sh.get("findings", [])]).identifiers()
    rows = [[k["letter"], k["identifier"], k["checked"],
             PASS if not k["findings"] else f"{ATTENTION}: {k['findings']} finding(s)"]
            for k in kinds]
    out = [para("Safe Harbor scan of the output, per identifier (45 CFR 164.514(b)(2))", s.h2),
           table(["", "identifier", "checked in the output", "result"], rows,
                 [0.4, 3, 4.8, 1.8], s)]
    scanned = ", ".join(sh.get("scanned") or []) or "none"
    others = "; ".join(f"{name} ({why})" for name, why in (sh.get("not_scanned") or {}).items())
    out.append(para(f"Files scanned: {scanned}." + (f" Not scanned: {others}." if others
                                                     else ""), s.body))
    return out


def _identifier_columns(ctx: ShareableContext) -> tuple[list[str], list[str]]:
    """(identifier and key columns kept out of the model, excluded columns the output holds).

    Counted once each: spec columns with role ``identifier`` or ``key``, and input columns of
    class identifier or key that the run did not model (``input_columns`` of the model
    summary, the report's input-column table), a header column that a counted spec column
    reads (a key's ``source: {column: id}``) being that spec column.  Columns the schema
    drops, derived columns and columns not in the schema are not counted
    (``docs/reading-the-report.md``).
    """
    names = [c.name for c in ctx.spec.columns if c.role in ("identifier", "key")]
    read = set(names) | {str(c.source["column"]) for c in ctx.spec.columns
                         if c.name in names and isinstance(c.source, dict)
                         and c.source.get("column") is not None}
    for c in ctx.model_summary.get("input_columns") or []:
        treatment = str(c.get("treatment", ""))
        if (c.get("role") in ("identifier", "key") and c.get("column") not in read
                and not treatment.startswith(("modelled", "transformed"))):
            names.append(str(c.get("column")))
            read.add(str(c.get("column")))
    excluded = {c.name for c in ctx.spec.columns if not c.modelled
                and c.role not in ("key", "derived")}
    excluded |= {str(c.get("column")) for c in ctx.model_summary.get("input_columns") or []
                 if str(c.get("treatment", "")).startswith("omitted")}
    leaked = [c for c in ctx.synthetic_columns if c in excluded]
    return names, leaked


def _domain_text(c: Any, tops: Mapping[str, float] | None = None,
                 bottoms: Mapping[str, float] | None = None) -> str:
    """The public domain of a column, with what its top or bottom code stands for."""
    from fhirsynth.report.readme import code_notes

    notes = code_notes(c, tops or {}, bottoms or {})
    base = _domain_only(c)
    return "; ".join([base, *notes] if base != "—" or not notes else notes)


def _domain_only(c: Any) -> str:
    if c.kind == "categorical":
        cats = list(c.categories)
        shown = ", ".join(cats[:12]) + (f", … ({len(cats)} in all)" if len(cats) > 12 else "")
        return shown + (" + other" if c.other else "")
    if c.kind == "numeric" and c.bounds is not None:
        unit = f" {UNIT_WORDS.get(c.unit, c.unit)}" if c.unit else ""
        return (f"[{c.bounds[0]:g}, {c.bounds[1]:g}]{unit}, {c.n_states} states"
                + (", integer" if c.integer else ""))
    return "true / false" if c.kind == "boolean" else "—"


def guarantee_delta(bt: Mapping[str, Any]) -> float:
    """The delta of the guarantee: the declared one under zCDP, else the delta the steps
    spent (a delta the Laplace steps did not use is not part of the guarantee)."""
    return (float(bt.get("delta_total", 0.0)) if "rho_total" in bt
            else float(bt.get("delta_spent", 0.0)))


def _guarantee(ctx: ShareableContext, s: Styles) -> list[Any]:
    bt = ctx.budget_table
    total = float(bt["epsilon_total"])
    declared = float(bt.get("delta_total", 0.0))
    delta = guarantee_delta(bt)
    unused = (f" A delta of {declared:g} was declared but not needed: every step is pure "
              "epsilon-DP (Laplace noise; Gaussian noise under zCDP would have given more noise "
              "for this plan, or was not asked for)." if declared > delta else "")
    text = (
        f"This release satisfies ({_fmt_eps(total)}, {delta:g})-differential privacy.{unused} "
        "<b>Unit of privacy: the patient.</b> Neighbouring datasets differ by adding or removing "
        "one patient's whole record (all of their resources fold into one row before any "
        "statistic is taken). Whatever one patient's data, the probability of any output "
        f"changes by at most a factor e<super>{_fmt_eps(total)}</super>"
        + (f", except with probability {delta:g}." if delta else ".")
        + f" Composition: {markup(bt.get('composition', ''))}. The synthetic data, the model "
        "and this report are post-processing of the noisy measurements below and spend no "
        "further budget. The steps are listed in the order they were taken, as in "
        "audit.json (a column's steps follow the network's order, not the spec's)."
    )
    zcdp = "rho_total" in bt
    if zcdp:
        pf = any(str(st.get("mechanism", "")).startswith("permute-and-flip")
                 for st in bt.get("steps", []))
        text += (
            " In the table, a step's epsilon is its share of the budget in units of the total"
            " epsilon and its rho the same share of the total rho; counts get Gaussian noise,"
            + (" selections permute-and-flip of epsilon sqrt(2 rho)." if pf else
               " selections an exponential mechanism of epsilon sqrt(8 rho).")
        )
    rows = []
    for st in bt.get("steps", []):
        eps = float(st.get("epsilon") or 0.0)
        last = float(st.get("rho") or 0.0) if zcdp else float(st.get("delta") or 0.0)
        rows.append([st.get("name", ""), st.get("mechanism", ""), st.get("sensitivity"),
                     eps, last, f"{100 * eps / total:.1f} %" if total else "—"])
    rows.append(["total spent", "", "", float(bt.get("epsilon_spent", 0.0)),
                 float(bt.get("rho_spent" if zcdp else "delta_spent", 0.0)),
                 f"{100 * float(bt.get('epsilon_spent', 0.0)) / total:.1f} %" if total else "—"])
    out = [para("The privacy guarantee", s.h1), para(text, s.body, raw=True), Spacer(1, 6),
           table(["step", "mechanism", "sensitivity", "epsilon", "rho" if zcdp else "delta",
                  "share"], rows,
                 [3.2, 2.6, 1.2, 1.2, 1.2, 1.0], s, align_right=(2, 3, 4, 5))]
    steps = list(bt.get("steps", []))
    if steps and len(steps) <= 40:
        out.append(Spacer(1, 6))
        out.append(figure(figures.budget_bars(steps, total), caption="Share of the total "
                          "epsilon spent by each step.", styles=s))
    return out


def _public_facts(ctx: ShareableContext, s: Styles) -> list[Any]:
    from fhirsynth.export.harmonise import bottom_codes, top_codes

    tops, bottoms = top_codes(ctx.spec), bottom_codes(ctx.spec)
    rows = [[c.name, c.kind, c.role, _domain_text(c, tops, bottoms)] for c in ctx.spec.columns]
    soft = [[k, v] for k, v in ctx.software.items()]
    hashes = [[k, v] for k, v in ctx.hashes.items() if isinstance(v, str)]
    for group in ("inputs", "outputs"):
        for f in ctx.hashes.get(group, []):
            size = f" ({f['bytes']} bytes)" if "bytes" in f else ""  # outputs only
            digest = f.get("sha256") or f.get("hmac_sha256")  # inputs: a keyed commitment
            hashes.append([f"{group[:-1]}: {f['path']}{size}", digest])
    return [
        PageBreak(), para("Public facts", s.h1),
        para("Everything on this page was declared before any data was read, or describes the "
             "software and files: it holds no statistic of the patients.", s.body),
        para("Columns and their public domains", s.h2),
        table(["column", "kind", "role", "public domain"], rows, [2.2, 1.2, 1.2, 5.4], s),
        para("Software", s.h2), table(["package", "version"], soft, [3, 7], s),
        para("Hashes (sha256)", s.h2), table(["what", "sha256"], hashes, [3.2, 6.8], s),
        para("To check the release, run <font face='Courier'>fhirsynth verify</font> on its "
             "folder: it recomputes the sha256 of every file audit.json lists and checks the "
             "record's budget arithmetic, and prints intact or what differs. README.md in the "
             "folder lists the files and describes every column.", s.body, raw=True),
    ]


#: how the synthetic rows were drawn from the model (RunConfig.sampling)
_SAMPLING_TEXT = {
    "balanced": (
        "The synthetic patients were drawn from the model by balanced sampling: among the "
        "patients that share a column's parent values, that column's values are spread by "
        "systematic sampling in random order, so each group's counts are within one patient "
        "of what the model expects. Every synthetic patient has exactly the model's "
        "distribution, but the patients are not independent draws: methods that assume "
        "independent draws from the model (such as multiple-imputation inference for "
        "synthetic data) need a release made with --sampling iid."),
    "iid": "Every synthetic patient was drawn independently from the model (--sampling iid).",
}


#: UCUM codes of the spec shown as a reader expects them ("a" is the UCUM year)
UNIT_WORDS = {"a": "years", "mo": "months", "wk": "weeks", "d": "days", "mm[Hg]": "mmHg",
              "kg/m2": "kg/m²", "10*3/uL": "10³/µL"}


def _modelling(ctx: ShareableContext, s: Styles) -> list[Any]:
    ms = ctx.model_summary
    out: list[Any] = [para("How the model was built", s.h2)]
    how = _SAMPLING_TEXT.get(str(ctx.config.get("sampling")))
    if how:
        out.append(para(how, s.body))
    if ms.get("missingness"):
        out.append(para(ms["missingness"], s.body))
    for line in ms.get("missingness_by_column") or []:
        out.append(para(line + ".", s.body))
    rules = ms.get("constraints") or []
    if rules:
        out.append(para("Rules every synthetic row meets (declared in the public schema; rows "
                        "of the model that broke one were redrawn, which spends no budget): "
                        + "; ".join(rules) + ".", s.body))
    const = ms.get("constant_columns") or []
    if const:
        out.append(para("Constant by declaration (one state in the public schema, so not "
                        "learned from the data and re-attached to every row): "
                        + ", ".join(const) + ".", s.body))
    for n in ms.get("notes") or []:
        out.append(para(f"Warning: {n}.", s.body))
    cols = ms.get("input_columns") or []
    # only names the public spec declares: an undeclared header is the custodian's data and
    # may be anything (a trial's header held a name, an e-mail address and an MRN)
    declared = {c.name for c in ctx.spec.columns} | {
        str(c.source["column"]) for c in ctx.spec.columns
        if isinstance(c.source, dict) and c.source.get("column") is not None}
    shown = [c for c in cols if str(c.get("column", "")) in declared]
    if cols:
        out += [para("Input columns: class and treatment (from the header and the schema)",
                     s.h2),
                table(["input column", "class", "treatment"],
                      [[c.get("column", ""), c.get("role", ""), c.get("treatment", "")]
                       for c in shown], [3.4, 2.6, 4], s)]
        if len(shown) < len(cols):
            out.append(para(f"{len(cols) - len(shown)} more input column(s) that the schema "
                            "does not declare were left out of the release; their names, "
                            "which are not public, are listed in the custodian's internal "
                            "report only.", s.body))
    return out if len(out) > 1 else []


def _synthetic_stats(ctx: ShareableContext, s: Styles) -> list[Any]:
    rows = []
    for st in ctx.synthetic_stats:
        if st["kind"] == "numeric" and "mean" in st:
            desc = (f"mean {st['mean']:.4g}, sd {st['sd']:.4g}, quartiles {st['q1']:.4g} / "
                    f"{st['median']:.4g} / {st['q3']:.4g}")
        else:
            top = max(range(len(st["shares"])), key=lambda i: st["shares"][i])
            desc = f"most frequent: {st['states'][top]} ({100 * st['shares'][top]:.1f} %)"
        rows.append([st["column"], st["kind"], f"{100 * st['missing']:.1f} %", desc])
    out = [PageBreak(), para("The synthetic data's own statistics", s.h1),
           para("Computed from the synthetic table only. They describe the release, not the "
                "patients.", s.body),
           table(["column", "kind", "missing", "summary"], rows, [2.2, 1.2, 1, 5.6], s)]
    panels = [(st["column"], st["states"][:-2] if st["shares"][-2] == 0 else st["states"],
               {"synthetic": st["shares"][:-2] if st["shares"][-2] == 0 else st["shares"]})
              for st in ctx.synthetic_stats[:12]]
    if panels:
        out.append(Spacer(1, 6))
        out.append(figure(figures.bars(panels), caption="Distribution of each column in the "
                          "synthetic data (first 12 columns).", styles=s))
    return out


def _fidelity(ctx: ShareableContext, s: Styles) -> list[Any]:
    meas = ctx.model_summary.get("released_marginals") or []
    out = [para("Fidelity against released measurements", s.h2)]
    if not meas:
        out.append(para(
            "No fidelity figure is shown. This report may only compare the synthetic data with "
            "measurements that were already released under differential privacy, and none was "
            "provided with this release. The custodian's internal validation report compares "
            "with the real data; it is not shareable.", s.body))
        return out
    by_name = {st["column"]: st for st in ctx.synthetic_stats}
    panels = []
    for m in meas[:12]:
        cols = m.get("columns", [])
        if len(cols) != 1 or cols[0] not in by_name:
            continue
        st = by_name[cols[0]]
        vals = list(m.get("values", []))
        n = min(len(vals), len(st["shares"]))
        panels.append((cols[0], st["states"][:n],
                       {"released (noisy)": vals[:n], "synthetic": st["shares"][:n]}))
    out.append(para("The model's own noisy one-way marginals (released DP measurements, "
                    "already paid for in the budget above) against the synthetic data. "
                    "Agreement here shows that the synthetic rows reproduce the released "
                    "model; it does not show how close the model is to the real patients, "
                    "because every released share carries the noise below (the custodian's "
                    "internal validation report measures that).", s.body))
    one_way = [m["columns"][0] for m in meas if len(m.get("columns", [])) == 1]
    if panels:
        shown = (f" (the first {len(panels)} of {len(one_way)} columns; the table below lists "
                 "all)" if len(one_way) > len(panels) else "")
        out.append(figure(figures.bars(panels), styles=s))
        if shown:
            out.append(para(f"Released and synthetic shares{shown}.", s.small))
    noise = measurement_noise(ctx.budget_table)
    n = ctx.model_summary.get("n_patients_noisy")

    missing = _released_missing_shares(meas)

    def reading(name: str) -> str:
        # public: the noise of the released count against an average non-missing state's
        # noisy count (a nullable column's cohort is the noisy count times its released
        # non-missing share, not the whole cohort)
        if not n or name not in ctx.spec:
            return "—"
        col = ctx.spec[name]
        filled, states = float(n), col.n_states
        if col.nullable and name in missing:
            filled, states = float(n) * (1.0 - missing[name]), states - 1
        per_state = filled / max(states, 1)
        return "mostly noise" if noise[name] >= per_state else "—"

    rows = [[name, f"{noise[name]:.1f}",
             f"{100 * noise[name] / n:.1f} %" if n else "—", reading(name)]
            for name in one_way if name in noise]
    if rows:
        out.append(Spacer(1, 4))
        out.append(table(["column", "noise sd per released count (patients)",
                          "as a share of the noisy cohort", "distribution"], rows,
                         [2.6, 2.8, 2.6, 1.8], s, align_right=(1, 2)))
        if any(r[3] == "mostly noise" for r in rows):
            out.append(para(
                "\"mostly noise\": the noise sd of one released count is at least the noisy "
                "count of an average non-missing state: the noisy cohort times one minus the "
                "column's released (noisy) missing share, divided by its non-missing states "
                "(for a column that cannot be missing, the noisy cohort over its states). "
                "The column's shares, and any rare value in it, then say little "
                "about the patients; it holds whether or not the column was filled for the "
                "real patients. Read from the budget, the released count and the released "
                "one-way marginals alone.", s.small))
    return out


def _released_missing_shares(meas: list[Any]) -> dict[str, float]:
    """Each column's released (noisy) missing share, from the model's released one-way
    marginals (post-processing of DP outputs, already paid for); clipped to [0, 1]."""
    from fhirsynth.domain import MISSING

    out = {}
    for m in meas:
        cols, states = m.get("columns", []), list(m.get("states") or [])
        if len(cols) == 1 and MISSING in states:
            vals = list(m.get("values", []))
            i = states.index(MISSING)
            if i < len(vals):
                out[cols[0]] = min(max(float(vals[i]), 0.0), 1.0)
    return out


def _limitations(text: str, s: Styles) -> list[Any]:
    out: list[Any] = [PageBreak(), para("Limitations", s.h1),
                      para("Quoted from docs/limitations.md.", s.small)]
    buf: list[str] = []

    def flush() -> None:
        if buf:
            out.append(para(" ".join(buf), s.quote))
            buf.clear()

    for line in text.splitlines():
        t = line.strip()
        if t.startswith("# "):
            continue
        if t.startswith("## "):
            flush()
            out.append(para(t[3:], s.h2))
        elif t.startswith("- "):
            flush()
            buf.append("• " + t[2:])
        elif not t:
            flush()
        else:
            buf.append(t)
    flush()
    return out


def shareable_story(ctx: ShareableContext) -> list[Any]:
    """The flowables of ``report.pdf``."""
    s = Styles()
    bt = ctx.budget_table
    story: list[Any] = [
        Spacer(1, 90), para("Synthetic data release", s.title), para(ctx.dataset, s.title),
        Spacer(1, 30), para(f"ε = {_fmt_eps(float(bt['epsilon_total']))}", s.big),
        para(f"δ = {float(bt.get('delta_total', 0.0)):g}", s.big), Spacer(1, 40),
        para(f"created {ctx.created} · fhirsynth {ctx.version}", s.center),
        para(f"run {ctx.run_id}", s.center), Spacer(1, 20),
        *([para(TEST_RELEASE + ".", s.center), Spacer(1, 20)]
          if ctx.config.get("reproducible_noise") else []),
        *([para("Rebuilt by fhirsynth report from an existing model: the run id is this "
                "report's; the model, its budget and its synthetic table are the earlier "
                "release's.", s.center), Spacer(1, 20)]
          if ctx.config.get("report_only") else []),
        para("Differentially private synthetic patients. The unit of privacy is the patient.",
             s.center),
        PageBreak(), para("Summary", s.h1),
        table(["check", "result", "detail"], [list(c) for c in _checks(ctx)], [3.2, 1.4, 5.4], s),
    ]
    findings = ctx.safe_harbor.get("findings", [])
    if findings:
        story += [para("Safe Harbor findings in the output (counts only)", s.h2),
                  table(["kind", "file", "column / field", "count", "rule"],
                        [[f["description"], f["location"], f["field"], f["count"], f["rule"]]
                         for f in findings], [3.2, 2, 2.2, 0.9, 2], s, align_right=(3,))]
    story += _safe_harbor_kinds(ctx.safe_harbor, s)
    story += [PageBreak(), *_guarantee(ctx, s), *_public_facts(ctx, s), *_modelling(ctx, s),
              *_synthetic_stats(ctx, s), *_fidelity(ctx, s), *_limitations(ctx.limitations, s),
              PageBreak(), para("Appendix: configuration", s.h1),
              para("The run's public configuration (no seed is ever written).", s.small)]
    cfg = json.dumps(ctx.config, indent=1, ensure_ascii=False, sort_keys=True)
    story += [para(line.replace(" ", "\u00a0") or " ", s.mono) for line in cfg.splitlines()]
    return story
