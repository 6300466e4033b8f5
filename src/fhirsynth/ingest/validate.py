"""Clean and validate one FHIR resource at a time with the configured fhir.resources models.

Cleaning (always): unknown top-level elements, extensions without ``url`` and narrative text
are removed and each removal becomes an :class:`~fhirsynth.errors.Issue`; attachment data is
stripped.  Validation checks either every element (``full``) or only the elements the
feature spec reads plus the required and the top-level date ones (``projection``), element by
element through the models' field types with a cache, so one bad element or entry never loses
the others.  Messages never quote a value.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from fhirsynth.errors import ConfigError, Issue
from fhirsynth.ingest.clean import as_list, clean_resource, format_path, json_kind
from fhirsynth.ingest.report import UNKNOWN_ELEMENT, UNKNOWN_TYPE, ImportReport
from fhirsynth.ingest.versions import (
    R4_NOT_IN_R4B,
    check_resource_version,
    is_resource_type,
    model_class,
)

__all__ = ["DEFAULT_NEEDED", "PATIENT_KEYS", "Validator", "format_path", "iter_references"]

logger = logging.getLogger(__name__)

#: Elements that link a resource to its patient, in the order they are tried.
PATIENT_KEYS = ("subject", "patient", "beneficiary")

#: What a typical feature spec reads, used when the caller gives no ``needed`` mapping.
DEFAULT_NEEDED: dict[str, frozenset[str]] = {
    "Patient": frozenset({"gender", "birthDate", "deceased[x]", "extension", "address",
                          "maritalStatus"}),
    "Condition": frozenset({"code", "onset[x]", "abatement[x]", "clinicalStatus",
                            "verificationStatus", "recordedDate"}),
    "Observation": frozenset({"status", "code", "value[x]", "effective[x]", "component",
                              "category"}),
    "Encounter": frozenset({"status", "class", "type", "period"}),
    "MedicationRequest": frozenset({"status", "intent", "medication[x]", "authoredOn"}),
    "MedicationStatement": frozenset({"status", "medication[x]", "effective[x]"}),
    "Procedure": frozenset({"status", "code", "performed[x]"}),
    "Immunization": frozenset({"status", "vaccineCode", "occurrence[x]"}),
    "AllergyIntolerance": frozenset({"code", "clinicalStatus", "recordedDate"}),
}

_CACHE_LIMIT = 200_000
#: (resource type, element) -> (value set, codes) of required bindings of primitive codes the
#: default spec reads, which the models leave to the validator (they check the code's form)
REQUIRED_CODES: dict[tuple[str, str], tuple[str, frozenset[str]]] = {
    ("Patient", "gender"): ("administrative-gender",
                            frozenset({"male", "female", "other", "unknown"})),
    ("Observation", "status"): ("observation-status", frozenset({
        "registered", "preliminary", "final", "amended", "corrected", "cancelled",
        "entered-in-error", "unknown"})),
}
_FHIR_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")
_NO_TZ = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?")
_ISO_TZ = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def iter_references(value: Any) -> Iterator[str]:
    """Every ``reference`` string inside a JSON value."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            ref = v.get("reference")
            if isinstance(ref, str):
                yield ref
            stack.extend(x for x in v.values() if isinstance(x, dict | list))
        elif isinstance(v, list):
            stack.extend(x for x in v if isinstance(x, dict | list))


#: how an issue names a string that is no FHIR date (never quoting it)
NOT_A_DATE = "not a FHIR date/dateTime (YYYY, YYYY-MM, YYYY-MM-DD or dateTime with timezone)"
#: the models' message for a date, dateTime or instant string that fails its pattern
_DATE_MSG = re.compile(r"\b(?:Date|DateTime|Instant) value string does not match")


def _problem(err: dict[str, Any]) -> str:
    """Describe a pydantic error by kind, never by value."""
    kind = err.get("type", "")
    value = err.get("input")
    if kind == "extra_forbidden":
        return "unknown element"
    if kind in ("missing", "model_field_validation.missing"):
        return "required element missing"
    if isinstance(value, str) and re.match(r"\d{4}", value) and (
        kind == "value_error" or kind.startswith(("date", "datetime", "time"))
    ):
        if _NO_TZ.fullmatch(value):
            return "dateTime has a time but no timezone"
        if _FHIR_DATE.fullmatch(value) or _ISO_TZ.fullmatch(value):
            return "not a real calendar date or time"
        return NOT_A_DATE
    if isinstance(value, str) and kind == "value_error" and _DATE_MSG.search(
            str(err.get("msg", ""))):
        # a date that does not even start with a year (``02/04/1974``, ``yesterday``, "")
        return NOT_A_DATE
    if kind == "value_error" and "multiple" in str(err.get("msg", "")):
        return "more than one value for a choice element"
    if kind.endswith("_type") or kind in ("model_attributes_type",):
        return f"wrong JSON type ({kind})"
    return f"invalid value ({kind})"


