"""Synthetic patient table -> FHIR R4 Bulk Data NDJSON, one file per resource type.

Each row becomes a Patient with a fresh UUIDv4 and the resources its feature-spec columns
describe: Condition per true condition flag, Observation per latest-value column,
Encounter per counted encounter (class, and a synthetic year-precision ``period.start``
drawn at random inside the column's public window), MedicationRequest per true medication
flag.  No names, identifiers, address below state, and no date more precise than a year;
no date of the input is used.  Every resource is checked against the fhir.resources R4B
models and for extensions without ``url`` before anything is moved into place.
"""

from __future__ import annotations

import datetime as _dt
import functools
import logging
import math
import re
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson
import pandas as pd
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from fhirsynth.domain import TableSpec
from fhirsynth.errors import ConfigError, ExportError
from fhirsynth.ingest.extract_base import (
    LOINC,
    RXNORM,
    SNOMED,
    URL_BIRTHSEX,
    URL_ETHNICITY,
    URL_RACE,
)
from fhirsynth.ingest.geo import US_STATES

__all__ = ["FHIR_VERSION", "TEST_DATA_LABEL", "encounter_years", "resources_for_row",
           "transaction_bundle", "window_years", "write_fhir"]

logger = logging.getLogger(__name__)

FHIR_VERSION = "4.0.1"
OMB = "urn:oid:2.16.840.1.113883.6.238"
NULL_FLAVOR = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
MARITAL = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
UCUM = "http://unitsofmeasure.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
COND_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
OMB_DISPLAY = {
    "1002-5": "American Indian or Alaska Native", "2028-9": "Asian",
    "2054-5": "Black or African American", "2076-8": "Native Hawaiian or Other Pacific Islander",
    "2106-3": "White", "2131-1": "Other Race", "2135-2": "Hispanic or Latino",
    "2186-5": "Not Hispanic or Latino", "ASKU": "Asked but no answer", "UNK": "Unknown",
}
_CATEGORY = {
    **dict.fromkeys(("39156-5", "29463-7", "8302-2", "8480-6", "8462-4", "85354-9"),
                    "vital-signs"),
    **dict.fromkeys(("4548-4", "2093-3"), "laboratory"),
    "72166-2": "social-history",
}
_GENDERS = ("male", "female", "other", "unknown")

Resource = dict[str, Any]


def _rng(rng_or_seed: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng_or_seed, np.random.Generator):
        return rng_or_seed
    return np.random.default_rng(rng_or_seed)


def _uuid4(rng: np.random.Generator) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def _present(v: Any) -> bool:
    return v is not None and not (isinstance(v, float) and np.isnan(v)) and v is not pd.NA


def _first(src: Mapping[str, Any], key: str) -> str | None:
    v = src.get(key)
    if isinstance(v, list | tuple) and v:
        return str(v[0])
    return str(v) if isinstance(v, str | int) else None


def _omb_extension(url: str, code: str) -> Resource:
    sub: list[Resource] = []
    if code in OMB_DISPLAY:
        system = NULL_FLAVOR if code in ("ASKU", "UNK") else OMB
        sub.append({"url": "ombCategory",
                    "valueCoding": {"system": system, "code": code,
                                    "display": OMB_DISPLAY[code]}})
        text = OMB_DISPLAY[code]
    else:
        text = "Multiple races" if code == "multiple" else "Other"
    sub.append({"url": "text", "valueString": text})
    return {"url": url, "extension": sub}


#: the security label of every synthetic Patient: HL7 ActReason HTEST, "test health data"
#: (not a real patient); fhirsynth's reader leaves Patients so labelled out of its input
TEST_DATA_LABEL = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                   "code": "HTEST", "display": "test health data"}


