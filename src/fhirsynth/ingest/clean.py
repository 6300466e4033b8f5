"""Cleaning one FHIR resource before validation: what is removed, and the issue for each.

Unknown top-level elements, extensions without ``url`` and narrative without ``div`` are
removed with an :class:`~fhirsynth.errors.Issue` each.  Free text is stripped without one:
every narrative, attachment ``data``, and the names and contacts of contained people.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fhirsynth.errors import Issue
from fhirsynth.ingest.report import UNKNOWN_ELEMENT, ImportReport
from fhirsynth.ingest.versions import element_version_hint

__all__ = ["as_list", "clean_resource", "format_path", "json_kind"]

_FREE_TEXT: dict[str, tuple[tuple[str, ...], ...]] = {
    "DocumentReference": (("content", "attachment"),),
    "DiagnosticReport": (("presentedForm",),),
    "Media": (("content",),),
}
_PEOPLE = frozenset({"Practitioner", "RelatedPerson", "Person", "Patient"})
_IDENTIFYING = frozenset({"name", "telecom", "address", "photo", "identifier", "contact"})


def format_path(parts: Iterable[Any]) -> str:
    """``("extension", 0, "url")`` -> ``extension[0].url``."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def as_list(value: Any) -> list[Any]:
    """``value`` when it is a list, else an empty list."""
    return value if isinstance(value, list) else []


def json_kind(value: Any) -> str:
    """The JSON kind of ``value`` with its article (``a string``), never the value itself."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def clean_resource(r: dict[str, Any], aliases: frozenset[str], label: str, where: str,
                   report: ImportReport) -> None:
    """Remove unknown elements, url-less extensions and free text from ``r`` in place."""
    rtype = r["resourceType"]
    for key in [k for k in r if k not in aliases and k != "resourceType"]:
        del r[key]
        # an element of another FHIR version is named; any other key is input text (an MRN
        # used as a key), counted and never shown
        hint = element_version_hint(rtype, key)
        shown = key if hint else ""
        report.unknown_elements[rtype][shown or UNKNOWN_ELEMENT] += 1
        report.add_issue(Issue(where, "unknown element, dropped" + hint, label, shown))
    if "text" in r:
        text = r.pop("text")
        report.stripped["text"] += 1
        if not (isinstance(text, dict) and "div" in text):
            report.add_issue(Issue(where, "narrative without div (required), dropped",
                                   label, "text.div"))
    for c in as_list(r.get("contained")):
        if not isinstance(c, dict):
            continue
        if "text" in c:
            del c["text"]
            report.stripped["contained.text"] += 1
        if c.get("resourceType") in _PEOPLE:
            # a contained person is never a feature; its name and contacts identify
            for key in _IDENTIFYING & c.keys():
                del c[key]
                report.stripped[f"contained {c['resourceType']}.{key}"] += 1
    for key in ("extension", "modifierExtension"):
        if isinstance(r.get(key), list):
            _clean_extensions(report, r[key], (key,), label, where)
    for path in _FREE_TEXT.get(rtype, ()):
        _strip_data(report, r.get(path[0]), path[1:], f"{rtype}.{'.'.join(path)}.data")


def _clean_extensions(report: ImportReport, items: list[Any], path: tuple[Any, ...],
                      label: str, where: str) -> None:
    bad = [i for i, ext in enumerate(items)
           if not (isinstance(ext, dict) and isinstance(ext.get("url"), str))]
    for i in bad:
        report.add_issue(Issue(where, "extension has no url, dropped", label,
                               format_path((*path, i))))
    for i, ext in enumerate(items):
        if i not in bad and isinstance(ext.get("extension"), list):
            _clean_extensions(report, ext["extension"], (*path, i, "extension"), label, where)
    for i in reversed(bad):
        del items[i]


def _strip_data(report: ImportReport, value: Any, rest: tuple[str, ...], counter: str) -> None:
    for item in value if isinstance(value, list) else [value]:
        if not isinstance(item, dict):
            continue
        if rest:
            _strip_data(report, item.get(rest[0]), rest[1:], counter)
        elif "data" in item:
            del item["data"]
            report.stripped[counter] += 1
