"""Evidence for conditional sampling: parse expressions into weights over public states.

``age>=60``, ``diabetes=true``, ``sex=f``, ``a in x,y``, ``bmi is missing`` and ``bmi is
present`` (or a mapping ``{column: value or list of values}``) become, per column, a weight
in [0, 1] for every state: 1 for an allowed state, 0 for an excluded one, and for a numeric
bin cut by a range the share of the bin inside the range (values are decoded uniformly
inside bins, so this is exactly the model's probability of the range).  ``missing`` (or
``<missing>``) names the missing state (``bmi=missing``, ``bmi!=missing``), and ``other``
(or ``<other>``) the other-category, as samples show it, unless a declared category is
called ``other``.  Values are checked against the spec's public domain only; an unknown
column or value raises :class:`EvidenceError` listing what is allowed.  One expression is
one condition: an empty one, or several joined by commas (``age>=60,sex=f``), is refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fhirsynth.domain import OTHER, Column, TableSpec
from fhirsynth.errors import EvidenceError

__all__ = ["Constraint", "decode_in_range", "parse_evidence"]

_CMP = re.compile(r"^\s*(?P<col>[^<>=!]+?)\s*(?P<op>>=|<=|==|!=|=|>|<)\s*(?P<val>.*?)\s*$")
_IN = re.compile(r"^\s*(?P<col>.+?)\s+in\s+(?P<vals>.+?)\s*$", re.IGNORECASE)
_IS = re.compile(r"^\s*(?P<col>[^<>=!]+?)\s+is\s+(?P<what>missing|present)\s*$", re.IGNORECASE)
_MISSING_WORDS = ("<missing>", "missing")
_FORMS = ("column=value, column!=value, column>=x, column<=x, column>x, column<x, "
          "column in a,b, column is missing or column is present")
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


@dataclass
class Constraint:
    """Weights over a column's states and, for numeric ranges, the range to decode into."""

    weights: np.ndarray
    low: float = -math.inf
    high: float = math.inf

    def merge(self, other: Constraint) -> Constraint:
        return Constraint(self.weights * other.weights, max(self.low, other.low),
                          min(self.high, other.high))


def _allowed_text(col: Column) -> str:
    if col.kind == "numeric":
        lo, hi = col.bounds or (None, None)
        extra = ", or <missing>" if col.nullable else ""
        return f"numbers in [{lo:g}, {hi:g}] (e.g. {col.name}>=x, {col.name}<=y){extra}"
    labels = col.state_labels()
    if col.kind == "categorical" and col.other and _other_word(col):
        labels[len(col.categories)] = "other"  # as samples show it
    return ", ".join(labels if len(labels) <= 40 else [*labels[:40], "..."])


def _other_word(col: Column) -> bool:
    """Whether ``other`` names the other-category (samples show it so), i.e. the column
    has one and no declared category is called ``other``."""
    return col.other and "other" not in col.categories


def _state_of(col: Column, value: str) -> int:
    labels = col.state_labels()
    v = value.strip()
    if col.nullable and v.lower() in ("<missing>", "missing", ""):
        return len(labels) - 1
    if col.kind == "boolean":
        if v.lower() in _TRUE:
            return 1
        if v.lower() in _FALSE:
            return 0
    elif col.kind == "categorical":
        if v in col.categories:
            return col.categories.index(v)
        if col.other and (v == OTHER or (v == "other" and _other_word(col))):
            return len(col.categories)
    raise EvidenceError(
        f"evidence on column {col.name!r}: value {v!r} is not in its declared domain; "
        f"allowed: {_allowed_text(col)}")


def _bin_weights(col: Column, lo: float, hi: float) -> np.ndarray:
    """Share of each numeric state that lies in [lo, hi] (missing gets 0)."""
    edges = col.bin_edges()
    assert col.bounds is not None
    b_lo, b_hi = col.bounds
    w = [1.0 if lo <= p <= hi else 0.0 for p in col.point_masses]
    last = len(edges) - 2
    for k in range(len(edges) - 1):
        a, b = max(edges[k], b_lo), min(edges[k + 1], b_hi)
        if col.integer:
            ia, ib = math.ceil(a), math.floor(b)
            if k != last and ib == b and ib > ia:
                ib -= 1
            ib = max(ib, ia)
            top = ib if hi == math.inf else min(ib, math.floor(hi))
            bot = ia if lo == -math.inf else max(ia, math.ceil(lo))
            inside = max(0, top - bot + 1)
            w.append(inside / (ib - ia + 1))
        elif b > a:
            w.append(max(0.0, min(b, hi) - max(a, lo)) / (b - a))
        else:
            w.append(1.0 if lo <= a <= hi else 0.0)
    if col.nullable:
        w.append(0.0)
    return np.asarray(w, float)