def _patient(row: Mapping[str, Any], spec: TableSpec, pid: str) -> Resource:
    p: Resource = {"resourceType": "Patient", "id": pid,
                   "meta": {"security": [dict(TEST_DATA_LABEL)]}}
    ext: list[Resource] = []
    for col in spec.columns:
        src = col.source or {}
        v = row.get(col.name)
        if src.get("from") != "patient" or not _present(v):
            continue
        f = src.get("field")
        if f == "gender" and v in _GENDERS:
            p["gender"] = v
        elif f == "birth_year" and 1000 <= int(v) <= 9999:
            p["birthDate"] = f"{int(v):04d}"
        elif f == "birth_sex":
            ext.append({"url": URL_BIRTHSEX, "valueCode": str(v)})
        elif f == "race":
            ext.append(_omb_extension(URL_RACE, str(v)))
        elif f == "ethnicity":
            ext.append(_omb_extension(URL_ETHNICITY, str(v)))
        elif f == "marital_status":
            system = NULL_FLAVOR if v == "UNK" else MARITAL
            p["maritalStatus"] = {"coding": [{"system": system, "code": str(v)}]}
        elif f == "state" and v in US_STATES:
            p["address"] = [{"state": str(v), "country": "US"}]
        elif f == "deceased":
            p["deceasedBoolean"] = bool(v)
    if ext:
        p["extension"] = ext
    return p


def _observation(src: Mapping[str, Any], col_unit: str, v: Any, subject: Resource,
                 oid: str) -> Resource | None:
    code = _first(src, "loinc")
    if code is None:
        return None
    obs: Resource = {"resourceType": "Observation", "id": oid, "status": "final",
                     "code": {"coding": [{"system": LOINC, "code": code}]}, "subject": subject}
    if code in _CATEGORY:
        obs["category"] = [{"coding": [{"system": OBS_CATEGORY, "code": _CATEGORY[code]}]}]
    if src.get("value") == "code":
        snomed = next((k for k, c in (src.get("map") or {}).items() if c == v), None)
        if snomed is None:
            return None
        obs["valueCodeableConcept"] = {"coding": [{"system": SNOMED, "code": str(snomed)}]}
        return obs
    unit = str(src.get("unit") or col_unit)
    value = int(v) if float(v).is_integer() else round(float(v), 2)
    obs["valueQuantity"] = {"value": value, "unit": unit, "system": UCUM, "code": unit}
    return obs


def _reference(spec: TableSpec) -> _dt.date:
    """The spec's (public) reference date; today's date when the spec has none."""
    try:
        return _dt.date.fromisoformat(str(spec.reference_date))
    except ValueError:
        return _dt.date.today()


@functools.lru_cache(maxsize=64)
def window_years(reference: _dt.date, years: float) -> tuple[int, ...]:
    """Years whose 1 July lies in the window ``(reference - years, reference]``.

    The window is the one the extractor counts encounters in (``years`` x 365.25 days,
    rounded, before the reference date, the reference date included); a year-precision date
    reads back as 1 July of its year, so an encounter dated by one of these years is counted
    again.  A window holding no 1 July gives the years it overlaps (not counted on re-reading).
    """
    ref = reference.toordinal()
    start = max(ref - round(float(years) * 365.25), _dt.date(1000, 1, 1).toordinal())
    span = range(_dt.date.fromordinal(start).year, reference.year + 1)
    inside = tuple(y for y in span if start < _dt.date(y, 7, 1).toordinal() <= ref)
    return inside or tuple(range(_dt.date.fromordinal(start + 1).year, reference.year + 1))


def _birth_year(row: Mapping[str, Any], spec: TableSpec, reference: _dt.date) -> int | None:
    """The synthetic patient's synthetic birth year (else the earliest its age allows)."""
    by_field = {}
    for col in spec.columns:
        src = col.source or {}
        if src.get("from") == "patient" and _present(row.get(col.name)):
            by_field[src.get("field")] = row[col.name]
    if "birth_year" in by_field:
        return int(by_field["birth_year"])
    if "age" in by_field:
        return reference.year - int(float(by_field["age"])) - 1
    return None


