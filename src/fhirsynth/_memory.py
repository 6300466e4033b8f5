"""Refuse, before sampling, a number of synthetic rows whose table cannot fit in memory.

``fhirsynth sample -n N`` and ``run --rows N`` hold the whole synthetic table in memory
before writing it; a mistyped N (``-n 100000000000``) would otherwise grow until the kernel
kills the process (exit 137, no message), after minutes, on a server shared with others.
:func:`check_rows_fit` compares an estimate of the peak memory with the memory available
now and refuses with one message.  The estimate reads the public spec alone.

How the estimate was measured (pandas 3, pyarrow strings; ``docs/cli.md``): 20,000 sampled
rows of a model of the bundled feature spec (50 output columns) take 251.5 bytes per row in
``memory_usage(deep=True)`` (estimate: 280), and ``fhirsynth sample`` of it peaked at 1.07,
2.52 and 4.30 GB of resident memory for 1, 4 and 8 million rows (0.24 GB after start-up),
about 450 bytes per added row: 1.8 tables, as the sampled chunks and their concatenation,
or the table and the copy the release post-processing makes, are in memory together.  The
estimate for 8 million rows is 4.97 GB against 4.07 GB measured above start-up.  A
15-column model with a UUID key column and 28-character labels: 275 bytes per row
(estimate 285), peaks 0.92, 2.39 and 4.53 GB, about 535 bytes per added row; estimate
5.64 GB against 4.29 GB at 8 million.  So the estimate counts two copies of the table, the
transient Python strings of the fresh keys and the codes of one sampling chunk.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from fhirsynth.domain import Column, TableSpec
from fhirsynth.errors import ConfigError

__all__ = ["available_memory", "check_rows_fit", "max_rows", "output_columns", "row_bytes",
           "sample_bytes"]

#: rows sampled at a time (``fhirsynth.sample._CHUNK``)
CHUNK_ROWS = 1_000_000
#: bytes of a string value beside its characters: a 64-bit Arrow offset and a validity bit
_STRING_OVERHEAD = 9
#: a fresh UUIDv4 key: 36 characters in an Arrow string column
_KEY_BYTES = _STRING_OVERHEAD + 36
#: transient bytes per key value while the keys are made (16 random bytes, a Python str
#: of 36 ASCII characters, its pointer in a list)
_KEY_TRANSIENT = 16 + 85 + 8
#: bytes per row and sampled column of one chunk's codes and the temporaries of one column
#: (an int64 code per column, and about a dozen int64/float64 arrays while a column is drawn)
_CODE_BYTES = 8
_DRAW_BYTES = 12 * 8
#: copies of the table in memory together at the peak (the chunks and their concatenation,
#: or the table and its post-processed copy)
_COPIES = 2
#: extra bytes per row and output column of a run writing FHIR: each row becomes a dict of
#: Python objects, all at once, before its resources are built
#: (``fhirsynth.export.fhir.write_fhir``; measured: 53)
FHIR_ROW_BYTES = 100
#: extra bytes per row and output column of a run's evaluation and reports, which work on
#: the whole synthetic table (a 15-column CSV run of 1 and 4 million rows peaked at 3.63 and
#: 13.1 GB: about 170 beyond what sampling needs; estimate 3.9 and 14.9 GB)
RELEASE_ROW_BYTES = 200

_GB = 1e9


def _column_bytes(col: Column) -> int:
    """Bytes of one value of ``col`` in the sampled table (the dtypes ``sample`` gives)."""
    if col.role == "key":
        return _KEY_BYTES
    if col.kind == "boolean":
        return 2  # pandas "boolean": a value byte and a mask byte
    if col.kind == "categorical":
        labels = [*col.categories, *(["other"] if col.other else [])]
        longest = max((len(s.encode("utf-8")) for s in labels), default=0)
        return _STRING_OVERHEAD + longest  # every row counted with the longest label
    return 9  # numeric: float64, or Int64 (a value and a mask byte)


def output_columns(spec: TableSpec) -> list[Column]:
    """The columns of the sampled table: modelled, derived and key columns."""
    return [c for c in spec.columns if c.modelled or c.role in ("derived", "key")]


def row_bytes(columns: Iterable[Column]) -> int:
    """Bytes of one row of the sampled table with ``columns``, in memory (an upper estimate:
    category columns count their longest label)."""
    return sum(_column_bytes(c) for c in columns)


def _per_row(spec: TableSpec, fhir: bool, release: bool) -> tuple[int, int]:
    """Bytes per row of the table at the peak, and per row of one sampling chunk."""
    cols = output_columns(spec)
    per_row = _COPIES * row_bytes(cols)
    per_row += _KEY_TRANSIENT * sum(c.role == "key" for c in cols)
    if fhir:
        per_row += FHIR_ROW_BYTES * len(cols)
    if release:
        per_row += RELEASE_ROW_BYTES * len(cols)
    return per_row, _CODE_BYTES * sum(c.modelled for c in cols) + _DRAW_BYTES


def sample_bytes(spec: TableSpec, n: int, *, fhir: bool = False, release: bool = False) -> int:
    """Estimated peak memory, in bytes, of sampling and writing ``n`` rows under ``spec``.

    ``fhir``: the rows are also written as FHIR resources (``run`` on FHIR input);
    ``release``: a run also evaluates them and writes its reports.
    """
    per_row, per_code = _per_row(spec, fhir, release)
    return n * per_row + min(n, CHUNK_ROWS) * per_code


def max_rows(spec: TableSpec, available: int, *, fhir: bool = False,
             release: bool = False) -> int:
    """The most rows whose :func:`sample_bytes` is within ``available`` bytes."""
    per_row, per_code = _per_row(spec, fhir, release)
    small = available // (per_row + per_code)
    if small <= CHUNK_ROWS:
        return max(int(small), 0)
    return int((available - CHUNK_ROWS * per_code) // per_row)


def available_memory(meminfo: str | os.PathLike[str] = "/proc/meminfo") -> int | None:
    """Bytes of memory available to a new allocation now, or None when unknown.

    Linux: ``MemAvailable`` of ``/proc/meminfo`` (free memory plus the page cache that can be
    dropped); elsewhere the free physical pages (``os.sysconf``), which undercounts what
    the system could free.
    """
    try:
        with open(meminfo, encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    value, unit = line.split()[1:3]
                    return int(value) * (1024 if unit.lower() == "kb" else 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


def check_rows_fit(spec: TableSpec, n: int, available: int | None, *, option: str = "-n",
                   fhir: bool = False, release: bool = False, hint: str = "") -> None:
    """Refuse ``n`` rows whose estimated peak memory exceeds ``available`` bytes.

    ``available`` None (unknown) refuses nothing.  ``fhir`` and ``release`` as for
    :func:`sample_bytes`.  ``option`` names the row count in the message, ``hint`` ends it
    (what to do instead).

    Raises
    ------
    ConfigError
        The estimate (:func:`sample_bytes`) is above ``available``.
    """
    if available is None:
        return
    need = sample_bytes(spec, n, fhir=fhir, release=release)
    if need <= available:
        return
    hint = hint or ("sample fewer rows; several `fhirsynth sample` runs give more rows in "
                    "separate files (each draws fresh randomness)")
    fit = max_rows(spec, available, fhir=fhir, release=release)
    raise ConfigError(
        f"{option} {n} needs about {_gb(need)} of memory for the synthetic table"
        f"{' and the release built from it' if release else ''}, and "
        f"{_gb(available)} are available (at most about {fit:,} rows fit); {hint}")


def _gb(b: int | float) -> str:
    g = b / _GB
    return f"{g:,.0f} GB" if g >= 100 else f"{g:.3g} GB"
