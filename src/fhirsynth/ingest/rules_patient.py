"""Patient rules of a feature spec: age, birth year, demographics, state, deceased.

Extensions are found by url (and US Core ``ombCategory`` sub-extensions by url), never by
position; ages top-code at the Safe Harbor limit and birth years of those ages are
suppressed.  Nothing below state is read from an address.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhirsynth.ingest.extract_base import (
    NULL_CODES,
    URL_BIRTHSEX,
    URL_ETHNICITY,
    URL_RACE,
    Ctx,
    codings,
    parse_date,
    years_between,
)
from fhirsynth.ingest.geo import state_code

__all__ = ["evaluate_patient"]


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


def evaluate_patient(o: Mapping[str, Any], ctx: Ctx) -> Any:
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
        codes = [c["code"] for c in codings(p.get("maritalStatus"))]
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
    age_now = years_between(born, ctx.ref)
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
    return min(years_between(born, at), top)
