"""Finding and opening FHIR input files: JSON, NDJSON, gzip, Bulk Data manifests, folders.

Turns the paths a user gives into an ordered list of files (directories walked recursively
in sorted order, manifests expanded to their local outputs) and reads them with orjson.
Every read failure becomes one :class:`~fhirsynth.errors.InputError` naming the file and the
line/column or line number; no content of the file is quoted.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import orjson

from fhirsynth.errors import InputError

__all__ = ["InputFile", "discover", "iter_ndjson", "read_json"]

_JSON = (".json", ".json.gz")
_NDJSON = (".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz")


@dataclass(frozen=True)
class InputFile:
    """One file to read: its path, kind (``json`` / ``ndjson``) and how it was found."""

    path: Path
    kind: str
    explicit: bool
    """Named by the user (or a manifest) rather than found in a folder walk."""
    root: Path | None = None
    """The input folder the walk found the file in (``None``: named directly)."""

    @property
    def name(self) -> str:
        """The file name as messages show it: the path relative to the input folder it was
        found in (``sub/export/part.ndjson``), or the bare name of a file named directly."""
        if self.root is not None:
            try:
                return self.path.relative_to(self.root).as_posix()
            except ValueError:
                pass
        return self.path.name


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


def _not_json_text(data: bytes, first: bool) -> str | None:
    """Why ``data`` (that orjson refused) is not UTF-8 text, or ``None`` when it is.

    UTF-16 (a byte-order mark, or NUL bytes between ASCII characters) is named as such; any
    other non-UTF-8 byte by its position (1-based), never its value."""
    head = data[:64]
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


def discover(paths: Iterable[str | os.PathLike[str]]) -> list[InputFile]:
    """The files to read, in order, each once.

    Raises
    ------
    InputError
        A path that does not exist, a folder without FHIR files, a folder holding a
        fhirsynth release, or no path at all.
    """
    found: list[InputFile] = []
    seen: set[Path] = set()

    def add(p: Path, explicit: bool, root: Path | None = None) -> None:
        key = p.resolve()
        if key in seen:
            return
        seen.add(key)
        kind = _kind(p) or ("json" if explicit else None)
        if kind is None:
            return
        file = InputFile(p, kind, explicit, root)
        if kind == "json" and p.name.lower().endswith(".json"):
            # a manifest in a folder or named directly: read its outputs instead
            with open(p, "rb") as fh:
                head = fh.read(4096).lstrip()
            if head.startswith(b"{") and b'"output"' in head and b'"resourceType"' not in head:
                doc = read_json(p, label=file.name)
                if is_manifest(doc):
                    for target in _manifest_outputs(p, doc, file.name):
                        if not target.is_file():
                            raise InputError(f"{file.name}: manifest output {target.name} "
                                             "does not exist")
                        add(target, True)
                    return
        found.append(file)

    items = list(paths)
    if not items:
        raise InputError("no input path given")
    for item in items:
        p = Path(item)
        if not p.exists():
            raise InputError(f"{p}: no such file or directory")
        if p.is_dir():
            before = len(found)
            walked = []
            for root, _dirs, files in os.walk(p):
                if set(files) >= RELEASE_MARKERS:
                    raise InputError(
                        f"{root}: a fhirsynth release (audit.json and model.json) inside the "
                        f"input {p}: its synthetic patients would be read as real ones; move "
                        "the release out of the input folder")
                walked.extend(Path(root, f).relative_to(p) for f in files)
            for rel in sorted(walked, key=lambda r: r.parts):
                add(p / rel, False, p)
            if len(found) == before:
                csvs = sorted(str(r) for r in walked if r.name.lower().endswith((".csv",
                                                                                  ".csv.gz")))
                hint = ""
                if csvs:
                    shown = ", ".join(csvs[:4]) + (f" and {len(csvs) - 4} more"
                                                   if len(csvs) > 4 else "")
                    hint = (f"; it holds {len(csvs)} CSV file(s) ({shown}): CSV input is one "
                            "patient table, one row per patient, given as a file with its "
                            "schema (--schema); a multi-table export such as Synthea's CSV "
                            "must first be joined into one row per patient "
                            "(docs/csv-input.md)")
                raise InputError(f"{p}: folder holds no FHIR files "
                                 f"({', '.join(_JSON + _NDJSON)}){hint}")
        else:
            add(p, True)
    return found
