"""What the privacy ledger keeps of an input's patients: keyed digests, never a value.

A release is charged to the source its *patients* belong to, not to the file they came in.
:func:`digest_patients` reads the patient table as the spec parsed it (the modelled columns
only, values after parsing: ``82`` and ``82.0`` agree, an undeclared or dropped column is not
seen) and returns, keyed with the ledger's secret (blake2b, 8 bytes a digest):

- ``content``: the modelled rows as an order-free multiset.  The same patients in any
  formatting, with any extra or dropped column, give the same content key.
- ``sets``: per-patient digests by kind, for the overlap rule (:func:`overlap_matches`):
  ``id`` (FHIR ``Patient.id`` or a CSV ``role: key`` column) and ``rows:<column set>`` (the
  modelled row of each patient, kept only when rows identify patients: at least
  :data:`MIN_UNIQUE_SHARE` of them occur once in the table).

The ledger stores these digests and its secret, never a path, a name or a value.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = [
    "MIN_COMMON",
    "MIN_UNIQUE_SHARE",
    "OVERLAP_THRESHOLD",
    "PatientDigests",
    "digest_patients",
    "overlap_matches",
]

#: a row digest set is kept only when at least this share of the rows occur once in their
#: table (Good-Turing: a patient of ANOTHER cohort then has a row already seen with
#: probability about 1 - share, at most 0.1)
MIN_UNIQUE_SHARE = 0.9
#: an input is a source's when this share of the smaller digest set is in the other one
OVERLAP_THRESHOLD = 0.5
#: and at least this many patients are in both (a few common patients decide nothing)
MIN_COMMON = 10

_MISSING = np.uint64(0x7FF8_DEAD_BEEF_0001)  # one code for a missing cell, any column


@dataclass(frozen=True)
class PatientDigests:
    """The keyed digests of one input's patients (see the module docstring)."""

    content: str
    sets: Mapping[str, np.ndarray] = field(default_factory=dict)
    rows: int = 0


def _keyed(secret: bytes, person: bytes, items: Iterable[bytes]) -> np.ndarray:
    """One 8-byte keyed blake2b digest per item, as uint64."""
    h = hashlib.blake2b
    out = b"".join([h(b, key=secret, person=person, digest_size=8).digest() for b in items])
    return np.frombuffer(out, dtype="<u8").astype(np.uint64)


def _unique(sorted_: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of a sorted array and how often each occurs (one pass, no sort)."""
    if not sorted_.size:
        return sorted_, np.zeros(0, dtype=np.int64)
    first = np.flatnonzero(np.r_[True, sorted_[1:] != sorted_[:-1]])
    return sorted_[first], np.diff(np.r_[first, sorted_.size])


def _numeric(s: pd.Series) -> bool:
    return pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_numeric_dtype(s.dtype)


def _cell_codes(s: pd.Series, secret: bytes) -> np.ndarray:
    """A uint64 per cell that depends on the parsed value only (not on how it was written)."""
    if _numeric(s):
        x = s.astype("Float64").to_numpy(dtype="float64", na_value=np.nan) + 0.0  # -0.0 -> 0.0
        codes = x.view("<u8").astype(np.uint64)
        codes[np.isnan(x)] = _MISSING
        return codes
    # a string per distinct value, hashed once (a few distinct values per column, typically)
    idx, uniques = pd.factorize(s.astype("string"), use_na_sentinel=True)
    lut = _keyed(secret, b"cell", (str(u).encode("utf-8", "surrogateescape") for u in uniques))
    return np.append(lut, _MISSING)[idx]  # index -1 (missing) takes the last entry


def digest_patients(table: pd.DataFrame, columns: Sequence[str], secret: bytes,
                    ids: Iterable[str] | None = None) -> PatientDigests:
    """The keyed digests of the patients in ``table`` under its modelled ``columns``.

    Parameters
    ----------
    table : DataFrame
        The patient table as the spec read it (typed values, one row per patient).
    columns : sequence of str
        The spec's modelled columns (those of ``table`` are used; order does not matter).
    secret : bytes
        The ledger's key: digests of two ledgers cannot be compared.
    ids : iterable of str, optional
        The patients' ids (FHIR ``Patient.id``, a CSV ``role: key`` column).
    """
    cols = sorted(c for c in set(columns) if c in table.columns)
    kinds = [(c, "n" if _numeric(table[c]) else "s") for c in cols]
    described = json.dumps(kinds).encode("utf-8", "surrogateescape")
    colset = hashlib.blake2b(described, key=secret, person=b"colset", digest_size=8).hexdigest()
    n = len(table)
    if cols and n:
        mat = np.ascontiguousarray(np.column_stack([_cell_codes(table[c], secret)
                                                    for c in cols]).astype("<u8"))
        buf, width = memoryview(mat.tobytes()), 8 * len(cols)
        rows = _keyed(secret, b"row", (buf[i:i + width] for i in range(0, len(buf), width)))
    else:
        rows = np.zeros(0, dtype=np.uint64)
    rows = np.sort(rows)
    content = hashlib.blake2b(key=secret, person=b"content", digest_size=32)
    content.update(described)
    content.update(rows.astype("<u8").tobytes())
    sets: dict[str, np.ndarray] = {}
    uniq, counts = _unique(rows)
    if n and int((counts == 1).sum()) >= MIN_UNIQUE_SHARE * n:
        sets[f"rows:{colset}"] = uniq
    if ids is not None:
        keys = {str(i).strip() for i in ids if i is not None}
        keys.discard("")
        if keys:
            digests = _keyed(secret, b"id", (k.encode("utf-8", "surrogateescape") for k in keys))
            sets["id"] = _unique(np.sort(digests))[0]
    return PatientDigests(content=content.hexdigest(), sets=sets, rows=n)


def overlap_matches(new: np.ndarray, old: np.ndarray) -> tuple[bool, int, float]:
    """Whether two sorted unique digest sets hold the same patients: (match, common, share).

    ``share`` is the common count over the smaller set: a table holding 90 % of a source's
    patients, or a source that is most of a new table, both match.
    """
    common = int(np.intersect1d(new, old, assume_unique=True).size)
    share = common / max(min(new.size, old.size), 1)
    return common >= MIN_COMMON and share >= OVERLAP_THRESHOLD, common, share


def pack(digests: np.ndarray) -> bytes:
    """The BLOB a digest set is stored as (8 bytes a digest, sorted)."""
    return np.asarray(digests, dtype="<u8").tobytes()


def unpack(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<u8").astype(np.uint64)
