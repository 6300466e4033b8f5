"""Row constraints a schema declares: public rules every synthetic row must meet.

A network learned under DP noise can put mass on combinations no patient has (a discharge
before the admission, a death year for the living), and at a small epsilon the structure
search may not find the columns that rule them out.  What the custodian knows of how the
data are recorded can be declared in the schema::

    "constraints": [
        "discharge_year >= admission_year",
        "deceased = no -> death_year is missing",
        "deceased = yes -> death_year is present",
        "age < 15 -> smoking_status is missing"
    ]

A rule is a condition, or ``condition -> condition`` (if the first holds, the second must).
A condition compares a column with a value (``age >= 60``, ``sex = f``, ``sex != m``) or with
another column (``discharge_year >= admission_year``), or tests for a missing value
(``death_year is missing``, ``hba1c is present``).  Operators: ``<``, ``<=``, ``>``, ``>=``,
``=`` (or ``==``) and ``!=``; categorical columns compare with ``=`` and ``!=`` only.  A
comparison with a missing value is undecided and never rejects a row.

Sampling draws rows from the model and redraws those that break a rule (rejection: the
synthetic rows follow the model's distribution conditioned on the rules).  That is
post-processing of the released model and spends no budget; the rules are public (they are
written to ``model.json``) and read no patient data.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fhirsynth.domain import TableSpec
from fhirsynth.errors import SpecError

__all__ = ["Rule", "implied_parents", "parse_rules", "rows_meeting"]

_OPS: dict[str, Callable[[object, object], object]] = {
    "<=": operator.le, ">=": operator.ge, "!=": operator.ne, "==": operator.eq,
    "<": operator.lt, ">": operator.gt, "=": operator.eq,
}
_COND = re.compile(r"^\s*(?P<col>[^<>=!]+?)\s*(?P<op><=|>=|!=|==|<|>|=)\s*(?P<rhs>.+?)\s*$")
_MISSING = re.compile(r"^\s*(?P<col>.+?)\s+is\s+(?P<what>missing|present)\s*$", re.I)


@dataclass(frozen=True)
class _Cond:
    column: str
    op: str  # an operator of _OPS, or "missing" / "present"
    value: object = None  # a number, a category, or None
    other: str | None = None  # another column


@dataclass(frozen=True)
class Rule:
    """One parsed constraint: ``then`` must hold where ``when`` (if any) holds."""

    text: str
    when: _Cond | None
    then: _Cond


def _value(spec: TableSpec, col: str, text: str, rule: str) -> object:
    c = spec[col]
    t = text.strip().strip("'\"")
    if c.kind == "numeric":
        try:
            v = float(t)
        except ValueError:
            raise SpecError(f"constraint {rule!r}: {col!r} is numeric, and {t!r} is not a "
                            "number") from None
        if not math.isfinite(v):
            raise SpecError(f"constraint {rule!r}: the number must be finite")
        return v
    if c.kind == "boolean":
        low = t.lower()
        if low not in ("true", "false", "yes", "no", "1", "0"):
            raise SpecError(f"constraint {rule!r}: {col!r} is true or false, not {t!r}")
        return low in ("true", "yes", "1")
    if c.categories is not None and t not in c.categories and not c.other:
        raise SpecError(f"constraint {rule!r}: {t!r} is not in the category list of {col!r}")
    return t


def _cond(spec: TableSpec, text: str, rule: str) -> _Cond:
    names = {c.name for c in spec.modelled}
    m = _MISSING.match(text)
    if m:
        col = m["col"].strip()
        if col not in names:
            raise SpecError(f"constraint {rule!r}: {col!r} is not a modelled column")
        return _Cond(col, m["what"].lower())
    m = _COND.match(text)
    if m is None:
        raise SpecError(f"constraint {rule!r}: {text.strip()!r} is no condition (write "
                        "'column OP value', 'column OP column' or 'column is missing')")
    col, op, rhs = m["col"].strip(), m["op"], m["rhs"].strip()
    if col not in names:
        raise SpecError(f"constraint {rule!r}: {col!r} is not a modelled column")
    kind = spec[col].kind
    if rhs in names:
        if spec[rhs].kind != kind or (kind != "numeric" and op not in ("=", "==",
                                                                                  "!=")):
            raise SpecError(f"constraint {rule!r}: {col!r} and {rhs!r} cannot be compared "
                            f"with {op!r}")
        return _Cond(col, op, other=rhs)
    if kind != "numeric" and op not in ("=", "==", "!="):
        raise SpecError(f"constraint {rule!r}: {col!r} is not numeric; compare it with = or !=")
    return _Cond(col, op, _value(spec, col, rhs, rule))


def parse_rules(spec: TableSpec, rules: object, origin: str = "<spec>") -> list[Rule]:
    """The schema's ``constraints`` parsed against its modelled columns.

    Raises
    ------
    SpecError
        Naming ``origin`` and the rule: not a list of strings, an unknown column, a value
        outside the column's domain, or an operator the column's kind does not allow.
    """
    if rules is None:
        return []
    if isinstance(rules, str) or not isinstance(rules, Sequence):
        raise SpecError(f"{origin}: 'constraints' must be a list of rules (strings)")
    out = []
    for r in rules:
        if not isinstance(r, str) or not r.strip():
            raise SpecError(f"{origin}: each constraint must be a non-empty string")
        try:
            parts = r.split("->")
            if len(parts) > 2:
                raise SpecError(f"constraint {r!r}: at most one '->'")
            when = _cond(spec, parts[0], r) if len(parts) == 2 else None
            out.append(Rule(r.strip(), when, _cond(spec, parts[-1], r)))
        except SpecError as exc:
            raise SpecError(f"{origin}: {exc}") from None
    return out


def _truth(c: _Cond, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(holds, decided) per row; a comparison with a missing value is undecided."""
    s = df[c.column]
    missing = s.isna().to_numpy()
    if c.op in ("missing", "present"):
        holds = missing if c.op == "missing" else ~missing
        return holds, np.ones(len(df), bool)
    if c.other is not None:
        rhs = df[c.other]
        decided = ~missing & ~rhs.isna().to_numpy()
    else:
        rhs = c.value
        decided = ~missing
    with np.errstate(invalid="ignore"):
        if pd.api.types.is_numeric_dtype(s.dtype):
            left = s.astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
            right = (rhs.astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
                     if c.other is not None else float(rhs))  # type: ignore[arg-type]
        else:
            left = s.astype("object").to_numpy()
            right = rhs.astype("object").to_numpy() if c.other is not None else rhs
        holds = np.asarray(_OPS[c.op](left, right), dtype=bool)
    return holds & decided, decided


