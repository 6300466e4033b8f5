"""Clinical CSV -> patient table, typed and checked against a :class:`TableSpec`.

Owns reading a UTF-8 CSV (with or without BOM, RFC 4180 quoting) under a schema: parsing
each modelled column, missing tokens, Safe Harbor transforms of quasi-identifiers (ZIP3,
year of a date, state code), folding several rows of one patient id by a declared rule, and
refusing a schema that models a column that looks like a direct identifier.  Errors name the
file, line and column, never the value.  Only modelled columns reach the returned table.
"""

from __future__ import annotations

import csv
import difflib
import json
import logging
import math
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from fhirsynth.domain import Column, TableSpec
from fhirsynth.errors import Issue, SpecError, TableInputError
from fhirsynth.export.harmonise import bottom_codes
from fhirsynth.ingest.columns import (
    ColumnClass,
    check_header,
    classify_column,
    classify_columns,
    duplicate_names_error,
    shown_names,
    year_of,
    zip3,
)
from fhirsynth.ingest.geo import state_code
from fhirsynth.ingest.sources import shown_path, utf16_problem

__all__ = ["MAX_OTHER_SHARE", "MISSING_TOKENS", "WARN_SHARE", "CsvReport", "bounds_warning",
           "check_csv_bytes", "check_patient_table", "classify_columns", "column_treatments",
           "header_treatments", "no_key_note", "read_csv_table", "read_notes", "rows_repeated",
           "share_problems", "unfitting_values", "year_name_note"]

logger = logging.getLogger(__name__)

#: cell values read as missing (after stripping whitespace)
MISSING_TOKENS = frozenset({"", "N/A", "n/a", "NA", "NaN", "nan", "null", "NULL", "None", "?"})
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}
_TRANSFORMS = ("zip3", "year", "state")
Fold = Literal["reject", "first", "last"]
#: (line number, issue) of a row that cannot be used
_Bad = tuple[int, Issue]


