"""``README.md`` of a release folder: what each file is, the guarantee, how to check it, and
the data dictionary.

A research partner who receives a release folder gets the synthetic table, the model, the
report and the audit record; this file tells them, without the custodian at hand, what they
hold and how to read it.  Every word comes from public facts: the spec (column domains,
units, descriptions, ``source:`` rules), the run's public configuration, the budget table
and the names of the files written.  Nothing of the real data is read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from fhirsynth.domain import Column, TableSpec

__all__ = ["README_NAME", "code_notes", "release_readme", "write_release_readme"]

README_NAME = "README.md"

#: what each released file is, by its path in the release folder (prefix for FHIR files)
_FILES = {
    "synthetic/patients.csv": "the synthetic patients, one row per patient, columns as below",
    "synthetic/patients.parquet": "the same rows as Parquet, with column types (categories "
                                  "as text, integers as nullable integers)",
    "synthetic/bundles.ndjson": "the same patients as FHIR R4, one transaction Bundle per "
                                "patient per line",
    "model.json": "the differentially private model: `fhirsynth sample model.json -n N` "
                  "draws more synthetic patients, also conditionally (`--where`), at no "
                  "further privacy cost",
    "report.pdf": "the release report: the guarantee and how each step spent the budget, the "
                  "synthetic data's own statistics, the Safe Harbor scan of the output, the "
                  "limitations",
    "audit.json": "the machine-readable record: budget steps, configuration, the sha256 of "
                  "every file, the Safe Harbor scan (docs/audit-schema.md of fhirsynth)",
}


def history_sentence(h: Mapping[str, Any]) -> str | None:
    """What the shareable files say of the ledger's other charges (None: there are none)."""
    n, charges = int(h.get("releases") or 1), int(h.get("charges") or h.get("releases") or 1)
    if charges <= 1:
        return None
    runs = (f"{n} releases" if charges == n else
            f"{charges} runs ({n} release{'s' if n != 1 else ''}; {charges - n} ended "
            "without one, their budget spent all the same)")
    return (f"the custodian's privacy ledger has charged {runs} in all, this one included, "
            "from this and any other data: by sequential composition they together satisfy "
            f"({float(h['epsilon_spent_total']):g}, {float(h['delta_spent_total']):g})-"
            "differential privacy, a bound on what any patient of this release has spent "
            "across them")


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _domain(c: Column) -> str:
    if c.role == "key":
        return "text: a UUID"
    if c.kind == "boolean":
        return "true / false"
    if c.kind == "categorical":
        return ", ".join(f"`{v}`" for v in c.categories) + (" or `other`" if c.other else "")
    if c.bounds is None:
        return "integer" if c.integer else "number"
    from fhirsynth.report.shareable import UNIT_WORDS

    unit = f" {UNIT_WORDS.get(c.unit, c.unit)}" if c.unit else ""
    kind = "integer" if c.integer else "number"
    return f"{kind}, {c.bounds[0]:g} to {c.bounds[1]:g}{unit}"


def _fhir_rules(spec: TableSpec) -> dict[str, str]:
    """What each column's ``source:`` rule reads from FHIR, with every code (FHIR specs)."""
    if not spec.has_fhir_rules:
        return {}
    from fhirsynth.errors import SpecError
    from fhirsynth.ingest.describe import describe_spec_columns

    try:
        return {d.name: d.source for d in describe_spec_columns(spec, full_codes=True)}
    except SpecError:  # a column without a FHIR rule: the descriptions alone
        return {}


#: what a CSV schema's ``transform`` keeps of its input column
_TRANSFORMS = {"zip3": "the first three digits of a ZIP code, restricted prefixes as 000",
               "year": "the year of a date, nothing finer", "state": "the state"}


def _width(c: Column) -> str:
    """The width of a numeric column's bins ("bins of 4.5 years"), or their range when
    unequal ("bins of 2 to 20 kg/m²")."""
    from fhirsynth.report.shareable import UNIT_WORDS

    w = np.diff(c.bin_edges())
    unit = f" {UNIT_WORDS.get(c.unit, c.unit)}" if c.unit else ""
    if np.allclose(w, w[0]):
        return f"bins of {w[0]:g}{unit}"
    return f"bins of {w.min():g} to {w.max():g}{unit}"


