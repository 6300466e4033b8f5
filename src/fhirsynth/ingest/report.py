"""The import report: what the FHIR reader read, kept, dropped and why.

Counts, resource types, element names, positions and kinds of problem only: no patient value
ever enters it.  ``to_dict`` gives the JSON form for the audit record; by default input files
are named by their position (``file[3]``), because file names can embed patient names.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fhirsynth.errors import Issue

__all__ = ["UNKNOWN_ELEMENT", "UNKNOWN_TYPE", "ImportReport", "drop_warning", "issue_row",
           "stored_report"]

#: how counts and issues name a resource type that is not in the FHIR specification: the
#: string itself is input text (a name, an MRN), never shown
UNKNOWN_TYPE = "(unknown resource type)"
#: how counts and issues name an element that is not in the FHIR specification
UNKNOWN_ELEMENT = "(unknown element)"

#: Issues kept in full; past this only the counts grow (memory stays bounded).
MAX_ISSUES = 10_000


@dataclass
class ImportReport:
    """Counts and issues of one import.

    Attributes
    ----------
    files : list of str
        Display names of the files read, in reading order.
    files_skipped : Counter
        Files seen but not read, by reason (``not FHIR (no resourceType)``).
    resources_read, resources_accepted : Counter
        Resources by ``resourceType``: every one parsed, and the ones kept.
    patients : int
        Patient records produced.
    dropped : Counter
        Resources dropped, by ``"<type>: <reason>"``.
    skipped : Counter
        Things not read as resources (``entry without resource``), by reason.
    unknown_elements : dict of str to Counter
        Unknown elements dropped, by resource type then element path.
    orphans : Counter
        Resources referring to a Patient that is not in the input, by type.
    bundle_refs : Counter
        Loose (NDJSON) resources referring to a Patient that came in a Bundle, by type: a
        Bundle is a closed world, so they are not attached (counted apart from orphans).
    misfiled : Counter
        Resources of Bulk NDJSON files named for another type (an Encounter in
        ``Condition.000.ndjson``), by their type: read as their own type, and counted.
    dropped_with_patient : Counter
        Resources whose own Patient was dropped as invalid, by type: they are lost with it
        (not counted as orphans).
    elements_dropped : Counter
        Invalid elements dropped while their resource was kept, by ``"<type>.<element>"``.
    invalid_patients : set of str
        Ids of loose (NDJSON) Patients dropped as invalid, so that their resources count as
        lost with them; private, never part of :meth:`to_dict`.
    validations : Counter
        How each kept resource was validated (``full``, ``projection``) or why not.
    stripped : Counter
        Free text removed from records (narrative, attachment data), by element.
    issues : list of Issue
        Every issue, up to ``MAX_ISSUES``; ``issue_count`` counts all of them.
    warnings : list of str
        Warnings for the custodian that name input files (a file skipped as not FHIR);
        not part of :meth:`to_dict` (file names can embed patient names): the reader's
        caller shows them on the console and in the internal report only.
    """

    files: list[str] = field(default_factory=list)
    files_skipped: Counter[str] = field(default_factory=Counter)
    resources_read: Counter[str] = field(default_factory=Counter)
    resources_accepted: Counter[str] = field(default_factory=Counter)
    patients: int = 0
    #: Patients left out as labelled test data (``ReaderConfig.keep_test_patients``)
    test_patients: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    unknown_elements: defaultdict[str, Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter)
    )
    orphans: Counter[str] = field(default_factory=Counter)
    bundle_refs: Counter[str] = field(default_factory=Counter)
    misfiled: Counter[str] = field(default_factory=Counter)
    dropped_with_patient: Counter[str] = field(default_factory=Counter)
    elements_dropped: Counter[str] = field(default_factory=Counter)
    invalid_patients: set[str] = field(default_factory=set)
    validations: Counter[str] = field(default_factory=Counter)
    stripped: Counter[str] = field(default_factory=Counter)
    issues: list[Issue] = field(default_factory=list)
    issue_count: int = 0
    warnings: list[str] = field(default_factory=list)

    def add_issue(self, issue: Issue) -> None:
        """Record one issue (kept in full while under ``MAX_ISSUES``)."""
        self.issue_count += 1
        if len(self.issues) < MAX_ISSUES:
            self.issues.append(issue)

    def drop(self, resource_type: str, reason: str) -> None:
        """Count one dropped resource (by type and reason; a type outside the FHIR
        specification is counted under one key, which says it all)."""
        self.dropped[UNKNOWN_TYPE if resource_type == UNKNOWN_TYPE
                     else f"{resource_type}: {reason}"] += 1

    def anonymise(self, text: str) -> str:
        """``text`` with every input file name replaced by ``file[i]`` (exports name files
        after patients)."""
        for i in sorted(range(len(self.files)), key=lambda j: -len(self.files[j])):
            if self.files[i]:
                text = text.replace(self.files[i], f"file[{i}]")
        return text

    def to_dict(self, *, file_names: bool = False) -> dict[str, Any]:
        """The report as plain JSON-ready data.

        Parameters
        ----------
        file_names : bool, default False
            Keep input file names as messages show them (a name that may hold an
            identifier is withheld: :func:`~fhirsynth.ingest.sources.display_name`).  Off
            by default: exports name files after patients (Synthea does), so issues then
            say ``file[i]`` instead.
        """

        def where(text: str) -> str:
            return text if file_names else self.anonymise(text)

        return {
            "files_read": len(self.files),
            "files": list(self.files) if file_names
            else [f"file[{i}]" for i in range(len(self.files))],
            "files_skipped": dict(self.files_skipped),
            "resources_read": dict(sorted(self.resources_read.items())),
            "resources_accepted": dict(sorted(self.resources_accepted.items())),
            "resources_read_total": sum(self.resources_read.values()),
            "resources_accepted_total": sum(self.resources_accepted.values()),
            "patients": self.patients,
            "test_patients_left_out": self.test_patients,
            "dropped": dict(sorted(self.dropped.items())),
            "skipped": dict(sorted(self.skipped.items())),
            "unknown_elements_dropped": {
                t: dict(sorted(c.items())) for t, c in sorted(self.unknown_elements.items())
            },
            "orphans": dict(sorted(self.orphans.items())),
            "refer_to_bundle_patients": dict(sorted(self.bundle_refs.items())),
            "in_files_named_for_another_type": dict(sorted(self.misfiled.items())),
            "dropped_with_patient": dict(sorted(self.dropped_with_patient.items())),
            "elements_dropped": dict(sorted(self.elements_dropped.items())),
            "validations": dict(sorted(self.validations.items())),
            "free_text_stripped": dict(sorted(self.stripped.items())),
            "issue_count": self.issue_count,
            "issues": [
                {"where": where(i.where), "resource": i.resource, "field": i.field,
                 "problem": i.problem}
                for i in self.issues
            ],
        }


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _by_type(counts: Mapping[str, int]) -> Counter[str]:
    """``{"Patient: invalid value": 2}`` -> ``{"Patient": 2}``."""
    out: Counter[str] = Counter()
    for key, n in counts.items():
        out[str(key).partition(": ")[0]] += int(n)
    return out


def drop_warning(rep: Mapping[str, Any]) -> str | None:
    """One line for the custodian saying what the FHIR reader dropped, or ``None``.

    Counts, resource types and element paths only (never a value, id or date): resources
    dropped as invalid (a dropped Patient with the resources lost with it), invalid
    elements dropped from kept resources, orphans, and loose resources whose patient came in
    a Bundle.
    """
    dropped = _by_type(rep.get("dropped") or {})
    lost = sum(int(v) for v in (rep.get("dropped_with_patient") or {}).values())
    elements = Counter({str(k): int(v) for k, v in (rep.get("elements_dropped") or {}).items()})
    orphans = sum(int(v) for v in (rep.get("orphans") or {}).values())
    bundled = sum(int(v) for v in (rep.get("refer_to_bundle_patients") or {}).values())
    parts = []
    if dropped:
        kinds = []
        for rtype, n in sorted(dropped.items(), key=lambda kv: (kv[0] != "Patient", -kv[1])):
            text = f"{n:,} of an unknown resource type" if rtype == UNKNOWN_TYPE \
                else f"{n:,} {rtype}"
            if rtype == "Patient" and lost:
                text += f" with {'its' if n == 1 else 'their'} {_plural(lost, 'resource')}"
            kinds.append(text)
        parts.append(f"{_plural(sum(dropped.values()), 'resource')} dropped as invalid "
                     f"({', '.join(kinds)})")
    elif lost:
        parts.append(f"{_plural(lost, 'resource')} dropped with their invalid Patient")
    if elements:
        top = ", ".join(k for k, _ in elements.most_common(3))
        more = ", ..." if len(elements) > 3 else ""
        parts.append(f"{_plural(sum(elements.values()), 'invalid element')} dropped from "
                     f"kept resources ({top}{more})")
    if orphans:
        parts.append(f"{_plural(orphans, 'resource')} not attached to any patient (orphans)")
    if bundled:
        parts.append(f"{_plural(bundled, 'loose resource')} not attached: "
                     f"{'it refers' if bundled == 1 else 'they refer'} to a patient held in a "
                     "Bundle; Bundles are read as closed worlds (put such resources in "
                     "their patient's Bundle, or give the whole input as NDJSON)")
    if not parts:
        return None
    return ("FHIR input: " + "; ".join(parts) + "; `fhirsynth run` lists each in its "
            "internal/validation.pdf, and --strict fails on the first, naming it")


def issue_row(issue: Any) -> list[str]:
    """``[place, resource type, field, reason]`` of one import-report issue.

    FHIR issues are dicts (the resource id is left out: only its type is shown); CSV issues
    are ``"file line N: column: problem"`` strings.
    """
    if isinstance(issue, Mapping):
        rtype = str(issue.get("resource") or "").partition("/")[0]
        return [str(issue.get("where", "")), rtype, str(issue.get("field") or ""),
                str(issue.get("problem", ""))]
    where, _, rest = str(issue).partition(": ")
    column, sep, problem = rest.partition(": ")
    return [where, "", column, problem] if sep else [where, "", "", rest]


def stored_report(rep: Mapping[str, Any]) -> dict[str, Any]:
    """The import report as ``internal/evaluation.json`` keeps it: issues name the resource
    type, not its id, and the warnings and refusals (which name input files) are left to the
    console and the internal PDF."""
    out = {k: v for k, v in rep.items() if k not in ("warnings", "refusals")}
    if isinstance(out.get("issues"), list):
        out["issues"] = [dict(i, resource=str(i.get("resource") or "").partition("/")[0])
                         if isinstance(i, Mapping) else i for i in out["issues"]]
    return out