def encounter_years(spec: TableSpec, source: Mapping[str, Any], row: Mapping[str, Any],
                    n: int, rng: np.random.Generator) -> list[int]:
    """Synthetic years (ascending) of ``n`` encounters counted by an ``encounter`` rule.

    Drawn uniformly from :func:`window_years` of the spec's reference date and the rule's
    ``years``, restricted to years from the synthetic patient's synthetic birth year on.  A
    patient born after every year of the window (a newborn in the reference year) has its
    encounters in its birth year: never before birth, though re-reading the export then
    counts them outside the window.  Only public values (the spec) and synthetic ones (the
    row, ``rng``) are used: never a date of the input.
    """
    if n <= 0:
        return []
    reference = _reference(spec)
    window = window_years(reference, float(source.get("years") or 1))
    born = _birth_year(row, spec, reference)
    after_birth = [y for y in window if born is None or y >= born]
    choices = np.asarray(after_birth or [born])
    return sorted(int(y) for y in rng.choice(choices, size=n))


def resources_for_row(row: Mapping[str, Any], spec: TableSpec,
                      rng: np.random.Generator) -> Iterator[Resource]:
    """The FHIR resources of one synthetic patient row (Patient first)."""
    pid = _uuid4(rng)
    yield _patient(row, spec, pid)
    subject = {"reference": f"Patient/{pid}"}
    for col in spec.columns:
        src = col.source or {}
        kind = src.get("from")
        v = row.get(col.name)
        if not _present(v) or kind in (None, "patient"):
            continue
        if kind == "condition" and bool(v):
            snomed = _first(src, "snomed")
            coding = ({"system": SNOMED, "code": snomed} if snomed else
                      {"system": ICD10CM, "code": _first(src, "icd10cm")})
            yield {"resourceType": "Condition", "id": _uuid4(rng),
                   "clinicalStatus": {"coding": [{"system": COND_CLINICAL, "code": "active"}]},
                   "code": {"coding": [coding]}, "subject": subject}
        elif kind == "observation" and src.get("panels") and src.get("value") != "code":
            continue  # a component of a panel, written below
        elif kind == "observation":
            obs = _observation(src, col.unit, v, subject, _uuid4(rng))
            if obs is not None:
                yield obs
        elif kind == "encounter":
            cls = _first(src, "class") or "AMB"
            for year in encounter_years(spec, src, row, int(v), rng):
                yield {"resourceType": "Encounter", "id": _uuid4(rng), "status": "finished",
                       "class": {"system": ACT_CODE, "code": cls},
                       "period": {"start": f"{year:04d}"}, "subject": subject}
        elif kind == "medication" and src.get("rxnorm") and bool(v):
            yield {"resourceType": "MedicationRequest", "id": _uuid4(rng), "status": "active",
                   "intent": "order",
                   "medicationCodeableConcept": {"coding": [{"system": RXNORM,
                                                             "code": _first(src, "rxnorm")}]},
                   "subject": subject}
    yield from _panels(row, spec, subject, rng)


def _panels(row: Mapping[str, Any], spec: TableSpec, subject: Resource,
            rng: np.random.Generator) -> Iterator[Resource]:
    """One panel Observation per panel code (the first of a rule's ``panels``) with a
    component per column of that panel that has a value: blood pressure as the US Core
    panel (85354-9 with systolic 8480-6 and diastolic 8462-4), as the reader expects it."""
    groups: dict[str, list[Resource]] = {}
    for col in spec.columns:
        src = col.source or {}
        v = row.get(col.name)
        if src.get("from") != "observation" or not src.get("panels") or \
                src.get("value") == "code" or not _present(v):
            continue
        code = _first(src, "loinc")
        if code is None:
            continue
        unit = str(src.get("unit") or col.unit)
        value = int(v) if float(v).is_integer() else round(float(v), 2)
        groups.setdefault(_first(src, "panels"), []).append({
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}})
    for panel, components in groups.items():
        obs: Resource = {"resourceType": "Observation", "id": _uuid4(rng), "status": "final",
                         "code": {"coding": [{"system": LOINC, "code": panel}]},
                         "subject": subject, "component": components}
        if panel in _CATEGORY:
            obs["category"] = [{"coding": [{"system": OBS_CATEGORY,
                                            "code": _CATEGORY[panel]}]}]
        yield obs


def _urlless_extension(node: Any) -> bool:
    if isinstance(node, dict):
        for key in ("extension", "modifierExtension"):
            for e in node.get(key, ()) or ():
                if not isinstance(e, dict) or not e.get("url"):
                    return True
        return any(_urlless_extension(v) for v in node.values())
    if isinstance(node, list):
        return any(_urlless_extension(v) for v in node)
    return False