def _numeric(col: Column, op: str, text: str) -> Constraint:
    if text.strip().lower() in _MISSING_WORDS and op in ("=", "=="):
        w = np.zeros(col.n_states)
        if not col.nullable:
            raise EvidenceError(f"evidence on column {col.name!r}: the column is not nullable")
        w[-1] = 1.0
        return Constraint(w)
    try:
        x = float(text)
    except ValueError:
        raise EvidenceError(f"evidence on column {col.name!r}: {text!r} is not a number; "
                            f"allowed: {_allowed_text(col)}") from None
    if not math.isfinite(x):
        raise EvidenceError(f"evidence on column {col.name!r}: the value must be finite")
    lo, hi = -math.inf, math.inf
    if op in ("=", "=="):
        if not col.integer and x not in col.point_masses:
            raise EvidenceError(
                f"evidence on column {col.name!r}: equality on a continuous column has "
                "probability zero; use a range (>=, <=)")
        lo = hi = x
    elif op == ">=":
        lo = x
    elif op == "<=":
        hi = x
    elif op == ">":
        # a strict bound on a float column: the next float, so that values rounded for the
        # output (decode_in_range) never equal it
        lo = math.floor(x) + 1 if col.integer else math.nextafter(x, math.inf)
    else:
        hi = math.ceil(x) - 1 if col.integer else math.nextafter(x, -math.inf)
    return Constraint(_bin_weights(col, lo, hi), lo, hi)


def _column(spec: TableSpec, name: str) -> Column:
    name = name.strip()
    if name not in spec or not spec[name].modelled:
        cols = ", ".join(c.name for c in spec.modelled)
        if name in spec and spec[name].role == "derived":
            raise EvidenceError(
                f"evidence names {name!r}, a column derived after sampling from the modelled "
                "ones (it is not in the model, so it cannot be a condition): condition on the "
                "column it comes from (a birth year comes from age); allowed columns: "
                f"{cols}")
        if name in spec:
            raise EvidenceError(f"evidence names {name!r}, which is not modelled (role "
                                f"{spec[name].role}); allowed columns: {cols}")
        raise EvidenceError(f"evidence names unknown column {name!r}; allowed columns: {cols}")
    return spec[name]


def _missing(col: Column, present: bool) -> Constraint:
    """``col is missing`` (the missing state) or ``col is present`` (every other state)."""
    w = np.zeros(col.n_states)
    if col.nullable:
        w[-1] = 1.0
    elif not present:
        raise EvidenceError(f"evidence on column {col.name!r}: the column is not nullable, "
                            "so it is never missing")
    return Constraint(1.0 - w if present else w)


def _several(spec: TableSpec, expr: str) -> None:
    """Refuse one expression holding several conditions joined by commas (``age>=60,
    age<=10``): a comma also separates the values of ``in``, so they are not split."""
    parts = [p.strip() for p in expr.split(",")]
    if len(parts) < 2:
        return
    for p in parts[1:]:
        m = _CMP.match(p) or _IS.match(p) or _IN.match(p)
        if m and m["col"].strip() in spec:
            raise EvidenceError(
                f"evidence {expr!r} holds several conditions joined by commas: give one "
                "condition per item (in Python a list, evidence=[\"a>=1\", \"b=x\"]; on the "
                "command line --where once per condition); a comma separates only the "
                "values of 'column in a,b'")


def _one(spec: TableSpec, expr: str) -> tuple[str, Constraint]:
    if not expr.strip():
        raise EvidenceError(f"evidence holds an empty condition; give {_FORMS} (or no "
                            "evidence at all to sample without conditions)")
    _several(spec, expr)
    m = _IS.match(expr)
    if m:
        col = _column(spec, m["col"])
        return col.name, _missing(col, m["what"].lower() == "present")
    m = _IN.match(expr)
    if m:
        col = _column(spec, m["col"])
        if col.kind == "numeric":
            raise EvidenceError(f"evidence on column {col.name!r}: use >= and <= for a "
                                "numeric column, not 'in'")
        w = np.zeros(col.n_states)
        for v in m["vals"].split(","):
            w[_state_of(col, v)] = 1.0
        return col.name, Constraint(w)
    m = _CMP.match(expr)
    if not m:
        raise EvidenceError(f"evidence {expr!r} is not of the form {_FORMS}")
    col = _column(spec, m["col"])
    if m["op"] == "!=" and m["val"].lower() in _MISSING_WORDS:
        return col.name, _missing(col, present=True)
    if col.kind == "numeric":
        if m["op"] == "!=":
            raise EvidenceError(f"evidence on column {col.name!r}: use ranges (<, >) for a "
                                "numeric column, not !=")
        return col.name, _numeric(col, m["op"], m["val"])
    if m["op"] not in ("=", "==", "!="):
        raise EvidenceError(f"evidence on column {col.name!r}: only =, != and 'in' apply to "
                            f"a {col.kind} column")
    w = np.zeros(col.n_states)
    w[_state_of(col, m["val"])] = 1.0
    return col.name, Constraint(1.0 - w if m["op"] == "!=" else w)


