"""The ``source:`` rules of a feature spec: parsing and evaluation on one patient.

A rule is a mapping with a ``from:`` key naming its kind (``patient``, ``condition``,
``observation``, ``encounter``, ``medication``) and kind-specific keys; the format is
documented in docs/feature-spec.md.  :func:`parse_rule` validates a rule once, when the spec
is loaded; each rule then reads one :class:`PatientRecord` and returns one value (or ``None``
for missing).  Problems go to an :class:`ExtractReport` and never quote a patient value.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fhirsynth.errors import Issue, SpecError
from fhirsynth.ingest.geo import state_code
from fhirsynth.ingest.records import PatientRecord
from fhirsynth.ingest.units import convert, normalise_unit

__all__ = ["ExtractReport", "Rule", "parse_date", "parse_rule"]

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
_PATIENT_FIELDS = {
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
_EFFECTIVE = ("effectiveDateTime", "effectivePeriod", "effectiveInstant", "issued")


@dataclass
class ExtractReport:
    """What extraction found wrong or noteworthy (private: the custodian's internal report).

    ``counts`` holds counters by kind (``"<column>: unknown unit"``); ``issues`` keeps the
    first ``max_issues`` issues in full.  No patient value is ever stored here.
    """

    issues: list[Issue] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    max_issues: int = 1000

    def add(self, kind: str, record: PatientRecord, resource: Resource | None = None,
            field_: str = "", problem: str = "") -> None:
        self.counts[kind] += 1
        if len(self.issues) < self.max_issues:
            rid = ""
            if resource is not None:
                rid = f"{resource.get('resourceType', '?')}/{resource.get('id', '?')}"
            self.issues.append(Issue(where=record.source or "<record>", resource=rid,
                                     field=field_, problem=problem or kind))

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


# ------------------------------------------------------------------------------- dates
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


def _years_between(a: date, b: date) -> int:
    return b.year - a.year - ((b.month, b.day) < (a.month, a.day))


def _when(res: Resource, keys: Iterable[str]) -> str | None:
    """The first date-like element of ``res`` among ``keys`` (period -> its start)."""
    for k in keys:
        v = res.get(k)
        if isinstance(v, dict):
            v = v.get("start") or v.get("end")
        if isinstance(v, str) and v:
            return v
    return None


def _sort_key(when: str | None) -> str:
    return when or ""


def _on_or_before(when: str | None, ref: date) -> bool:
    """Undated resources count; dated ones only up to the reference date."""
    if when is None:
        return True
    parsed = parse_date(when)
    return parsed is None or parsed[0] <= ref or when[:10] <= ref.isoformat()


def _codings(concept: object) -> Iterator[Mapping[str, Any]]:
    if isinstance(concept, Mapping):
        for c in concept.get("coding", ()) or ():
            if isinstance(c, Mapping) and isinstance(c.get("code"), str):
                yield c


# ------------------------------------------------------------------------------- rules
@dataclass(frozen=True)
class Rule:
    """One parsed ``source:`` rule.  ``kind`` is the ``from:`` value; ``opts`` the rest."""

    kind: str
    opts: Mapping[str, Any]

    def reads(self) -> dict[str, set[str]]:
        """Resource types and top-level elements this rule reads."""
        o = self.opts
        if self.kind == "patient":
            return {"Patient": set(_PATIENT_FIELDS[o["field"]])}
        if self.kind == "condition":
            return {"Condition": {"code", "subject", "verificationStatus"}}
        if self.kind == "observation":
            return {"Observation": {"code", "subject", "status", "component", "valueQuantity",
                                    "valueCodeableConcept", "dataAbsentReason", *_EFFECTIVE}}
        if self.kind == "encounter":
            return {"Encounter": {"class", "period", "subject", "status"}}
        med = {"medicationCodeableConcept", "medicationReference", "status", "subject",
               "contained"}
        return {"MedicationRequest": med | {"authoredOn"},
                "MedicationStatement": med | {"effectiveDateTime", "effectivePeriod",
                                              "dateAsserted"},
                "Medication": {"code"}}

    def evaluate(self, ctx: Ctx) -> Any:
        return _EVAL[self.kind](self.opts, ctx)


def _codes(v: object, where: str, key: str) -> tuple[str, ...]:
    if v is None:
        return ()
    if isinstance(v, str | int):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(x, str | int) for x in v):
        raise SpecError(f"{where}: '{key}' must be a code or a list of codes")
    return tuple(str(x).strip() for x in v)


def parse_rule(column: str, source: object) -> Rule:
    """Validate the ``source:`` mapping of ``column`` and return its :class:`Rule`."""
    where = f"column {column!r}: source"
    if not isinstance(source, Mapping) or "from" not in source:
        raise SpecError(f"{where} must be a mapping with a 'from' key")
    kind = str(source["from"])
    o: dict[str, Any] = {k: v for k, v in source.items() if k != "from"}
    if kind == "patient":
        if o.get("field") not in _PATIENT_FIELDS:
            raise SpecError(f"{where}: field must be one of {sorted(_PATIENT_FIELDS)}")
        o["map"] = {str(k): str(v) for k, v in (o.get("map") or {}).items()}
        o.setdefault("top_code", 90)
        if o.get("at", "reference") not in ("reference", "death_or_reference"):
            raise SpecError(f"{where}: 'at' must be 'reference' or 'death_or_reference'")
    elif kind == "condition":
        o["snomed"] = frozenset(_codes(o.get("snomed"), where, "snomed"))
        o["icd10cm"] = tuple(c.replace(".", "").upper()
                             for c in _codes(o.get("icd10cm"), where, "icd10cm"))
        o["icd9cm"] = tuple(c.replace(".", "") for c in _codes(o.get("icd9cm"), where, "icd9cm"))
        if not (o["snomed"] or o["icd10cm"] or o["icd9cm"]):
            raise SpecError(f"{where}: a condition rule needs snomed, icd10cm or icd9cm codes")
    elif kind == "observation":
        o["loinc"] = frozenset(_codes(o.get("loinc"), where, "loinc"))
        o["panels"] = frozenset(_codes(o.get("panels"), where, "panels"))
        if not o["loinc"]:
            raise SpecError(f"{where}: an observation rule needs 'loinc' codes")
        o.setdefault("value", "quantity")
        if o["value"] not in ("quantity", "code"):
            raise SpecError(f"{where}: value must be 'quantity' or 'code'")
        if o.setdefault("comparator", "bound") not in ("bound", "drop"):
            raise SpecError(f"{where}: comparator must be 'bound' or 'drop'")
        o["map"] = {str(k): str(v) for k, v in (o.get("map") or {}).items()}
        if o["value"] == "quantity" and not o.get("unit"):
            raise SpecError(f"{where}: a quantity observation needs its target 'unit'")
    elif kind == "encounter":
        o["class"] = frozenset(_codes(o.get("class"), where, "class"))
        years = o.get("years")
        if not isinstance(years, int | float) or isinstance(years, bool) or years <= 0:
            raise SpecError(f"{where}: an encounter rule needs 'years' > 0 (the window)")
    elif kind == "medication":
        o["rxnorm"] = frozenset(_codes(o.get("rxnorm"), where, "rxnorm"))
        if bool(o["rxnorm"]) == ("count" in o):
            raise SpecError(f"{where}: a medication rule takes either 'rxnorm' or 'count'")
        if "count" in o and o["count"] not in ("active", "distinct"):
            raise SpecError(f"{where}: count must be 'active' or 'distinct'")
        if o.setdefault("status", "any") not in ("any", "active"):
            raise SpecError(f"{where}: status must be 'any' or 'active'")
    else:
        raise SpecError(f"{where}: from ({kind!r}) must be one of {sorted(_EVAL)}")
    return Rule(kind=kind, opts=o)


# -------------------------------------------------------------------------- patient
def _ext(resource: Mapping[str, Any], url: str) -> list[Mapping[str, Any]]:
    return [e for e in resource.get("extension", ()) or ()
            if isinstance(e, Mapping) and e.get("url") == url]


def _omb_codes(patient: Mapping[str, Any], url: str) -> list[str]:
    out: list[str] = []
    for e in _ext(patient, url):
        for sub in _ext(e, "ombCategory"):
            coding = sub.get("valueCoding")
            if isinstance(coding, Mapping) and isinstance(coding.get("code"), str):
                out.append(coding["code"])
    return out


def _patient(o: Mapping[str, Any], ctx: Ctx) -> Any:
    p = ctx.record.patient
    f = o["field"]
    mapped = o["map"]
    if f in ("age", "birth_year", "birth_date_precision"):
        return _birth(o, ctx)
    if f == "gender":
        g = p.get("gender")
        return mapped.get(g, g) if isinstance(g, str) else None
    if f == "birth_sex":
        vals = [e.get("valueCode") for e in _ext(p, URL_BIRTHSEX)]
        v = next((x for x in vals if isinstance(x, str)), None)
        return mapped.get(v, v) if v else None
    if f in ("race", "ethnicity"):
        codes = [mapped.get(c, c) for c in _omb_codes(p, URL_RACE if f == "race" else
                                                        URL_ETHNICITY)]
        real = sorted(set(codes) - set(NULL_CODES))
        if len(real) > 1:
            if f == "ethnicity":
                ctx.report.add(f"{ctx.column}: several ethnicity categories", ctx.record, p,
                               "extension", "several ombCategory ethnicity codes")
                return None
            return "multiple"
        if real:
            return real[0]
        return next((c for c in NULL_CODES if c in codes), None)
    if f == "marital_status":
        codes = [c["code"] for c in _codings(p.get("maritalStatus"))]
        return mapped.get(codes[0], codes[0]) if codes else None
    if f == "state":
        return _state(p, ctx)
    # deceased
    return bool(p.get("deceasedBoolean")) or bool(p.get("deceasedDateTime"))


def _state(p: Mapping[str, Any], ctx: Ctx) -> str | None:
    addrs = [a for a in p.get("address", ()) or () if isinstance(a, Mapping)]
    if not addrs:
        return None
    current = [a for a in addrs if not (a.get("period") or {}).get("end")]
    home = [a for a in current or addrs if a.get("use") == "home"]
    raw = (home or current or addrs)[0].get("state")
    if raw is None:
        return None
    code = state_code(raw)
    if code is None:
        ctx.report.add(f"{ctx.column}: unknown state", ctx.record, p, "address.state",
                       "not a US state name or code")
    return code


def _birth(o: Mapping[str, Any], ctx: Ctx) -> Any:
    p = ctx.record.patient
    raw = p.get("birthDate")
    if raw is None:
        return None
    parsed = parse_date(raw)
    if parsed is None or len(str(raw)) > 10:
        ctx.report.add(f"{ctx.column}: invalid birthDate", ctx.record, p, "birthDate",
                       "not a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)")
        return None
    born, precision = parsed
    if o["field"] == "birth_date_precision":
        return precision
    age_now = _years_between(born, ctx.ref)
    if age_now < 0:
        ctx.report.add(f"{ctx.column}: born after the reference date", ctx.record, p,
                       "birthDate", "birth date after the spec's reference_date")
        return None
    top = int(o["top_code"])
    if o["field"] == "birth_year":
        # Safe Harbor: a birth year of someone aged 90+ reveals the age: suppress it
        return None if age_now >= top else born.year
    at = ctx.ref
    if o.get("at") == "death_or_reference" and p.get("deceasedDateTime"):
        died = parse_date(p["deceasedDateTime"])
        if died is not None and born <= died[0] < ctx.ref:
            at = died[0]
    return min(_years_between(born, at), top)


# ------------------------------------------------------------------------ condition
_EXCLUDED_VERIFICATION = {"refuted", "entered-in-error"}


def _condition_matches(o: Mapping[str, Any], coding: Mapping[str, Any]) -> bool:
    system = str(coding.get("system", "")).lower()
    code = str(coding["code"]).strip()
    if system == SNOMED:
        return code in o["snomed"]
    norm = code.replace(".", "").upper()
    if "icd-10" in system or "icd10" in system:
        return norm.startswith(o["icd10cm"]) if o["icd10cm"] else False
    if "icd-9" in system or "icd9" in system:
        return norm.startswith(o["icd9cm"]) if o["icd9cm"] else False
    return False


def _condition(o: Mapping[str, Any], ctx: Ctx) -> bool:
    for cond in ctx.record.of_type("Condition"):
        ver = {c["code"] for c in _codings(cond.get("verificationStatus"))}
        if ver & _EXCLUDED_VERIFICATION:
            continue
        if any(_condition_matches(o, c) for c in _codings(cond.get("code"))):
            return True
    return False


# ---------------------------------------------------------------------- observation
def _observation_index(ctx: Ctx) -> dict[str, list[tuple[str, int, Resource, Any, frozenset]]]:
    """Per record, once: LOINC code -> (when, order, observation, value holder, panel codes)."""
    cached = ctx.cache.get("observations")
    if cached is not None:
        return cached
    index: dict[str, list[tuple[str, int, Resource, Any, frozenset]]] = {}
    for i, obs in enumerate(ctx.record.of_type("Observation")):
        if obs.get("status") in ("entered-in-error", "cancelled"):
            continue
        when = _when(obs, _EFFECTIVE)
        if not _on_or_before(when, ctx.ref):
            continue
        key = _sort_key(when)
        codes = frozenset(c["code"] for c in _codings(obs.get("code"))
                          if c.get("system") in (LOINC, None))
        for code in codes:
            index.setdefault(code, []).append((key, i, obs, obs, frozenset()))
        for comp in obs.get("component", ()) or ():
            if isinstance(comp, Mapping):
                for c in _codings(comp.get("code")):
                    index.setdefault(c["code"], []).append((key, i, obs, comp, codes))
    ctx.cache["observations"] = index
    return index


def _observation(o: Mapping[str, Any], ctx: Ctx) -> Any:
    """The latest usable value on or before the reference date (see docs/feature-spec.md)."""
    index = _observation_index(ctx)
    candidates = []
    for code in o["loinc"]:
        for key, i, obs, holder, panel in index.get(code, ()):
            if holder is obs or not o["panels"] or panel & o["panels"]:
                candidates.append((key, i, obs, holder))
    for _when_key, _i, obs, holder in sorted(candidates, key=lambda t: (t[0], t[1]),
                                             reverse=True):
        value = _observation_value(o, ctx, obs, holder)
        if value is not None:
            return value
    return None


def _observation_value(o: Mapping[str, Any], ctx: Ctx, obs: Resource,
                       holder: Mapping[str, Any]) -> Any:
    col = ctx.column
    if holder.get("dataAbsentReason") is not None:
        ctx.report.count(f"{col}: data absent")
        return None
    if o["value"] == "code":
        codes = [c["code"] for c in _codings(holder.get("valueCodeableConcept"))]
        if not codes:
            ctx.report.count(f"{col}: no coded value")
            return None
        for c in codes:
            if c in o["map"]:
                return o["map"][c]
        return codes[0] if not o["map"] else o.get("default")
    q = holder.get("valueQuantity")
    if not isinstance(q, Mapping) or not isinstance(q.get("value"), int | float):
        ctx.report.count(f"{col}: no quantity value")
        return None
    if q.get("comparator"):
        ctx.report.count(f"{col}: value with comparator")
        if o["comparator"] == "drop":
            return None
    unit = q.get("code") or q.get("unit")
    value = convert(float(q["value"]), unit, str(o["unit"]), o.get("analyte"))
    if value is None:
        what = "no unit" if not unit else "unit not convertible to " + str(
            normalise_unit(str(o["unit"])))
        ctx.report.add(f"{col}: unknown unit", ctx.record, obs, "valueQuantity.code",
                       f"{what}; value dropped")
    return value


# ------------------------------------------------------------------------ encounter
def _encounter(o: Mapping[str, Any], ctx: Ctx) -> int:
    years = float(o["years"])
    start_ord = ctx.ref.toordinal() - round(years * 365.25)
    n = 0
    for enc in ctx.record.of_type("Encounter"):
        if enc.get("status") in ("entered-in-error", "cancelled"):
            continue
        cls = enc.get("class")
        code = cls.get("code") if isinstance(cls, Mapping) else None
        if o["class"] and code not in o["class"]:
            continue
        parsed = parse_date(_when(enc, ("period",)))
        if parsed is None:
            ctx.report.count(f"{ctx.column}: encounter without a usable date")
            continue
        if start_ord < parsed[0].toordinal() <= ctx.ref.toordinal():
            n += 1
    return n


# ----------------------------------------------------------------------- medication
def medication_codes(ctx: Ctx, res: Resource) -> list[str]:
    """RxNorm (or uncoded-system) codes of a MedicationRequest/Statement, resolving refs."""
    concept = res.get("medicationCodeableConcept")
    ref = res.get("medicationReference")
    if concept is None and isinstance(ref, Mapping):
        target = ctx.record.resolve(ref.get("reference"), res)
        if target is None:
            ctx.report.add("unresolved medication reference", ctx.record, res,
                           "medicationReference", "reference names no contained or known "
                           "Medication")
            return []
        concept = target.get("code")
    return [c["code"] for c in _codings(concept) if c.get("system") in (RXNORM, None)]


def _medication(o: Mapping[str, Any], ctx: Ctx) -> Any:
    if "medications" not in ctx.cache:
        ctx.cache["medications"] = _medication_codes(ctx)
    active_only = o.get("count") == "active" or o["status"] == "active"
    codes = {code for code, active in ctx.cache["medications"] if active or not active_only}
    if o["rxnorm"]:
        return bool(codes & o["rxnorm"])
    return len(codes)


def _medication_codes(ctx: Ctx) -> set[tuple[str, bool]]:
    """Once per record: (code, is active) of every usable request/statement."""
    out: set[tuple[str, bool]] = set()
    for rtype, date_keys in (("MedicationRequest", ("authoredOn",)),
                             ("MedicationStatement", ("effectiveDateTime", "effectivePeriod",
                                                      "dateAsserted"))):
        for res in ctx.record.of_type(rtype):
            status = res.get("status")
            if status == "entered-in-error":
                continue
            if not _on_or_before(_when(res, date_keys), ctx.ref):
                continue
            out.update((code, status == "active") for code in medication_codes(ctx, res))
    return out


_EVAL = {
    "patient": _patient,
    "condition": _condition,
    "observation": _observation,
    "encounter": _encounter,
    "medication": _medication,
}