def _located(err: dict[str, Any], name: str) -> tuple[tuple[Any, ...], str]:
    """``(location inside the element, problem)`` of one pydantic error."""
    if err.get("type") == "list_type" and tuple(err["loc"]) == (name,):
        return (), "null inside a list"  # raised by the model's null rule, located at the top
    return tuple(err["loc"]), _problem(err)


@dataclass
class _TypeInfo:
    """What the model of one resource type says about its elements."""

    resource_type: str
    model: Any

    @cached_property
    def aliases(self) -> frozenset[str]:
        return frozenset((f.alias or n) for n, f in self.model.model_fields.items()) - {
            "fhir_comments"}

    @cached_property
    def choices(self) -> dict[str, tuple[str, ...]]:
        groups = self.model.get_one_of_many_fields(None)
        return {p: tuple(self.model.model_fields[f].alias or f for f in fs)
                for p, fs in groups.items()}

    @cached_property
    def required_choices(self) -> frozenset[str]:
        fields = self.model.model_fields
        return frozenset(p for p, fs in self.model.get_one_of_many_fields(None).items()
                         if (fields[fs[0]].json_schema_extra or {}).get("one_of_many_required"))

    @cached_property
    def required(self) -> tuple[str, ...]:
        fields = self.model.model_fields
        names = [f.alias or n for n, f in fields.items() if f.is_required()]
        names += [fields[n].alias or n for n, _ext in self.model.get_required_fields(None)]
        return tuple(dict.fromkeys(names))

    @cached_property
    def dates(self) -> frozenset[str]:
        """Top-level date, dateTime and instant elements: always checked (case 004); an
        invalid one the spec does not read is dropped and reported, the resource kept."""
        return frozenset((f.alias or n) for n, f in self.model.model_fields.items()
                         if "datetime." in str(f.annotation) and "List" not in str(f.annotation)
                         and "list" not in str(f.annotation))

    def critical(self, needed: frozenset[str]) -> frozenset[str]:
        """Needed or required elements: invalid ones drop the resource (cached)."""
        cache = self.__dict__.setdefault("_critical", {})
        if needed not in cache:
            base = needed | frozenset(self.required)
            cache[needed] = base | {"_" + a for a in base}
        return cache[needed]

    def expand(self, names: Iterable[str]) -> frozenset[str]:
        """Element names (``value[x]``, ``value`` or ``valueQuantity``) -> model aliases."""
        out: set[str] = set()
        for name in names:
            stem = name[:-3] if name.endswith("[x]") else name
            if stem in self.choices:
                out.update(self.choices[stem])
            elif name in self.aliases:
                out.add(name)
            else:
                raise ConfigError(
                    f"needed: {self.resource_type} has no element {name!r} in the FHIR models")
        return frozenset(out | {"_" + a for a in out if "_" + a in self.aliases})

    def adapter(self, alias: str) -> TypeAdapter[Any]:
        cache = self.__dict__.setdefault("_adapters", {})
        if alias not in cache:
            name = next(n for n, f in self.model.model_fields.items() if (f.alias or n) == alias)
            cache[alias] = TypeAdapter(self.model.model_fields[name].annotation)
        return cache[alias]