@dataclass
class CsvReport:
    """What reading found.

    The row counts and issues are private.  ``columns`` (header name -> the class the
    name-based classifier proposes, or the schema's role; a name that looks like a value and
    that the schema does not declare is keyed ``column i``) and ``treatments`` (header name ->
    ``{"role", "treatment", "output"}``: what this read did with the column under the schema,
    and the output columns it feeds) hold column names and classes only, so they are public.
    """

    rows_read: int = 0
    rows_dropped: int = 0
    rows_folded: int = 0
    #: private: rows equal to an earlier row in every field of the file, counted when the
    #: file has an identifying field the model does not read (see ``rows_repeated``: a
    #: patient written twice spends the budget twice; the custodian is warned)
    rows_repeated: int = 0
    columns: dict[str, ColumnClass] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    treatments: dict[str, dict[str, Any]] = field(default_factory=dict)
    out_of_bounds: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Private: per numeric column with values outside its declared bounds, ``{"bounds":
    [lo, hi], "below": n, "above": n, "top_coded": n, "bottom_coded": n}`` over the rows kept
    (values above a declared top code count as ``top_coded``, not ``above``; values below a
    birth year's lower bound, its bottom code, as ``bottom_coded``).  Encoding clips them to the
    bounds; the counts are for the custodian (console, internal report) only."""
    mapped_to_other: dict[str, dict[str, int]] = field(default_factory=dict)
    """Private: per categorical column with ``other: true`` whose values are not all in its
    category list, ``{"mapped": n, "values": m}``: n of its m non-missing values (rows kept)
    became ``<other>``.  For the custodian only, as ``out_of_bounds``."""
    values: dict[str, int] = field(default_factory=dict)
    """Private: non-missing values per modelled column over the rows kept (the shares of
    :func:`share_problems`)."""


#: treatment of a key column the schema declares (``with_fresh_keys`` writes it)
REGENERATED = "regenerated (fresh UUIDv4 per synthetic patient)"
OMITTED_IDENTIFIER = "omitted (identifier)"
OMITTED_NOT_IN_SCHEMA = "omitted (not in the schema)"


def column_treatments(header: list[str], spec: TableSpec,
                      classes: dict[str, ColumnClass]) -> dict[str, dict[str, Any]]:
    """What a read under ``spec`` does with each header column (names and classes only).

    A column feeding a modelled spec column is ``modelled`` (or ``transformed (year)`` and so
    on when the schema declares a Safe Harbor transform), a declared ``key`` is
    ``regenerated``, and every other column is ``omitted``: ``(identifier)`` when the schema
    or the classifier calls it an identifier or key, else ``(not in the schema)`` or
    ``(declared by the schema)``.  ``output`` lists the output columns a column feeds.
    """
    uses: dict[str, list[tuple[str, str | None]]] = {}
    for col in spec.modelled:
        src, transform = _source_column(col)
        uses.setdefault(src, []).append((col.name, transform))
    keys = {_key_source(c): c for c in spec.columns if c.role == "key"}
    declared = {c.name: c for c in spec.columns if not c.modelled and c.role != "key"}
    out: dict[str, dict[str, Any]] = {}
    for h in header:
        cls = classes[h]
        if h in uses:
            texts = [(f"transformed ({t})" if t else "modelled")
                     + (f" as {name}" if name != h else "") for name, t in uses[h]]
            # a plain column takes the schema's role (the target is named as such)
            role = spec[uses[h][0][0]].role if cls.role == "feature" else cls.role
            out[h] = {"role": role, "treatment": "; ".join(texts),
                      "output": [name for name, _ in uses[h]]}
            continue
        if h in keys:
            name = keys[h].name
            out[h] = {"role": "key", "treatment": REGENERATED + (f" as {name}" if name != h
                                                                  else ""),
                      "output": [name]}
            continue
        col = declared.get(h)
        role = col.role if col is not None else cls.role
        if col is not None and col.role == "key":
            out[h] = {"role": role, "treatment": REGENERATED, "output": [h]}
        elif col is not None and col.role == "derived":
            out[h] = {"role": role, "treatment": "derived after sampling", "output": [h]}
        elif role in ("identifier", "key") or cls.role in ("identifier", "key"):
            out[h] = {"role": role, "treatment": OMITTED_IDENTIFIER, "output": []}
        else:
            out[h] = {"role": role, "treatment": OMITTED_NOT_IN_SCHEMA if col is None
                      else "omitted (declared by the schema)", "output": []}
    return out


def header_treatments(
    header: list[str], spec: TableSpec,
) -> tuple[dict[str, ColumnClass], dict[str, dict[str, Any]]]:
    """The class of each header column (the schema's role where it declares one) and what a
    read under ``spec`` does with it (:func:`column_treatments`); names only, no values.

    Both are keyed by the name as it may be shown (:func:`~fhirsynth.ingest.columns.
    shown_names`): a name that looks like a value and that the schema does not declare is
    ``column i``."""
    classes = classify_columns(header)
    for col in spec.columns:
        name = _key_source(col) if col.role == "key" else col.name
        if name in header and not col.modelled:
            classes[name] = ColumnClass(col.role, "omit", "declared by the schema")
    treatments = column_treatments(header, spec, classes)
    declared = {c.name for c in spec.columns} | {_key_source(c) for c in spec.columns
                                                 if c.role == "key"}
    shown = dict(zip(header, shown_names(header, declared), strict=True))
    return ({shown[h]: c for h, c in classes.items()},
            {shown[h]: t for h, t in treatments.items()})


def _source_column(col: Column) -> tuple[str, str | None]:
    src = col.source if isinstance(col.source, dict) else {}
    name = str(src.get("column", col.name))
    transform = src.get("transform")
    if transform is not None and transform not in _TRANSFORMS:
        raise SpecError(f"column {col.name!r}: transform ({transform!r}) must be one of "
                        f"{_TRANSFORMS}")
    return name, transform


def _key_source(col: Column) -> str:
    """The header column a ``key`` column reads: ``source: {column: MRN}``, else its name."""
    src = col.source if isinstance(col.source, dict) else {}
    return str(src.get("column", col.name))


def _check_roles(spec: TableSpec, allow: Collection[str]) -> None:
    """Refuse a modelled column that looks like an identifier or an untreated QI, and a key
    column whose ``source`` does more than name the header column it reads."""
    for col in spec.columns:
        src = col.source if isinstance(col.source, dict) else {}
        if col.role == "key" and set(src) - {"column"}:
            raise SpecError(f"column {col.name!r}: a key column's source takes only the header "
                            "column it reads (\"source\": {\"column\": ...}); its values are "
                            "checked for repeats and replaced by fresh UUIDs, never transformed")
    for col in spec.modelled:
        src, transform = _source_column(col)
        cls = classify_column(src)
        if col.name in allow or src in allow:
            continue
        if col.fhir_rule:
            # a FHIR feature rule: the extractor already applied Safe Harbor (state, years)
            continue
        if cls.role in ("identifier", "key"):
            raise SpecError(
                f"column {col.name!r} is modelled but its name looks like a {cls.reason}; "
                "mark it role: identifier/drop, or list it in allow_identifiers to override"
            )
        if cls.role == "quasi_identifier" and cls.treatment != (transform or "model"):
            if cls.treatment == "drop":
                raise SpecError(f"column {col.name!r} is modelled but holds {cls.reason}, "
                                "which Safe Harbor removes; drop it")
            raise SpecError(f"column {col.name!r} is modelled but holds a {cls.reason}; "
                            f"declare source: {{transform: {cls.treatment}}}")


#: bytes read at a time when scanning a CSV for NUL bytes
_SCAN_CHUNK = 1 << 20


def check_csv_bytes(path: Path, *, header_only: bool = False) -> None:
    """Refuse UTF-16 text and NUL bytes before a CSV is parsed as text.

    UTF-16 (with a byte-order mark or without one) is named as such, as for FHIR input; a
    NUL byte is never CSV text (a binary or corrupt file) and is named by its line.  With
    ``header_only`` only the first line is scanned for NULs.  Never a value.

    Raises
    ------
    TableInputError
        The file is UTF-16, or holds a NUL byte.
    """
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        raise TableInputError(f"{shown_path(path)}: file not found") from None
    except OSError as exc:
        raise TableInputError(f"{shown_path(path)}: cannot be read "
                              f"({exc.strerror or type(exc).__name__})") from None
    with fh:
        chunk = fh.read(_SCAN_CHUNK)
        why = utf16_problem(chunk[:4096])
        if why is not None:
            raise TableInputError(f"{shown_path(path)}: {why}")
        line = 1
        while chunk:
            nul = chunk.find(b"\x00")
            end = chunk.find(b"\n") if header_only else -1
            if nul >= 0 and (end < 0 or nul < end):
                line += chunk.count(b"\n", 0, nul)
                raise TableInputError(
                    f"{shown_path(path)}: line {line} holds a NUL byte, which CSV text never "
                    "does (a binary or corrupt file?); fix or remove that line")
            if header_only and end >= 0:
                return
            line += chunk.count(b"\n")
            chunk = fh.read(_SCAN_CHUNK)


def _read_rows(
    path: Path,
) -> tuple[list[str], list[list[str]], list[int], list[_Bad], _Bad | None]:
    """Header, rows with their first line numbers, rows with a wrong field count, and the
    malformed quoting that ended the read early (if any).

    Rows with the wrong number of fields are listed, not raised, so that the caller can
    report every bad row in file order; nothing after malformed quoting can be trusted.
    """
    check_csv_bytes(path)
    try:
        fh = path.open("r", encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise TableInputError(f"{shown_path(path)}: file not found") from None
    rows: list[list[str]] = []
    lines: list[int] = []
    bad: list[_Bad] = []
    broken: _Bad | None = None
    try:
        with fh:
            reader = csv.reader(fh, strict=True)
            try:
                header = [h.strip() for h in next(reader)]
            except StopIteration:
                raise TableInputError(
                    f"{shown_path(path)}: the file is empty (no header)") from None
            check_header(path, header)
            dupes = duplicate_names_error(path, header)
            if dupes is not None:
                raise dupes
            start = reader.line_num + 1
            try:
                for row in reader:
                    if row and len(row) != len(header):
                        problem = f"expected {len(header)} fields, found {len(row)}"
                        bad.append((start, Issue(where=f"{shown_path(path.name)} line {start}",
                                                 problem=problem)))
                    elif row:
                        rows.append(row)
                        lines.append(start)
                    start = reader.line_num + 1
            except csv.Error as exc:
                broken = (start, Issue(where=f"{shown_path(path.name)} line {start}",
                                       problem=f"malformed CSV ({exc})"))
    except UnicodeDecodeError as exc:
        raise TableInputError(f"{shown_path(path)}: not UTF-8 text (byte {exc.start})") from None
    except csv.Error as exc:
        raise TableInputError(f"{shown_path(path)}: line 1: malformed CSV ({exc})") from None
    return header, rows, lines, bad, broken


def _raise_first(p: Path, bad: list[_Bad]) -> None:
    """One :class:`TableInputError` listing every bad row, the first in file order first."""
    bad = sorted(bad, key=lambda b: b[0])  # stable: id, then cells in spec order
    first = bad[0][0]
    n_rows = len({line for line, _ in bad})
    raise TableInputError(
        f"{shown_path(p)}: {n_rows} row(s) do not fit the schema ({len(bad)} problem(s)); "
        "the first bad "
        f"row is line {first}", [issue for _, issue in bad])


def _parse(col: Column, raw: str, transform: str | None) -> tuple[Any, str | None]:
    """(value or None, problem or None) for one cell."""
    v = raw.strip()
    if v in MISSING_TOKENS:
        return None, None if col.nullable else "missing value in a non-nullable column"
    if transform == "zip3":
        z = zip3(v)
        return (z, None) if z is not None else (None, "not a US ZIP code")
    if transform == "year":
        y = year_of(v)
        return (y, None) if y is not None else (None, "not an ISO date")
    if transform == "state":
        s = state_code(v)
        return (s, None) if s is not None else (None, "not a US state name or code")
    if col.kind == "categorical":
        if col.categories and v not in col.categories and not col.other:
            return None, "value not in the declared category list"
        return v, None
    if col.kind == "boolean":
        low = v.lower()
        if low in _TRUE or low in _FALSE:
            return low in _TRUE, None
        return None, "not a boolean (true/false/yes/no/1/0)"
    if not _NUMBER.fullmatch(v):
        # float() also takes "1_0", "٨٢" and "８２", and "nan" / "inf"
        low = v.strip().lower().lstrip("+-")
        return None, ("not a finite number" if low in ("nan", "inf", "infinity")
                      else "not a number")
    x = float(v)
    if not math.isfinite(x):
        return None, "not a finite number"
    if col.integer:
        if not x.is_integer():
            return None, "not a whole number"
        return int(x), None
    return x, None


#: a decimal number in ASCII digits, as a CSV writes it (surrounding blanks allowed)
_NUMBER = re.compile(r"\s*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*")


def _has_top_code(col: Column) -> bool:
    """Whether the schema declares the column's top as "that value or more" (``top_code``)."""
    src = col.source if isinstance(col.source, dict) else {}
    return "from" not in src and src.get("top_code") is not None


def _safe_harbor_caps(spec: TableSpec) -> set[str]:
    """Age columns whose bounds end at or below 89 years (in the age's unit): Safe Harbor's
    own fix, "end the bounds at 89 (larger values are clipped into the top bin)", so their
    values above the bounds are clipped by design, not a sign of wrong bounds."""
    from fhirsynth.evaluate.safe_harbor import AGE_LIMITS, age_unit
    from fhirsynth.export.harmonise import age_columns

    out = set()
    ages = set(age_columns(spec))
    for col in spec.modelled:
        unit = "years" if col.name in ages else age_unit(col.name)
        if unit is not None and col.bounds is not None and col.bounds[1] <= AGE_LIMITS[unit][0]:
            out.add(col.name)
    return out


def _bounds_side(col: Column, value: Any, bottom: bool = False) -> str | None:
    """``below``, ``above``, ``top_coded`` or ``bottom_coded`` (``bottom``: the lower bound is
    a birth year's bottom code) for a parsed value outside ``col.bounds``."""
    if col.bounds is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    lo, hi = col.bounds
    if value < lo:
        return "bottom_coded" if bottom else "below"
    if value > hi:
        return "top_coded" if _has_top_code(col) else "above"
    return None


def unfitting_values(
    table: pd.DataFrame, spec: TableSpec, values: dict[str, int], untransformed: Collection[str],
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, Any]]]:
    """``(mapped_to_other, out_of_bounds)`` of a patient table (:class:`CsvReport`'s shapes):
    per categorical column with ``other: true`` (and no transform: ``untransformed`` lists the
    columns read as they are), how many of its ``values[name]`` non-missing values encoding
    maps to ``<other>``; per numeric column, its values outside the bounds
    (:func:`fhirsynth.ingest.coverage.out_of_bounds`: top- and bottom-coded apart; an age
    whose bounds end at 89 or below is marked ``safe_harbor_cap``).  Private counts, the input
    of :func:`share_problems`; the CSV reader and ``Synthesizer.fit`` share them."""
    from fhirsynth.encode import EncodeStats, encode_column
    from fhirsynth.ingest.coverage import out_of_bounds

    mapped: dict[str, dict[str, int]] = {}
    stats = EncodeStats()
    for col in spec.modelled:
        if (col.kind == "categorical" and col.other and col.name in untransformed
                and col.name in table.columns):
            encode_column(col, table[col.name], stats)  # the mapping the fit will apply
            if stats.other.get(col.name):
                mapped[col.name] = {"mapped": stats.other[col.name],
                                    "values": int(values.get(col.name, 0))}
    capped = _safe_harbor_caps(spec)
    modelled = {c.name for c in spec.modelled}
    outside = {name: {**c, **({"safe_harbor_cap": True} if name in capped else {})}
               for name, c in out_of_bounds(table, spec).items() if name in modelled}
    return mapped, outside


