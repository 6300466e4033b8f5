"""One discretisation of any patient table, read off the public spec only, for evaluation.

Real and synthetic tables are cut the same way: categorical columns into their declared
categories plus an ``<other>`` and a ``<missing>`` state, booleans into false/true, numeric
columns into at most :data:`MAX_EVAL_BINS` bins between the declared bounds (values outside
are clipped).  Unparseable values count as ``<other>``; nothing here raises on dirty data,
so the same code serves the internal validation and the peer benchmark.  What cannot be
compared at all is refused up front (:func:`checked_columns`): a table without rows, or one
that lacks a modelled column, whose measures would otherwise leave the column out unsaid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fhirsynth.domain import MISSING, OTHER, Column, TableSpec, _category_str
from fhirsynth.errors import Issue, TableInputError

__all__ = ["MAX_EVAL_BINS", "Discretised", "checked_columns", "discretise", "eval_columns",
           "eval_edges"]

#: numeric columns are cut into at most this many bins for evaluation
MAX_EVAL_BINS = 16
_MISSING_TEXT = {"", "n/a", "na", "nan", "null", "none", "<na>"}
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


@dataclass(frozen=True)
class Discretised:
    """Integer codes of the evaluated columns: ``codes[:, j]`` lies in ``0..cards[j]-1``."""

    columns: tuple[str, ...]
    codes: np.ndarray
    cards: tuple[int, ...]
    labels: tuple[tuple[str, ...], ...]

    @property
    def n_rows(self) -> int:
        return int(self.codes.shape[0])

    def index(self, name: str) -> int:
        return self.columns.index(name)


def eval_columns(spec: TableSpec, *tables: pd.DataFrame) -> list[Column]:
    """Modelled spec columns present in every table, in spec order."""
    return [c for c in spec.modelled if all(c.name in t.columns for t in tables)]


def checked_columns(spec: TableSpec, who: str, **tables: pd.DataFrame | None) -> list[Column]:
    """The modelled columns of ``spec``, once every table given (keyword: its role, such as
    ``real`` or ``synthetic``; None is skipped) has rows and every one of them.

    Otherwise one :class:`TableInputError` from ``who`` (the function evaluating), with an
    issue per table naming the columns it lacks (the target said as such) or saying it has
    no rows: a measure over fewer columns than the model's, or over no rows, would be a
    number about something else.
    """
    cols = spec.modelled
    issues = []
    for role, table in tables.items():
        if table is None:
            continue
        where = f"the {role.replace('_', ' ')} table"
        absent = [c.name for c in cols if c.name not in table.columns]
        if absent:
            target = " (the target among them)" if spec.target in absent else ""
            issues.append(Issue(where=where, problem=f"lacks modelled column(s) "
                                                     f"{absent}{target}"))
        if len(table) == 0:
            issues.append(Issue(where=where, problem="has no rows"))
    if not cols:
        issues.append(Issue(where=f"spec {spec.name!r}", problem="models no column"))
    if issues:
        raise TableInputError(f"{who}: nothing comparable: every table needs rows and every "
                              "modelled column of the spec", issues)
    return cols


def eval_edges(col: Column, max_bins: int = MAX_EVAL_BINS) -> np.ndarray:
    """Public bin edges of a numeric column for evaluation (at most ``max_bins`` bins)."""
    assert col.bounds is not None
    edges = col.bin_edges()
    if len(edges) - 1 <= max_bins:
        return edges
    lo, hi = col.bounds
    return np.linspace(lo, hi, max_bins + 1)


def _labels(col: Column, max_bins: int) -> list[str]:
    if col.kind == "categorical":
        base = list(col.categories)
    elif col.kind == "boolean":
        base = ["false", "true"]
    else:
        e = eval_edges(col, max_bins)
        last = len(e) - 2
        base = [
            f"[{a:g}, {b:g}{']' if i == last else ')'}"
            for i, (a, b) in enumerate(zip(e[:-1], e[1:], strict=False))
        ]
    return base + [OTHER, MISSING]


def _text_codes(values: pd.Series, lookup: dict[str, int], n_base: int) -> np.ndarray:
    """Map values to codes through the unique values (fast for long columns)."""
    codes_u, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.empty(len(uniques) + 1, dtype=np.int32)
    for i, u in enumerate(uniques):
        s = _category_str(u).strip()
        if s.lower() in _MISSING_TEXT:
            mapped[i] = n_base + 1
        else:
            mapped[i] = lookup.get(s, lookup.get(s.lower(), n_base))
    mapped[-1] = n_base + 1  # factorize's NA sentinel (-1) indexes the last slot
    return mapped[codes_u]


def discretise_column(col: Column, values: pd.Series, max_bins: int = MAX_EVAL_BINS) -> np.ndarray:
    """Evaluation codes of one column (``int32``) over ``_labels(col)``."""
    if col.kind == "categorical":
        lookup = {c: i for i, c in enumerate(col.categories)}
        return _text_codes(values, lookup, len(col.categories))
    if col.kind == "boolean":
        lookup = {v: 1 for v in _TRUE} | {v: 0 for v in _FALSE}
        lookup |= {"True": 1, "False": 0}
        return _text_codes(values, lookup, 2)
    edges = eval_edges(col, max_bins)
    n_base = len(edges) - 1
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values):
        x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        bad = np.zeros(len(x), bool)
    else:
        text = values.astype("string").str.strip()
        x = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        miss_text = text.isna() | text.str.lower().isin(_MISSING_TEXT)
        bad = np.isnan(x) & ~miss_text.to_numpy(dtype=bool, na_value=True)
    out = np.searchsorted(edges[1:-1], np.clip(x, edges[0], edges[-1]), side="right")
    out = out.astype(np.int32)
    out[~np.isfinite(x)] = n_base + 1
    out[bad] = n_base
    return out


def discretise(
    spec: TableSpec,
    table: pd.DataFrame,
    columns: Sequence[Column] | None = None,
    max_bins: int = MAX_EVAL_BINS,
) -> Discretised:
    """Discretise ``table`` over the public domains of ``columns`` (default: modelled ones).

    Parameters
    ----------
    spec : TableSpec
        The public spec; nothing is read off the data.
    table : pandas.DataFrame
        Real or synthetic rows; extra columns are ignored.
    columns : sequence of Column, optional
        Columns to evaluate, default :func:`eval_columns` of ``table``.
    max_bins : int
        Upper limit on the number of bins of a numeric column.
    """
    cols = list(columns) if columns is not None else eval_columns(spec, table)
    codes = np.empty((len(table), len(cols)), dtype=np.int32)
    labels = []
    for j, col in enumerate(cols):
        codes[:, j] = discretise_column(col, table[col.name], max_bins)
        labels.append(tuple(_labels(col, max_bins)))
    return Discretised(
        columns=tuple(c.name for c in cols),
        codes=codes,
        cards=tuple(len(x) for x in labels),
        labels=tuple(labels),
    )
