"""The ``source:`` rules of a feature spec: parsing, and dispatch to their evaluation.

A rule is a mapping with a ``from:`` key naming its kind (``patient``, ``condition``,
``observation``, ``encounter``, ``medication``) and kind-specific keys; the format is
documented in docs/feature-spec.md.  :func:`parse_rule` validates a rule once, when the spec
is loaded; each rule then reads one :class:`PatientRecord` and returns one value (or ``None``
for missing).  Problems go to an :class:`ExtractReport` and never quote a patient value.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fhirsynth.errors import SpecError
from fhirsynth.ingest.extract_base import (
    EFFECTIVE,
    PATIENT_FIELDS,
    Ctx,
    ExtractReport,
    parse_date,
)
from fhirsynth.ingest.rules_clinical import (
    evaluate_condition,
    evaluate_encounter,
    evaluate_medication,
    evaluate_observation,
)
from fhirsynth.ingest.rules_patient import evaluate_patient
from fhirsynth.ingest.units import ANALYTES, normalise_unit

__all__ = ["Ctx", "ExtractReport", "Rule", "parse_date", "parse_rule"]


@dataclass(frozen=True)
class Rule:
    """One parsed ``source:`` rule.  ``kind`` is the ``from:`` value; ``opts`` the rest."""

    kind: str
    opts: Mapping[str, Any]

    def reads(self) -> dict[str, set[str]]:
        """Resource types and top-level elements this rule reads."""
        o = self.opts
        if self.kind == "patient":
            return {"Patient": set(PATIENT_FIELDS[o["field"]])}
        if self.kind == "condition":
            return {"Condition": {"code", "subject", "verificationStatus"}}
        if self.kind == "observation":
            return {"Observation": {"code", "subject", "status", "component", "valueQuantity",
                                    "valueCodeableConcept", "dataAbsentReason", *EFFECTIVE}}
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


#: v3 ActCode encounter codes that specialise IMP (inpatient encounter)
IMP_KINDS = frozenset({"ACUTE", "NONAC"})


def _codes(v: object, where: str, key: str) -> tuple[str, ...]:
    if v is None:
        return ()
    if isinstance(v, str | int):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(x, str | int) for x in v):
        raise SpecError(f"{where}: '{key}' must be a code or a list of codes")
    return tuple(str(x).strip() for x in v)


#: the keys each kind of rule takes besides ``from`` (docs/feature-spec.md)
RULE_KEYS: dict[str, frozenset[str]] = {
    "patient": frozenset({"field", "map", "top_code", "at"}),
    "condition": frozenset({"snomed", "icd10cm", "icd9cm"}),
    "observation": frozenset({"loinc", "panels", "unit", "analyte", "factors", "value",
                              "comparator", "map", "default"}),
    "encounter": frozenset({"class", "years"}),
    "medication": frozenset({"rxnorm", "count", "status"}),
}
#: keys any rule may carry: the Safe Harbor pre-check's declaration that a column of years
#: holds no birth years (:data:`fhirsynth.evaluate.safe_harbor_spec.NOT_A_BIRTH_YEAR`)
COMMON_KEYS = frozenset({"not_a_birth_year"})


def _did_you_mean(got: object, known: Iterable[str]) -> str:
    near = difflib.get_close_matches(str(got), sorted(known), n=1)
    return f" (did you mean {near[0]!r}?)" if near else ""


def _check_keys(kind: str, opts: Mapping[str, Any], where: str) -> None:
    """Refuse a key the rule's kind does not take (a typo such as ``panel`` for ``panels``
    would otherwise be ignored in silence), and an ``analyte`` without a conversion."""
    known = RULE_KEYS[kind] | COMMON_KEYS
    for key in opts:
        if key not in known:
            raise SpecError(
                f"{where}: unknown key {str(key)!r} in a 'from: {kind}' rule"
                f"{_did_you_mean(key, known)}; it takes {', '.join(sorted(RULE_KEYS[kind]))}")
    if "analyte" in opts:
        analytes = sorted({a for a, _src, _dst in ANALYTES})
        if opts["analyte"] not in analytes:
            raise SpecError(
                f"{where}: analyte {str(opts['analyte'])!r} has no conversion"
                f"{_did_you_mean(opts['analyte'], analytes)}; the analytes with one are "
                f"{', '.join(analytes)}; for another, declare its units' factors instead "
                "(`factors: {UNIT: multiplier}`)")


def _factors(v: object, where: str, unit: str) -> dict[str, float]:
    """A rule's own unit conversions: ``{UCUM code: factor to the column's unit}``."""
    if not isinstance(v, Mapping) or not v:
        raise SpecError(f"{where}: 'factors' must map units to numbers (the value in that "
                        f"unit times the number is the value in {unit})")
    out: dict[str, float] = {}
    for key, factor in v.items():
        if (not isinstance(factor, int | float) or isinstance(factor, bool)
                or not math.isfinite(factor) or factor <= 0):
            raise SpecError(f"{where}: factors: the factor of {str(key)!r} must be a number "
                            "> 0")
        out[normalise_unit(str(key)) or str(key)] = float(factor)
    return out


def parse_rule(column: str, source: object) -> Rule:
    """Validate the ``source:`` mapping of ``column`` and return its :class:`Rule`."""
    where = f"column {column!r}: source"
    if not isinstance(source, Mapping) or "from" not in source:
        raise SpecError(f"{where} must be a mapping with a 'from' key")
    kind = str(source["from"])
    o: dict[str, Any] = {k: v for k, v in source.items() if k != "from"}
    if kind in RULE_KEYS:
        _check_keys(kind, o, where)
    if kind == "patient":
        if o.get("field") not in PATIENT_FIELDS:
            got = o.get("field")
            near = difflib.get_close_matches(str(got), sorted(PATIENT_FIELDS), n=1)
            raise SpecError(f"{where}: field {got!r} is not one of {sorted(PATIENT_FIELDS)}"
                            + (f"; did you mean {near[0]!r}?" if near else ""))
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
        if "factors" in o:
            o["factors"] = _factors(o["factors"], where, str(o.get("unit")))
    elif kind == "encounter":
        classes = set(_codes(o.get("class"), where, "class"))
        # v3 ActCode: inpatient acute and non-acute encounters are kinds of IMP
        if "IMP" in classes:
            classes |= IMP_KINDS
        o["class"] = frozenset(classes)
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
        raise SpecError(f"{where}: from ({kind!r}) must be one of {sorted(_EVAL)}"
                        f"{_did_you_mean(kind, _EVAL)}")
    return Rule(kind=kind, opts=o)


_EVAL = {
    "patient": evaluate_patient,
    "condition": evaluate_condition,
    "observation": evaluate_observation,
    "encounter": evaluate_encounter,
    "medication": evaluate_medication,
}