def _dtype(col: Column, transform: str | None) -> str:
    if transform == "year":
        return "Int64"
    if col.kind == "boolean":
        return "boolean"
    if col.kind == "categorical" or transform in ("zip3", "state"):
        return "string"
    return "Int64" if col.integer else "float64"


def rows_repeated(frame: pd.DataFrame, read: Collection[str]) -> int:
    """Rows equal to an earlier row in every column, counted only when ``frame`` has a column
    the model does not read (not in ``read``) whose values are nearly all distinct across the
    distinct rows (an id, a timestamp): such a repeat is a patient written twice.  Rows of
    modelled columns alone, or with constant extra columns, repeat naturally (few, coarse
    columns).  The CSV reader passes the file's cells, ``Synthesizer.fit`` its DataFrame."""
    repeat = frame.duplicated().to_numpy()
    n = int(repeat.sum())
    if not n:
        return 0
    distinct = frame[~repeat]
    extra = [c for c in frame.columns if c not in read]
    if not any(distinct[c].nunique(dropna=False) >= 0.9 * len(distinct) for c in extra):
        return 0
    return n


#: a CSV whose rows repeat an earlier row in every column more often than this share is
#: warned about (a patient written twice spends the budget twice)
REPEATED_ROWS_WARN = 0.01


def repeated_rows_warning(name: str, report: CsvReport) -> str | None:
    """The custodian's warning for a CSV whose rows often repeat an earlier row in every
    column (None below :data:`REPEATED_ROWS_WARN`): the guarantee holds per row, so a
    patient written twice spends twice the stated epsilon (a trial's table with every row
    twice claimed half the epsilon its patients spent)."""
    if report.rows_repeated <= REPEATED_ROWS_WARN * report.rows_read:
        return None
    return (f"{name}: {report.rows_repeated} of {report.rows_read} rows repeat an earlier row "
            "in every column; the guarantee holds per row, so a patient written twice spends "
            "twice the stated epsilon: remove the copies if they are the same patients, or "
            "declare the patient id column 'role: key' (a repeated id is then refused)")


