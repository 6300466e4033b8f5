"""The machine-readable audit record of a release, and its verification.

:func:`build_audit` assembles the record described in ``docs/audit-schema.md``: the budget
table (total, steps, composition), input and output files with sha256 and size, spec and
configuration hashes, software versions, run id and creation time, and the shareable part
of the evaluation.  Seeds are never written: :func:`public_config` removes them.
:func:`write_json_atomic` writes through a temporary file; :func:`verify_release` recomputes
the hashes of a release directory, lists files changed, missing or added, and checks the
record against itself and the files (:func:`fhirsynth.report.consistency.check_record`).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import platform
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from fhirsynth._atomic import write_bytes_atomic
from fhirsynth.errors import ReportError

__all__ = [
    "AUDIT_NAME",
    "SCHEMA_VERSION",
    "VerifyResult",
    "build_audit",
    "config_hash",
    "file_entry",
    "jsonable",
    "public_config",
    "record_digest",
    "software_versions",
    "verify_release",
    "write_json_atomic",
]

AUDIT_NAME = "audit.json"
SCHEMA_VERSION = "fhirsynth-audit/3"
#: earlier schemas ``verify`` still reads (2: the per-source ``source_history``; 1: also the
#: inputs' plain content fingerprint)
OLD_SCHEMAS = ("fhirsynth-audit/2", "fhirsynth-audit/1")
#: directories of a release dir that hold custodian-only files (not part of the release)
INTERNAL_DIRS = ("internal",)
_PACKAGES = ("fhirsynth", "numpy", "pandas", "pgmpy", "diffprivlib", "fhir.resources",
             "scikit-learn", "reportlab", "matplotlib")
_SEED_KEY = re.compile(r"(^|_)(seed|random_state|rng)($|_)", re.I)


def software_versions() -> dict[str, str]:
    """Versions of Python and the packages that shape a release."""
    out = {"python": platform.python_version()}
    for pkg in _PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def public_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-ready copy of ``config`` without any seed (keys like ``seed``, ``random_state``)."""

    def clean(v: Any) -> Any:
        if isinstance(v, Mapping):
            return {str(k): clean(x) for k, x in v.items() if not _SEED_KEY.search(str(k))}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, Path):
            return v.name
        if isinstance(v, float) and not math.isfinite(v):
            return str(v)
        if v is None or isinstance(v, (str, int, float, bool)):
            return v
        return str(v)

    return clean(config)


def jsonable(obj: Any) -> Any:
    """``obj`` with numpy scalars as Python numbers and NaN/inf as ``None`` (strict JSON)."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def config_hash(config: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of the public configuration (seed excluded)."""
    return hashlib.sha256(_canonical(public_config(config))).hexdigest()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def file_entry(path: str | Path, root: str | Path | None = None) -> dict[str, Any]:
    """``{"path", "sha256", "bytes"}`` of a file; ``path`` relative to ``root`` (else the
    file name: absolute paths of the custodian's machine never enter the record)."""
    p = Path(path)
    try:
        rel = p.resolve().relative_to(Path(root).resolve()) if root is not None else Path(p.name)
    except ValueError:
        rel = Path(p.name)
    try:
        return {"path": rel.as_posix(), "sha256": _sha256(p), "bytes": p.stat().st_size}
    except OSError as exc:
        raise ReportError(f"{p.name}: cannot be hashed ({exc.strerror or 'I/O error'})") from None


