"""Warnings for columns that extraction left empty, and for values outside their bounds.

Owns :func:`empty_column_warnings`: a spec column missing for all or nearly all input
patients while extraction reported issues for it (a birth date after the spec's
``reference_date``, an unknown unit...) is a problem of the spec or of the input, not of
the cohort; and :func:`out_of_bounds`: how many extracted values lie outside their
column's bounds (encoding clips them).  Both are for the custodian (console and internal
report): they carry counts and column names and kinds of problem, never a patient value,
id or date.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from fhirsynth.domain import TableSpec
from fhirsynth.errors import Issue
from fhirsynth.export.harmonise import bottom_codes, top_codes

__all__ = ["NEARLY_ALL", "absent_type_warnings", "empty_column_warnings",
           "extraction_issue_count", "issue_hint", "out_of_bounds", "unit_drops"]

#: a column missing for at least this share of the patients counts as "nearly all" empty
NEARLY_ALL = 0.95

#: issue kind (the part of the count key after "column: ") -> (what it means, what to do)
HINTS: dict[str, tuple[str, str]] = {
    "born after the reference date": (
        "birth date after the spec's reference_date",
        "set reference_date in the feature spec to a date after every date in the input; "
        "but if the export shifts each patient's dates by a different amount (MIMIC-IV "
        "lies 100-200 years in the future, shifted per patient), ages and time windows "
        "computed from any one reference date are meaningless: leave age-dependent columns "
        "out of the spec for such data"),
    "encounter after the reference date": (
        "encounters dated after the spec's reference_date (not counted)",
        "set reference_date in the feature spec to a date after every encounter; if the "
        "export shifts each patient's dates by a different amount (MIMIC-IV), counts in a "
        "time window before one reference date are meaningless: leave those columns out of "
        "the spec for such data"),
    "encounter class from another code system": (
        "encounter classes from a local code system, not v3 ActCode (not counted)",
        "the rule's class codes are v3 ActCode (AMB, EMER, IMP...): map the export's "
        "classes to them, or leave those columns out of the spec"),
    "invalid birthDate": ("birthDate is not a FHIR date",
                          "fix the export (YYYY, YYYY-MM or YYYY-MM-DD)"),
    "unknown unit": ("values in a unit the column does not convert (dropped)",
                     "convert them in the export to a unit the column converts, or declare "
                     "the conversion in the column's rule (`factors: {UNIT: multiplier}`, "
                     "docs/feature-spec.md)"),
    "missing unit": ("quantities without a unit (the value cannot be interpreted)",
                     "fix the export: every valueQuantity needs a UCUM code or unit"),
    "unknown state": ("address state is not a US state name or code", "check the export"),
    "value outside the declared categories": (
        "values outside the declared categories",
        "add them to the column's categories in the spec (or allow 'other')"),
}


def issue_hint(kind: str, count: int | None = None) -> str:
    """The issue kind in words, its count if given, and what to do about it when known."""
    what, fix = HINTS.get(kind, (kind, ""))
    n = "" if count is None else f" ({count} issue(s))"
    return f"{what}{n}" + (f": {fix}" if fix else "")


def _by_column(counts: Mapping[str, int]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for key, n in counts.items():
        column, sep, kind = str(key).partition(": ")
        if sep and n:
            out.setdefault(column, {})[kind] = int(n)
    return out


def extraction_issue_count(report: Mapping[str, Any]) -> int:
    """All issues of an import report: the reader's and the extraction's."""
    reader = report.get("issue_count")
    if reader is None:
        reader = len(report.get("issues") or [])
    counts = (report.get("extraction") or {}).get("counts") or {}
    return int(reader) + sum(int(v) for v in counts.values())


def empty_column_warnings(table: pd.DataFrame, counts: Mapping[str, int],
                          spec: TableSpec) -> list[str]:
    """One warning per spec column empty for all or nearly all patients with extraction issues.

    Parameters
    ----------
    table : pandas.DataFrame
        The patient table (one row per patient).
    counts : mapping of str to int
        Extraction issue counts keyed ``"<column>: <kind>"`` (``ExtractReport.counts``).
    spec : TableSpec
        The feature spec; only its columns present in ``table`` are checked.

    Returns
    -------
    list of str
        Custodian-only text: column name, how many patients lack it, the issue kinds with
        their counts and what to do.  No patient value, id or date.
    """
    n = len(table)
    if n == 0:
        return []
    issues = _by_column(counts)
    # columns with the same state, issues and advice share one warning (MIMIC's age and
    # birth year, three encounter counts: the advice was repeated per column, trial 15)
    groups: dict[tuple[str, str, str, str], list[str]] = {}
    for col in spec.columns:
        if col.name not in table.columns or col.name not in issues:
            continue
        values = table[col.name]
        empty = values.isna()
        counted = isinstance(col.source, dict) and col.source.get("from") == "encounter"
        if counted:  # a count is 0, not missing, when nothing was counted
            empty |= pd.to_numeric(values, errors="coerce").fillna(0).eq(0)
        missing = int(empty.sum())
        if missing < NEARLY_ALL * n:
            continue
        how = "all" if missing == n else f"{missing} of"
        state = "0" if counted else "empty"
        kinds = "; ".join(issue_hint(k, v) for k, v in
                          sorted(issues[col.name].items(), key=lambda kv: -kv[1]))
        fill = ("" if col.nullable or counted else "; its synthetic values would come from "
                "the noise alone (the column is not nullable, so the model cannot learn that it is "
                "empty): fix the input, or leave the column out of the feature spec (--spec)")
        groups.setdefault((state, how, kinds, fill), []).append(col.name)
    out = []
    for (state, how, kinds, fill), names in groups.items():
        which = (f"column {names[0]} is" if len(names) == 1
                 else f"columns {', '.join(names[:-1])} and {names[-1]} are")
        out.append(f"{which} {state} for {how} {n} input patients; extraction issue: "
                   f"{kinds}{fill}")
    return out


def absent_type_warnings(types: Mapping[str, set[str]],
                         resources_read: Mapping[str, int]) -> list[str]:
    """One warning per resource type that columns read but the input holds none of.

    ``types``: per modelled column, the resource types it is extracted from
    (:func:`fhirsynth.ingest.features.column_types`); ``resources_read``: resources read per
    type.  Such a column is empty (missing, 0 or false) for every patient whatever the
    cohort, so its synthetic values would come from the noise alone (a trial's Bulk export
    without Observation files gave 416 synthetic Observations).  Column names and type
    names only: custodian console and internal report.
    """
    by_type: dict[str, list[str]] = {}
    for col, ts in types.items():
        if ts and not any(resources_read.get(t, 0) for t in ts):
            names = sorted(ts)
            key = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
            by_type.setdefault(key, []).append(col)
    out = []
    for t, cols in sorted(by_type.items()):
        shown = ", ".join(cols[:8]) + (f" and {len(cols) - 8} more" if len(cols) > 8 else "")
        out.append(f"the input holds no {t} resources, so {len(cols)} column(s) read from "
                   f"them ({shown}) are empty, 0 or false for every patient and their "
                   "synthetic values would come from the noise alone: add those resources "
                   "to the input, or leave the columns out of the feature spec (--spec)")
    return out


def out_of_bounds(table: pd.DataFrame, spec: TableSpec) -> dict[str, dict[str, Any]]:
    """Values of numeric columns outside their bounds, per column (the CSV report's shape).

    ``{column: {"bounds": [lo, hi], "below": n, "above": n, "top_coded": n, "bottom_coded":
    n}}`` for the
    columns with at least one such value; a top-coded column
    (:func:`fhirsynth.export.harmonise.top_codes`) counts values above its top as
    ``top_coded`` (expected), not ``above``, and a birth year's values below its lower
    bound (:func:`fhirsynth.export.harmonise.bottom_codes`) as ``bottom_coded``.  Encoding clips
    all of them to the bounds before any DP step; the counts are private (custodian only).
    """
    tops, bottoms = top_codes(spec), bottom_codes(spec)
    out: dict[str, dict[str, Any]] = {}
    for col in spec.columns:
        if col.kind != "numeric" or col.bounds is None or col.name not in table.columns:
            continue
        x = pd.to_numeric(table[col.name], errors="coerce").to_numpy(float, na_value=np.nan)
        lo, hi = col.bounds
        below, above = int((x < lo).sum()), int((x > hi).sum())
        if below or above:
            top, bottom = col.name in tops, col.name in bottoms
            out[col.name] = {"bounds": [lo, hi], "below": 0 if bottom else below,
                             "above": 0 if top else above, "top_coded": above if top else 0,
                             "bottom_coded": below if bottom else 0}
    return out


def unit_drops(counts: Mapping[str, int], first: Mapping[str, Issue],
               spec: TableSpec) -> tuple[list[str], str | None]:
    """Observation values dropped for their unit: one warning per column, and the strict
    refusal (naming the first such value) or ``None``.

    ``counts`` and ``first`` are an :class:`~fhirsynth.ingest.extract_base.ExtractReport`'s
    (kinds ``"<column>: unknown unit"`` / ``"<column>: missing unit"``).  A warning gives the
    column, how many values and why, where the first one found was (file and line or entry,
    the element; loose patients are folded in partition order, not file order), the units
    the column converts and what to do.  The unit found is never quoted (input text).
    """
    from fhirsynth.ingest.rules import parse_rule
    from fhirsynth.ingest.units import accepted_units

    warnings: list[str] = []
    refusal = None
    total = sum(int(n) for k, n in counts.items()
                if k.endswith((": unknown unit", ": missing unit")))
    for col in spec.columns:
        unknown = int(counts.get(f"{col.name}: unknown unit", 0))
        missing = int(counts.get(f"{col.name}: missing unit", 0))
        if not (unknown or missing):
            continue
        opts = parse_rule(col.name, col.source).opts
        units = accepted_units(str(opts["unit"]), opts.get("analyte"), opts.get("factors"))
        issue = first.get(f"{col.name}: {'unknown' if unknown else 'missing'} unit")
        why = ", ".join(part for part in (
            f"{unknown:,} in a unit it does not convert to {units[0]}" if unknown else "",
            f"{missing:,} without a unit" if missing else "") if part)
        where = f"; one of them at {issue.where} ({issue.field})" if issue is not None else ""
        fixes = []
        if unknown:
            fixes.append(f"it converts {', '.join(units)}{' only' if len(units) == 1 else ''}: "
                         "convert the values in the export, or declare the conversion in the "
                         "column's rule (`factors: {UNIT: multiplier}`, docs/feature-spec.md)")
        if missing:
            fixes.append("every valueQuantity needs a UCUM code or unit")
        warnings.append(f"column {col.name}: {unknown + missing:,} Observation value(s) dropped "
                        f"for their unit ({why}){where}; {'; '.join(fixes)}; --strict fails "
                        "on them instead")
        if refusal is None and issue is not None:
            refusal = (f"{issue.where}: {issue.resource or 'Observation'}: {issue.field}: column "
                       f"{col.name}: {issue.problem.removesuffix('; value dropped')} (strict "
                       f"mode); {total:,} Observation value(s) dropped for their unit in all")
    return warnings, refusal