def no_key_note(name: str, spec: TableSpec, columns: dict[str, ColumnClass]) -> str | None:
    """The custodian's note for a schema without a ``role: key`` column (None with one):
    every row is then taken as one patient, and a patient on two rows cannot be found.

    ``columns``: the header's classes (:attr:`CsvReport.columns`, shown names); a column
    that looks like a record number (``MRN``, ``patient_id``) is named in the fix.
    """
    from fhirsynth.evaluate.safe_harbor import name_kind

    if any(c.role == "key" for c in spec.columns):
        return None
    ids = [h for h, c in columns.items() if c.role == "key" or name_kind(h) == "mrn"]
    reads = json.dumps(ids[0]) if ids else '"<the id column>"'
    looks = f" ({ids[0]} looks like one)" if ids else ""
    return (f"{name}: the schema declares no key column, so every row is taken as one patient: "
            "a patient on two rows cannot be found, and would be counted (and spend epsilon) "
            f"twice; declare the patient id column{looks}: \"patient_id\": {{\"role\": "
            f"\"key\", \"source\": {{\"column\": {reads}}}}} (repeats are then refused, "
            "and the output holds fresh UUIDs)")


def year_name_note(spec: TableSpec) -> str | None:
    """The custodian's note for modelled columns that keep the year of a date under a name
    with "date" or "dob" in it and no "year" (``date_of_birth`` with ``"source":
    {"transform": "year"}``): the
    release would publish a column of that name holding years.  None when there is none.
    A note, not an error: the output is right, only its name misleads."""
    from fhirsynth.ingest.columns import year_column_advice

    # a name that also says year (``dob_year``) says what the column holds
    dated = [c.name for c in spec.modelled if _source_column(c)[1] == "year"
             and re.search(r"date|dob", c.name, re.IGNORECASE)
             and not re.search(r"year|yr", c.name, re.IGNORECASE)]
    if not dated:
        return None
    advice = (year_column_advice(dated[0]) if len(dated) == 1 else
              "; ".join(f"for {n!r}, {year_column_advice(n)}" for n in dated))
    what = (f"column {dated[0]!r} holds" if len(dated) == 1
            else f"columns {', '.join(repr(n) for n in dated)} hold")
    return (f"{what} years (\"transform\": \"year\") under a name that reads as a date, and "
            f"the release publishes it under that name; {advice} (docs/csv-input.md)")


