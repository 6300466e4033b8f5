"""Safe Harbor post-processing of synthetic rows before export (free: no data is read).

The model samples ``age`` and ``birth_year`` as two columns, so a synthetic row may pair
an age with a birth year that disagrees with it, or carry a birth year that implies an age
over 89.  :func:`harmonise` makes each row consistent with the spec's Safe Harbor rules:
ages at or above the top code stay the top code ("90 or older"), and the birth year is
derived from the age at the reference date and suppressed where it would indicate an age
of 89 or more.  Where the age of a deceased patient is the age at death (the rule's ``at:
death_or_reference``), the birth year is left empty: it would need the year of death, which
the table does not hold.  It acts on synthetic rows only, so it spends no privacy budget.

The extraction rules that say which column is the age are kept in a saved model's spec only
by recent versions, so :func:`output_rules` also reduces them to the few facts harmonise
needs (column names, top code, reference year); the model saves them, and
:func:`release_table` turns a table sampled from a saved model alone into the table ``run``
writes (``synthetic/patients.*``).
"""

from __future__ import annotations

import calendar
import datetime as _dt
import uuid
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fhirsynth.domain import Column, TableSpec

if TYPE_CHECKING:
    from fhirsynth.model import FittedModel

__all__ = ["age_columns", "birth_year_columns", "harmonise", "output_rules", "release_table",
           "bottom_codes", "saved_birth_years", "top_codes", "with_fresh_keys"]

#: a birth year is suppressed when it implies an age of at least this many years
SUPPRESS_AGE = 89


def _field_column(spec: TableSpec, field: str) -> str | None:
    for c in spec.columns:
        src = c.source if isinstance(c.source, Mapping) else {}
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
        src = c.source if isinstance(c.source, Mapping) else {}
        if src.get("from") == "patient" and src.get("field") == "age":
            out[c.name] = float(src.get("top_code", 90))
        elif "from" not in src and src.get("top_code") is not None:
            try:
                out[c.name] = float(src["top_code"])
            except (TypeError, ValueError):
                continue
    return out


def bottom_codes(spec: TableSpec, rules: Mapping[str, Any] | None = None) -> dict[str, float]:
    """Birth-year columns whose smallest value stands for "that year or earlier".

    Safe Harbor holds a birth year (:func:`birth_year_columns`) to a lower bound of this
    year - 89 or later, and earlier birth years are clipped to it: the lower bound of a
    numeric birth-year column is a bottom code, as a top-coded age's top is a top code.
    """
    years = set(birth_year_columns(spec, rules))
    return {c.name: float(c.bounds[0]) for c in spec.columns
            if c.name in years and c.kind == "numeric" and c.bounds is not None}


def _year_like(col: Column) -> bool:
    """Whether a column can hold years: the year of a date, or numeric with a top of 1000+."""
    src = col.source if isinstance(col.source, dict) else {}
    return src.get("transform") == "year" or (
        col.kind == "numeric" and col.bounds is not None and col.bounds[1] >= 1000)


def birth_year_columns(spec: TableSpec, rules: Mapping[str, Any] | None = None) -> list[str]:
    """Columns the Safe Harbor rules hold to "no birth year implying an age over 89".

    A column named as a birth year (``birth_year``, ``birth_yr``, ``year_of_birth``, ``yob``,
    ``DOB_year``, ``PatientBirthYear``); the FHIR patient rule ``birth_year`` under any name;
    the ``year`` transform of a CSV column named as a birth date (``BIRTHDATE``,
    ``PatientBirthDate``, ``dob``, ``date_of_birth``, ``born``); a year
    column whose description says it is a birth date or year; and the columns a saved
    model's ``rules`` list under ``birth_years`` (its spec keeps no source rule).
    """
    from fhirsynth.evaluate.safe_harbor import is_birth_date_name, is_birth_year_name, says_birth

    listed = set((rules or {}).get("birth_years") or ())
    out = []
    for c in spec.columns:
        src = c.source if isinstance(c.source, dict) else {}
        if (c.name in listed or is_birth_year_name(c.name)
                or (src.get("from") == "patient" and src.get("field") == "birth_year")
                or (src.get("transform") == "year"
                    and is_birth_date_name(str(src.get("column", c.name))))
                or (_year_like(c) and says_birth(c.description))):
            out.append(c.name)
    return out