def parse_evidence(
    spec: TableSpec, evidence: Mapping[str, object] | Sequence[str] | str
) -> dict[str, Constraint]:
    """Constraints per column from expressions or a ``{column: value(s)}`` mapping."""
    exprs: list[str] = []
    if isinstance(evidence, str):
        exprs = [evidence]
    elif isinstance(evidence, Mapping):
        for k, v in evidence.items():
            if isinstance(v, list | tuple | set | frozenset):
                exprs.append(f"{k} in {','.join(str(x) for x in v)}")
            elif isinstance(v, str) and v[:1] in "<>=":
                exprs.append(f"{k}{v}")
            else:
                exprs.append(f"{k}={_scalar(v)}")
    else:
        exprs = [str(e) for e in evidence]
    out: dict[str, Constraint] = {}
    said: dict[str, list[str]] = {}
    for e in exprs:
        name, c = _one(spec, e)
        out[name] = out[name].merge(c) if name in out else c
        said.setdefault(name, []).append(e.strip())
    for name, c in out.items():
        if not c.weights.any():
            raise EvidenceError(_empty_message(spec[name], said[name], c))
    return out


def _empty_message(col: Column, exprs: list[str], c: Constraint) -> str:
    """Why the conditions on one column leave no value: each alone, or only together."""
    only = TableSpec(name="_", target=None, columns=(col,))
    alone = [e for e in exprs if not _one(only, e)[1].weights.any()]
    if len(exprs) > 1 and not alone:
        return (f"the conditions on column {col.name!r} contradict each other: "
                f"{' and '.join(exprs)} together allow no value")
    what = alone[0] if alone else exprs[0]
    if col.kind == "numeric" and not col.integer and col.bounds is not None:
        lo, hi = col.bounds
        if c.low == hi or c.high == lo:
            edge = hi if c.low == hi else lo
            return (f"evidence {what!r} selects no value of column {col.name!r}: its values "
                    f"lie in [{lo:g}, {hi:g}], and a continuous column has probability zero "
                    f"at exactly {edge:g}; use a range inside the bounds (e.g. "
                    f"{col.name}{'>=' if edge == hi else '<='}"
                    f"{_inside(col, edge):g})")
    return (f"evidence {what!r} selects no value of column {col.name!r}; "
            f"allowed: {_allowed_text(col)}")


def _inside(col: Column, edge: float) -> float:
    """A value one bin inside ``edge`` (a bound of the column), for the message."""
    edges = col.bin_edges()
    return float(edges[-2] if edge == edges[-1] else edges[1])


def _scalar(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def decode_in_range(
    col: Column, codes: np.ndarray, c: Constraint, rng: np.random.Generator
) -> pd.Series:
    """Decode a numeric column whose bins were cut by a range: values drawn inside both."""
    from fhirsynth.encode import decode_column

    s = decode_column(col, codes, rng)
    n_pm = len(col.point_masses)
    edges = col.bin_edges()
    assert col.bounds is not None
    inbin = codes >= n_pm
    if col.nullable:
        inbin &= codes != col.n_states - 1
    k = codes[inbin] - n_pm
    a = np.maximum(np.maximum(edges[k], col.bounds[0]), c.low)
    b = np.minimum(np.minimum(edges[k + 1], col.bounds[1]), c.high)
    if col.integer:
        last = k == len(edges) - 2
        ia, ib = np.ceil(a), np.floor(b)
        top = np.minimum(edges[k + 1], col.bounds[1])
        ib = np.where(~last & (ib == top) & (ib > ia) & (c.high >= top), ib - 1, ib)
        ib = np.maximum(ib, ia)
        vals = np.minimum(ia + np.floor(rng.random(k.shape) * (ib - ia + 1)), ib)
        out = s.to_numpy(dtype="float64", na_value=np.nan, copy=True)
        out[inbin] = vals
        res = pd.Series(pd.array(np.round(out), dtype="Int64"), name=col.name)
        res[s.isna().to_numpy()] = pd.NA
        return res
    out = s.to_numpy(dtype="float64", na_value=np.nan, copy=True)
    x = a + rng.random(k.shape) * (b - a)
    # the output precision of decode_column (DECIMALS), kept inside the range and the bin
    last = k == len(edges) - 2
    out[inbin] = _round_inside(x, a, b, np.where(last, np.inf, edges[k + 1]))
    return pd.Series(out, name=col.name, dtype="float64")


def _round_inside(x: np.ndarray, a: np.ndarray, b: np.ndarray,
                  bin_top: np.ndarray) -> np.ndarray:
    """``x`` (drawn in [a, b]) rounded to DECIMALS places, staying in [a, b] and below
    ``bin_top`` (the excluded upper edge of a half-open bin).  Where no value with DECIMALS
    places lies there (a range narrower than one step), ``x`` is kept as drawn."""
    from fhirsynth.encode import DECIMALS

    scale = 10.0 ** DECIMALS
    lo = np.ceil(a * scale - 1e-6) / scale  # the smallest multiple of the step >= a
    lo = np.where(lo < a, lo + 1 / scale, lo)
    hi = np.floor(b * scale + 1e-6) / scale  # the largest <= b, and < bin_top
    hi = np.where((hi > b) | (hi >= bin_top), hi - 1 / scale, hi)
    r = np.round(np.clip(np.round(x, DECIMALS), lo, hi), DECIMALS)
    return np.where(lo <= hi, r, x)
