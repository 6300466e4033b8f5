"""Safe Harbor post-processing of synthetic rows before export (free: no data is read).

The model samples ``age`` and ``birth_year`` as two columns, so a synthetic row may pair
an age with a birth year that disagrees with it, or carry a birth year that implies an age
over 89.  :func:`harmonise` makes each row consistent with the spec's Safe Harbor rules:
ages at or above the top code stay the top code ("90 or older"), and the birth year is
derived from the age at the reference date and suppressed where it would indicate an age
of 89 or more.  It acts on synthetic rows only, so it spends no privacy budget.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np
import pandas as pd

from fhirsynth.domain import TableSpec

__all__ = ["harmonise", "top_codes"]

#: a birth year is suppressed when it implies an age of at least this many years
SUPPRESS_AGE = 89


def _field_column(spec: TableSpec, field: str) -> str | None:
    for c in spec.columns:
        src = c.source or {}
        if src.get("from") == "patient" and src.get("field") == field:
            return c.name
    return None


def top_codes(spec: TableSpec) -> dict[str, float]:
    """Columns whose largest value stands for "that age or older" (Safe Harbor 90+).

    A FHIR age rule is top-coded (default 90); a schema column declares it with
    ``source: {top_code: 90}`` (its bounds then end at 90, and larger values are clipped).
    """
    out = {}
    for c in spec.columns:
        src = c.source or {}
        if src.get("from") == "patient" and src.get("field") == "age":
            out[c.name] = float(src.get("top_code", 90))
        elif "from" not in src and src.get("top_code") is not None:
            try:
                out[c.name] = float(src["top_code"])
            except (TypeError, ValueError):
                continue
    return out


def harmonise(spec: TableSpec, df: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """A copy of ``df`` whose age and birth-year columns follow Safe Harbor (see module)."""
    age_col = _field_column(spec, "age")
    year_col = _field_column(spec, "birth_year")
    if age_col is None or age_col not in df.columns:
        return df
    out = df.copy()
    top = top_codes(spec)[age_col]
    age = pd.to_numeric(out[age_col], errors="coerce")
    out[age_col] = age.where(age.isna() | (age < top), top).astype(out[age_col].dtype)
    if year_col is None:
        return out
    ref = spec.reference_date or spec.options.get("reference_date")
    ref_year = _dt.date.fromisoformat(str(ref)).year if ref else _dt.date.today().year
    a = age.to_numpy(float, na_value=np.nan)
    # born before the reference day in the reference year, or after it: one of two years
    year = ref_year - a - rng.integers(0, 2, size=len(a))
    year[np.isnan(a) | (a >= SUPPRESS_AGE)] = np.nan
    out[year_col] = pd.array(np.where(np.isnan(year), None, year), dtype="Int64")
    order = [c.name for c in spec.columns if c.name in out.columns]
    return out[order + [c for c in out.columns if c not in order]]