def read_csv_table(
    path: str | Path,
    spec: TableSpec,
    *,
    strict: bool = True,
    id_column: str | None = None,
    fold: Fold | None = None,
    allow_identifiers: Collection[str] = (),
    bounds: Literal["clip", "fail"] = "clip",
    patient_ids: list[str] | None = None,
) -> tuple[pd.DataFrame, CsvReport]:
    """Read a clinical CSV under ``spec``; one row per patient, modelled columns only.

    Parameters
    ----------
    path : str or Path
        UTF-8 CSV (a BOM is accepted), header on the first line, RFC 4180 quoting.
    spec : TableSpec
        The schema: ``*.schema.json`` or YAML form.  A column's opaque ``source`` may name a
        different header column (``source: {column: ZIP, transform: zip3}``); transforms are
        ``zip3``, ``year`` and ``state``.
    strict : bool
        ``True``: a row that cannot be used (a cell that does not fit its column, the
        wrong number of fields, an empty patient id, malformed quoting) raises one
        :class:`TableInputError` naming the file and the first bad row in file order, and
        listing every problem in file order (line, column, kind of problem; never a value).
        ``False``: such rows are dropped and listed in the report in file order
        (malformed quoting still raises: nothing after it can be trusted).
    id_column : str, optional
        Header column holding the patient id; defaults to the spec's ``key`` column if any.
    fold : {"reject", "first", "last"}, optional
        What to do with several rows of one patient id: ``reject`` (default; an error),
        or keep the ``first`` / ``last`` row.  Defaults to the spec option ``fold``.
    allow_identifiers : collection of str
        Column names allowed to be modelled although their name looks like an identifier.
    bounds : {"clip", "fail"}
        A numeric value outside its column's declared bounds: ``clip`` (default) keeps it
        (encoding clips it to the bounds before any DP step) and counts it per column in
        ``report.out_of_bounds``; ``fail`` makes it a problem of its row like a cell that
        does not fit (raised with ``strict``, the row dropped without).  A value above the
        top of a column that declares ``source: {top_code: ...}`` is expected top-coding:
        always kept and counted as ``top_coded``.
    patient_ids : list, optional
        Receives the patient id of each kept row (the key column; nothing without one):
        internal, for the privacy ledger's patient digests.

    Returns
    -------
    (DataFrame, CsvReport)
        The table (columns: ``spec.modelled`` in order, typed) and the reading report.
    """
    p = Path(path)
    try:
        _check_roles(spec, set(allow_identifiers))
    except SpecError as exc:
        raise SpecError(f"{shown_path(p)}: {exc}") from None
    header, rows, lines, bad_rows, broken = _read_rows(p)
    if broken is not None and not strict:
        raise TableInputError(f"{shown_path(p)}: line {broken[0]}: {broken[1].problem}")
    report = CsvReport(rows_read=len(rows) + len(bad_rows))
    report.columns, report.treatments = header_treatments(header, spec)
    pos = {h: i for i, h in enumerate(header)}
    sources = {c.name: _source_column(c) for c in spec.modelled}
    report.rows_repeated = rows_repeated(pd.DataFrame(rows, columns=header, dtype=object),
                                         {src for src, _ in sources.values()})
    absent = sorted({s for s, _ in sources.values() if s not in pos})
    if absent:
        hint = ""
        if len(header) == 1:
            sep = next((d for d in (";", "\t", "|") if d in header[0]), None)
            if sep is not None:
                hint = (f" (the header is one column holding {sep!r}: the file looks "
                        f"{'tab' if sep == chr(9) else repr(sep)}-separated; fhirsynth reads "
                        "comma-separated CSV)")
        if not hint:
            # names that differ only by case or surrounding spaces
            shown = shown_names(header)
            folded = {h.strip().casefold(): s for h, s in zip(header, shown, strict=True)}
            near = [f"{folded[a.casefold()]!r} for {a!r}" for a in absent
                    if a.casefold() in folded]
            if near:
                hint = (f" (the header has {', '.join(near)}: column names must match the "
                        "schema exactly, including case)")
        if not hint:
            hint = _near_names(header, absent)
        if not hint and spec.has_fhir_rules:
            hint = (" (the schema is a FHIR feature spec: it reads the table `fhirsynth "
                    "ingest` writes; another CSV needs a schema of its own columns, "
                    "docs/csv-input.md, which `fhirsynth columns FILE.csv --write-schema` "
                    "starts)")
        raise TableInputError(f"{shown_path(p)}: the header lacks schema column(s) {absent}{hint}")
    key_col = next((c for c in spec.columns if c.role == "key"), None)
    key = id_column or (None if key_col is None else _key_source(key_col))
    key_pos = None if key is None else _key_pos(p, pos, key, id_column is None and key_col
                                                is not None and key_col.name != key
                                                and key_col.name)

    if bounds not in ("clip", "fail"):
        raise ValueError(f"bounds ({bounds!r}) must be 'clip' or 'fail'")
    values: dict[str, list[Any]] = {name: [] for name in sources}
    keep: list[int] = []
    bottoms = bottom_codes(spec)  # a birth year's lower bound: earlier years clip to it
    for r, row in enumerate(rows):
        parsed: dict[str, Any] = {}
        where = f"{shown_path(p.name)} line {lines[r]}"
        n_bad = len(bad_rows)
        if key_pos is not None and not row[key_pos].strip():
            bad_rows.append((lines[r], Issue(where=where, field=str(key),
                                             problem="empty patient id")))
        for name, (src, transform) in sources.items():
            value, problem = _parse(spec[name], row[pos[src]], transform)
            side = (None if problem is not None
                    else _bounds_side(spec[name], value, name in bottoms))
            if side in ("below", "above") and bounds == "fail":
                lo, hi = spec[name].bounds  # type: ignore[misc]
                problem = f"value {side} the schema's bounds [{lo:g}, {hi:g}]"
            if problem is not None:
                bad_rows.append((lines[r], Issue(where=where, field=src, problem=problem)))
            parsed[name] = value
        if len(bad_rows) > n_bad:
            continue
        keep.append(r)
        for name, value in parsed.items():
            values[name].append(value)
    if strict and (bad_rows or broken is not None):
        _raise_first(p, bad_rows + ([broken] if broken is not None else []))
    bad_rows.sort(key=lambda b: b[0])  # file order (stable: id, then cells)
    report.issues = [issue for _, issue in bad_rows]
    report.rows_dropped = report.rows_read - len(keep)
    report.values = {name: sum(v is not None for v in vs) for name, vs in values.items()}

    frame = {}
    for name, (_src, transform) in sources.items():
        dtype = _dtype(spec[name], transform)
        missing = float("nan") if dtype == "float64" else pd.NA
        frame[name] = pd.Series([missing if v is None else v for v in values[name]],
                                dtype=dtype, name=name)
    table = pd.DataFrame(frame, columns=list(sources))
    # over the rows kept, before any fold (as the values): what the schema does not describe
    report.mapped_to_other, report.out_of_bounds = unfitting_values(
        table, spec, report.values, [n for n, (_, t) in sources.items() if t is None])
    if key_pos is not None and patient_ids is not None:
        patient_ids.extend(rows[r][key_pos].strip() for r in keep)  # a folded id: one patient
    if key_pos is not None:
        table = _fold(shown_path(p), table, [rows[r][key_pos] for r in keep],
                      [lines[r] for r in keep], fold or spec.options.get("fold", "reject"),
                      report)
    logger.info("read %d rows into %d patient rows, %d modelled columns", len(rows),
                len(table), table.shape[1])
    return table.reset_index(drop=True), report


