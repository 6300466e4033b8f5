"""Schema skeletons: a ``*.schema.json`` for the user to fill in, built from column names only.

Owns reading a CSV header and turning its column names into a skeleton that
:func:`fhirsynth.domain.load_spec` refuses until every column has been decided.  Nothing but
the header is read: no value, range, category list, count or frequency of the data reaches
the skeleton, which is meant to become a public file.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from fhirsynth._atomic import write_bytes_atomic
from fhirsynth.domain import PLACEHOLDER_KEY
from fhirsynth.errors import ConfigError, TableInputError
from fhirsynth.ingest.columns import (
    AGE_REASON,
    BIRTH_DATE_REASON,
    BIRTH_YEAR_REASON,
    UNIT_AGE_REASONS,
    ColumnClass,
    check_header,
    classify_column,
    duplicate_names_error,
    value_like_names,
    year_column_advice,
)
from fhirsynth.ingest.csv import check_csv_bytes
from fhirsynth.ingest.sources import shown_path

__all__ = ["read_csv_header", "skeleton_schema", "write_skeleton"]

#: the same instruction for every column: it depends on nothing but the file format
FILL_IN = (
    "Decide this column, then delete this 'fill_in' entry. Categorical: list every allowed "
    "value in 'domain'. Numeric: set 'type' to 'numeric', public clinical 'bounds' [low, high] "
    "and 'integer'. Not modelled: set 'role' to 'identifier' or 'drop' (preset where the name "
    "reads as an identifier, key or fine geography: check it). Set 'nullable' to "
    "false if a value is always present. Take domains and bounds from clinical references "
    "or code systems, never from the data itself."
)
_ADVICE = {
    "identifier": "set 'role' to 'identifier' (never modelled)",
    "key": "set 'role' to 'key' (a fresh random id per synthetic patient)",
    "drop": "set 'role' to 'drop' (Safe Harbor removes it)",
}


def read_csv_header(path: str | Path) -> list[str]:
    """The column names on the first line of a UTF-8 CSV, stripped, as the CSV reader sees them.

    Raises
    ------
    TableInputError
        The file cannot be read, is empty, its first line looks like a data row
        (:func:`~fhirsynth.ingest.columns.check_header`), or its header has an empty or a
        repeated name.  No message quotes a name that looks like a value.
    """
    p = Path(path)
    check_csv_bytes(p, header_only=True)
    try:
        with p.open(encoding="utf-8-sig", newline="") as fh:
            first = next(csv.reader(fh, strict=True), None)
    except FileNotFoundError:
        raise TableInputError(f"{shown_path(p)}: file not found") from None
    except UnicodeDecodeError as exc:
        raise TableInputError(f"{shown_path(p)}: not UTF-8 text (byte {exc.start})") from None
    except (OSError, csv.Error) as exc:
        raise TableInputError(f"{shown_path(p)}: cannot read the header "
                              f"({type(exc).__name__})") from None
    if not first:
        raise TableInputError(f"{shown_path(p)}: the file is empty (no header)")
    header = [h.strip() for h in first]
    check_header(p, header)
    for i, name in enumerate(header, start=1):
        if not name:
            raise TableInputError(f"{shown_path(p)}: header field {i} is empty (every column "
                                  "needs a name)")
    dupes = duplicate_names_error(p, header)
    if dupes is not None:
        raise dupes
    return header


def _suggestion(name: str, cls: ColumnClass, *, today: date | None = None) -> str:
    if cls.reason == BIRTH_DATE_REASON:
        year = (today or date.today()).year
        return (f"{cls.reason}; if you model it, {year_column_advice(name)}, "
                f"\"type\": \"numeric\", \"integer\": true and \"bounds\": [{year - 89}, "
                f"{year}] (earlier birth years are clipped to {year - 89}; a lower bound before "
                f"{year - 89} makes `run` refuse the schema)")
    if cls.reason == BIRTH_YEAR_REASON:
        year = (today or date.today()).year
        return (f"{cls.reason}; if you model it, set \"type\": \"numeric\", \"integer\": true "
                f"and \"bounds\": [{year - 89}, {year}] (earlier birth years are clipped to "
                f"{year - 89})")
    if cls.reason == AGE_REASON or cls.reason in UNIT_AGE_REASONS.values():
        return f"{cls.reason}; if you model it, set \"type\": \"numeric\" as well"
    if cls.role == "quasi_identifier" and cls.treatment == "year":
        return (f"{cls.reason}; if you model it, {year_column_advice(name)}, and declare the "
                "domain of the year")
    if cls.role == "quasi_identifier" and cls.treatment != "drop":
        return (f"{cls.reason}; if you model it, add \"source\": {{\"transform\": "
                f"\"{cls.treatment}\"}} and declare the domain of the transformed value")
    if cls.role == "feature":
        return "a feature (no identifier pattern in the name): declare its public domain"
    action = _ADVICE[_default_role(cls)]
    return f"{cls.reason}: {action}"


def _default_role(cls: ColumnClass) -> str:
    """The skeleton's preset role: ``identifier``, ``key`` or ``drop`` where the name classes
    as one (the safe default, :data:`_ADVICE`), else ``feature`` (a ZIP, a state or a date is
    modelled through its transform)."""
    if cls.role in ("identifier", "key"):
        return cls.role
    return "drop" if cls.role == "quasi_identifier" and cls.treatment == "drop" else "feature"


def skeleton_schema(columns: Sequence[str], *, name: str) -> dict[str, Any]:
    """A schema skeleton: one undecided placeholder entry per column name.

    Parameters
    ----------
    columns : sequence of str
        Column names (a CSV header); nothing else about the data is used.
    name : str
        Name of the schema (not taken from the data).

    Returns
    -------
    dict
        The ``*.schema.json`` form, every column ``categorical`` with an empty ``domain``, a
        ``fill_in`` instruction and a ``name_suggests`` hint from the column name alone; its
        ``role`` is preset to ``identifier``, ``key`` or ``drop`` where the name classes as
        one (:func:`~fhirsynth.ingest.columns.classify_column`), else ``feature``.
        :func:`fhirsynth.domain.load_spec` refuses it until each column is filled in.
    """
    entries: dict[str, Any] = {}
    for col in columns:
        cls = classify_column(col)
        entries[col] = {
            PLACEHOLDER_KEY: FILL_IN,
            "name_suggests": _suggestion(col, cls),
            "type": "categorical",
            "domain": [],
            "nullable": True,
            "role": _default_role(cls),
        }
    return {
        "name": name,
        "note": "Skeleton written from the column names only. Fill in every column (see its "
                "'fill_in'); set 'target' to the outcome column if there is one.",
        "target": None,
        "columns": entries,
    }


def write_skeleton(path: str | Path, columns: Sequence[str], *,
                   overwrite: bool = False) -> Path:
    """Write :func:`skeleton_schema` of ``columns`` to ``path`` (``.json``), atomically.

    Raises
    ------
    ConfigError
        ``path`` does not end in ``.json``, already exists without ``overwrite``, is a
        directory, or cannot be written; or a column name looks like a data value (a CSV
        without a header line), which would put patient data into the skeleton.
    """
    p = Path(path)
    if p.suffix.lower() != ".json":
        raise ConfigError(f"{p}: a schema skeleton is JSON; name it *.schema.json")
    try:
        is_dir, exists = p.is_dir(), p.exists()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot write the schema skeleton ({exc.strerror})") from None
    if is_dir:
        raise ConfigError(f"{p}: is a directory; give a file name such as data.schema.json")
    if exists and not overwrite:
        raise ConfigError(f"{p}: already exists (use --overwrite to replace it)")
    for i, value_like in enumerate(value_like_names(columns), start=1):
        if value_like:
            raise ConfigError(f"header field {i} looks like a data value (a number, date, "
                              "e-mail address or phone number), not a column name: does the "
                              "file lack a header line? No skeleton written")
    stem = p.name[: -len(".schema.json")] if p.name.endswith(".schema.json") else p.stem
    blob = json.dumps(skeleton_schema(columns, name=stem or "schema"), indent=1) + "\n"
    try:
        write_bytes_atomic(p, blob.encode("utf-8"))
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"{p}: cannot write the schema skeleton ({reason})") from None
    return p
