"""What to tell the custodian when the Safe Harbor scan of an output fails.

Owns :func:`scan_warnings`: one line per finding of a scan (``SafeHarborReport.to_dict()``),
naming the identifier kind, the file and column, the count and what to change in the
schema or spec before sharing.  Never a value: findings carry none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhirsynth.evaluate.safe_harbor import AGE_LIMITS

__all__ = ["FIXES", "fix_for", "scan_warnings"]

#: finding kind -> what to change before sharing (rules for ages and birth years differ)
FIXES = {
    "free text": ("rewrite that text of the schema or feature spec without it (a plain name or "
                  "description); it is printed in the shareable README, report and records"),
    "age above 89": ("top-code the age as the default FHIR feature spec does: \"bounds\": [0, 90] "
                     "and \"source\": {\"top_code\": 90} in the schema (90 then means 90 or older; "
                     "larger values are clipped to it), or end the column's bounds at 89 "
                     "(larger values are clipped into the top bin), or drop the column"),
    "birth year implies age > 89": ("drop the birth-year column, or raise its lower bound "
                                    "so that no birth year implies an age over 89"),
    "years that could be birth years": (
        "if it holds no birth years, declare it so: \"source\": {\"not_a_birth_year\": true} "
        "in the schema; else raise its lower bound to this year - 89 or later (earlier years "
        "are then clipped to it), or drop the column"),
    "dates": "release years only: drop the date column or reduce it to a year",
    "geographic": ("keep nothing below a state and at most ZIP3 (restricted prefixes as 000): "
                   "coarsen or drop the column"),
    "ZIP longer than 3 digits": (
        "keep the first three digits: declare \"source\": {\"transform\": \"zip3\"} on the "
        "column in the schema (the 17 restricted prefixes become 000) and list 3-digit prefixes "
        "as its categories, or drop the column"),
    "restricted ZIP3 not set to 000": (
        "keep the restricted prefixes as 000: declare \"source\": {\"transform\": \"zip3\"} "
        "on the column in the schema (it maps them to 000) and list 000 in their place, or "
        "drop the column"),
    "other_unique_id": ("declare a record key as role 'key' (a fresh UUID per synthetic "
                        "patient) or drop the column"),
}
for _unit, (_most, _top) in AGE_LIMITS.items():
    if _unit == "years":
        continue
    FIXES[f"age in {_unit} above 89 years"] = (
        f"end the column's bounds at {_most:g} {_unit} (89 years; larger values are clipped into "
        f"the top bin), or top-code it: \"bounds\": [0, {_top:g}] and \"source\": "
        f"{{\"top_code\": {_top:g}}} ({_top:g} {_unit}, 90 years, then means 90 years or older), "
        "or give the age in years, or drop the column")
DEFAULT_FIX = "drop the column (role 'drop' in the schema) or leave it out of the spec"


def fix_for(finding: Mapping[str, Any]) -> str:
    """What to change for one finding (by its rule, then its kind)."""
    return FIXES.get(str(finding.get("rule")), FIXES.get(str(finding.get("kind")), DEFAULT_FIX))


def scan_warnings(safe_harbor: Mapping[str, Any]) -> list[str]:
    """One warning per finding of a failed scan; empty when the scan passed.

    Parameters
    ----------
    safe_harbor : mapping
        ``SafeHarborReport.to_dict()`` of the release's outputs.
    """
    out = []
    for f in safe_harbor.get("findings") or []:
        where = f"{f.get('location', '?')}, column {f.get('field', '?')}"
        out.append(f"Safe Harbor scan of the output failed: {f.get('description', f.get('kind'))}"
                   f" ({f.get('count', '?')} in {where}; rule: {f.get('rule', '?')}); "
                   f"fix: {fix_for(f)}")
    return out