def _near_names(header: list[str], absent: list[str]) -> str:
    """`` (did you mean 'smoking_status'?)`` for absent schema columns with a close header
    name (difflib, as the schema's unknown-key message), or ``""``.  A header name that looks
    like a value is never quoted (:func:`~fhirsynth.ingest.columns.shown_names`)."""
    names = [h for h, s in zip(header, shown_names(header), strict=True) if h == s]
    near = [(a, m[0]) for a in absent if (m := difflib.get_close_matches(a, names, n=1))]
    if not near:
        return ""
    if len(absent) == 1:
        return f" (did you mean {near[0][1]!r}?)"
    return f" (did you mean {', '.join(f'{m!r} for {a!r}' for a, m in near)}?)"


def _key_pos(p: Path, pos: dict[str, int], key: str, name: str | Literal[False]) -> int:
    """The place of the patient id column ``key``; ``name``: the schema's key column that
    reads it (``source: {column: key}``), if named otherwise."""
    if key not in pos:
        reads = f" that the key column {name!r} reads (its source)" if name else ""
        raise TableInputError(f"{shown_path(p)}: the header lacks the patient id column "
                              f"{key!r}{reads}")
    return pos[key]


def _fold(where: str, table: pd.DataFrame, ids: list[str], places: list[int], fold: str,
          report: CsvReport, *, unit: str = "line") -> pd.DataFrame:
    """``table`` with one row per patient id: several rows of one id are refused (``fold``
    reject) or folded (``first`` / ``last``).  ``places``: each row's line (``unit``
    "line", a CSV) or position (``unit`` "position", a DataFrame given to
    ``Synthesizer.fit``), to name the first repeat; never an id."""
    if fold not in ("reject", "first", "last"):
        raise SpecError(f"{where}: fold ({fold!r}) must be 'reject', 'first' or 'last'")
    ids_s = pd.Series([i.strip() for i in ids])  # never empty: such rows are bad rows
    dup = ids_s.duplicated(keep=False).to_numpy()
    if not dup.any():
        return table
    if fold == "reject":
        first = places[int(ids_s.duplicated().to_numpy().argmax())]
        n_ids = int(ids_s[dup].nunique())
        raise TableInputError(
            f"{where}: {n_ids} patient id(s) appear on more than one row (first "
            f"repeat at {unit} {first}); one patient must be one row: declare fold: first or "
            "fold: last, or aggregate the rows before "
            + ("reading" if unit == "line" else "the fit")
        )
    keep = ~ids_s.duplicated(keep="first" if fold == "first" else "last").to_numpy()
    report.rows_folded = int((~keep).sum())
    return table[keep]


