"""Clinical rules of a feature spec: condition flags, latest observations, counts.

Observation and medication facts are indexed once per patient (in ``Ctx.cache``) and shared
by every column of the row.  Units are normalised through :mod:`fhirsynth.ingest.units`; a
value in an unknown unit is reported and dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhirsynth.ingest.extract_base import (
    EFFECTIVE,
    LOINC,
    RXNORM,
    SNOMED,
    Ctx,
    Resource,
    codings,
    first_date,
    on_or_before,
    parse_date,
    sort_key,
)
from fhirsynth.ingest.units import accepted_units, convert, normalise_unit

__all__ = ["evaluate_condition", "evaluate_encounter", "evaluate_medication",
           "evaluate_observation", "medication_codes"]


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


def evaluate_condition(o: Mapping[str, Any], ctx: Ctx) -> bool:
    for cond in ctx.record.of_type("Condition"):
        ver = {c["code"] for c in codings(cond.get("verificationStatus"))}
        if ver & _EXCLUDED_VERIFICATION:
            continue
        if any(_condition_matches(o, c) for c in codings(cond.get("code"))):
            return True
    return False


def _observation_index(ctx: Ctx) -> dict[str, list[tuple[str, int, Resource, Any, frozenset]]]:
    """Per record, once: LOINC code -> (when, order, observation, value holder, panel codes)."""
    cached = ctx.cache.get("observations")
    if cached is not None:
        return cached
    index: dict[str, list[tuple[str, int, Resource, Any, frozenset]]] = {}
    for i, obs in enumerate(ctx.record.of_type("Observation")):
        if obs.get("status") in ("entered-in-error", "cancelled"):
            continue
        when = first_date(obs, EFFECTIVE)
        if not on_or_before(when, ctx.ref):
            continue
        key = sort_key(when)
        codes = frozenset(c["code"] for c in codings(obs.get("code"))
                          if c.get("system") in (LOINC, None))
        for code in codes:
            index.setdefault(code, []).append((key, i, obs, obs, frozenset()))
        for comp in obs.get("component", ()) or ():
            if isinstance(comp, Mapping):
                for c in codings(comp.get("code")):
                    if c.get("system") in (LOINC, None):
                        index.setdefault(c["code"], []).append((key, i, obs, comp, codes))
    ctx.cache["observations"] = index
    return index


def evaluate_observation(o: Mapping[str, Any], ctx: Ctx) -> Any:
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
        codes = [c["code"] for c in codings(holder.get("valueCodeableConcept"))]
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
    value = convert(float(q["value"]), unit, str(o["unit"]), o.get("analyte"), o.get("factors"))
    if value is None:
        # the element the unit was read from (its text is input: never quoted)
        path = "valueQuantity." + ("unit" if unit and not q.get("code") else "code")
        if holder is not obs:
            path = "component." + path
        target = normalise_unit(str(o["unit"]))
        what = "no unit" if not unit else f"unit not convertible to {target} (converted: " \
            + ", ".join(accepted_units(str(o["unit"]), o.get("analyte"), o.get("factors"))) + ")"
        ctx.report.add(f"{col}: {'missing unit' if not unit else 'unknown unit'}", ctx.record,
                       obs, path, f"{what}; value dropped")
    return value


#: the code system of Encounter.class (extensible binding, v3 ActEncounterCode)
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def evaluate_encounter(o: Mapping[str, Any], ctx: Ctx) -> int:
    years = float(o["years"])
    start_ord = ctx.ref.toordinal() - round(years * 365.25)
    n = 0
    for enc in ctx.record.of_type("Encounter"):
        if enc.get("status") in ("entered-in-error", "cancelled"):
            continue
        cls = enc.get("class")
        code = cls.get("code") if isinstance(cls, Mapping) else None
        if o["class"] and code not in o["class"]:
            system = cls.get("system") if isinstance(cls, Mapping) else None
            if isinstance(system, str) and system != V3_ACT_CODE:
                # the rule's codes are v3 ActCode: a local class cannot be matched
                ctx.report.count(f"{ctx.column}: encounter class from another code system")
            continue
        parsed = parse_date(first_date(enc, ("period",)))
        if parsed is None:
            ctx.report.count(f"{ctx.column}: encounter without a usable date")
            continue
        day = parsed[0].toordinal()
        if start_ord < day <= ctx.ref.toordinal():
            n += 1
        elif day > ctx.ref.toordinal():
            # not counted; all of a patient's encounters after it means shifted dates
            ctx.report.count(f"{ctx.column}: encounter after the reference date")
    return n


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
    return [c["code"] for c in codings(concept) if c.get("system") in (RXNORM, None)]


def evaluate_medication(o: Mapping[str, Any], ctx: Ctx) -> Any:
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
            if not on_or_before(first_date(res, date_keys), ctx.ref):
                continue
            out.update((code, status == "active") for code in medication_codes(ctx, res))
    return out
