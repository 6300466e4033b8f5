"""Patient rows ⇄ integer codes over the public domain of a :class:`TableSpec`.

Encoding reads values and nothing else: the states of every column come from the spec
(:meth:`Column.state_labels`), so the code table of two neighbouring cohorts differs in one
row only.  Values outside a numeric column's bounds are clipped into the first or last bin;
unlisted categories go to ``<other>`` where the spec allows it; missing values go to
``<missing>`` where the column is nullable.  How many values were clipped is private and is
kept in :class:`EncodeStats` for the custodian's internal report only.  A value that fits
none of this is an input error: :func:`encode` checks every column and raises one
:class:`TableInputError` whose ``issues`` give each column's problem, count and first row
positions, never a value.

Decoding is post-processing: point masses give their exact value, integer bins give an
integer and other bins a float drawn inside the bin, uniformly or, given the bins' relative
slopes (:func:`bin_slopes`, from the model's own one-way marginal), from a linear density
that keeps each bin's mass and follows the trend of its neighbours.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fhirsynth.domain import Column, TableSpec, _category_str
from fhirsynth.errors import Issue, TableInputError

__all__ = ["EncodeStats", "EncodedTable", "bin_slopes", "decode", "decode_column", "encode",
           "encode_column"]

#: decimals kept when a float is drawn inside its bin
DECIMALS = 2
#: row positions an input error lists per problem
FIRST_ROWS = 5

_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


@dataclass
class EncodeStats:
    """Private per-column counts of values changed by encoding (internal report only)."""

    clipped: dict[str, int] = field(default_factory=dict)
    other: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class EncodedTable:
    """Integer codes of the modelled columns: ``codes[:, j]`` lies in ``0..cards[j]-1``."""

    columns: tuple[str, ...]
    codes: np.ndarray
    cards: tuple[int, ...]
    stats: EncodeStats = field(compare=False)

    @property
    def n_rows(self) -> int:
        return int(self.codes.shape[0])


def _is_missing(values: pd.Series) -> np.ndarray:
    miss = values.isna().to_numpy().copy()
    if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
        s = values.astype("string").str.strip()
        miss |= s.isin(["", "N/A", "NA", "NaN", "nan", "null", "None"]).fillna(False).to_numpy(bool)
    return miss


def _per_unique(vals: pd.Series, f: Callable[[Any], Any], dtype: Any) -> np.ndarray:
    """``f`` applied to each distinct value once, spread back to every row (vectorised).

    Hashing equates True with 1 and False with 0, which ``f`` may not: in an object column
    holding both, the booleans are factorised apart from the rest.
    """
    out = np.empty(len(vals), dtype=dtype)
    idx, uniques = pd.factorize(vals)
    if not len(idx):
        return out
    if vals.dtype == object and any(type(u) is bool for u in uniques):
        # a True unique may stand for 1s as well: split by type, row by row
        arr = vals.to_numpy(dtype=object)
        isb = np.fromiter((type(v) is bool for v in arr), bool, len(arr))
        for part in (isb, ~isb):
            pidx, puniq = pd.factorize(vals[part])
            out[part] = np.asarray([f(u) for u in puniq], dtype=dtype).reshape(-1)[pidx]
        return out
    out[:] = np.asarray([f(u) for u in uniques], dtype=dtype).reshape(-1)[idx]
    return out


def encode_column(col: Column, values: pd.Series, stats: EncodeStats | None = None,
                  issues: list[Issue] | None = None) -> np.ndarray:
    """Codes of one column (``int32``), over ``col.state_labels()``.

    A value that does not fit the column is a :class:`TableInputError` naming the column,
    the kind of problem, the count and the first row positions (0-based, never the value);
    with ``issues`` given, each problem is appended there instead and the rows concerned get
    code 0, so that :func:`encode` can report every column before it raises.
    """
    n = len(values)
    found: list[Issue] = []
    miss = _is_missing(values)
    codes = np.empty(n, dtype=np.int32)
    missing_code = col.n_states - 1 if col.nullable else -1
    if miss.any() and not col.nullable:
        found.append(_issue(col, miss, "missing value(s), and the column is declared not "
                                       "nullable"))
    present = ~miss
    vals = values[present]
    pos = np.flatnonzero(present)
    if col.kind == "boolean":
        s = _per_unique(vals, lambda v: _category_str(v).strip().lower(), object)
        is_t, is_f = np.isin(s, list(_TRUE)), np.isin(s, list(_FALSE))
        bad = ~(is_t | is_f)
        if bad.any():
            found.append(_issue(col, pos[bad], "value(s) are not true/false/yes/no/1/0"))
        codes[present] = is_t.astype(np.int32)
    elif col.kind == "categorical":
        lookup = {c: i for i, c in enumerate(col.categories)}
        mapped = _per_unique(vals, lambda v: lookup.get(_category_str(v).strip(), -1),
                             np.int64)
        unlisted = mapped < 0
        if unlisted.any():
            if col.other:
                mapped[unlisted] = len(col.categories)
                if stats is not None:
                    stats.other[col.name] = int(unlisted.sum())
            else:
                found.append(_issue(col, pos[unlisted], (
                    f"value(s) are not in the declared category list ({len(col.categories)} "
                    "categories) and the column has no 'other: true'")))
                mapped[unlisted] = 0
        codes[present] = mapped
    else:
        x = pd.to_numeric(vals, errors="coerce").to_numpy(float)
        for bad, what in ((np.isnan(x), "not numbers"), (np.isinf(x), "not finite numbers")):
            if bad.any():
                found.append(_issue(col, pos[bad], f"value(s) are {what}"))
        bad = ~np.isfinite(x)
        assert col.bounds is not None
        lo, hi = col.bounds
        x = np.where(bad, lo, x)
        clipped = (x < lo) | (x > hi)
        if stats is not None and clipped.any():
            stats.clipped[col.name] = int(clipped.sum())
        x = np.clip(x, lo, hi)
        codes[present] = _numeric_codes(col, x)
    codes[miss] = missing_code if col.nullable else 0
    if found and issues is None:
        raise _input_error(found)
    if issues is not None:
        issues.extend(found)
    return codes


def _issue(col: Column, rows: np.ndarray, what: str) -> Issue:
    """One problem of a column: the count and the first row positions (``rows``: a mask or
    0-based positions), never a value."""
    rows = np.flatnonzero(rows) if rows.dtype == bool else rows
    first = rows[:FIRST_ROWS].tolist()
    return Issue(where=f"column {col.name!r}",
                 problem=f"{len(rows)} {what} (first rows: {first})")


def _input_error(issues: list[Issue]) -> TableInputError:
    cols = len({i.where for i in issues})
    return TableInputError(
        f"the table does not fit its spec: {len(issues)} problem(s) in {cols} column(s) "
        "(rows are 0-based positions; values are never shown)", issues)


def _numeric_codes(col: Column, x: np.ndarray) -> np.ndarray:
    n_pm = len(col.point_masses)
    edges = col.bin_edges()
    inner = edges[1:-1]
    out = np.searchsorted(inner, x, side="right").astype(np.int32) + n_pm
    for i, p in enumerate(col.point_masses):
        out[x == p] = i
    return out


def encode(spec: TableSpec, table: pd.DataFrame) -> EncodedTable:
    """Encode the modelled columns of ``table`` (missing columns are an error)."""
    cols = spec.modelled
    absent = [c.name for c in cols if c.name not in table.columns]
    if absent:
        raise TableInputError(f"the table lacks spec column(s) {absent}")
    stats = EncodeStats()
    codes = np.empty((len(table), len(cols)), dtype=np.int32)
    issues: list[Issue] = []
    for j, col in enumerate(cols):
        codes[:, j] = encode_column(col, table[col.name], stats, issues)
    if issues:
        raise _input_error(issues)
    return EncodedTable(
        columns=tuple(c.name for c in cols),
        codes=codes,
        cards=tuple(c.n_states for c in cols),
        stats=stats,
    )


def bin_slopes(mass: np.ndarray) -> np.ndarray:
    """Relative slope of a linear density inside each bin of an equal-width histogram.

    ``mass`` holds the (model) probabilities of consecutive value bins.  Inside bin ``k``
    the density is taken as ``1 + a_k (t - 1/2)`` for ``t`` in [0, 1] (so the bin keeps
    its mass), with ``a_k`` the central difference of the neighbouring masses over twice
    the bin's own (the end bins repeat their own mass outside), clipped to [-2, 2] so the
    density stays non-negative.  An empty bin gets 0 (uniform).
    """
    m = np.asarray(mass, float)
    if m.size < 2:
        return np.zeros(m.size)
    left = np.r_[m[0], m[:-1]]
    right = np.r_[m[1:], m[-1]]
    a = np.divide(right - left, 2.0 * m, out=np.zeros_like(m), where=m > 0)
    return np.clip(a, -2.0, 2.0)


def _within(a: np.ndarray | None, u: np.ndarray) -> np.ndarray:
    """Position in [0, 1) inside a bin of relative slope ``a`` for uniform ``u`` (inverse CDF)."""
    if a is None:
        return u
    t = u.copy()
    nz = np.abs(a) > 1e-9
    b = 1.0 - a[nz] / 2.0
    t[nz] = (np.sqrt(b * b + 2.0 * a[nz] * u[nz]) - b) / a[nz]
    return np.clip(t, 0.0, np.nextafter(1.0, 0.0))


def decode_column(
    col: Column, codes: np.ndarray, rng: np.random.Generator,
    slopes: np.ndarray | None = None,
) -> pd.Series:
    """Values of one column from its codes (post-processing; ``rng`` draws within bins).

    ``slopes`` (numeric columns: one per value bin, see :func:`bin_slopes`) shapes the draw
    inside each bin; None draws uniformly.
    """
    codes = np.asarray(codes)
    n_states = col.n_states
    if codes.size and (codes.min() < 0 or codes.max() >= n_states):
        raise ValueError(f"column {col.name!r}: code outside 0..{n_states - 1}")
    miss = codes == n_states - 1 if col.nullable else np.zeros(codes.shape, bool)
    if col.kind == "boolean":
        out = pd.array(codes == 1, dtype="boolean")
        out[miss] = pd.NA
        return pd.Series(out, name=col.name)
    if col.kind == "categorical":
        labels = np.array(list(col.categories) + (["other"] if col.other else []) + [""], object)
        vals = labels[np.minimum(codes, len(labels) - 1)]
        s = pd.Series(vals, name=col.name, dtype="string")
        s[miss] = pd.NA
        return s
    return _decode_numeric(col, codes, miss, rng, slopes)


def _decode_numeric(
    col: Column, codes: np.ndarray, miss: np.ndarray, rng: np.random.Generator,
    slopes: np.ndarray | None = None,
) -> pd.Series:
    n_pm = len(col.point_masses)
    edges = col.bin_edges()
    assert col.bounds is not None
    lo_b, hi_b = col.bounds
    out = np.full(codes.shape, np.nan)
    pm = (codes < n_pm) & ~miss
    if n_pm:
        out[pm] = np.asarray(col.point_masses, float)[codes[pm]]
    b = ~pm & ~miss
    k = codes[b] - n_pm
    lo = np.maximum(edges[k], lo_b)
    hi = np.minimum(edges[k + 1], hi_b)
    a = None
    if slopes is not None:
        slopes = np.asarray(slopes, float)
        if slopes.shape != (len(edges) - 1,):
            raise ValueError(f"column {col.name!r}: {slopes.size} bin slopes for "
                             f"{len(edges) - 1} bins")
        a = slopes[k]
    # a bound that is a point mass (a top or bottom code) is that state's value, never a
    # draw of the bin beside it: the first or last bin then excludes it too
    last = (k == len(edges) - 2) & (hi_b not in col.point_masses)
    first_open = (k == 0) & (lo_b in col.point_masses)
    if col.integer:
        ilo = np.ceil(lo)
        ihi = np.floor(hi)
        # half-open bins except the last: exclude an integer upper edge
        ihi = np.where(~last & (ihi == hi) & (ihi > ilo), ihi - 1, ihi)
        ilo = np.where(first_open & (ilo == lo) & (ihi > ilo), ilo + 1, ilo)
        ihi = np.maximum(ihi, ilo)
        draw = ilo + np.floor(_within(a, rng.random(k.shape)) * (ihi - ilo + 1))
        out[b] = np.minimum(draw, ihi)
        s = pd.Series(pd.array(np.round(out), dtype="Int64"), name=col.name)
        if miss.any():
            s[miss] = pd.NA
        return s
    x = lo + _within(a, rng.random(k.shape)) * (hi - lo)
    # report-friendly precision, kept inside the bin (a rounded value never changes state)
    step = 10.0 ** -DECIMALS
    x = np.round(x, DECIMALS)
    x = np.where(~last & (x >= hi), x - step, x)
    x = np.where(first_open & (x <= lo), x + step, x)
    out[b] = np.clip(x, lo, hi)
    return pd.Series(out, name=col.name, dtype="float64")


def decode(
    spec: TableSpec,
    columns: Sequence[str],
    codes: np.ndarray,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Decode a code matrix whose columns are ``columns`` (modelled columns of ``spec``)."""
    data = {name: decode_column(spec[name], codes[:, j], rng) for j, name in enumerate(columns)}
    return pd.DataFrame(data)
