"""The streaming FHIR R4 reader: input files in, one :class:`PatientRecord` per patient out.

Reads Bundles (any type, or a JSON array of them) Bundle by Bundle, and loose resources
(Bulk Data NDJSON, single-resource files, manifests' outputs) through a disk-backed pool, so
memory follows the largest patient rather than the input.  Every entry is cleaned and
validated on its own (:mod:`fhirsynth.ingest.validate`); what was read, kept and dropped goes
to an :class:`ImportReport`.  A Bundle is a closed world for references.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from fhirsynth.errors import ConfigError, FHIRValidationError, InputError, Issue
from fhirsynth.ingest.group import group_bundle
from fhirsynth.ingest.pool import LoosePool
from fhirsynth.ingest.records import PatientRecord
from fhirsynth.ingest.report import ImportReport
from fhirsynth.ingest.sources import InputFile, discover, iter_ndjson, read_json
from fhirsynth.ingest.validate import Validator
from fhirsynth.ingest.versions import is_resource_type

__all__ = ["ImportReport", "ReaderConfig", "iter_patients"]

logger = logging.getLogger(__name__)

#: resource types other than Bundle with a top-level ``entry`` list (FHIR R4)
ENTRY_TYPES = frozenset({"List"})


@dataclass(frozen=True, kw_only=True)
class ReaderConfig:
    """How the FHIR reader reads.  Frozen; every field keyword-only."""

    needed: Mapping[str, Iterable[str]] | None = None
    """Elements the feature spec reads, by resource type (``{"Observation": {"code",
    "value[x]"}}``).  ``None``: :data:`~fhirsynth.ingest.validate.DEFAULT_NEEDED`."""
    validation: Literal["needed", "full"] = "needed"
    """``needed``: validate only the needed elements plus the required ones (fast);
    ``full``: validate every element of every resource.  Both go element by element through
    the fhir.resources field types plus the model's resource-level rules (required, choice,
    nulls), which gives the verdicts of ``model_validate`` (tested) at a fraction of the cost."""
    strict: bool = False
    """Raise :class:`FHIRValidationError` listing every issue instead of dropping and
    reporting."""
    fhir_version: str = "R4"
    """The FHIR version of the input: the one setting that picks the models (R4 -> R4B)."""
    partitions: int = 64
    """Temporary partition files for loose (NDJSON) input."""
    tmp_dir: str | None = None
    """Folder for the temporary files of loose input (default: system temp)."""
    keep_test_patients: bool = False
    """Read Patients labelled as test data (``meta.security`` HL7 ActReason ``HTEST``, as
    fhirsynth's synthetic output is) like the others.  By default they are left out, with
    their resources, and counted: synthetic patients read as real ones would be modelled
    (and charged) as patients."""

    def __post_init__(self) -> None:
        if self.validation not in ("needed", "full"):
            raise ConfigError(f"validation ({self.validation!r}) must be 'needed' or 'full'")
        if not isinstance(self.partitions, int) or self.partitions < 1:
            raise ConfigError(f"partitions ({self.partitions!r}) must be an integer >= 1")


def iter_patients(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    needed: Mapping[str, Iterable[str]] | None = None,
    strict: bool = False,
    fhir_version: str = "R4",
    report: ImportReport | None = None,
    config: ReaderConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[PatientRecord]:
    """Stream the patients of FHIR input, one :class:`PatientRecord` at a time.

    Parameters
    ----------
    paths : path or iterable of paths
        Files (``.json``, ``.json.gz``, ``.ndjson``, ``.ndjson.gz``, Bulk manifests) and
        folders (walked recursively in sorted order).
    needed, strict, fhir_version
        Shortcuts for the :class:`ReaderConfig` fields; ignored when ``config`` is given.
    report : ImportReport, optional
        Filled while reading (pass one in to read it afterwards).
    config : ReaderConfig, optional
        All settings at once.
    progress : callable, optional
        Called as ``progress(files_done, files_total)`` after each file (for a progress bar;
        the library draws none itself).

    Yields
    ------
    PatientRecord
        Bundle patients in file order; loose (NDJSON) patients after all files are read.

    Raises
    ------
    InputError
        Unreadable input (missing path, malformed JSON with line/column, a malformed NDJSON
        line, truncated gzip, a file that is not FHIR, one Patient id twice).
    FHIRVersionError
        A resource of another FHIR version (R5, STU3) than ``fhir_version``.
    FHIRValidationError
        In strict mode: every issue of the file (or of the loose input) at once.
    """
    cfg = config or ReaderConfig(needed=needed, strict=strict, fhir_version=fhir_version)
    report = report if report is not None else ImportReport()
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    validator = Validator(report, needed=cfg.needed, full=cfg.validation == "full",
                          fhir_version=cfg.fhir_version)
    files = discover(items, notes=report.warnings, skipped=report.files_skipped)

    def left_out(record: PatientRecord) -> bool:
        """A Patient labelled as test data, counted and left out unless kept."""
        if cfg.keep_test_patients or not is_test_patient(record.patient):
            return False
        report.test_patients += 1
        return True

    seen: dict[str, str] = {}
    pool: LoosePool | None = None
    try:
        for n_done, f in enumerate(files):
            report.files.append(f.name)
            start = len(report.issues)
            if pool is None:
                pool = LoosePool(report, seen, partitions=cfg.partitions, tmp_dir=cfg.tmp_dir)
            batches = _paused(_read_file(f, validator, report, seen, pool))
            if cfg.strict:
                # every issue of the file is listed before any of its records is used
                batches = iter([[r for batch in batches for r in batch]])
                _raise_if_issues(report, start, f.name)
            for batch in batches:
                for record in batch:
                    if left_out(record):
                        continue
                    report.patients += 1
                    yield record
            if progress is not None:
                progress(n_done + 1, len(files))
        if pool is not None and pool.size:
            start = len(report.issues)
            if cfg.strict:
                _refuse_unattached(pool)
            refs_from = None if cfg.validation == "full" else validator.needed
            for record in pool.records(refs_from=refs_from):
                if left_out(record):
                    continue
                report.patients += 1
                yield record
            if cfg.strict:
                _raise_if_issues(report, start, "loose input")
        if report.test_patients:
            report.warnings.append(
                f"{report.test_patients} Patient(s) labelled as test data (meta.security "
                "HTEST, as fhirsynth's synthetic output is) were left out with their "
                "resources: synthetic patients are not real ones (keep_test_patients, "
                "`fhirsynth ingest --keep-test-patients`, reads them)")
        logger.info("read %d files: %d resources, %d accepted, %d patients, %d issues",
                    len(report.files), sum(report.resources_read.values()),
                    sum(report.resources_accepted.values()), report.patients,
                    report.issue_count)
    finally:
        if pool is not None:
            pool.close()


def is_test_patient(patient: Mapping[str, Any]) -> bool:
    """Whether a Patient carries the security label HTEST (HL7 ActReason: test health data)."""
    meta = patient.get("meta")
    labels = meta.get("security") if isinstance(meta, Mapping) else None
    return isinstance(labels, list) and any(
        isinstance(c, Mapping) and c.get("code") == "HTEST"
        and str(c.get("system", "")).endswith("v3-ActReason") for c in labels)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while one file is parsed and validated.

    Parsed JSON is acyclic and freed by reference counting; with the many long-lived objects
    of the model classes around, collections triggered by parsing cost more than the parsing
    itself (3x on Synthea bundles).  The previous state is restored before any record is
    yielded, so the caller's code never runs with the collector paused.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _paused(batches: Iterator[list[PatientRecord]]) -> Iterator[list[PatientRecord]]:
    """Step ``batches`` with the collector paused; the consumer runs with it as it was."""
    while True:
        with _gc_paused():
            batch = next(batches, None)
        if batch is None:
            return
        yield batch


#: what lenient reading does about an issue, at the end of its text; strict mode fails
#: instead, so its messages leave it out
_LENIENT_TAIL = re.compile(r"(?:; |, )(?:skipped|element dropped|dropped[^;,]*"
                           r"|read as its own type"
                           r"|the date is dropped, the patient kept as deceased)$")


def _raise_if_issues(report: ImportReport, start: int, where: str) -> None:
    new = [dataclasses.replace(i, problem=_LENIENT_TAIL.sub("", i.problem))
           for i in report.issues[start:]]
    if new:
        raise FHIRValidationError(f"{where}: {len(new)} FHIR issue(s) (strict mode)", new)


def _refuse_unattached(pool: LoosePool) -> None:
    """Strict mode: refuse loose resources that refer to no Patient of the input, or to one
    held in a Bundle, naming the first one read (file, line, type, element)."""
    for pids, what, why in (
            (pool.orphan_ids(), "point to no Patient in the input",
             "refers to a Patient that is not in the input (orphan)"),
            (pool.bundle_ids(), "point to a patient held in a Bundle",
             "refers to a patient held in a Bundle; Bundles are read as closed worlds")):
        first = pool.first_link(pids) if pids else None
        if first is not None:
            where, rtype, element = first
            raise FHIRValidationError(
                f"{where}: {rtype}.{element}: {why}; {len(pids):,} patient reference(s) in "
                f"loose input {what} (strict mode)")


def _not_fhir(f: InputFile, where: str, report: ImportReport) -> bool:
    """Raise for a named file that is not FHIR; skip (and count) one found in a folder."""
    if f.explicit:
        raise InputError(f"{where}: not a FHIR resource or Bundle (no resourceType)")
    report.files.pop()
    report.files_skipped["not FHIR (no resourceType)"] += 1
    message = f"skipping {f.name}: not a FHIR resource or Bundle (no resourceType)"
    report.warnings.append(message)
    logger.info("%s", message)  # the CLI prints report.warnings once, as a warning
    return True


def _read_file(f: InputFile, validator: Validator, report: ImportReport, seen: dict[str, str],
               pool: LoosePool) -> Iterator[list[PatientRecord]]:
    """Read one file: each Bundle yields its records, loose resources go to ``pool``."""
    if f.kind == "json":
        doc = read_json(f.path, label=f.name)
        units: list[Any] = doc if isinstance(doc, list) else [doc]
        if not units:
            _not_fhir(f, f.name, report)
        for k, unit in enumerate(units):
            where = f"{f.name}[{k}]" if isinstance(doc, list) else f.name
            if not (isinstance(unit, dict) and isinstance(unit.get("resourceType"), str)):
                _not_fhir(f, where, report)
                return
            batch = _read_unit(unit, where, validator, report, seen, pool)
            if batch:
                yield batch
        return
    # an NDJSON file is NDJSON whatever its first line: a line that is not a resource is an
    # invalid line; only a file without a single resource in it is skipped as not FHIR (a
    # Bulk export's log.ndjson)
    start, bad, resources, first_bad = len(report.issues), 0, 0, 0
    named = _named_type(f.path.name, validator.version)
    misfiled: list[int] = []
    for lineno, _raw, value in iter_ndjson(f.path, label=f.name):
        where = f"{f.name} line {lineno}"
        if not (isinstance(value, dict) and isinstance(value.get("resourceType"), str)):
            bad += 1
            first_bad = first_bad or lineno
            report.add_issue(Issue(where, "line is not a FHIR resource (resourceType missing "
                                   "or not a string); skipped", field="resourceType"))
            continue
        resources += 1
        rtype = value["resourceType"]
        if named is not None and rtype != named and is_resource_type(validator.version, rtype):
            # Bulk Data files hold one type each: another type says the export is mixed up
            # (an unknown type is the validator's to report, never quoted)
            misfiled.append(lineno)
            report.misfiled[rtype] += 1
            article = "an" if rtype[0] in "AEIOU" else "a"
            report.add_issue(Issue(where, f"{article} {rtype} in a file named for {named} "
                                   "resources; read as its own type", rtype, "resourceType"))
        batch = _read_unit(value, where, validator, report, seen, pool)
        if batch:
            yield batch
    if bad and not resources:
        # no line of the file is a resource: the file is not FHIR, not a file of bad lines
        del report.issues[start:]
        report.issue_count -= bad
        _not_fhir(f, f.name, report)
    elif bad:
        report.skipped["NDJSON line without resourceType"] += bad
        report.warnings.append(
            f"{f.name}: {bad:,} line(s) skipped as not FHIR resources (resourceType missing or "
            f"not a string), the first at line {first_bad}; --strict fails on them instead")
    if misfiled:
        report.warnings.append(
            f"{f.name}: {len(misfiled):,} line(s) hold a resource of another type than the "
            f"file's name says ({named}), the first at line {misfiled[0]}; read as their own "
            "type; --strict fails on them instead")


#: the resource type a Bulk Data file is named for: ``Condition.000.ndjson``,
#: ``Condition_part00012.ndjson``, ``Condition-1.ndjson.gz``, ``Condition.ndjson``
_NAMED_FOR = re.compile(r"^([A-Z][A-Za-z]+)(?:[._\-]\S*|\d\S*)?\.(?:ndjson|jsonl)(?:\.gz)?$")


def _named_type(name: str, version: str) -> str | None:
    """The resource type an NDJSON file's name says it holds, or ``None``."""
    m = _NAMED_FOR.match(name)
    return m.group(1) if m and is_resource_type(version, m.group(1)) else None


def _read_unit(unit: dict[str, Any], where: str, validator: Validator, report: ImportReport,
               seen: dict[str, str], pool: LoosePool) -> list[PatientRecord]:
    if unit["resourceType"] == "Bundle":
        return group_bundle(unit, where, validator, report, seen)
    entries = unit.get("entry")
    if isinstance(entries, list) and entries and unit["resourceType"] not in ENTRY_TYPES:
        # a Bundle under another name loses every resource in it: say so, naming the place
        report.warnings.append(
            f"{where}: resourceType is not Bundle but the document has {len(entries):,} "
            "entries, all dropped with it; if it is a Bundle, fix its resourceType")
    resource = validator.check(unit, where)
    if resource is not None:
        pool.add(resource, where)
    elif unit["resourceType"] == "Patient" and isinstance(unit.get("id"), str):
        report.invalid_patients.add(unit["id"])  # its resources are lost with it
    return []
