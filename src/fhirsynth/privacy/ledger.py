"""The persistent privacy ledger: every release per source dataset, against a custodian's cap.

A SQLite file (default ``<platformdirs user data dir>/fhirsynth/ledger.sqlite``) keyed by a
*source fingerprint*: the sha256 of the input's content, not its path
(:func:`source_fingerprint`: a CSV patient table by its cells, FHIR files by their bytes).
:meth:`Ledger.charge` runs inside ``BEGIN IMMEDIATE``, so two processes on one source are
serialised and never both slip under the cap; it is called BEFORE any noise is drawn and
the charge stays even if the run crashes afterwards (:meth:`Ledger.complete` only marks it
finished).  With no cap recorded, the first release's budget becomes the cap: a second run
on the same data is refused until the custodian raises it.

A release is charged to the source its patients belong to: given the keyed digests of its
patients (:mod:`fhirsynth.privacy.patients`), :meth:`Ledger.charge` finds the source by the
input's key, else by the content key of its modelled rows (any formatting, any extra or
dropped column), else by overlap with a source's patients (the same ids or rows for at
least half of the smaller set), and remembers the new keys and digests under that source.
"""

from __future__ import annotations

import csv
import datetime as _dt
import gzip
import hashlib
import json
import math
import os
import secrets
import sqlite3
import uuid
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fhirsynth.errors import BudgetExhaustedError, ConfigError, InputError, PrivacyBudgetError
from fhirsynth.privacy.budget import PrivacyBudget
from fhirsynth.privacy.patients import (
    PatientDigests,
    digest_patients,
    overlap_matches,
    pack,
    unpack,
)

__all__ = [
    "CHARGES",
    "ChargeLog",
    "Ledger",
    "Release",
    "SourceSummary",
    "default_ledger_path",
    "fingerprint_csv",
    "fingerprint_files",
    "first_cap_note",
    "is_csv_table",
    "ledger_key",
    "resolve_source",
    "source_fingerprint",
]

