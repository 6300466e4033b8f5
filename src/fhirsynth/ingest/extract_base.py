"""Shared pieces of FHIR feature extraction: the report, the evaluation context, dates.

:class:`ExtractReport` collects issues and counts without patient values; :class:`Ctx`
carries one record through the rules of one row; the date helpers read FHIR partial dates
(``YYYY``, ``YYYY-MM``) without ever defaulting a missing part to a fixed date.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fhirsynth.errors import Issue
from fhirsynth.ingest.records import PatientRecord

__all__ = [
    "EFFECTIVE", "LOINC", "NULL_CODES", "PATIENT_FIELDS", "RXNORM", "SNOMED", "URL_BIRTHSEX",
    "URL_ETHNICITY", "URL_RACE", "Ctx", "ExtractReport", "codings", "first_date",
    "on_or_before", "parse_date", "sort_key", "years_between",
]

Resource = dict[str, Any]

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
URL_RACE = US_CORE + "us-core-race"
URL_ETHNICITY = US_CORE + "us-core-ethnicity"
URL_BIRTHSEX = US_CORE + "us-core-birthsex"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NULL_CODES = ("ASKU", "UNK")

_DATE_RE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?(?:T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)?$")
PATIENT_FIELDS = {
    "age": ("birthDate", "deceasedDateTime"),
    "birth_year": ("birthDate",),
    "birth_date_precision": ("birthDate",),
    "gender": ("gender",),
    "birth_sex": ("extension",),
    "race": ("extension",),
    "ethnicity": ("extension",),
    "marital_status": ("maritalStatus",),
    "state": ("address",),
    "deceased": ("deceasedBoolean", "deceasedDateTime"),
}
EFFECTIVE = ("effectiveDateTime", "effectivePeriod", "effectiveInstant", "issued")


@dataclass
class ExtractReport:
    """What extraction found wrong or noteworthy (private: the custodian's internal report).

    ``counts`` holds counters by kind (``"<column>: unknown unit"``); ``issues`` keeps the
    first ``max_issues`` issues in full.  No patient value is ever stored here.
    """

    issues: list[Issue] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    max_issues: int = 1000
    #: the first issue of each kind, kept past ``max_issues`` (messages name the first)
    first: dict[str, Issue] = field(default_factory=dict)

    def add(self, kind: str, record: PatientRecord, resource: Resource | None = None,
            field_: str = "", problem: str = "") -> None:
        self.counts[kind] += 1
        if len(self.issues) < self.max_issues or kind not in self.first:
            rid = ""
            if resource is not None:
                rid = str(resource.get("resourceType", "?"))  # never the id (an MRN?)
            issue = Issue(where=record.where(resource) or "<record>", resource=rid,
                          field=field_, problem=problem or kind)
            self.first.setdefault(kind, issue)
            if len(self.issues) < self.max_issues:
                self.issues.append(issue)

    def count(self, kind: str, n: int = 1) -> None:
        self.counts[kind] += n


@dataclass
class Ctx:
    """Evaluation context of one record."""

    record: PatientRecord
    ref: date
    report: ExtractReport
    column: str
    #: per-record memo shared by the columns of one row (indexes built once per patient)
    cache: dict[str, Any] = field(default_factory=dict)


def parse_date(value: object) -> tuple[date, str] | None:
    """A FHIR date/dateTime as (midpoint date of its precision, precision); None if invalid.

    ``YYYY`` -> 1 July (``"year"``), ``YYYY-MM`` -> the 15th (``"month"``), a full date or a
    dateTime -> that day (``"day"``).  The midpoint halves the worst-case error of an age.
    """
    if not isinstance(value, str):
        return None
    m = _DATE_RE.match(value.strip())
    if not m:
        return None
    y, mo, d = m.group(1), m.group(2), m.group(3)
    try:
        if mo is None:
            return date(int(y), 7, 1), "year"
        if d is None:
            return date(int(y), int(mo), 15), "month"
        return date(int(y), int(mo), int(d)), "day"
    except ValueError:
        return None


def years_between(a: date, b: date) -> int:
    return b.year - a.year - ((b.month, b.day) < (a.month, a.day))


def first_date(res: Resource, keys: Iterable[str]) -> str | None:
    """The first date-like element of ``res`` among ``keys`` (period -> its start)."""
    for k in keys:
        v = res.get(k)
        if isinstance(v, dict):
            v = v.get("start") or v.get("end")
        if isinstance(v, str) and v:
            return v
    return None


def sort_key(when: str | None) -> str:
    return when or ""


def on_or_before(when: str | None, ref: date) -> bool:
    """Undated resources count; dated ones only up to the reference date."""
    if when is None:
        return True
    parsed = parse_date(when)
    return parsed is None or parsed[0] <= ref or when[:10] <= ref.isoformat()


def codings(concept: object) -> Iterator[Mapping[str, Any]]:
    if isinstance(concept, Mapping):
        for c in concept.get("coding", ()) or ():
            if isinstance(c, Mapping) and isinstance(c.get("code"), str):
                yield c