def read_notes(name: str, spec: TableSpec, report: CsvReport, *, strict: bool = False,
               strict_option: bool = True) -> tuple[list[str], list[str]]:
    """(refusals, warnings) of a CSV read for the custodian, as ``run``, ``ingest`` and
    ``fit`` give them: columns the schema mostly does not describe (:func:`share_problems`,
    ``strict`` as there) refused, and the values clipped to the bounds
    (:func:`bounds_warning`, ``strict_option``: whether to mention ``--strict``), rows
    repeated and a schema without a key column warned about, then the smaller shares of
    :func:`share_problems`."""
    refusals, mostly = share_problems(name, report, strict=strict)
    notes = (bounds_warning(name, report.out_of_bounds, strict_option=strict_option),
             repeated_rows_warning(name, report), no_key_note(name, spec, report.columns))
    return refusals, [n for n in notes if n] + mostly


def check_patient_table(table: pd.DataFrame, spec: TableSpec, *,
                        name: str = "the table") -> tuple[pd.DataFrame, list[str]]:
    """The CSV reader's checks of a patient table, for a DataFrame given to ``Synthesizer.fit``.

    Its ``role: key`` column (under the key's name or the header column it reads), when the
    table holds it: a missing id is refused, and ids on several rows are refused or folded as
    the spec's ``fold`` says (default reject, :class:`TableInputError`).  Without it, rows that
    repeat an earlier row in every column (:func:`rows_repeated`) are warned about above
    :data:`REPEATED_ROWS_WARN`.  Values the schema mostly does not describe are refused or
    warned about (:func:`share_problems`), and values clipped to the bounds warned about
    (:func:`bounds_warning`).  Returns the table (folded if the spec says so) and the
    warnings: counts, shares and column names, never a value or an id.
    """
    report = CsvReport(rows_read=len(table))
    key_col = next((c for c in spec.columns if c.role == "key"), None)
    key = None if key_col is None else next(
        (k for k in (key_col.name, _key_source(key_col)) if k in table.columns), None)
    notes: list[str] = []
    if key is not None:
        ids = table[key]
        empty = ids.isna().to_numpy() | (ids.astype("string").str.strip() == "").to_numpy(
            dtype=bool, na_value=True)
        if empty.any():
            raise TableInputError(
                f"{name}: {int(empty.sum())} row(s) have no patient id in the key column "
                f"{key!r} (first at position {int(empty.argmax())}); every row needs one")
        from fhirsynth.domain import _category_str

        table = _fold(name, table, [_category_str(v) for v in ids], list(range(len(table))),
                      spec.options.get("fold", "reject"), report, unit="position")
    else:
        report.rows_repeated = rows_repeated(table, {c.name for c in spec.modelled})
        notes += [n for n in (repeated_rows_warning(name, report),) if n]
    modelled = [c.name for c in spec.modelled if c.name in table.columns]
    values = {n: int(table[n].notna().sum()) for n in modelled}
    report.values = values
    report.mapped_to_other, report.out_of_bounds = unfitting_values(table, spec, values,
                                                                    modelled)
    refusals, mostly = share_problems(name, report)
    if refusals:
        raise TableInputError("; ".join(refusals))
    clipped = bounds_warning(name, report.out_of_bounds, strict_option=False)
    return table, notes + ([clipped] if clipped else []) + mostly