class Validator:
    """Clean and validate resources; record every issue in ``report``.

    Parameters
    ----------
    report : ImportReport
        Receives counts and issues.
    needed : mapping of str to iterable of str, optional
        Elements the feature spec reads per resource type (``value[x]`` allowed); default
        :data:`DEFAULT_NEEDED`.  Types outside it are kept but not validated.
    full : bool
        Validate every element of every resource, not only the needed projection.
    fhir_version : str
        The one FHIR version setting (``R4``).
    """

    def __init__(self, report: ImportReport, *, needed: Mapping[str, Iterable[str]] | None = None,
                 full: bool = False, fhir_version: str = "R4") -> None:
        self.report = report
        self.full = full
        self.version = fhir_version
        is_resource_type(fhir_version, "Patient")  # checks the version setting early
        self._info: dict[str, _TypeInfo] = {}
        self._cache: dict[tuple[str, str, Any], tuple[tuple[tuple[Any, ...], str], ...]] = {}
        raw = DEFAULT_NEEDED if needed is None else needed
        self.needed: dict[str, frozenset[str]] = {}
        for rtype, names in raw.items():
            if not is_resource_type(fhir_version, rtype):
                raise ConfigError(f"needed: {rtype!r} is not a FHIR {fhir_version} resource type")
            info = self.info(rtype)
            # the projection: what the spec reads, the patient link, and what the model
            # requires (with the ``_element`` siblings of primitives)
            keys = {k for k in PATIENT_KEYS if k in info.aliases}
            required = {a for r in info.required for a in (r, "_" + r) if a in info.aliases}
            self.needed[rtype] = info.expand(names) | keys | required

    def info(self, resource_type: str) -> _TypeInfo:
        """Model facts for one resource type (cached)."""
        if resource_type not in self._info:
            self._info[resource_type] = _TypeInfo(
                resource_type, model_class(self.version, resource_type))
        return self._info[resource_type]

    def check(self, resource: dict[str, Any], where: str) -> dict[str, Any] | None:
        """Clean ``resource`` in place and validate it; ``None`` when it is dropped."""
        rtype = resource.get("resourceType")
        known = is_resource_type(self.version, rtype)
        # the type only (an id may be an MRN, Bulk exports), and only a type of the FHIR
        # specification: any other string is input text (a name, an MRN), never shown
        label = str(rtype) if known or rtype in R4_NOT_IN_R4B else UNKNOWN_TYPE
        self.report.resources_read[label] += 1
        check_resource_version(resource, self.version, where)
        if not known:
            if label == UNKNOWN_TYPE:
                return self._reject(label, [Issue(where, "unknown resource type; skipped")])
            return self._reject(label, [Issue(
                where, "FHIR R4 resource type without an R4B model; skipped", label)])
        info = self.info(rtype)
        clean_resource(resource, info.aliases, label, where, self.report)

        if self.full:
            # every element, one at a time through the model's own field types (cached);
            # the resource-level rules (required, choice, nulls) are applied by _elements
            names = [n for n in resource if n != "resourceType"]
            ok = self._elements(resource, info, names, label, where, use_cache=True)
            self.report.validations["full"] += 1
        elif rtype in self.needed:
            wanted = self.needed[rtype] | info.dates
            names = [n for n in wanted if n in resource]
            ok = self._elements(resource, info, names, label, where, use_cache=True)
            self.report.validations["projection (elements the spec reads)"] += 1
        else:
            ok = True
            self.report.validations["not validated: type not read by the spec"] += 1
        if not ok:
            return None
        if rtype == "Patient":
            self._check_death_after_birth(resource, label, where)
        self._check_contained_refs(resource, label, where)
        self.report.resources_accepted[rtype] += 1
        return resource

    # -- validation ----------------------------------------------------------------------

    def _errors(self, info: _TypeInfo, name: str, value: Any,
                use_cache: bool) -> tuple[tuple[tuple[Any, ...], str], ...]:
        key: tuple[str, str, Any] | None = None
        if use_cache:
            if isinstance(value, str | int | float):
                key = (info.resource_type, name, value)
            else:
                try:
                    key = (info.resource_type, name, orjson.dumps(value))
                except (TypeError, orjson.JSONEncodeError):
                    key = None
            if key is not None and key in self._cache:
                return self._cache[key]
        found: tuple[tuple[tuple[Any, ...], str], ...] = ()
        if name in info.dates and isinstance(value, int | float):
            # the models read a JSON number as seconds since 1970 (20200101 -> 1970-08-22)
            # and a boolean as 0 or 1: FHIR dates are strings
            return (((), f"{json_kind(value)} where FHIR has a date/dateTime string"),)
        try:
            info.adapter(name).validate_python(value)
            if isinstance(value, list) and any(v is None for v in value):
                # the model's own rule for nulls in lists of complex elements
                info.model.reject_null_complex_elements({name: value})
        except ValidationError as exc:
            found = tuple(_located(e, name) for e in exc.errors(include_url=False))
        except (KeyError, TypeError):
            # fhir_core looks a nested resource's resourceType up in its type map and raises
            # KeyError / TypeError, not a ValidationError, when it is unknown, empty or null
            found = (((), "a nested resource has an unknown or missing resourceType"),)
        codes = REQUIRED_CODES.get((info.resource_type, name))
        if not found and codes is not None and value not in codes[1]:
            # the models check a code's form, not its required value set (the value itself
            # is not quoted: it is input text)
            found = (((), f"not a code of the required value set {codes[0]} "
                           f"({', '.join(sorted(codes[1]))})"),)
        if key is not None:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = found
        return found

    def _elements(self, r: dict[str, Any], info: _TypeInfo, names: Iterable[str], label: str,
                  where: str, *, use_cache: bool) -> bool:
        fatal: list[Issue] = []
        for req in info.required:
            if req not in r and "_" + req not in r:
                fatal.append(Issue(where, "required element missing", label, req))
        for prefix, group in info.choices.items():
            present = [a for a in group if a in r]
            if len(present) > 1:
                fatal.append(Issue(where, "more than one value for a choice element", label,
                                   f"{prefix}[x]"))
            elif not present and prefix in info.required_choices:
                fatal.append(Issue(where, "required element missing", label, f"{prefix}[x]"))
        critical = info.critical(self.needed.get(info.resource_type, frozenset()))
        for name in names:
            errs = self._errors(info, name, r[name], use_cache)
            if errs and self._repair(r, name, errs, info.resource_type, label, where):
                errs = self._errors(info, name, r[name], False)
            if not errs:
                continue
            issues = [Issue(where, problem, label, format_path((name, *loc)))
                      for loc, problem in errs]
            if name in critical:
                fatal.extend(issues)
            else:
                del r[name]
                self.report.elements_dropped[f"{info.resource_type}.{name}"] += 1
                for issue in issues:
                    self.report.add_issue(Issue(issue.where, issue.problem + "; element dropped",
                                                issue.resource, issue.field))
        if fatal:
            self._reject(info.resource_type, fatal)
            return False
        return True

    def _repair(self, r: dict[str, Any], name: str, errs: Iterable[tuple[tuple[Any, ...], str]],
                rtype: str, label: str, where: str) -> bool:
        """Drop unknown nested elements and url-less extensions; True when anything changed."""
        removals: list[tuple[Any, ...]] = []
        for loc, problem in errs:
            if problem == "unknown element" and loc:
                removals.append(loc)
                # the element's own name is input text (not in the specification): its
                # place is named by the known elements above it
                self.report.unknown_elements[rtype][format_path((name, *[
                    p for p in loc[:-1] if not isinstance(p, int)], UNKNOWN_ELEMENT))] += 1
                self.report.add_issue(Issue(where, "unknown element, dropped", label,
                                            format_path((name, *loc[:-1]))))
            elif (problem == "required element missing" and len(loc) >= 2 and loc[-1] == "url"
                  and isinstance(loc[-2], int)):
                removals.append(loc[:-1])
                self.report.add_issue(Issue(where, "extension has no url, dropped", label,
                                            format_path((name, *loc[:-1]))))
        changed = False
        for loc in sorted(removals, key=lambda x: [str(p) for p in x], reverse=True):
            parent: Any = r[name]
            try:
                for p in loc[:-1]:
                    parent = parent[p]
                del parent[loc[-1]]
                changed = True
            except (KeyError, IndexError, TypeError):
                continue
        return changed

    def _check_death_after_birth(self, r: dict[str, Any], label: str, where: str) -> None:
        """A ``deceasedDateTime`` before ``birthDate`` (compared at the coarser of the two
        precisions) is dropped, the Patient kept as deceased (``deceasedBoolean``): that
        the patient died is more likely true than either date."""
        born, died = r.get("birthDate"), r.get("deceasedDateTime")
        if not (isinstance(born, str) and isinstance(died, str)):
            return
        n = min(len(born), len(died[:10]))
        if died[:n] >= born[:n]:
            return
        del r["deceasedDateTime"]
        r.pop("_deceasedDateTime", None)
        r["deceasedBoolean"] = True
        self.report.elements_dropped["Patient.deceasedDateTime"] += 1
        self.report.add_issue(Issue(where, "deceasedDateTime is before birthDate; the date is "
                                    "dropped, the patient kept as deceased", label,
                                    "deceasedDateTime"))

    def _check_contained_refs(self, r: dict[str, Any], label: str, where: str) -> None:
        # Projection mode looks only where a '#' reference is likely (a resource that has
        # contained resources, or a medicationReference); full mode looks everywhere.
        if self.full:
            names: Iterable[str] = list(r)
        elif "contained" in r:
            names = self.needed.get(r["resourceType"], ())
        elif "medicationReference" in r:
            names = ("medicationReference",)
        else:
            return
        ids = {c.get("id") for c in as_list(r.get("contained")) if isinstance(c, dict)}
        for name in names:
            if name in ("contained", "resourceType") or name not in r:
                continue
            for ref in iter_references(r[name]):
                if ref.startswith("#") and len(ref) > 1 and ref[1:] not in ids:
                    self.report.add_issue(Issue(where, "reference to a contained resource that "
                                                "is not there", label, name))

    def _reject(self, rtype: str, issues: list[Issue]) -> None:
        for issue in issues:
            self.report.add_issue(issue)
        self.report.drop(rtype, issues[0].problem if issues else "invalid")
        return None