_TOL = 1e-9
_SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    fingerprint TEXT PRIMARY KEY,
    label       TEXT NOT NULL DEFAULT '',
    cap_epsilon REAL,
    cap_delta   REAL,
    cap_origin  TEXT NOT NULL DEFAULT '',
    created     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS releases (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint TEXT NOT NULL REFERENCES sources(fingerprint),
    run_id      TEXT NOT NULL UNIQUE,
    epsilon     REAL NOT NULL,
    delta       REAL NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('charged', 'completed')),
    config_hash TEXT NOT NULL DEFAULT '',
    outputs     TEXT NOT NULL DEFAULT '[]',
    charged_at  TEXT NOT NULL,
    completed_at TEXT
);
CREATE TABLE IF NOT EXISTS derived (
    fingerprint TEXT PRIMARY KEY,
    source      TEXT NOT NULL REFERENCES sources(fingerprint),
    created     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    name        TEXT PRIMARY KEY,
    value       BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS patients (
    fingerprint TEXT NOT NULL REFERENCES sources(fingerprint),
    kind        TEXT NOT NULL,
    n           INTEGER NOT NULL,
    digests     BLOB NOT NULL,
    updated     TEXT NOT NULL,
    PRIMARY KEY (fingerprint, kind)
);
"""


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def default_ledger_path() -> Path:
    """``$FHIRSYNTH_LEDGER`` if set, else ``<user data dir>/fhirsynth/ledger.sqlite``."""
    env = os.environ.get("FHIRSYNTH_LEDGER")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("fhirsynth", appauthor=False)) / "ledger.sqlite"


class ChargeLog:
    """The charges this process made, so that an interrupted command can say exactly
    whether it spent budget.  ``pending`` is set while a charge's transaction is open."""

    def __init__(self) -> None:
        self.done: list[tuple[Path, Release]] = []
        self.pending: Path | None = None

    def mark(self) -> int:
        """A position to pass to :meth:`since`."""
        return len(self.done)

    def since(self, mark: int) -> list[tuple[Path, Release]]:
        return self.done[mark:]


#: the process's charges (read by the CLI when a command is interrupted)
CHARGES = ChargeLog()


def _over_cap(name: str, spent_e: float, spent_d: float, cap_e: float, cap_d: float,
              budget: PrivacyBudget, released: bool = True) -> str | None:
    """Why ``budget`` on top of what was spent passes the cap, or None when it fits.

    ``released``: whether any release of the source completed (only then is there a
    released model to point to).
    """
    if spent_e + budget.epsilon > cap_e * (1 + _TOL) + _TOL:
        hint = ("raise the cap with 'fhirsynth ledger set-cap', or sample more patients from "
                "an earlier release's model.json with 'fhirsynth sample', which spends nothing"
                if released else "raise the cap with 'fhirsynth ledger set-cap'; no release "
                "of this source completed: what was spent was charged by runs that were "
                "interrupted or failed, see 'fhirsynth ledger show'")
        return (f"budget exhausted for dataset {name}: spent epsilon {spent_e:g} of cap "
                f"{cap_e:g}, this release needs {budget.epsilon:g} ({hint})")
    if cap_d == 0 and budget.delta > 0:
        return (f"the delta cap of dataset {name} is 0: its releases must be pure "
                f"epsilon-DP (--delta 0), this release asks for delta {budget.delta:g} (allow "
                "a delta with 'fhirsynth ledger set-cap SOURCE --epsilon E --delta D')")
    if spent_d + budget.delta > cap_d * (1 + _TOL) + 1e-15:
        return (f"budget exhausted for dataset {name}: spent delta {spent_d:g} of cap "
                f"{cap_d:g}, this release needs {budget.delta:g} (raise the delta cap with "
                "'fhirsynth ledger set-cap SOURCE --epsilon E --delta D')")
    return None


def _content_digest(path: Path) -> str:
    """sha256 of a file's content; gzip is decompressed and a UTF-8 BOM dropped."""
    h = hashlib.sha256()
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            first = True
            while chunk := fh.read(1 << 20):
                if first and chunk.startswith(b"\xef\xbb\xbf"):
                    chunk = chunk[3:]
                first = False
                h.update(chunk)
    except (EOFError, gzip.BadGzipFile, zlib.error):
        # the file's own bytes stand for it: the reader, which runs before anything is
        # charged, refuses it with its place in the input (its name may be withheld)
        return _raw_digest(path)
    except OSError as exc:
        raise InputError(f"{_shown(path)}: cannot read the file "
                         f"({exc.strerror or type(exc).__name__})") from None
    return h.hexdigest()


def _raw_digest(path: Path) -> str:
    h = hashlib.sha256(b"raw\n")
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _shown(path: str | Path) -> str:
    """A path as messages show it (:func:`fhirsynth.ingest.sources.shown_path`)."""
    from fhirsynth.ingest.sources import shown_path

    return shown_path(path)


def fingerprint_files(paths: Iterable[str | Path]) -> str:
    """Fingerprint of input files or directories: sha256 over the sorted content digests.

    Renaming, moving, re-gzipping or listing files in another order leaves it unchanged;
    any change of content changes it.  Hidden files (``.name``) are ignored.
    """
    digests = []
    for p in map(Path, paths):
        if p.is_dir():
            from fhirsynth.ingest.sources import walk_files

            # links to folders are followed, as the reader follows them
            files = [q for q in walk_files(p) if q.is_file() and not q.name.startswith(".")]
            if not files:
                raise ConfigError(f"input folder {str(p)!r} holds no files (hidden files are "
                                  "ignored): give the folder of the export")
        elif p.is_file():
            files = [p]
        else:
            from fhirsynth.ingest.sources import file_problem

            problem = file_problem(p) if os.path.lexists(p) else None
            if problem is not None:  # a FIFO, a link loop: never opened (a FIFO would block)
                raise InputError(f"{_shown(p)}: {problem}: give a file or a folder")
            raise ConfigError(f"input {_shown(p.name)!r} does not exist")
        digests += [_content_digest(q) for q in files]
    if not digests:
        raise ConfigError("no input files to fingerprint")
    return hashlib.sha256("\n".join(sorted(digests)).encode()).hexdigest()


def is_csv_table(path: str | Path) -> bool:
    """A CSV patient table by its name (``.csv`` or ``.csv.gz``), as ``run`` and ``fit`` read."""
    name = Path(path).name.lower()
    return name.endswith(".csv") or name.endswith(".csv.gz")


def fingerprint_csv(path: str | Path) -> str:
    """Fingerprint of a CSV patient table's content: its header and its cells.

    The key of a table's privacy budget, shared by ``run``, ``fit`` and ``ledger``: row
    order, column order, line endings, a UTF-8 BOM, blank lines, quoting, gzip and spaces
    around a cell leave it unchanged (the reader sees the same table); any changed cell
    changes it.  The file is read once as text, streaming, without parsing any value, so
    a file the reader will refuse still gets a fingerprint (the refusal names the problem).
    """
    p = Path(path)
    opener = gzip.open if p.name.lower().endswith(".gz") else open
    digests: list[bytes] = []
    try:
        with opener(p, "rt", encoding="utf-8-sig", errors="surrogateescape",
                    newline="") as fh:
            reader = csv.reader(fh)
            header = [h.strip() for h in next(reader, [])]
            order = sorted(range(len(header)), key=lambda i: (header[i], i))
            for row in reader:
                cells = [c.strip() for c in row]
                if not any(cells):
                    continue
                picked = [cells[i] if i < len(cells) else "\x00" for i in order]
                picked += cells[len(header):]
                digests.append(hashlib.blake2b("\x1f".join(picked).encode(
                    "utf-8", "surrogateescape"), digest_size=16).digest())
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise InputError(f"{_shown(p)}: truncated or corrupt gzip file "
                         f"({type(exc).__name__})") from None
    except OSError as exc:
        raise InputError(f"{_shown(p)}: cannot read the file "
                         f"({exc.strerror or type(exc).__name__})") from None
    except csv.Error as exc:
        raise InputError(f"{_shown(p)}: malformed CSV ({exc})") from None
    h = hashlib.sha256(b"csv-table\n")
    h.update(json.dumps(sorted(header)).encode("utf-8", "surrogateescape"))
    for d in sorted(digests):
        h.update(d)
    return h.hexdigest()


def source_fingerprint(paths: Iterable[str | Path]) -> str:
    """The ledger's key of an input: one CSV table by its cells, anything else by its bytes.

    ``run`` and ``fit`` on the same CSV table, and ``ledger set-cap`` / ``ledger show``
    given its path, therefore name one source.
    """
    paths = [Path(p) for p in paths]
    if len(paths) == 1 and paths[0].is_file() and is_csv_table(paths[0]):
        return fingerprint_csv(paths[0])
    return fingerprint_files(paths)


def ledger_key(paths: Sequence[str | Path], ledger: str | Path) -> str:
    """:func:`source_fingerprint` of the inputs, after moving a CSV table's older entry.

    Ledgers written before CSV tables were keyed by their cells keyed them by the file's
    bytes; such an entry is moved to the new key (with its cap and releases) the first
    time the table is used again, so an upgrade never starts a source afresh.
    """
    key = source_fingerprint(paths)
    ps = [Path(p) for p in paths]
    if not Path(ledger).is_file():
        return key
    led = Ledger(ledger)
    if len(ps) == 1 and ps[0].is_file() and is_csv_table(ps[0]) and not led.knows(key):
        # only a table the ledger does not know yet can have an older, byte-keyed entry
        # (adopt moves nothing onto a known key): no second read of the file otherwise
        led.adopt(fingerprint_files(ps), key)
    return led.source_of(key)


def resolve_source(source: str, ledger: str | Path | None = None) -> str:
    """A 64-hex fingerprint, or the ledger's key of an input path; with ``ledger``, either
    resolves to the source it belongs to (a patient table written by ``ingest`` to the
    source it was read from, an input charged to the source holding its patients to it).
    With ``ledger``, ``source`` may also be what ``ledger show`` prints of a source: its
    name, or the start of its fingerprint (8 hex digits or more), when no such path exists.
    """
    s = source.strip().lower()
    key = s if len(s) == 64 and all(c in "0123456789abcdef" for c in s) else None
    if key is None and ledger is not None and Path(ledger).is_file() \
            and not Path(source).exists():
        key = Ledger(ledger).source_named(source)
        if key is None:
            raise ConfigError(
                f"{_shown(source)!r} is neither an input path nor a source of the ledger "
                f"{ledger} (its name or the start of its fingerprint, as `fhirsynth ledger "
                "show` prints them)")
    if key is None:
        key = source_fingerprint([source])
    if ledger is not None and Path(ledger).is_file():
        return Ledger(ledger).source_of(key)
    return key


def first_cap_note(release: Release, ledger: str | Path | None = None) -> str | None:
    """The console note of a release whose budget became its source's cap (None for any
    other): what the cap now is, that a further release will be refused, and the command that
    raises it, naming the input, never the fingerprint (``ledger``: the ``--ledger`` file the
    run was given, None for the default).
    A trial's first run at epsilon 0.001 set the cap to 0.001 without a word."""
    if not release.cap_set:
        return None
    where = f" --ledger {ledger}" if ledger is not None else ""
    # the input, not the fingerprint: that is an exact function of the private input (a
    # membership test for anyone holding a copy), and a console is no place for it
    return (f"the ledger had no cap for this source, so this release's budget (epsilon "
            f"{release.epsilon:g}, delta {release.delta:g}) is now its cap: a further release "
            "of the same data will be refused. To allow more, set the total you allow over "
            f"all releases: fhirsynth ledger set-cap INPUT --epsilon E [--delta D]{where} "
            "(INPUT: what this release read, or the source's name as `fhirsynth ledger show` "
            "lists it)")


@dataclass(frozen=True)
class Release:
    """One charged release (``status`` is ``charged`` until the run completes)."""

    fingerprint: str
    run_id: str
    epsilon: float
    delta: float
    status: str
    charged_at: str
    completed_at: str | None = None
    config_hash: str = ""
    outputs: tuple[str, ...] = ()
    #: when the release was charged to a source other than its input's own key: the
    #: source's name and why ('' otherwise)
    matched: str = ""
    #: whether this charge recorded its own budget as the source's cap (no cap was recorded:
    #: :func:`first_cap_note` says so on the console); never stored, False when read back
    cap_set: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class SourceSummary:
    """Cap and spending of one source."""

    fingerprint: str
    label: str
    cap_epsilon: float | None
    cap_delta: float | None
    cap_origin: str
    spent_epsilon: float
    spent_delta: float
    releases: tuple[Release, ...]


class Ledger:
    """The SQLite privacy ledger at ``path`` (created on first use).

    Parameters
    ----------
    path : str or Path, optional
        Ledger file; default :func:`default_ledger_path`.
    timeout : float
        Seconds to wait for another process holding the write lock.
    """

    def __init__(self, path: str | Path | None = None, *, timeout: float = 30.0) -> None:
        self.path = Path(path) if path is not None else default_ledger_path()
        self.timeout = timeout
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = self._connect()
        try:
            con.executescript(_SCHEMA)
        finally:
            con.close()

    def _connect(self) -> sqlite3.Connection:
        try:
            con = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise ConfigError(f"ledger {self.path.name!r} cannot be opened ({exc})") from None
        con.row_factory = sqlite3.Row
        return con

    # ----------------------------------------------------------------- writes
    def set_cap(self, fingerprint: str, epsilon: float, delta: float = 0.0, *,
                label: str = "") -> None:
        """Record the custodian's cap (total over all releases) for a source.

        A non-empty ``label`` names the source from now on (the custodian asked for it); a
        release's own label names only a source it records first.
        """
        cap = PrivacyBudget(epsilon=epsilon, delta=delta)
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            self._ensure_source(con, fingerprint, label)
            con.execute(
                "UPDATE sources SET cap_epsilon=?, cap_delta=?, cap_origin='custodian' "
                "WHERE fingerprint=?", (cap.epsilon, cap.delta, fingerprint))
            if label:
                con.execute("UPDATE sources SET label=? WHERE fingerprint=?",
                            (label, fingerprint))
            con.execute("COMMIT")
        finally:
            con.close()

    def charge(self, fingerprint: str, budget: PrivacyBudget, *, run_id: str | None = None,
               label: str = "", config_hash: str = "",
               patients: PatientDigests | None = None) -> Release:
        """Charge a release to its source before any noise is drawn.

        ``run_id`` defaults to a random UUID (returned in the :class:`Release`); pass it to
        :meth:`complete` when the run has written its outputs.  With ``patients`` (the
        input's digests, :meth:`patients`), an input whose key ``fingerprint`` the ledger
        does not know is charged to the source holding the same patients, if any
        (:meth:`_identify`): the returned release's ``fingerprint`` is the source charged,
        its ``matched`` says why.

        Raises
        ------
        BudgetExhaustedError
            When the release would pass the source's cap; nothing is recorded then.
        """
        run_id = run_id or uuid.uuid4().hex
        con = self._connect()
        CHARGES.pending = self.path
        try:
            con.execute("BEGIN IMMEDIATE")
            key = fingerprint
            fingerprint, matched = self._identify(con, key, patients)
            row = self._ensure_source(con, fingerprint, label)
            spent_e, spent_d = self._spent(con, fingerprint)
            cap_e, cap_d = row["cap_epsilon"], row["cap_delta"]
            if cap_e is None:
                cap_e, cap_d = budget.epsilon, budget.delta
                con.execute("UPDATE sources SET cap_epsilon=?, cap_delta=?, "
                            "cap_origin='first release' WHERE fingerprint=?",
                            (cap_e, cap_d, fingerprint))
            name = row["label"] or label or fingerprint[:12]  # as `ledger show` names it
            refusal = _over_cap(name, spent_e, spent_d, cap_e, cap_d, budget,
                                released=self._completed(con, fingerprint))
            if refusal:
                if not matched:
                    con.execute("ROLLBACK")
                    raise BudgetExhaustedError(refusal)
                # no release recorded, but the input's keys are: `ledger set-cap` of its
                # path then finds the source whose cap refused it
                self._remember(con, key, fingerprint, patients)
                con.execute("COMMIT")
                raise BudgetExhaustedError(f"{refusal}; the input is the ledger source "
                                           f"{matched}")
            now = _now()
            try:
                con.execute(
                    "INSERT INTO releases (fingerprint, run_id, epsilon, delta, status, "
                    "config_hash, charged_at) VALUES (?, ?, ?, ?, 'charged', ?, ?)",
                    (fingerprint, run_id, budget.epsilon, budget.delta, config_hash, now))
            except sqlite3.IntegrityError:
                con.execute("ROLLBACK")
                raise PrivacyBudgetError(f"run id {run_id!r} is already in the ledger") from None
            self._remember(con, key, fingerprint, patients)
            con.execute("COMMIT")
            release = Release(fingerprint, run_id, budget.epsilon, budget.delta, "charged",
                              now, config_hash=config_hash, matched=matched,
                              cap_set=row["cap_epsilon"] is None)
            CHARGES.done.append((self.path, release))
        finally:
            CHARGES.pending = None
            con.close()
        return release

    def adopt(self, old: str, new: str) -> bool:
        """Move the source ``old`` (cap, label, releases) to the key ``new``.

        Nothing happens when ``old`` is unknown or ``new`` is already a source (the two
        are then kept apart: merging caps is the custodian's decision).  True if moved.
        """
        if old == new:
            return False
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            known = {r[0] for r in con.execute(
                "SELECT fingerprint FROM sources WHERE fingerprint IN (?, ?)", (old, new))}
            if known != {old}:
                con.execute("ROLLBACK")
                return False
            con.execute("UPDATE sources SET fingerprint=? WHERE fingerprint=?", (new, old))
            con.execute("UPDATE releases SET fingerprint=? WHERE fingerprint=?", (new, old))
            con.execute("UPDATE patients SET fingerprint=? WHERE fingerprint=?", (new, old))
            con.execute("UPDATE derived SET source=? WHERE source=?", (new, old))
            con.execute("COMMIT")
        finally:
            con.close()
        return True

    def derive(self, table: str, source: str, label: str = "",
               patients: PatientDigests | None = None) -> bool:
        """Record that the patient table ``table`` (its fingerprint) was read from ``source``.

        ``ingest`` calls it: a fit of that table is then charged to ``source`` (same
        patients, one budget).  False, and nothing recorded, when ``table`` has been
        charged as a source of its own (its budget is kept apart: merging is the
        custodian's decision, ``ledger set-cap``).  ``patients``: the table's digests,
        remembered under ``source`` (or the source holding the same patients), so that a
        copy of the table with other columns or formatting is that source too.
        """
        if table == source:
            return False
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            own = con.execute("SELECT 1 FROM releases WHERE fingerprint=?", (table,)).fetchone()
            if own is not None:
                con.execute("ROLLBACK")
                return False
            key = source
            try:
                source, _ = self._identify(con, key, patients)
            except PrivacyBudgetError:  # patients of several sources: no one source to link
                con.execute("ROLLBACK")
                return False
            self._ensure_source(con, source, label)
            con.execute("INSERT OR REPLACE INTO derived (fingerprint, source, created) "
                        "VALUES (?, ?, ?)", (table, source, _now()))
            self._remember(con, key, source, patients)
            con.execute("COMMIT")
        finally:
            con.close()
        return True

    def secret(self) -> bytes:
        """The ledger's random key of patient digests (created on first use, kept in the
        file): digests of two ledgers, or computed without the file, cannot be compared."""
        con = self._connect()
        try:
            row = con.execute("SELECT value FROM meta WHERE name='secret'").fetchone()
            if row is None:
                con.execute("BEGIN IMMEDIATE")
                con.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('secret', ?)",
                            (secrets.token_bytes(32),))
                con.execute("COMMIT")
                row = con.execute("SELECT value FROM meta WHERE name='secret'").fetchone()
        finally:
            con.close()
        return bytes(row[0])

    def patients(self, table: Any, columns: Sequence[str],
                 ids: Iterable[str] | None = None) -> PatientDigests:
        """The keyed digests of a patient table's patients, for :meth:`charge`
        (:func:`fhirsynth.privacy.patients.digest_patients`)."""
        return digest_patients(table, columns, self.secret(), ids)

    def knows(self, fingerprint: str) -> bool:
        """Whether ``fingerprint`` is a source of the ledger."""
        con = self._connect()
        try:
            return con.execute("SELECT 1 FROM sources WHERE fingerprint=?",
                               (fingerprint,)).fetchone() is not None
        finally:
            con.close()

    def source_of(self, fingerprint: str) -> str:
        """The source a derived table was read from (:meth:`derive`), else ``fingerprint``."""
        con = self._connect()
        try:
            row = con.execute("SELECT source FROM derived WHERE fingerprint=?",
                              (fingerprint,)).fetchone()
        finally:
            con.close()
        return row[0] if row is not None else fingerprint

    def find_source(self, fingerprint: str, patients: PatientDigests | None = None) -> str:
        """The source a release of the input (key ``fingerprint``, digests ``patients``)
        would be charged to (:meth:`charge`'s lookup), without recording anything.

        Raises
        ------
        PrivacyBudgetError
            The input holds the patients of two or more sources.
        """
        known = self.source_of(fingerprint)
        if known != fingerprint or patients is None:
            return known
        con = self._connect()
        try:
            return self._identify(con, fingerprint, patients)[0]
        finally:
            con.close()

    def check(self, fingerprint: str, budget: PrivacyBudget) -> None:
        """Refuse, without recording anything, a release :meth:`charge` would refuse now.

        Raises
        ------
        BudgetExhaustedError
            When the source has a cap and the release would pass it.
        """
        for s in self.summary(fingerprint):
            if s.cap_epsilon is not None:
                refusal = _over_cap(s.label or fingerprint[:12], s.spent_epsilon,
                                    s.spent_delta, s.cap_epsilon, s.cap_delta or 0.0, budget,
                                    released=any(r.status == "completed" for r in s.releases))
                if refusal:
                    raise BudgetExhaustedError(refusal)

    def complete(self, run_id: str, outputs: Sequence[str] = ()) -> None:
        """Mark a charged release as completed and record its outputs (relative paths)."""
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            cur = con.execute(
                "UPDATE releases SET status='completed', completed_at=?, outputs=? "
                "WHERE run_id=?", (_now(), json.dumps(list(outputs)), run_id))
            if cur.rowcount != 1:
                con.execute("ROLLBACK")
                raise PrivacyBudgetError(f"run id {run_id!r} was never charged")
            con.execute("COMMIT")
        finally:
            con.close()

    # ------------------------------------------------------------------ reads
    def summary(self, fingerprint: str | None = None) -> list[SourceSummary]:
        """Every source (or one) with its cap, totals and releases."""
        con = self._connect()
        try:
            q = "SELECT * FROM sources" + (" WHERE fingerprint=?" if fingerprint else "")
            srcs = con.execute(q + " ORDER BY created", (fingerprint,) if fingerprint else ())
            out = []
            for s in srcs.fetchall():
                rels = tuple(_release(r) for r in con.execute(
                    "SELECT * FROM releases WHERE fingerprint=? ORDER BY id", (s["fingerprint"],)))
                out.append(SourceSummary(
                    s["fingerprint"], s["label"], s["cap_epsilon"], s["cap_delta"],
                    s["cap_origin"], math.fsum(r.epsilon for r in rels),
                    math.fsum(r.delta for r in rels), rels))
            return out
        finally:
            con.close()

    def source_named(self, name: str) -> str | None:
        """The fingerprint of the one source ``ledger show`` names ``name`` (its label) or
        whose fingerprint starts with ``name`` (8 hex digits or more); None when none does.

        Raises
        ------
        ConfigError
            Several sources match (each is listed by the start of its fingerprint).
        """
        s = name.strip()
        prefix = s.lower() if len(s) >= 8 and all(c in "0123456789abcdef"
                                                   for c in s.lower()) else None
        hits = [x for x in self.summary() if x.label == s
                or (prefix is not None and x.fingerprint.startswith(prefix))]
        if len(hits) > 1:
            raise ConfigError(
                f"{len(hits)} sources of the ledger {self.path} match {s!r} ("
                + ", ".join(f"{x.fingerprint[:12]} {x.label}".strip() for x in hits)
                + "): give the fingerprint `fhirsynth ledger show` prints")
        return hits[0].fingerprint if hits else None

    def find_reusable(self, fingerprint: str, config_hash: str) -> Release | None:
        """The latest completed release of this source made with this configuration."""
        for s in self.summary(fingerprint):
            done = [r for r in s.releases if r.status == "completed"
                    and r.config_hash == config_hash]
            if done:
                return done[-1]
        return None

    # ---------------------------------------------------------------- helpers
    @staticmethod
    def _ensure_source(con: sqlite3.Connection, fingerprint: str, label: str) -> sqlite3.Row:
        con.execute("INSERT OR IGNORE INTO sources (fingerprint, label, created) VALUES (?, ?, ?)",
                    (fingerprint, label, _now()))
        if label:
            con.execute("UPDATE sources SET label=? WHERE fingerprint=? AND label=''",
                        (label, fingerprint))
        return con.execute("SELECT * FROM sources WHERE fingerprint=?", (fingerprint,)).fetchone()

    @staticmethod
    def _identify(con: sqlite3.Connection, key: str,
                  patients: PatientDigests | None) -> tuple[str, str]:
        """The source an input belongs to, and why when it is not the input's own ``key``.

        In order: ``key`` when the ledger knows it as a source that has releases or patient
        digests (a key only given a cap, ``ledger set-cap FILE``, does not keep a copy of
        a charged table apart from it); the source its modelled
        rows' content key was recorded under; the source whose patient digests of one kind
        overlap the input's (:func:`~fhirsynth.privacy.patients.overlap_matches`; the most
        common patients win); else ``key`` (a new source).  The reason names the source
        and a share, never a value.  An input whose patients overlap two or more sources
        is refused (:class:`PrivacyBudgetError`): one release is charged to one source.
        """
        if patients is None or con.execute(
                "SELECT 1 FROM releases WHERE fingerprint=? UNION ALL "
                "SELECT 1 FROM patients WHERE fingerprint=?", (key, key)).fetchone():
            return key, ""
        row = con.execute("SELECT source FROM derived WHERE fingerprint=?",
                          (patients.content,)).fetchone()
        if row is not None and row[0] != key:
            return row[0], (f"{_name(con, row[0])}: its modelled "
                            "rows are that source's (the same patients in another file, "
                            "formatting or column set)")
        best: tuple[str, int, float, str, bool] | None = None
        matched: set[str] = set()
        for kind, new in sorted(patients.sets.items()):
            for r in con.execute("SELECT fingerprint, digests FROM patients WHERE kind=? "
                                 "ORDER BY rowid", (kind,)):
                old = unpack(r[1])
                ok, common, share = overlap_matches(new, old)
                if ok:
                    matched.add(r[0])
                if ok and (best is None or common > best[1]):
                    best = (r[0], common, share, kind, new.size <= old.size)
        if len(matched) > 1:
            # one release, one source: charging one of them would let the others' patients
            # pass their caps (trial 14: a union of two charged halves went to one of them)
            names = ", ".join(sorted(_name(con, m) for m in matched))
            raise PrivacyBudgetError(
                f"the input holds the patients of {len(matched)} ledger sources ({names}): a "
                "release from it would spend each one's budget, and the ledger charges a "
                "release to one source; release each source's patients on their own")
        if best is None or best[0] == key:
            return key, ""
        source, _common, share, kind, mine = best
        what = "patient ids" if kind == "id" else "patients' rows under the schema's columns"
        part = ("of its patients are that source's" if mine
                else "of that source's patients are in it")
        return source, f"{_name(con, source)}: {share:.0%} {part} (by {what})"

    @staticmethod
    def _remember(con: sqlite3.Connection, key: str, source: str,
                  patients: PatientDigests | None) -> None:
        """Record ``key`` and the patients' content key as keys of ``source``, and add their
        digests to the source's (an alias already recorded keeps its source)."""
        now = _now()
        aliases = [key] + ([patients.content] if patients is not None else [])
        for alias in aliases:
            if alias != source:
                con.execute("INSERT OR IGNORE INTO derived (fingerprint, source, created) "
                            "VALUES (?, ?, ?)", (alias, source, now))
        for kind, new in sorted((patients.sets if patients is not None else {}).items()):
            row = con.execute("SELECT digests FROM patients WHERE fingerprint=? AND kind=?",
                              (source, kind)).fetchone()
            merged = new if row is None else np.union1d(unpack(row[0]), new)
            con.execute("INSERT OR REPLACE INTO patients (fingerprint, kind, n, digests, "
                        "updated) VALUES (?, ?, ?, ?, ?)",
                        (source, kind, int(merged.size), pack(merged), now))

    @staticmethod
    def _completed(con: sqlite3.Connection, fingerprint: str) -> bool:
        return con.execute("SELECT 1 FROM releases WHERE fingerprint=? AND status='completed'",
                           (fingerprint,)).fetchone() is not None

    @staticmethod
    def _spent(con: sqlite3.Connection, fingerprint: str) -> tuple[float, float]:
        rows = con.execute("SELECT epsilon, delta FROM releases WHERE fingerprint=?",
                           (fingerprint,)).fetchall()
        return math.fsum(r[0] for r in rows), math.fsum(r[1] for r in rows)


def _name(con: sqlite3.Connection, fingerprint: str) -> str:
    """A source as `ledger show` and refusals name it: its label, else its key's start."""
    row = con.execute("SELECT label FROM sources WHERE fingerprint=?", (fingerprint,)).fetchone()
    return (row[0] if row is not None and row[0] else "") or fingerprint[:12]


def _release(r: sqlite3.Row) -> Release:
    return Release(r["fingerprint"], r["run_id"], r["epsilon"], r["delta"], r["status"],
                   r["charged_at"], r["completed_at"], r["config_hash"],
                   tuple(json.loads(r["outputs"] or "[]")))
