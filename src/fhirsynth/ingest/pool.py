"""Grouping loose resources (Bulk NDJSON, single-resource files) by patient on disk.

Bulk exports split a patient across one file per resource type, so the reader cannot hold a
patient together in memory while reading.  Pass one writes each patient-linked resource to a
temporary partition file chosen by a hash of its patient id, and every other resource
(Medication, Organization, ...) to a temporary SQLite table keyed ``Type/id``.  Pass two reads
one partition at a time and emits its patients, so memory is bounded by a partition (about
1/``partitions`` of the input), not by the input.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import tempfile
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from fhirsynth.errors import Issue
from fhirsynth.ingest.group import (
    ReferenceIndex,
    duplicate_patient,
    normalize_reference,
    patient_reference,
)
from fhirsynth.ingest.records import PatientRecord
from fhirsynth.ingest.report import ImportReport
from fhirsynth.ingest.validate import iter_references

__all__ = ["BUNDLE_REF", "LoosePool"]

logger = logging.getLogger(__name__)

Resource = dict[str, Any]


#: the issue of a loose resource whose Patient came in a Bundle
BUNDLE_REF = ("refers to a patient held in a Bundle; Bundles are read as closed worlds; not "
              "attached to any patient")


def _link_element(resource: Resource) -> str:
    link = patient_reference(resource)
    return link[0] if link else ""


class LoosePool:
    """Loose resources spilled to disk, then emitted patient by patient.

    Parameters
    ----------
    report : ImportReport
        Receives counts and issues.
    seen : dict of str to str
        Patient ids already read in this import (shared with the Bundle reader).
    partitions : int
        Number of temporary partition files.
    tmp_dir : str, optional
        Where the temporary files go (default: the system temp folder).  They are deleted
        when :meth:`close` runs (also on errors).
    """

    def __init__(self, report: ImportReport, seen: dict[str, str], *, partitions: int = 64,
                 tmp_dir: str | None = None) -> None:
        self.report = report
        self.seen = seen
        self.partitions = max(1, partitions)
        self._dir = Path(tempfile.mkdtemp(prefix="fhirsynth-ingest-", dir=tmp_dir))
        self._files: list[IO[bytes] | None] = [None] * self.partitions
        self._db = sqlite3.connect(self._dir / "shared.sqlite")
        self._db.execute("CREATE TABLE shared (ref TEXT PRIMARY KEY, body BLOB)")
        self.linked: Counter[str] = Counter()
        #: ids of the Patients read as loose resources (``seen`` also holds Bundle ones)
        self.loose_ids: set[str] = set()
        #: the first resource linked to each patient id: (order, place, type, element)
        self._first: dict[str, tuple[int, str, str, str]] = {}
        self.size = 0

    def _part(self, pid: str) -> IO[bytes]:
        k = zlib.crc32(pid.encode()) % self.partitions
        fh = self._files[k]
        if fh is None:
            fh = self._files[k] = open(self._dir / f"part-{k:04d}.ndjson", "ab")  # noqa: SIM115
        return fh

    def add(self, resource: Resource, where: str) -> None:
        """Spill one cleaned, validated resource."""
        rtype = resource["resourceType"]
        self.size += 1
        if rtype == "Patient":
            pid = resource.get("id")
            if not isinstance(pid, str):
                self.report.add_issue(Issue(where, "Patient without id; skipped", "Patient"))
                self.report.drop("Patient", "no id")
                return
            if pid in self.seen:
                raise duplicate_patient(pid, self.seen[pid], where)
            self.seen[pid] = where
            self.loose_ids.add(pid)
            self._part(pid).write(orjson.dumps([pid, where, resource]) + b"\n")
            return
        link = patient_reference(resource)
        norm = normalize_reference(link[1]) if link else None
        if norm is not None and norm.startswith("Patient/"):
            pid = norm[len("Patient/"):]
            self.linked[pid] += 1
            if pid not in self._first:
                self._first[pid] = (self.size, where, rtype, link[0])
            self._part(pid).write(orjson.dumps([pid, where, resource]) + b"\n")
            return
        if link is not None and link[0] != "subject":
            self.report.orphans[rtype] += 1
            self.report.add_issue(Issue(where, "patient reference cannot be resolved (orphan)",
                                        rtype, link[0]))
            return
        rid = resource.get("id")
        if isinstance(rid, str):
            self._db.execute("INSERT OR REPLACE INTO shared VALUES (?, ?)",
                             (f"{rtype}/{rid}", orjson.dumps(resource)))
        self.report.skipped[f"{rtype} not linked to a patient"] += 1

    def orphan_ids(self) -> set[str]:
        """Patient ids that resources refer to but no Patient resource defines."""
        return {pid for pid in self.linked if pid not in self.seen}

    def bundle_ids(self) -> set[str]:
        """Patient ids that loose resources refer to but that only a Bundle holds (a Bundle
        is a closed world: such resources are not attached)."""
        return {pid for pid in self.linked if pid in self.seen and pid not in self.loose_ids}

    def first_link(self, pids: set[str]) -> tuple[str, str, str] | None:
        """``(place, resource type, element)`` of the first resource read that refers to
        one of ``pids``, for messages (never the id itself)."""
        firsts = [self._first[p] for p in pids if p in self._first]
        return min(firsts)[1:] if firsts else None

    def records(self, *, refs_from: dict[str, frozenset[str]] | None = None
                ) -> Iterator[PatientRecord]:
        """Emit the spilled patients, one partition at a time.

        ``refs_from`` limits which elements are searched for references to shared resources
        (the elements the spec reads); ``None`` searches every element.
        """
        for fh in self._files:
            if fh is not None:
                fh.close()
        self._db.commit()
        for k in range(self.partitions):
            path = self._dir / f"part-{k:04d}.ndjson"
            if not path.exists():
                continue
            groups: dict[str, tuple[Resource | None, str, dict[str, list[Resource]]]] = {}
            positions: dict[int, str] = {}  # id() of each resource -> its file and line
            with open(path, "rb") as fh:
                for line in fh:
                    pid, where, resource = orjson.loads(line)
                    positions[id(resource)] = where
                    patient, pwhere, res = groups.get(pid, (None, "", {}))
                    if resource["resourceType"] == "Patient":
                        groups[pid] = (resource, where, res)
                    else:
                        res.setdefault(resource["resourceType"], []).append(resource)
                        if pid not in groups:
                            groups[pid] = (None, where, res)
                        if pid not in self.seen and pid in self.report.invalid_patients:
                            self.report.dropped_with_patient[resource["resourceType"]] += 1
                        elif pid not in self.seen:
                            rtype = resource["resourceType"]
                            self.report.orphans[rtype] += 1
                            self.report.add_issue(Issue(
                                where, "refers to a Patient that is not in the input; not "
                                "attached to any patient (orphan)",
                                rtype, _link_element(resource)))
                        elif pid not in self.loose_ids:
                            rtype = resource["resourceType"]
                            self.report.bundle_refs[rtype] += 1
                            self.report.add_issue(Issue(where, BUNDLE_REF, rtype,
                                                        _link_element(resource)))
            path.unlink()
            for pid, (patient, where, res) in groups.items():
                if patient is None:
                    continue
                yield PatientRecord(patient_id=pid, patient=patient, resources=res,
                                    source=where.split(" line ")[0],
                                    index=self._index(res, refs_from), positions=positions)

    def _index(self, res: dict[str, list[Resource]],
               refs_from: dict[str, frozenset[str]] | None) -> ReferenceIndex:
        own: dict[str, Resource] = {}
        for items in res.values():
            for r in items:
                if isinstance(r.get("id"), str):
                    own[f"{r['resourceType']}/{r['id']}"] = r
        wanted: set[str] = set()
        for rtype, items in res.items():
            names = refs_from.get(rtype, ()) if refs_from is not None else None
            for r in items:
                values = r.values() if names is None else [r[n] for n in names if n in r]
                for value in values:
                    for ref in iter_references(value):
                        norm = normalize_reference(ref)
                        if norm and norm not in own:
                            wanted.add(norm)
        for ref in sorted(wanted):
            row = self._db.execute("SELECT body FROM shared WHERE ref = ?", (ref,)).fetchone()
            if row is not None:
                own[ref] = orjson.loads(row[0])
        return ReferenceIndex(own)

    def close(self) -> None:
        """Delete the temporary files."""
        for fh in self._files:
            if fh is not None and not fh.closed:
                fh.close()
        self._db.close()
        shutil.rmtree(self._dir, ignore_errors=True)