def code_notes(c: Column, tops: Mapping[str, float],
               bottoms: Mapping[str, float]) -> list[str]:
    """What a top- or bottom-coded column's extreme value stands for ("90 means 90 or older
    (top-coded)"), from :func:`~fhirsynth.export.harmonise.top_codes` and
    :func:`~fhirsynth.export.harmonise.bottom_codes` of the spec: the words of the release's
    README and of report.pdf's public domains."""
    out = []
    if c.name in tops:
        out.append(f"{tops[c.name]:g} means {tops[c.name]:g} or older (top-coded)")
    if c.name in bottoms:
        out.append(f"{bottoms[c.name]:g} means {bottoms[c.name]:g} or earlier (bottom-coded: "
                   "no birth year may imply an age over 89)")
    return out


def _meaning(c: Column, rules: Mapping[str, str], tops: Mapping[str, float],
             bottoms: Mapping[str, float]) -> str:
    """The column's description, the rule that filled it and what its values stand for."""
    parts = [c.description.rstrip(".")] if c.description else []
    src = c.source if isinstance(c.source, dict) else {}
    if c.name in rules:
        parts.append(f"source: {rules[c.name]}")
    elif c.role != "key" and (src.get("column") is not None or src.get("transform")):
        what = _TRANSFORMS.get(str(src.get("transform")), "")
        col = src.get("column", c.name)
        parts.append(f"from the input column {col}" + (f": {what}" if what else ""))
    # a FHIR rule's own words already say its top code
    parts += code_notes(c, {} if c.name in rules else tops, bottoms)
    if c.role == "derived":
        parts.append("derived from the sampled columns after sampling (no budget spent)")
    elif c.role == "key":
        read = (f"; the input column {src['column']} is read only to refuse a patient on "
                "two rows" if src.get("column") not in (None, c.name) else "")
        parts.append(f"a fresh random UUID per synthetic patient (no input key is kept{read})")
    elif c.role == "target":
        parts.append("the outcome the spec names for utility tests")
    if c.nullable and c.role != "key":
        parts.append("may be missing")
    return "; ".join(parts) or "-"