def build_audit(
    *,
    run_id: str,
    budget_table: Mapping[str, Any],
    spec_fingerprint: str,
    config: Mapping[str, Any],
    inputs: Iterable[Mapping[str, Any]] = (),
    outputs: Iterable[Mapping[str, Any]] = (),
    evaluation: Mapping[str, Any] | None = None,
    dataset: str = "",
    source_commitment: str | None = None,
    created: _dt.datetime | None = None,
    ledger_history: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The audit record (see ``docs/audit-schema.md``); JSON-ready, no seed, no raw data.

    ``source_commitment``: the keyed commitment to the inputs
    (:func:`fhirsynth.report.release.input_commitment`), never their plain fingerprint.

    ``ledger_history``: the custodian's ledger after this release, over every source
    (releases so far, total epsilon and delta spent): an upper bound on what any patient of
    this release has spent across them.  Not the per-source account: which source the
    ledger charged is decided on the exact data (shared patients), so it stays with the
    custodian (schema 2 published it as ``source_history``).
    """
    steps = [
        {k: s.get(k) for k in ("name", "mechanism", "epsilon", "delta", "sensitivity")}
        | {k: s[k] for k in ("rho", "detail") if k in s}
        for s in budget_table.get("steps", [])
    ]
    eps_total = float(budget_table["epsilon_total"])
    cfg = public_config(config)
    record: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "run_id": run_id,
        "created": (created or _dt.datetime.now(_dt.UTC)).isoformat(timespec="seconds"),
        "dataset": dataset,
        "epsilon_total": eps_total,
        "delta_total": float(budget_table.get("delta_total", 0.0)),
        "epsilon_spent": float(budget_table.get("epsilon_spent",
                                                math.fsum(s["epsilon"] or 0 for s in steps))),
        "delta_spent": float(budget_table.get("delta_spent",
                                              math.fsum(s["delta"] or 0 for s in steps))),
        "composition": str(budget_table.get("composition", "")),
        **{k: float(budget_table[k]) for k in ("rho_total", "rho_spent") if k in budget_table},
        "unit_of_privacy": "patient (neighbouring datasets differ by one patient's whole record)",
        "steps": steps,
        "spec_sha256": spec_fingerprint,
        "config_sha256": hashlib.sha256(_canonical(cfg)).hexdigest(),
        "config": cfg,
        "source_commitment": source_commitment,
        "inputs": [dict(x) for x in inputs],
        "outputs": [dict(x) for x in outputs],
        "software": software_versions(),
        "evaluation": dict(evaluation or {}),
    }
    if ledger_history is not None:
        record["ledger_history"] = dict(ledger_history)
    record = jsonable(record)
    record["record_sha256"] = record_digest(record)
    return record


def record_digest(record: Mapping[str, Any]) -> str:
    """sha256 of the canonical record without its own ``record_sha256`` (detects edits)."""
    return hashlib.sha256(_canonical({k: v for k, v in record.items()
                                      if k != "record_sha256"})).hexdigest()


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented UTF-8 JSON through a temporary file in the same directory."""
    text = json.dumps(jsonable(obj), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    return write_bytes_atomic(path, text.encode("utf-8"))


def _is_internal(rel: str) -> bool:
    """Whether ``rel`` lies under ``internal/``, in any letter case (a copy made on or for a
    case-insensitive file system may spell it ``Internal``)."""
    return rel.split("/", 1)[0].lower() in INTERNAL_DIRS


def _walk(d: Path) -> tuple[list[str], list[str]]:
    """(every regular file, every symbolic link) under ``d``, as relative paths, following
    no link (``os.walk`` does not enter a linked folder)."""
    files, links = [], []
    for root, dirs, names in os.walk(d):
        for name in (*dirs, *names):
            p = Path(root) / name
            if p.is_symlink():
                links.append(p.relative_to(d).as_posix())
            elif name in names and p.is_file():
                files.append(p.relative_to(d).as_posix())
    return files, links


def _through_link(rel: str, links: list[str]) -> bool:
    """Whether ``rel`` is a symbolic link or lies under one."""
    return any(rel == link or rel.startswith(link + "/") for link in links)


@dataclass
class VerifyResult:
    """Outcome of :func:`verify_release`.

    ``ok`` when nothing changed, went missing or was added and the record is consistent.
    ``inconsistent``: one line per failed consistency check (field: what disagrees);
    ``consistency_checked`` / ``not_checked``: what those checks covered, and what they
    could not (e.g. ``internal/`` absent from a shared copy; not a failure).
    """

    directory: str
    checked: int = 0
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    inconsistent: list[str] = field(default_factory=list)
    consistency_checked: list[str] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)
    #: listed files absent from a folder checked with ``partial``: not given, not checked
    not_given: list[str] = field(default_factory=list)
    #: files under ``internal/`` (custodian-only, not part of the release, not a failure of
    #: the hashes); ``internal_present`` even when that folder holds no file
    internal: list[str] = field(default_factory=list)
    internal_present: bool = False

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.added or self.inconsistent)


def verify_release(directory: str | Path, *, partial: bool = False) -> VerifyResult:
    """Recompute the hashes of the outputs listed in ``directory/audit.json`` and check the
    record's consistency with itself and with the files (``docs/audit-schema.md``).

    Files under ``internal/`` (custodian-only) and the audit record itself are not part of
    the release and are not reported as added; the files under ``internal/`` are listed in
    ``internal`` (the command line warns that they must be removed before sharing).
    Every symbolic link inside ``directory`` (file or folder) is listed in ``added`` as
    ``"PATH (a symbolic link)"``: links are not followed, and a listed file reached through
    one is missing.  ``internal/`` is recognised in any letter case.
    ``partial``: the folder holds only some of the release's files (a partner given the CSV
    alone); a listed file that is absent is ``not_given`` rather than missing, and the
    checks that need it are not made (with no listed file present at all, they are missing:
    nothing checked is no verdict).
    """
    d = Path(directory)
    if not d.exists():
        raise ReportError(f"{d}: release directory not found")
    if not d.is_dir():
        raise ReportError(f"{d}: not a directory (give the release directory)")
    audit_path = d / AUDIT_NAME
    try:
        record = json.loads(audit_path.read_text(encoding="utf-8"))
        listed = {o["path"]: o for o in record["outputs"]}
    except FileNotFoundError:
        raise ReportError(f"{d}: no {AUDIT_NAME} in the release directory") from None
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
        raise ReportError(f"{d / AUDIT_NAME}: not a readable audit record") from None
    result = VerifyResult(directory=d.name)
    if record.get("record_sha256") != record_digest(record):
        result.changed.append(AUDIT_NAME)
    files, links = _walk(d)
    for rel, entry in sorted(listed.items()):
        p = d / rel
        if not p.is_file() or _through_link(rel, links):
            (result.not_given if partial else result.missing).append(rel)
            continue
        result.checked += 1
        if p.stat().st_size != entry.get("bytes") or _sha256(p) != entry.get("sha256"):
            result.changed.append(rel)
    for rel in sorted(files):
        if rel == AUDIT_NAME or rel in listed:
            continue
        if _is_internal(rel):
            result.internal.append(rel)
            continue
        result.added.append(rel)
    # a symbolic link (to a file or a folder, anywhere, even named like a listed file) is not
    # part of the release: the folder would carry whatever it points at (trial 26: a link to
    # the raw data passed `verify --shareable`, since rglob does not enter linked folders)
    result.added.extend(f"{rel} (a symbolic link)" for rel in sorted(links))
    result.internal_present = any(_is_internal(c.name) for c in d.iterdir())
    if partial and listed and not result.checked:
        # nothing to check is no evidence of anything
        result.missing.extend(result.not_given)
        result.not_given.clear()
    from fhirsynth.report.consistency import check_record

    consistency = check_record(record, d)
    result.inconsistent = consistency.problems
    result.consistency_checked = consistency.checked
    result.not_checked = consistency.not_checked
    return result
