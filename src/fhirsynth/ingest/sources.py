"""Finding and opening FHIR input files: JSON, NDJSON, gzip, Bulk Data manifests, folders.

Turns the paths a user gives into an ordered list of files (directories walked recursively
in sorted order, manifests expanded to their local outputs) and reads them with orjson.
Every read failure becomes one :class:`~fhirsynth.errors.InputError` naming the file and the
line/column or line number; no content of the file is quoted.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import gzip
import os
import re
import stat
import unicodedata
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import orjson

from fhirsynth.errors import InputError

__all__ = ["InputFile", "check_regular_file", "discover", "iter_ndjson", "may_hold_identifier",
           "read_json", "safe_text", "shown_path", "walk_files"]

_JSON = (".json", ".json.gz")
_NDJSON = (".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz")
#: compressions fhirsynth does not read (gzip only): such a file is refused when named,
#: and counted and warned of when found in a folder, never silently passed over
_UNREAD_COMPRESSION = {".bz2": "bzip2", ".zip": "zip", ".xz": "xz", ".lzma": "lzma",
                       ".zst": "zstd", ".7z": "7z"}
#: the first bytes of those formats, named when such a file has a JSON name
_MAGIC = ((b"PK\x03\x04", "zip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"),
          (b"\x28\xb5\x2f\xfd", "zstd"), (b"7z\xbc\xaf\x27\x1c", "7z"))


WITHHELD = "name withheld: it may hold an identifier"

_UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.I)
#: Synthea's bundle files: ``Given_Family_<uuid>.json`` (names may carry digits, as
#: Synthea's do, and apostrophes or hyphens)
_SYNTHEA = re.compile(r"[^\W\d_][\w'.\-]*_[^\W\d_][\w'.\-]*_")
_SUFFIXES = (".gz", ".bz2", ".xz", ".zip", ".json", ".ndjson", ".jsonl", ".csv")


def safe_text(text: str) -> str:
    """``text`` with every control or format character (an ANSI escape, a newline, a
    right-to-left override) written as ``\\xNN`` / ``\\uNNNN``, so that a file name shown in
    a message cannot forge terminal lines."""
    return "".join(
        (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")
        if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in text)


#: words of export file names that name no one (with FHIR resource and data type names):
#: Bulk Data parts and Synthea's bookkeeping files
_PLAIN_WORDS = frozenset({"part", "file", "chunk", "output", "export", "bulk", "data", "page",
                          "log", "hospitalinformation", "practitionerinformation"})
_COMPACT_DATE = re.compile(r"(?<!\d)(19|20)\d\d(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?!\d)")
_TOKENS = re.compile(r"[._\-\s]+|(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])")


def _plain_export_name(stem: str) -> bool:
    """Whether a name is only FHIR type names and export words around counters
    (``Patient.000001``, ``Patient_part00012``, ``hospitalInformation1700000000``): its
    digits are part numbers or time stamps, not a record number."""
    from fhirsynth.evaluate.safe_harbor_spec import identifier_kinds
    from fhirsynth.ingest.versions import fhir_type_names

    words = [t.lower() for t in _TOKENS.split(stem) if t and not t.isdigit()]
    names = fhir_type_names()
    if not any(w in names or w.endswith("information") for w in words):
        return False  # a FHIR type (or Synthea's bookkeeping) must name the file
    if not all(w in _PLAIN_WORDS or w in names for w in words):
        return False
    if _COMPACT_DATE.search(stem):
        return False
    spaced = re.sub(r"[._]", " ", stem)  # (a date may be a birth date)
    return not any("date" in k for k in identifier_kinds(spaced))


@functools.lru_cache(maxsize=4096)
def may_hold_identifier(name: str) -> bool:
    """Whether a file or folder name may hold an identifier: a UUID (Synthea puts the
    patient's id in its file names), Synthea's ``Given_Family_`` pattern, or what the
    release label's rules call one (:func:`~fhirsynth.evaluate.safe_harbor_spec.\
identifier_kinds`: a run of 5 or more digits, a date, a phone number, an e-mail address).
    Cached: readers ask it of one name for every row they report on."""
    stem = name
    while stem.lower().endswith(_SUFFIXES):
        stem = stem[: stem.rfind(".")]
    if _UUID.search(stem):
        return True
    if _plain_export_name(stem):
        return False
    if _SYNTHEA.match(stem) and stem[:1].isupper():
        return True
    if not any(c.isdigit() for c in stem) and "@" not in stem:
        return False  # (no date, number, phone or address without a digit or an @)
    from fhirsynth.evaluate.safe_harbor_spec import identifier_kinds

    return bool(identifier_kinds(stem))


def display_name(path: str, position: int = 0, total: int = 0, folder: str = "") -> str:
    """How messages show the file ``path`` (relative to its input folder, or a bare name):
    as it is when no part of it may hold an identifier, else ``<folder>/file N of M (name
    withheld: ...)``, ``N`` its position in the reading order (``fhirsynth ingest INPUT...
    --which N`` prints its path).  Control characters are escaped either way."""
    parts = path.split("/")
    if not any(may_hold_identifier(p) for p in parts):
        return safe_text(path)
    where = "/".join(parts[:-1]) or folder
    if any(may_hold_identifier(p) for p in where.split("/") if p):
        where = ""
    which = (f"file {position} of {total}" if total else f"file {position}") if position \
        else "a file"
    how = (f"; `fhirsynth ingest INPUT... --which {position}` prints its path" if position
           else "")
    return f"{safe_text(where) + '/' if where else ''}{which} ({WITHHELD}{how})"


def shown_path(path: str | Path) -> str:
    """How messages show an input path as given (a CSV table, a file the ledger reads): a
    part that may hold an identifier (a patient's name, a record number) withheld
    (:func:`display_name`)."""
    return display_name(Path(path).as_posix())


@dataclass(frozen=True)
class InputFile:
    """One file to read: its path, kind (``json`` / ``ndjson``) and how it was found."""

    path: Path
    kind: str
    explicit: bool
    """Named by the user (or a manifest) rather than found in a folder walk."""
    root: Path | None = None
    """The input folder the walk found the file in (``None``: named directly)."""
    position: int = 0
    """Its place in the reading order (1-based; 0: not known yet)."""
    total: int = 0
    """How many files are read (0: not known yet)."""

    @cached_property
    def name(self) -> str:
        """The file name as messages show it: the path relative to the input folder it was
        found in (``sub/export/part.ndjson``), or the bare name of a file named directly;
        ``<folder>/file N of M (name withheld: it may hold an identifier)`` when it may hold
        one (:func:`display_name`)."""
        if self.root is not None:
            try:
                rel = self.path.relative_to(self.root).as_posix()
                return display_name(rel, self.position, self.total,
                                    self.root.name or str(self.root))
            except ValueError:
                pass
        return display_name(self.path.name, self.position, self.total,
                            self.path.parent.name)


def _kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(_NDJSON):
        return "ndjson"
    if name.endswith(_JSON):
        return "json"
    return None


_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")

#: the longest NDJSON line read (decompressed): a longer one is refused, naming its line,
#: before it is held in memory whole (a 1 GiB line of spaces gzips to 1 MB)
MAX_LINE_BYTES = 256 * 1024 * 1024
#: the largest JSON document read (decompressed); larger exports are NDJSON (Bulk Data)
MAX_JSON_BYTES = 1024 * 1024 * 1024


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):,.0f} MiB"


def _open(path: Path) -> Any:
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def utf16_problem(head: bytes) -> str | None:
    """Why ``head`` (the first bytes of a text file) is UTF-16, or ``None``.

    A byte-order mark says so; without one, UTF-16 text in a Latin script has a NUL byte in
    every other place (the high byte of each ASCII character), so NULs filling one parity of
    at least 40 % of the byte pairs and almost none of the other mean UTF-16.  A few stray
    NULs (a corrupt file) do not."""
    if head.startswith(_UTF16_BOMS):
        return "UTF-16 text, which is not supported (only UTF-8): save it as UTF-8"
    pairs = len(head) // 2
    if pairs < 2:
        return None
    even, odd = head[0:2 * pairs:2].count(0), head[1:2 * pairs:2].count(0)
    high, low = max(even, odd), min(even, odd)
    if high >= 0.4 * pairs and low <= high / 10:
        return ("looks like UTF-16 text without a byte-order mark, which is not supported "
                "(only UTF-8): save it as UTF-8")
    return None


def _not_json_text(data: bytes, first: bool) -> str | None:
    """Why ``data`` (that orjson refused) is not UTF-8 text, or ``None`` when it is.

    UTF-16 (a byte-order mark, or NUL bytes between ASCII characters) is named as such; any
    other non-UTF-8 byte by its position (1-based), never its value."""
    head = data[:64]
    for magic, what in _MAGIC if first else ():
        if head.startswith(magic):
            return (f"a {what} archive or compressed file, not JSON: only gzip (.gz) is read; "
                    "decompress it first")
    if (first and head.startswith(_UTF16_BOMS)) or (b"\x00" in head and any(
            32 <= c < 127 for c in head)):
        return "UTF-16 text, which is not supported (only UTF-8): convert the file to UTF-8"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 at byte {exc.start + 1} (only UTF-8 is supported)"
    return None


def read_bytes(path: Path, *, label: str | None = None,
               limit: int | None = None) -> bytes:
    """The (decompressed) bytes of ``path`` (``label``: its name in messages); more than
    ``limit`` bytes (default :data:`MAX_JSON_BYTES`) is refused."""
    name = label or path.name
    cap = MAX_JSON_BYTES if limit is None else limit
    try:
        with _open(path) as fh:
            data = bytes(fh.read(cap + 1))
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise InputError(f"{name}: truncated or corrupt gzip file ({type(exc).__name__})"
                         ) from None
    except OSError as exc:
        raise InputError(f"{name}: cannot be read ({exc.strerror or type(exc).__name__})"
                         ) from None
    if len(data) > cap:
        raise InputError(f"{name}: larger than {_mib(cap)} once decompressed: a JSON file "
                         "is read whole, so larger exports must be NDJSON (one resource "
                         "a line, FHIR Bulk Data)")
    return data


def read_json(path: Path, *, label: str | None = None) -> Any:
    """Parse one JSON file; malformed JSON raises :class:`InputError` with line and column.
    A leading UTF-8 byte-order mark is accepted (case 023).  ``label``: its name in messages
    (default: the file name)."""
    data = read_bytes(path, label=label).removeprefix(_BOM)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        name = label or path.name
        why = _not_json_text(data, True)
        if why is not None:
            raise InputError(f"{name}: {why}") from None
        if "depth" in exc.msg:
            raise InputError(f"{name}: JSON nested too deep (over 1024 levels) at line "
                             f"{exc.lineno}, column {exc.colno}") from None
        raise InputError(
            f"{name}: malformed JSON at line {exc.lineno}, column {exc.colno}"
        ) from None


def iter_ndjson(path: Path, *, label: str | None = None) -> Iterator[tuple[int, bytes, Any]]:
    """``(line number, raw line, parsed value)`` for each non-blank line of an NDJSON file
    (``label``: its name in messages, default the file name).  A line longer than
    :data:`MAX_LINE_BYTES` (decompressed) is refused before it is held whole."""
    name = label or path.name
    lineno = 0
    cap = MAX_LINE_BYTES
    try:
        with _open(path) as fh:
            while True:
                line = fh.readline(cap + 1)
                if not line:
                    break
                lineno += 1
                if len(line) > cap:
                    raise InputError(f"{name}: line {lineno}: longer than {_mib(cap)} once "
                                     "decompressed; refused (no FHIR resource is that large)")
                if lineno == 1:
                    line = line.removeprefix(_BOM)
                if not line.strip():
                    continue
                try:
                    value = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    why = _not_json_text(line, lineno == 1)
                    if why is not None:
                        raise InputError(f"{name}: line {lineno}: {why}") from None
                    if "depth" in exc.msg:
                        raise InputError(f"{name}: line {lineno}: JSON nested too deep (over "
                                         f"1024 levels) at column {exc.colno}") from None
                    raise InputError(f"{name}: line {lineno}: malformed JSON at column "
                                     f"{exc.colno}") from None
                yield lineno, line, value
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise InputError(f"{name}: truncated or corrupt gzip file after line {lineno} "
                         f"({type(exc).__name__})") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot be read after line {lineno} "
                         f"({exc.strerror or type(exc).__name__})") from None


def _manifest_outputs(path: Path, doc: dict[str, Any], label: str | None = None
                      ) -> list[Path]:
    """Local files listed by a Bulk Data export manifest (``output: [{type, url}]``);
    ``label`` names the manifest in messages (default: its file name)."""
    name = label or path.name
    out = []
    for i, item in enumerate(doc.get("output") or ()):
        url = item.get("url") if isinstance(item, dict) else None
        if not isinstance(url, str):
            raise InputError(f"{name}: output[{i}] has no url")
        parsed = urlparse(url)
        if parsed.scheme in ("http", "https"):
            raise InputError(f"{name}: output[{i}] is a remote URL; fhirsynth reads only "
                             "local files (download the export first)")
        local = Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(url)
        out.append(local if local.is_absolute() else path.parent / local)
    return out


def is_manifest(doc: Any) -> bool:
    """A Bulk Data manifest: an object with an ``output`` list and no ``resourceType``."""
    return isinstance(doc, dict) and "resourceType" not in doc and isinstance(
        doc.get("output"), list)


#: the files that mark a folder as a fhirsynth release (never read as input)
RELEASE_MARKERS = frozenset({"audit.json", "model.json"})


def file_problem(path: Path) -> str | None:
    """Why ``path`` is no file to read (a symbolic link loop, a broken link, a FIFO, socket
    or device: opening a FIFO blocks until something writes to it), or ``None``."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link loop"
        if os.path.islink(path):
            return "a broken symbolic link"
        return None  # (said where it is opened)
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return "not a regular file (a FIFO, socket or device)"
    return None


def check_regular_file(path: Path, label: str | None = None) -> None:
    """Raise :class:`InputError` when ``path`` exists but is no file to read
    (:func:`file_problem`); ``label``: its name in messages."""
    problem = file_problem(path)
    if problem is not None:
        raise InputError(f"{label or safe_text(str(path))}: {problem}: give a file or a folder")


#: why a link to a folder is not followed: it leads back to a folder the walk is inside
FOLDER_LOOP = "a symbolic link loop (a link to a folder it is in)"


def _passed_note(reason: str, n: int, names: list[str]) -> str:
    shown = "; ".join(names[:3]) + (f"; and {n - 3} more" if n > 3 else "")
    if reason == FOLDER_LOOP:
        return f"skipped {n} folder link(s) in the input folder: {reason} ({shown})"
    if reason.endswith("-compressed"):
        return (f"skipped {n} {reason} file(s) in the input folder: only gzip (.gz) is read; "
                f"decompress them first ({shown})")
    return f"skipped {n} file(s) in the input folder: {reason} ({shown})"


def _compression(name: str) -> str | None:
    low = name.lower()
    return next((what for ext, what in _UNREAD_COMPRESSION.items() if low.endswith(ext)), None)


def _walk(top: Path, pass_over: Callable[[str, Path, Path | None], None]
          ) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk`` of ``top`` that follows symbolic links to folders, each real folder once.

    A link back to a folder the walk is inside (a loop) is passed over (``pass_over``: counted
    and warned of); a second link to a folder already walked is passed over in silence (its
    files were found under the first path).
    """
    visited: set[tuple[int, int]] = set()
    for root, dirs, files in os.walk(top, followlinks=True):
        try:
            st = os.stat(root)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in visited:
            dirs[:] = []
            continue
        visited.add((st.st_dev, st.st_ino))
        dirs.sort()
        kept = []
        for d in dirs:
            sub = Path(root, d)
            if os.path.islink(sub):
                target = os.path.realpath(sub)
                here = os.path.realpath(root)
                if here == target or here.startswith(target.rstrip(os.sep) + os.sep):
                    pass_over(FOLDER_LOOP, sub, top)
                    continue
            kept.append(d)
        dirs[:] = kept
        yield root, dirs, files


def walk_files(top: Path) -> list[Path]:
    """Every file under the folder ``top``, following links to folders as :func:`discover`
    does (each real folder once, loops passed over), so that what is fingerprinted is what
    is read."""
    return [Path(root, f) for root, _dirs, files in _walk(top, lambda *_: None)
            for f in files]


def discover(paths: Iterable[str | os.PathLike[str]], *, notes: list[str] | None = None,
             skipped: Counter[str] | None = None) -> list[InputFile]:
    """The files to read, in order, each once.

    Files in a folder that cannot be read are passed over, counted in ``skipped`` (by
    reason) and said once in ``notes``: files compressed otherwise than with gzip, and what
    is no regular file (a FIFO, a socket, a symbolic link loop or broken link).

    Raises
    ------
    InputError
        A path that does not exist, a folder without FHIR files, a folder holding a
        fhirsynth release, a named file that is compressed otherwise than with gzip or is
        no regular file, or no path at all.
    """
    found: list[InputFile] = []
    seen: set[Path] = set()
    passed: Counter[str] = Counter()
    passed_names: dict[str, list[str]] = {}

    def pass_over(reason: str, p: Path, root: Path | None) -> None:
        passed[reason] += 1
        rel = p.relative_to(root).as_posix() if root is not None else p.name
        passed_names.setdefault(reason, []).append(display_name(rel))

    def add(p: Path, explicit: bool, root: Path | None = None) -> None:
        shown = display_name(p.relative_to(root).as_posix() if root is not None else p.name)
        problem = file_problem(p)
        if problem is not None:
            if explicit:
                raise InputError(f"{shown}: {problem}: give a file or a folder")
            pass_over(problem, p, root)
            return
        if (packed := _compression(p.name)) is not None:
            if explicit:
                raise InputError(f"{shown}: {packed}-compressed: only gzip (.gz) is read; "
                                 "decompress it (or compress it with gzip) first")
            pass_over(f"{packed}-compressed", p, root)
            return
        try:
            key = p.resolve()
        except (OSError, RuntimeError):  # a loop in a parent folder's links
            if explicit:
                raise InputError(f"{shown}: a symbolic link loop: give a file or a folder"
                                 ) from None
            pass_over("a symbolic link loop", p, root)
            return
        if key in seen:
            return
        seen.add(key)
        kind = _kind(p) or ("json" if explicit else None)
        if kind is None:
            return
        file = InputFile(p, kind, explicit, root, position=len(found) + 1)
        if kind == "json" and p.name.lower().endswith(".json"):
            # a manifest in a folder or named directly: read its outputs instead
            with open(p, "rb") as fh:
                head = fh.read(4096).lstrip()
            if head.startswith(b"{") and b'"output"' in head and b'"resourceType"' not in head:
                doc = read_json(p, label=file.name)
                if is_manifest(doc):
                    for target in _manifest_outputs(p, doc, file.name):
                        if not target.is_file():
                            raise InputError(f"{file.name}: manifest output "
                                             f"{display_name(target.name)} does not exist")
                        add(target, True)
                    return
        found.append(file)

    items = list(paths)
    if not items:
        raise InputError("no input path given")
    for item in items:
        p = Path(item)
        if not os.path.lexists(p):
            raise InputError(f"{safe_text(str(p))}: no such file or directory")
        if p.is_dir():
            before = len(found)
            walked = []
            for root, _dirs, files in _walk(p, pass_over):
                if set(files) >= RELEASE_MARKERS:
                    raise InputError(
                        f"{safe_text(root)}: a fhirsynth release (audit.json and model.json) "
                        f"inside the input {safe_text(str(p))}: its synthetic patients would be "
                        "read as real ones; move the release out of the input folder")
                walked.extend(Path(root, f).relative_to(p) for f in files)
            for rel in sorted(walked, key=lambda r: r.parts):
                add(p / rel, False, p)
            if len(found) == before:
                csvs = sorted(display_name(r.as_posix()) for r in walked
                              if r.name.lower().endswith((".csv", ".csv.gz")))
                hint = ""
                if csvs:
                    shown = ", ".join(csvs[:4]) + (f" and {len(csvs) - 4} more"
                                                   if len(csvs) > 4 else "")
                    hint = (f"; it holds {len(csvs)} CSV file(s) ({shown}): CSV input is one "
                            "patient table, one row per patient, given as a file with its "
                            "schema (--schema); a multi-table export such as Synthea's CSV "
                            "must first be joined into one row per patient "
                            "(docs/csv-input.md)")
                hint += "".join(f"; {_passed_note(r, passed[r], passed_names[r])}"
                                for r in sorted(passed))
                raise InputError(f"{safe_text(str(p))}: folder holds no FHIR files "
                                 f"({', '.join(_JSON + _NDJSON)}){hint}")
        else:
            add(p, True)
    for reason in sorted(passed):
        if skipped is not None:
            skipped[reason] += passed[reason]
        if notes is not None:
            notes.append(_passed_note(reason, passed[reason], passed_names[reason]))
    # each file's place in the reading order, for names withheld (``file N of M``)
    return [dataclasses.replace(f, position=i, total=len(found))
            for i, f in enumerate(found, start=1)]
