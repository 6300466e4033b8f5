"""Grouping the resources of one Bundle by patient, with O(1) reference resolution.

A Bundle is a closed world: its entries are indexed once (by ``fullUrl`` and by
``Type/id``), each resource is attached to the Patient its ``subject`` / ``patient`` /
``beneficiary`` names, and a reference to a Patient the Bundle does not hold is reported as
an orphan (it never creates a patient).  Reference forms: ``urn:uuid:``, ``Patient/id``,
absolute URLs ending in ``/Patient/id`` (with or without ``/_history/n``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from fhirsynth.errors import InputError, Issue
from fhirsynth.ingest.clean import json_kind
from fhirsynth.ingest.records import PatientRecord
from fhirsynth.ingest.report import ImportReport
from fhirsynth.ingest.validate import PATIENT_KEYS, Validator

__all__ = ["ReferenceIndex", "group_bundle", "normalize_reference", "patient_reference"]

Resource = dict[str, Any]

_TYPED = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


def normalize_reference(ref: str) -> str | None:
    """``Type/id`` for relative or absolute literal references, else ``None``."""
    if ref.startswith(("urn:", "#")) or "?" in ref:
        return None
    m = _TYPED.search(ref)
    return f"{m.group(1)}/{m.group(2)}" if m else None


def patient_reference(resource: Resource) -> tuple[str, str] | None:
    """``(element, reference)`` of the first patient-linking element that has a reference."""
    for key in PATIENT_KEYS:
        value = resource.get(key)
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, dict) and isinstance(value.get("reference"), str):
            return key, value["reference"]
    return None


def looks_like_patient(ref: str) -> bool:
    """Whether an unresolved reference was meant for a Patient (or is untyped)."""
    norm = normalize_reference(ref)
    return ref.startswith("urn:uuid:") or (norm is not None and norm.startswith("Patient/"))


class ReferenceIndex(Mapping[str, Resource]):
    """Resources by every reference form; lookups also try the normalised ``Type/id``."""

    def __init__(self, data: dict[str, Resource]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Resource:
        try:
            return self._data[key]
        except KeyError:
            norm = normalize_reference(key)
            if norm is None:
                raise
            return self._data[norm]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


#: requests of a transaction or batch that carry no resource
_BODILESS = frozenset({"GET", "HEAD", "DELETE"})


def _needs_resource(bundle_type: object, entry: Mapping[str, Any]) -> bool:
    """Whether a Bundle entry without ``resource`` lost one: always in a collection or a
    document; in a transaction or batch unless it is a GET, HEAD or DELETE request.  A
    batch or transaction response, a history, a searchset or a message: never said
    (responses and history entries may carry none)."""
    if bundle_type in ("collection", "document"):
        return True
    if bundle_type in ("transaction", "batch"):
        request = entry.get("request")
        method = request.get("method") if isinstance(request, Mapping) else None
        return method not in _BODILESS
    return False


def duplicate_patient(pid: str, first: str, second: str) -> InputError:
    """The error for one Patient id defined twice."""
    del pid  # never quoted: in Bulk exports the Patient id is the MRN
    return InputError(f"one Patient id is defined twice: at {first} and at {second}; "
                      "fhirsynth does not merge patients (remove one or give distinct ids)")


def group_bundle(bundle: Resource, where: str, validator: Validator, report: ImportReport,
                 seen: dict[str, str]) -> list[PatientRecord]:
    """The patients of one Bundle, each with its resources.

    Parameters
    ----------
    bundle : dict
        The Bundle (parsed JSON).
    where : str
        Its place for messages (file name, array index).
    validator : Validator
        Cleans and validates each entry on its own.
    report : ImportReport
        Receives counts and issues.
    seen : dict of str to str
        Patient ids already read in this import and where; a second one is an error.
    """
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise InputError(f"{where}: Bundle.entry is not a list")
    index: dict[str, Resource] = {}
    patient_keys: dict[str, str] = {}
    patients: dict[str, Resource] = {}
    accepted: list[tuple[str, Resource]] = []
    records: list[PatientRecord] = []
    lost: set[str] = set()

    not_objects: list[str] = []
    no_resource: list[str] = []
    for i, entry in enumerate(entries):
        w = f"{where} entry[{i}]"
        if not isinstance(entry, dict):
            # JSON that is no FHIR at all: an issue (so --strict fails on it), not a quiet skip
            not_objects.append(w)
            report.add_issue(Issue(w, f"entry is {json_kind(entry)}, not an object; skipped"))
            continue
        resource = entry.get("resource")
        if "resource" in entry and not isinstance(resource, dict):
            not_objects.append(w)
            report.add_issue(Issue(w, f"entry.resource is {json_kind(resource)}, not an "
                                   "object; skipped", field="resource"))
            continue
        if resource is None:
            # legitimate in a batch/transaction response or a history (a response alone), and
            # for a GET, HEAD or DELETE request; in other Bundles a resource was lost
            report.skipped["Bundle entry without resource"] += 1
            if _needs_resource(bundle.get("type"), entry):
                no_resource.append(w)
                report.add_issue(Issue(w, f"entry has no resource (a {bundle['type']} Bundle "
                                       "entry needs one); skipped", field="resource"))
            continue
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str):
            report.add_issue(Issue(w, "entry resource has no resourceType; skipped"))
            report.drop("(none)", "no resourceType")
            continue
        if rtype == "Bundle":
            records.extend(group_bundle(resource, w, validator, report, seen))
            continue
        if validator.check(resource, w) is None:
            if rtype == "Patient":
                # its resources are lost with it, not orphans of a Patient never exported
                rid = resource.get("id")
                lost.update(k for k in (entry.get("fullUrl"), f"Patient/{rid}"
                                        if isinstance(rid, str) else None) if isinstance(k, str))
            continue
        full_url = entry.get("fullUrl")
        rid = resource.get("id")
        keys = [k for k in (full_url, f"{rtype}/{rid}" if isinstance(rid, str) else None)
                if isinstance(k, str)]
        for key in keys:
            index[key] = resource
        if rtype == "Patient":
            pid = rid if isinstance(rid, str) else full_url
            if not isinstance(pid, str):
                report.add_issue(Issue(w, "Patient has neither id nor fullUrl; skipped",
                                       "Patient"))
                report.drop("Patient", "no id")
                continue
            if pid in seen:
                raise duplicate_patient(pid, seen[pid], w)
            seen[pid] = w
            patients[pid] = resource
            for key in (*keys, f"Patient/{pid}"):
                patient_keys[key] = pid
        else:
            accepted.append((w, resource))

    grouped: dict[str, dict[str, list[Resource]]] = {pid: {} for pid in patients}
    positions = {id(patients[pid]): w for pid, w in seen.items() if pid in patients}
    for w, resource in accepted:
        positions[id(resource)] = w
        link = patient_reference(resource)
        rtype = resource["resourceType"]
        if link is None:
            report.skipped[f"{rtype} not linked to a patient"] += 1
            continue
        key, ref = link
        pid = patient_keys.get(ref)
        if pid is None:
            norm = normalize_reference(ref)
            pid = patient_keys.get(norm) if norm else None
        if pid is not None:
            grouped[pid].setdefault(rtype, []).append(resource)
        elif ref in lost or normalize_reference(ref) in lost:
            report.dropped_with_patient[rtype] += 1
        elif looks_like_patient(ref) or key != "subject":
            report.orphans[rtype] += 1
            report.add_issue(Issue(w, "refers to a Patient that is not in this Bundle; not "
                                   "attached to any patient (orphan)",
                                   rtype, key))
        else:
            report.skipped[f"{rtype} whose subject is not a Patient"] += 1

    if not_objects:
        report.skipped["Bundle entry that is not an object"] += len(not_objects)
        report.warnings.append(
            f"{where}: {len(not_objects):,} Bundle entr{'y' if len(not_objects) == 1 else 'ies'}"
            f" skipped as not JSON objects (or with a resource that is not one), the first at "
            f"{not_objects[0].rpartition(' ')[2]}; --strict fails on them instead")
    if no_resource:
        report.warnings.append(
            f"{where}: {len(no_resource):,} {bundle['type']} Bundle "
            f"entr{'y' if len(no_resource) == 1 else 'ies'} without a resource skipped, the "
            f"first at {no_resource[0].rpartition(' ')[2]}; --strict fails on them instead")
    shared = ReferenceIndex(index)
    for pid, patient in patients.items():
        records.append(PatientRecord(patient_id=pid, patient=patient, resources=grouped[pid],
                                     source=where, index=shared, positions=positions))
    return records