#: a column with more than this share of its values mapped to ``other`` is warned about
#: (refused with ``--strict``); a numeric column with more than this share of its values
#: outside its bounds (not top-coded) is refused: the schema is probably wrong
WARN_SHARE = 0.05
#: a column with more than this share of its values mapped to ``other`` is refused
MAX_OTHER_SHARE = 0.5


def _pct(share: float) -> str:
    return f"{share:.0%}" if share >= 0.095 else f"{share:.1%}"


def share_problems(name: str, report: CsvReport, *,
                   strict: bool = False) -> tuple[list[str], list[str]]:
    """(refusals, warnings) for columns whose values the schema mostly does not describe.

    A categorical column with ``other: true`` that maps more than :data:`WARN_SHARE` of its
    values to ``other`` is warned about, and refused above :data:`MAX_OTHER_SHARE` (above
    :data:`WARN_SHARE` with ``strict``); a numeric column with more than :data:`WARN_SHARE`
    of its values outside its bounds (top- and bottom-coded values aside: clipping them is
    what the code means) is refused.  Counts, shares and column names only, for the
    custodian's console.
    """
    refusals: list[str] = []
    warnings: list[str] = []
    for col, c in report.mapped_to_other.items():
        n, m = int(c["mapped"]), int(c["values"])
        share = n / max(m, 1)
        if share <= WARN_SHARE:
            continue
        said = (f"{name}: column {col!r}: {n:,} of {m:,} values ({_pct(share)}) are not in its "
                "category list")
        cause = ("the list probably does not match the data (letter case, code length such as "
                 "3-character codes where the data holds longer ones, or another coding)")
        if share > MAX_OTHER_SHARE or strict:
            limit = (f"more than {MAX_OTHER_SHARE:.0%}" if share > MAX_OTHER_SHARE
                     else f"with --strict, more than {WARN_SHARE:.0%}")
            refusals.append(f"{said}, and 'other: true' would map them all to one 'other' "
                            f"category ({limit} is refused); {cause}: fix the category list "
                            "or the data, or remove 'other: true' to have the rows that do not "
                            "fit named by line")
        else:
            warnings.append(f"{said} and were mapped to 'other' (more than "
                            f"{WARN_SHARE:.0%}); if that is unexpected, {cause}")
    for col, c in report.out_of_bounds.items():
        # an age bounded at 89 clips larger ages into its top bin, as Safe Harbor asks
        n = int(c.get("below", 0)) + (0 if c.get("safe_harbor_cap") else int(c.get("above", 0)))
        m = int(report.values.get(col, 0))
        share = n / max(m, 1)
        if share <= WARN_SHARE:
            continue
        lo, hi = c["bounds"]
        top = (", or, if larger values are meant to be clipped to the top, declare it a top "
               f"code (\"source\": {{\"top_code\": {hi:g}}})" if c.get("above") else "")
        refusals.append(
            f"{name}: column {col!r}: {n:,} of {m:,} values ({_pct(share)}) are outside the "
            f"schema's bounds [{lo:g}, {hi:g}] ({int(c.get('below', 0)):,} below, "
            f"{int(c.get('above', 0)):,} above); the bounds are probably wrong: widen them to "
            f"the column's range{top}; up to {WARN_SHARE:.0%} are clipped with a warning")
    return refusals, warnings


def bounds_warning(name: str, out_of_bounds: dict[str, dict[str, Any]], *,
                   strict_option: bool = True) -> str | None:
    """One line for the custodian on values clipped to the schema's bounds, or ``None``.

    Counts, column names and the schema's public bounds only; top-coded values (expected)
    are not mentioned.  ``strict_option``: the command has a ``--strict`` to point to.
    """
    parts = []
    total = 0
    for col, c in out_of_bounds.items():
        lo, hi = c["bounds"]
        sides = [f"{c[k]:,} {k}" for k in ("below", "above") if c.get(k)]
        if sides:
            total += int(c.get("below", 0)) + int(c.get("above", 0))
            parts.append(f"{col} {' and '.join(sides)} [{lo:g}, {hi:g}]")
    if not parts:
        return None
    strict = ", or rerun with --strict to fail on them instead" if strict_option else ""
    return (f"{name}: {total:,} value(s) outside the schema's bounds, clipped to them before "
            f"any DP step ({'; '.join(parts)}); fix the input or the bounds if that is "
            "unexpected" + strict)