def release_readme(
    *,
    spec: TableSpec,
    dataset: str,
    run_id: str,
    created: str,
    version: str,
    budget_table: Mapping[str, Any],
    config: Mapping[str, Any],
    files: Iterable[str],
    columns: Iterable[str],
    ledger_history: Mapping[str, Any] | None = None,
) -> str:
    """The text of a release's ``README.md`` (Markdown), from public facts only.

    ``files``: paths of the released files relative to the release folder; ``columns``: the
    synthetic table's columns in their order.
    """
    from fhirsynth.report.shareable import TEST_RELEASE, guarantee_delta

    eps = float(budget_table["epsilon_total"])
    delta = guarantee_delta(budget_table)
    files = sorted(set(files) | {"report.pdf", "audit.json", README_NAME})
    lines = [f"# Synthetic data release: {dataset}", ""]
    if config.get("reproducible_noise"):
        lines += [f"**{TEST_RELEASE}.**", ""]
    lines += [
        f"Made by fhirsynth {version} on {created} (run `{run_id}`).",
        "",
        "These are synthetic patients sampled from a differentially private model of a real "
        "cohort: no row is a real patient, and no row is derived from one patient's record. "
        f"The release satisfies ({eps:g}, {delta:g})-differential privacy with the patient as "
        "the unit of privacy: adding or removing one patient's whole record changes the "
        f"probability of any output by at most a factor e^{eps:g}"
        + (f", except with probability {delta:g}." if delta else "."),
    ]
    said = history_sentence(ledger_history) if ledger_history else None
    if said:
        lines[-1] += f" {said[0].upper()}{said[1:]}."
    lines += [
        "",
        "`report.pdf` says how the budget was spent and what the release does not promise. "
        "It holds no comparison with the real patients (fidelity, or the accuracy of a model "
        "trained on these rows and tested on real ones): such figures are statistics of the "
        "real data, kept by the custodian unless released separately. The terms of use are "
        "the data custodian's; this file states the technical facts only.",
        "",
        "## Files",
        "",
        "| file | what it is |",
        "|---|---|",
    ]
    fhir = [f for f in files if f.startswith("synthetic/fhir/")]
    for f in files:
        if f in fhir:
            continue
        lines.append(f"| `{f}` | {_FILES.get(f, 'this file' if f == README_NAME else '')} |")
    if fhir:
        lines.append(
            f"| `synthetic/fhir/` ({len(fhir)} files) | the same patients as FHIR R4 Bulk Data "
            "NDJSON, one file per resource type; the n-th Patient is the n-th row of the table "
            "(they share an order, not an id); dates at year precision only |")
    lines += [
        "",
        "A folder `internal/` beside these files, if present, belongs to the custodian: it "
        "holds statistics of the real patients and must not be shared.",
        "",
        "## Checking the release",
        "",
        f"With fhirsynth {version} or later installed, `fhirsynth verify <this folder>` "
        "recomputes the sha256 of every file listed in `audit.json` and checks the record "
        "itself (budget arithmetic, configuration and spec hashes, the model's budget table). "
        "It prints `intact` and exits 0, or lists what differs and exits 1. If you were given "
        "only some of the files (say `audit.json` and the CSV file, in their places below "
        "this folder), `fhirsynth verify --partial <folder>` checks those and lists the "
        "others as not given.",
        "",
        "## Reading the table",
        "",
        "- A missing value is an empty cell in the CSV file and a null in Parquet.",
        "- Categories are text, also when they look like numbers (`\"0\"`, `\"1\"`): read the "
        "CSV with `dtype=str` for those columns (pandas would otherwise make them integers), "
        "or read the Parquet file, which keeps them as text.",
    ]
    ref = spec.reference_date
    if ref:
        ref_text = ref.isoformat() if isinstance(ref, date) else str(ref)
        lines.append(f"- Ages, latest observations and counts are taken at the reference "
                     f"date {ref_text}, a public setting of the spec, not a data date.")
    binned = [c for c in spec.modelled if c.kind == "numeric" and c.bounds is not None
              and not c.one_state_per_integer]
    if binned:
        widths = ", ".join(f"`{c.name}` {_width(c)}" for c in binned[:8])
        exact = ", ".join(f"`{c.name}` {', '.join(f'{p:g}' for p in c.point_masses)}"
                          for c in binned if c.point_masses)
        lines.append("- Numbers are drawn inside the model's bins, so their digits say no more "
                     f"than the bin: {widths}" + (", ..." if len(binned) > 8 else "") + "."
                     + (f" Exact values the spec declares (a top or bottom code, a point "
                        f"mass) are states of their own and appear exactly: {exact}."
                        if exact else ""))
    lines += [
        "- Synthetic rows follow the model, which is noisy: rare combinations, and "
        "combinations the model could not resolve, may be over- or under-represented; a "
        "column that enters the model in a few coarse groups of another can also give "
        "implausible combinations across a group (`report.pdf`, Limitations).",
        "",
        "## Columns",
        "",
        "| column | type and public domain | meaning |",
        "|---|---|---|",
    ]
    from fhirsynth.export.harmonise import bottom_codes, top_codes

    by_name = {c.name: c for c in spec.columns}
    rules, tops, bottoms = _fhir_rules(spec), top_codes(spec), bottom_codes(spec)
    for name in columns:
        c = by_name.get(name)
        if c is None:
            continue
        lines.append(f"| `{_cell(c.name)}` | {_cell(_domain(c))} | "
                     f"{_cell(_meaning(c, rules, tops, bottoms))} |")
    return "\n".join(lines) + "\n"


def write_release_readme(out: Path, **kwargs: Any) -> Path:
    """Write :func:`release_readme` to ``out / README.md`` atomically; return its path."""
    from fhirsynth._atomic import write_bytes_atomic

    return write_bytes_atomic(out / README_NAME, release_readme(**kwargs).encode("utf-8"))