def age_columns(spec: TableSpec, rules: Mapping[str, Any] | None = None) -> list[str]:
    """Columns the Safe Harbor rules hold to "no age over 89" (or above the top code).

    A column named as an age (``age``, ``*_age``, ``age_years``, ``ageyrs``, ``age_at_*``,
    ``years_old``; camelCase too, ``PatientAge``: ``safe_harbor.is_age_name``) unless it is a
    birth year (:func:`birth_year_columns`), the FHIR patient rule ``age`` under any name,
    and the columns a saved model's ``rules`` list under ``ages``.
    """
    from fhirsynth.evaluate.safe_harbor import is_age_name

    listed = set((rules or {}).get("ages") or ())
    years = set(birth_year_columns(spec, rules))
    out = []
    for c in spec.columns:
        src = c.source if isinstance(c.source, dict) else {}
        if (c.name in listed or (src.get("from") == "patient" and src.get("field") == "age")
                or (is_age_name(c.name) and c.name not in years)):
            out.append(c.name)
    return out


def _years(col: Column) -> list[float] | None:
    """The range of years a column can hold (its bounds, or its categories when every one
    is a year), or None when it holds no years."""
    if col.kind == "numeric" and col.bounds is not None:
        lo, hi = col.bounds
        return [lo, hi] if 1000 <= lo <= hi <= 2999 else None
    if col.kind == "categorical" and col.categories:
        try:
            ys = [float(v) for v in col.categories]
        except ValueError:
            return None
        return [min(ys), max(ys)] if all(1000 <= y <= 2999 for y in ys) else None
    return None


def saved_birth_years(spec: TableSpec, rules: Mapping[str, Any] | None,
                      today: _dt.date | None = None) -> tuple[dict[str, Any], list[str]]:
    """A saved model's ``output`` rules with ``birth_years`` worked out where it lacks them.

    A ``model.json`` written before the model recorded ``output.birth_years`` keeps a spec
    without source rules, so the year of a birth date (``source: {column: BIRTHDATE,
    transform: year}``) is not told by it.  A modelled column named as a birth date that
    holds years is such a year (a date is modelled only through its year); another column of
    years that could hold one implying an age over 89 ``today`` cannot be told apart from,
    say, a year of admission.  Returns the rules (with ``birth_years`` set) and those columns
    (empty for a model that recorded the list).
    """
    from fhirsynth.evaluate.safe_harbor import is_birth_date_name

    if rules is not None and "birth_years" in rules:
        return dict(rules), []
    named = [c.name for c in spec.modelled
             if is_birth_date_name(c.name, strict=True) and _years(c)]
    out = {**(rules or {}), "birth_years": named}
    known = set(birth_year_columns(spec, out)) | set(age_columns(spec, out))
    # the scan's rule: a birth year before this one implies an age over 89
    oldest = (today or _dt.date.today()).year - 89
    unknown = []
    for c in spec.modelled:
        years = _years(c)
        if c.name not in known and years is not None and years[0] < oldest:
            unknown.append(c.name)
    return out, unknown


def _by_source(spec: TableSpec, names: list[str]) -> list[str]:
    """The columns of ``names`` that a saved spec (no source rules) would not find again."""
    from dataclasses import replace

    bare = replace(spec, columns=tuple(replace(c, source=None) for c in spec.columns))
    found = set(birth_year_columns(bare)) | set(age_columns(bare))
    return [n for n in names if n not in found]


def output_rules(spec: TableSpec) -> dict[str, Any]:
    """What :func:`harmonise` reads from the spec's source rules, as a JSON-ready mapping.

    ``age`` and ``birth_year`` name the columns of the FHIR patient fields (when the spec has
    them), ``top_code`` is the age's top code and ``reference_year`` the year birth years
    are counted back from (the spec's reference date, else the current year);
    ``top_codes`` maps every top-coded column to its top code (:func:`top_codes`);
    ``constraints`` holds the schema's row rules (:mod:`fhirsynth.constraints`).  All of it
    is public: it comes from the spec and the calendar, never from data.
    """
    rules: dict[str, Any] = {}
    if spec.options.get("constraints"):  # the schema's row rules, for every later sample
        rules["constraints"] = [str(r).strip() for r in spec.options["constraints"]]
    tops = top_codes(spec)
    if tops:  # every top-coded column (a CSV schema's too), for the output's Safe Harbor scan
        rules["top_codes"] = tops
    # ages and birth years that only the source rules tell (the saved spec keeps none)
    # (``birth_years`` is always written, empty or not: a model.json without it is older, see
    # :func:`saved_birth_years`)
    for key, found in (("ages", age_columns(spec)), ("birth_years", birth_year_columns(spec))):
        kept = _by_source(spec, found)
        if kept or key == "birth_years":
            rules[key] = kept
    age_col = _field_column(spec, "age")
    if age_col is None:
        return rules
    rules["age"] = age_col
    rules["top_code"] = top_codes(spec)[age_col]
    year_col = _field_column(spec, "birth_year")
    if year_col is not None:
        ref = spec.reference_date or spec.options.get("reference_date")
        day = _dt.date.fromisoformat(str(ref)) if ref else _dt.date.today()
        rules["birth_year"] = year_col
        rules["reference_year"] = day.year
        # the share of a year's birthdays on or before the reference day: a patient of age
        # a was born in reference_year - a with this probability, else a year earlier
        rules["birthday_passed"] = round(
            day.timetuple().tm_yday / (366 if calendar.isleap(day.year) else 365), 6)
        age_rule = next(c.source for c in spec.columns if c.name == age_col)
        dead_col = _field_column(spec, "deceased")
        if age_rule.get("at") == "death_or_reference" and dead_col is not None:
            # the age of a deceased patient is the age at death, in a year the table lacks
            rules["deceased"] = dead_col
    return rules