def rows_meeting(rules: Sequence[Rule], df: pd.DataFrame) -> np.ndarray:
    """Boolean mask of the rows of ``df`` (decoded modelled columns) that break no rule."""
    ok = np.ones(len(df), bool)
    for r in rules:
        then, decided = _truth(r.then, df)
        broken = decided & ~then
        if r.when is not None:
            when, _ = _truth(r.when, df)
            broken &= when
        ok &= ~broken
    return ok


def implied_parents(rules: Sequence[Rule],
                    declared: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """Parent sets the rules tell, for columns the schema's ``structure`` leaves undeclared.

    A rule ``A ... -> B ...`` says B depends on A, and ``X op Y`` that X depends on Y: public
    knowledge of how the data are recorded, as a declared structure is, and what the
    learner needs so that the rules remove few rows (a model that drew B independently of A
    would have most of its rows redrawn, distorting the rest).  An edge that would close a
    cycle with the declared structure or an earlier edge is left out.
    """
    graph = {c: list(ps) for c, ps in (declared or {}).items()}
    fixed = set(graph)
    out: dict[str, list[str]] = {}

    def reaches(a: str, b: str) -> bool:  # is b an ancestor of a (or a itself)?
        seen, todo = set(), [a]
        while todo:
            x = todo.pop()
            if x == b:
                return True
            if x not in seen:
                seen.add(x)
                todo.extend(graph.get(x, ()))
        return False

    for r in rules:
        pairs = ([(r.then.column, r.when.column)] if r.when is not None else []) + (
            [(r.then.column, r.then.other)] if r.then.other else [])
        if r.when is not None and r.when.other:
            pairs.append((r.when.column, r.when.other))
        for child, parent in pairs:
            if (child == parent or child in fixed or parent in out.get(child, ())
                    or reaches(parent, child)):
                continue
            out.setdefault(child, []).append(parent)
            graph.setdefault(child, []).append(parent)
    return out
