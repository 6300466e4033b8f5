"""Checks of a synthetic table given to ``fhirsynth report`` (rather than sampled by a run).

``report`` writes a release-shaped folder around whatever table it is given, so it must not
accept a table the model did not make (a red team gave it the real rows and got a
"Synthetic patients" report with a Safe Harbor pass).  Two checks, both on the custodian's
side and both silent about values:

* :func:`check_model_could_produce`: every modelled column holds only what a sample of the
  model can hold (a listed category, or ``other`` where the column has one; a number inside
  the column's public bounds, whole for an integer column; true/false for a boolean; a
  missing value only where the column is nullable).  Anything else is impossible for a
  sample of the model, whatever its noise.
* :func:`check_not_copied`: the share of the table's rows equal to some real row (over the
  modelled columns) must not exceed ``max(COPY_FLOOR, COPY_FACTOR x baseline)``, where
  ``baseline`` is that share for a fresh sample of the same size drawn from the model itself
  (post-processing: no budget is spent).  A model over a small domain reproduces real rows
  by chance, and the baseline measures how often; a table that repeats real rows far more
  often than the model does was not sampled from it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fhirsynth.domain import Column, TableSpec, _category_str
from fhirsynth.encode import _FALSE, _TRUE, _is_missing, encode_column
from fhirsynth.errors import InputError

__all__ = ["COPY_FACTOR", "COPY_FLOOR", "check_model_could_produce", "check_not_copied",
           "copy_share"]

#: a table may repeat real rows up to this share whatever the model's own rate ...
COPY_FLOOR = 0.5
#: ... and up to this many times the share of a same-size sample of the model itself
COPY_FACTOR = 2.0
_HOW = ("pass the table that `fhirsynth run` or `fhirsynth sample` wrote from this model "
        "(synthetic/patients.csv of its release)")


def _impossible(col: Column, values: pd.Series) -> list[str]:
    """What of ``values`` the model could not have sampled: one phrase per kind, with its
    count, never a value."""
    out = []
    miss = _is_missing(values)
    if miss.any() and not col.nullable:
        out.append(f"{int(miss.sum())} missing value(s) (the column is not nullable)")
    vals = values[~miss]
    if not len(vals):
        return out
    if col.kind == "categorical":
        allowed = set(col.categories) | ({"other"} if col.other else set())
        s = vals.map(lambda v: _category_str(v).strip())
        bad = int((~s.isin(allowed)).sum())
        if bad:
            out.append(f"{bad} value(s) outside its category list ({len(col.categories)} "
                       "categories" + (" and other" if col.other else "") + ")")
    elif col.kind == "boolean":
        s = vals.map(lambda v: _category_str(v).strip().lower())
        bad = int((~s.isin(_TRUE | _FALSE)).sum())
        if bad:
            out.append(f"{bad} value(s) that are not true/false")
    else:
        x = pd.to_numeric(vals, errors="coerce").to_numpy(float)
        nan = ~np.isfinite(x)
        if nan.any():
            out.append(f"{int(nan.sum())} value(s) that are not finite numbers")
        x = x[~nan]
        assert col.bounds is not None
        lo, hi = col.bounds
        outside = int(((x < lo) | (x > hi)).sum())
        if outside:
            out.append(f"{outside} number(s) outside its bounds [{lo:g}, {hi:g}]")
        if col.integer:
            frac = int((x != np.round(x)).sum())
            if frac:
                out.append(f"{frac} number(s) that are not whole (the column is integer)")
    return out


def check_model_could_produce(spec: TableSpec, table: pd.DataFrame, name: str) -> None:
    """Refuse ``table`` (called ``name`` in the message) when a modelled column holds a value
    no sample of a model over ``spec`` can hold: one :class:`InputError` naming each such
    column with its counts (public facts of the spec and counts only, never a value)."""
    problems = []
    for col in spec.modelled:
        if col.name in table.columns:
            found = _impossible(col, table[col.name])
            if found:
                problems.append(f"column {col.name!r}: {', '.join(found)}")
    if problems:
        raise InputError(
            f"{name}: not a sample of this model: it holds values the model cannot produce "
            f"({'; '.join(problems)}). `fhirsynth report` evaluates the table a run sampled "
            f"from the model, never the real data or another model's table; {_HOW}")


def _row_hashes(spec: TableSpec, table: pd.DataFrame) -> np.ndarray:
    """One 64-bit hash per row of the modelled columns, read alike from any table:
    categories and booleans by their state, numbers as floats rounded to 6 decimals."""
    parts: dict[str, np.ndarray] = {}
    for col in spec.modelled:
        values = table[col.name].reset_index(drop=True)
        if col.kind == "numeric":
            x = pd.to_numeric(values.where(~_is_missing(values)), errors="coerce")
            parts[col.name] = np.round(x.to_numpy(float), 6)
        else:
            parts[col.name] = encode_column(col, values, issues=[]).astype(np.int64)
    frame = pd.DataFrame(parts)
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()


def copy_share(spec: TableSpec, table: pd.DataFrame, real: pd.DataFrame) -> float:
    """The share of ``table``'s rows equal to some row of ``real`` over the modelled columns."""
    if not len(table):
        return 0.0
    return float(np.isin(_row_hashes(spec, table), _row_hashes(spec, real)).mean())


def check_not_copied(model: object, table: pd.DataFrame, real: pd.DataFrame, name: str,
                     rng: np.random.Generator | None = None) -> tuple[float, float]:
    """Refuse ``table`` when it repeats the real rows far more than the model does.

    The share of its rows equal to a real row is compared with that of a fresh sample of the
    same size from ``model`` (a :class:`fhirsynth.model.FittedModel`; post-processing);
    above ``max(COPY_FLOOR, COPY_FACTOR x baseline)`` it is an :class:`InputError` giving
    both shares (aggregates, for the custodian; never a row).  Returns the two shares.
    """
    from fhirsynth.export.harmonise import release_table
    from fhirsynth.sample import sample_model

    spec = model.spec  # type: ignore[attr-defined]
    share = copy_share(spec, table, real)
    if share <= COPY_FLOOR:
        return share, float("nan")
    rng = rng if rng is not None else np.random.default_rng()
    own, _ = sample_model(model, len(table), rng=rng)  # type: ignore[arg-type]
    own = release_table(model, own, rng)  # type: ignore[arg-type]
    baseline = copy_share(spec, own, real)
    if share > max(COPY_FLOOR, COPY_FACTOR * baseline):
        raise InputError(
            f"{name}: not a sample of this model: {share:.0%} of its rows are exact copies "
            f"of rows of --real, where a sample of the same size from the model itself "
            f"repeats {baseline:.0%} (refused above the larger of {COPY_FLOOR:.0%} and "
            f"{COPY_FACTOR:g} times the model's own share). `fhirsynth report` evaluates "
            f"the table a run sampled from the model, never the real data; {_HOW}")
    return share, baseline