def harmonise(spec: TableSpec, df: pd.DataFrame, rng: np.random.Generator,
              rules: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """A copy of ``df`` whose age and birth-year columns follow Safe Harbor (see module).

    ``rules`` (default: :func:`output_rules` of ``spec``) names the columns; a saved model
    passes the rules it was fitted with, since its spec has no source rules.
    """
    rules = output_rules(spec) if rules is None else rules
    age_col = rules.get("age")
    year_col = rules.get("birth_year")
    if age_col is None or age_col not in df.columns:
        return df
    out = df.copy()
    top = float(rules["top_code"])
    age = pd.to_numeric(out[age_col], errors="coerce")
    out[age_col] = age.where(age.isna() | (age < top), top).astype(out[age_col].dtype)
    if year_col is None:
        return out
    ref_year = int(rules["reference_year"])
    a = age.to_numpy(float, na_value=np.nan)
    # born on or before the reference day of the year (probability birthday_passed; one half
    # for models saved without it), else a year earlier (trial 13: with a reference date of
    # 1 January, half the birth years were a year late)
    passed = float(rules.get("birthday_passed", 0.5))
    year = ref_year - a - (rng.random(len(a)) >= passed)
    year[np.isnan(a) | (a >= SUPPRESS_AGE)] = np.nan
    dead_col = rules.get("deceased")
    if dead_col is not None and dead_col in out.columns:
        # age at death: the birth year would need the year of death, which is not modelled
        dead = out[dead_col].astype("boolean").fillna(False).to_numpy(bool)
        year[dead] = np.nan
    out[year_col] = pd.array(np.where(np.isnan(year), None, year), dtype="Int64")
    order = [c.name for c in spec.columns if c.name in out.columns]
    return out[order + [c for c in out.columns if c not in order]]


def with_fresh_keys(spec: TableSpec, df: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """A copy of ``df`` with a fresh random UUIDv4 per row in each ``key`` column of the spec.

    Key columns are never modelled (case 021); the synthetic patients get new keys drawn
    from ``rng`` alone, so no input key can reappear.
    """
    keys = [c.name for c in spec.columns if c.role == "key"]
    if not keys:
        return df
    out = df.copy()
    for name in keys:
        raw = rng.integers(0, 256, size=(len(out), 16), dtype=np.uint8)
        out[name] = pd.array([str(uuid.UUID(bytes=bytes(r), version=4)) for r in raw],
                             dtype="string")
    order = [c.name for c in spec.columns if c.name in out.columns]
    return out[order + [c for c in out.columns if c not in order]]


def release_table(model: FittedModel, df: pd.DataFrame, rng: np.random.Generator, *,
                  key_rng: np.random.Generator | None = None) -> pd.DataFrame:
    """Rows sampled from ``model`` as ``run`` writes them to ``synthetic/patients.*``.

    :func:`harmonise` with the model's saved :func:`output_rules` (Safe Harbor top code,
    the derived birth year), then a fresh UUIDv4 in each ``key`` column (drawn from
    ``key_rng``, default ``rng``), in the spec's column order.  Reads the model alone: no
    value of the input.  A model saved before the rules were (no ``output`` entry) gets
    no derived columns, with a warning naming them.
    """
    spec = model.spec
    rules = model.output
    if rules is None:
        rules = output_rules(spec)
        lost = [c.name for c in spec.columns if c.role == "derived"
                and c.name not in rules.values()]
        if lost:
            warnings.warn(f"the model was saved by an older fhirsynth without the rules of "
                          f"its derived column(s) {', '.join(lost)}: they are left out "
                          "(a model fitted by this version keeps them)", UserWarning,
                          stacklevel=2)
    out = harmonise(spec, df, rng, rules)
    return with_fresh_keys(spec, out, key_rng if key_rng is not None else rng)
