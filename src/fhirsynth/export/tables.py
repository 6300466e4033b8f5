"""Synthetic tables to CSV or Parquet, written atomically.

A table is written to a temporary file in the destination directory and moved into place
with :func:`os.replace` only when complete, so a reader never sees a half-written file.
CSV output is UTF-8 with RFC 4180 quoting (CRLF records; fields with a comma, quote or line
break are quoted and quotes doubled), so embedded newlines and quotes round-trip.
"""

from __future__ import annotations

import contextlib
import csv
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Literal

import numpy as np
import pandas as pd

from fhirsynth._atomic import atomic_path
from fhirsynth.errors import ConfigError

__all__ = ["atomic_path", "with_fresh_ids", "write_table"]

Format = Literal["csv", "parquet"]


@contextlib.contextmanager
def _fsync_write(tmp: Path, write: Callable[[IO[str]], None]) -> None:
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())


def write_table(df: pd.DataFrame, path: str | Path, format: Format | None = "csv", *,
                private: bool = False) -> Path:
    """Write ``df`` to ``path`` atomically and return the path.

    Parameters
    ----------
    df : DataFrame
        The table; its index is not written.
    path : str or Path
        Destination file.
    format : {"csv", "parquet"}, optional
        Output format; ``None`` picks it from the suffix (``.parquet`` / ``.pq`` -> parquet).
    private : bool, default False
        Real patient data (the table ``fhirsynth ingest`` writes): the file is mode 0600
        whatever the umask, as a release's ``internal/`` folder is 0700.

    Raises
    ------
    ConfigError
        An unknown format, or a destination that cannot be written (named, with the reason).
    """
    dest = Path(path)
    if format is None:
        format = "parquet" if dest.suffix.lower() in (".parquet", ".pq") else "csv"
    if format not in ("csv", "parquet"):
        raise ConfigError(f"format ({format!r}) must be 'csv' or 'parquet'")
    try:
        with atomic_path(dest, private=private) as tmp:
            if format == "csv":
                _fsync_write(tmp, lambda fh: df.to_csv(fh, index=False,
                                                       quoting=csv.QUOTE_MINIMAL,
                                                       lineterminator="\r\n"))
            else:
                df.to_parquet(tmp, engine="pyarrow", index=False)
    except OSError as exc:
        raise ConfigError(f"{dest}: cannot write the table "
                          f"({exc.strerror or type(exc).__name__})") from None
    return dest


def with_fresh_ids(df: pd.DataFrame, column: str = "id",
                   rng_or_seed: np.random.Generator | int | None = None) -> pd.DataFrame:
    """A copy of ``df`` with a first column of fresh UUIDv4 keys (for ``role: key`` columns).

    The keys are random (OS entropy unless a seed or generator is given) and carry nothing
    from the input: a synthetic row is no one's record.
    """
    rng = rng_or_seed if isinstance(rng_or_seed, np.random.Generator) else (
        np.random.default_rng(rng_or_seed))
    ids = [str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(len(df))]
    out = df.drop(columns=[column], errors="ignore")
    out.insert(0, column, pd.Series(ids, dtype="string", index=out.index))
    return out
