"""The contract between the FHIR reader and the feature extractor.

The reader (:mod:`fhirsynth.ingest.fhir`) streams :class:`PatientRecord` objects: one
patient with every resource that refers to it, already validated and grouped.  The feature
extractor (:mod:`fhirsynth.ingest.features`) folds each record into one row.  A record lives
only as long as it takes to fold it, so memory stays bounded by the largest patient.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PatientRecord"]

Resource = dict[str, Any]


@dataclass
class PatientRecord:
    """One patient and the resources that refer to it.

    Attributes
    ----------
    patient_id : str
        The source ``Patient.id``.  Internal only: it never reaches any output.
    patient : dict
        The Patient resource (JSON form, unknown elements already dropped).
    resources : dict of str to list of dict
        The patient's other resources by ``resourceType`` (Condition, Observation, ...).
    source : str
        Where the patient came from (file name), for messages.
    positions : mapping of int to str
        Where each of the record's resources was read (``file line N`` or
        ``file entry[i]``), keyed by ``id()`` of the resource object, for messages that must
        find a resource without quoting its id; see :meth:`where`.
    index : mapping of str to dict
        Non-patient resources the patient's resources may reference (Medication,
        Encounter...), keyed by every form of reference that names them
        (``urn:uuid:...``, ``Medication/123``, absolute URL).
    """

    patient_id: str
    patient: Resource
    resources: dict[str, list[Resource]] = field(default_factory=dict)
    source: str = ""
    index: Mapping[str, Resource] = field(default_factory=dict)
    positions: Mapping[int, str] = field(default_factory=dict, repr=False)

    def where(self, resource: Resource | None = None) -> str:
        """The file and line or entry of ``resource`` (of the record), else the file."""
        if resource is not None and id(resource) in self.positions:
            return self.positions[id(resource)]
        return self.source

    def of_type(self, resource_type: str) -> list[Resource]:
        return self.resources.get(resource_type, [])

    def resolve(self, reference: str | None, context: Resource | None = None) -> Resource | None:
        """The resource a reference names: ``#id`` in ``context.contained``, else the index."""
        if not reference:
            return None
        if reference.startswith("#"):
            for c in (context or {}).get("contained", ()) or ():
                if isinstance(c, dict) and c.get("id") == reference[1:]:
                    return c
            return None
        return self.index.get(reference)