_UUID_FORMS = re.compile(r"(?:urn:uuid:|Patient/)?[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-"
                         r"[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_ID_KEYS = frozenset({"id", "fullUrl", "reference"})


def _shape(node: Any, key: str = "") -> Any:
    """``node`` less what never changes the models' verdict: the fresh UUIDs this module
    writes as ids and references (valid in every form it writes them) become one marker,
    finite numbers a marker of their kind (any finite decimal is a valid FHIR decimal; an
    integer within 32 bits a valid integer).  Two resources of one shape validate alike."""
    if isinstance(node, dict):
        return {k: _shape(v, k) for k, v in node.items()}
    if isinstance(node, list):
        return [_shape(v) for v in node]
    if isinstance(node, str) and key in _ID_KEYS and _UUID_FORMS.fullmatch(node):
        return "\x00uuid"
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int) and abs(node) < 2**31:
        return "\x00int"
    if isinstance(node, float) and math.isfinite(node):
        return "\x00float"
    return node


def _validate(res: Resource, models: bool, seen: set[bytes] | None = None) -> None:
    """Check a generated resource: extensions with ``url``, and (``models``) the R4B model.

    ``seen``: shapes (:func:`_shape`) already checked in this export; a resource of one of
    them is not checked again (the resources of an export share far fewer shapes than there
    are resources: the models' validation was 85 % of an export's time)."""
    rtype = res["resourceType"]
    shape = orjson.dumps(_shape(res)) if seen is not None else b""
    if seen is not None and shape in seen:
        return  # (the shape keeps every url, so its extensions were checked too)
    if _urlless_extension(res):
        raise ExportError(f"generated {rtype} has an extension without url")
    if seen is not None:
        seen.add(shape)  # (a model failure below ends the export)
    if not models:
        return
    try:
        get_fhir_model_class(rtype).model_validate(res)
    except ValidationError as exc:
        raise ExportError(f"generated {rtype} does not validate as FHIR R4 (R4B models): "
                          f"{exc.error_count()} error(s), first at "
                          f"{'.'.join(str(x) for x in exc.errors()[0]['loc'])}") from None


def _validate_bundle(bundle: Resource, models: bool, seen: set[bytes]) -> None:
    """Check a transaction Bundle as :func:`_validate` checks a resource, entry by entry.

    Every patient's Bundle has its own mix of entries, so as a whole almost none shares a
    shape with another and each was validated in full (4 ms a patient, most of
    ``--fhir-bundles``' time).  The models validate an entry on its own (its fields and its
    resource), so the Bundle is checked as its fields without entries, then each entry of a
    shape not yet seen with the ``BundleEntry`` model.  (The invariants across entries
    that the R4B models do not check are not checked either way.)"""
    _validate({k: v for k, v in bundle.items() if k != "entry"}, models, seen)
    for entry in bundle.get("entry", ()):
        shape = b"entry" + orjson.dumps(_shape(entry))
        if shape in seen:
            continue  # (the shape keeps every url, so its extensions were checked too)
        if _urlless_extension(entry):
            raise ExportError(f"generated {entry['resource']['resourceType']} has an "
                              "extension without url")
        seen.add(shape)
        if not models:
            continue
        try:
            get_fhir_model_class("BundleEntry").model_validate(entry)
        except ValidationError as exc:
            raise ExportError(
                f"generated Bundle entry ({entry['resource']['resourceType']}) does not "
                f"validate as FHIR R4 (R4B models): {exc.error_count()} error(s), first at "
                f"{'.'.join(str(x) for x in exc.errors()[0]['loc'])}") from None


def transaction_bundle(resources: list[Resource], bundle_id: str) -> Resource:
    """One patient's resources as a FHIR R4 transaction Bundle.

    Each entry has ``fullUrl`` ``urn:uuid:<id>`` and a ``POST`` request, and references to
    the Patient point at its ``urn:uuid``, so a server that takes the transaction assigns
    its own ids and rewrites the references (the usual form of Synthea's bundles).
    """
    pid = resources[0]["id"]
    entries = []
    for res in resources:
        r = dict(res)
        if "subject" in r:
            r["subject"] = {"reference": f"urn:uuid:{pid}"}
        entries.append({"fullUrl": f"urn:uuid:{r['id']}", "resource": r,
                        "request": {"method": "POST", "url": r["resourceType"]}})
    return {"resourceType": "Bundle", "id": bundle_id, "type": "transaction", "entry": entries}


def write_fhir(df: pd.DataFrame, spec: TableSpec, out_dir: str | Path, *,
               rng_or_seed: np.random.Generator | int | None = None,
               validate: bool = True, bundles: str | Path | None = None) -> dict[str, Path]:
    """Write synthetic patients as Bulk NDJSON files ``<Type>.ndjson`` in ``out_dir``.

    Parameters
    ----------
    df : DataFrame
        Synthetic rows with the spec's columns (missing ones are skipped).
    spec : TableSpec
        The feature spec the rows follow (its ``source`` rules say what each column means):
        the one the data were extracted with, or a loaded model's ``model.spec`` (a model
        keeps the rules).  A spec without FHIR rules (a CSV schema) raises ConfigError.
    out_dir : str or Path
        Destination directory (created if needed); files are written to a temporary
        directory and moved in only when all are complete and valid.
    rng_or_seed : Generator or int, optional
        Randomness for the fresh UUIDv4 ids (OS entropy when ``None``).
    validate : bool
        Validate every resource with the R4B models (default); extensions are always
        checked for a ``url``.
    bundles : str or Path, optional
        Also write the same patients (same ids) as one transaction Bundle per patient, one
        Bundle per line, to this NDJSON file (:func:`transaction_bundle`; each Bundle is
        validated as a whole when ``validate``).  Keep it outside ``out_dir``: a reader of
        that folder would count every resource twice.

    Returns
    -------
    dict of str to Path
        Resource type -> file written (``"Bundle"`` -> the bundles file).
    """
    if not spec.has_fhir_rules:
        raise ConfigError(
            f"spec {spec.name!r} has no FHIR source rules (source: {{from: ...}}), so its rows "
            "cannot become FHIR resources: pass the feature spec the data were extracted with "
            "(fhirsynth.ingest.features.load_feature_spec() for the default one); a model "
            "saved by an earlier fhirsynth kept only the public description of its spec")
    lost = [c.name for c in spec.columns if c.role == "derived" and c.name not in df.columns]
    if lost:
        # rows of Synthesizer.sample(n) without release=True: no birth year, so no birthDate
        warnings.warn(f"the rows lack the derived column(s) {', '.join(lost)}, so their "
                      "resources are written without them (no Patient.birthDate without "
                      "birth_year): pass Synthesizer.sample(n, release=True) rows",
                      UserWarning, stacklevel=2)
    rng = _rng(rng_or_seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".fhir-", dir=out))
    handles: dict[str, IO[bytes]] = {}
    counts: dict[str, int] = {}
    seen: set[bytes] = set()
    try:
        if bundles is not None:
            handles["Bundle"] = (tmp / "Bundle.ndjson").open("wb")
        for row in df.to_dict(orient="records"):
            mine = list(resources_for_row(row, spec, rng))
            for res in mine:
                _validate(res, validate, seen)
                rtype = res["resourceType"]
                if rtype not in handles:
                    handles[rtype] = (tmp / f"{rtype}.ndjson").open("wb")
                handles[rtype].write(orjson.dumps(res) + b"\n")
                counts[rtype] = counts.get(rtype, 0) + 1
            if bundles is not None:
                bundle = transaction_bundle(mine, _uuid4(rng))
                _validate_bundle(bundle, validate, seen)
                handles["Bundle"].write(orjson.dumps(bundle) + b"\n")
        for fh in handles.values():
            fh.close()
        written = {}
        for rtype in handles:
            dest = Path(bundles) if rtype == "Bundle" else out / f"{rtype}.ndjson"
            dest.parent.mkdir(parents=True, exist_ok=True)
            (tmp / f"{rtype}.ndjson").replace(dest)
            written[rtype] = dest
    finally:
        for fh in handles.values():
            fh.close()
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("wrote FHIR NDJSON: %s", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return written
