"""Feature spec -> one patient row per :class:`PatientRecord`.

Owns loading a YAML feature spec whose columns carry ``source:`` rules (format in
docs/feature-spec.md; rules in :mod:`fhirsynth.ingest.rules`), folding one patient's
resources into one typed row, and building the patient table.  Rows hold only the declared
features: never names, ids, addresses below state, telecom, identifiers, free text or exact
dates.  The default spec ships as package data (``fhirsynth/data/feature-spec.yaml``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from fhirsynth.domain import Column, TableSpec, load_spec
from fhirsynth.errors import SpecError
from fhirsynth.ingest.records import PatientRecord
from fhirsynth.ingest.rules import Ctx, ExtractReport, Rule, parse_rule

__all__ = [
    "ExtractReport",
    "column_types",
    "default_spec_path",
    "extract_row",
    "extract_table",
    "load_feature_spec",
    "reference_date",
    "spec_reads",
]

logger = logging.getLogger(__name__)

_RULE_CACHE: dict[int, tuple[TableSpec, dict[str, Rule]]] = {}


def default_spec_path() -> Path:
    """Path of the default FHIR feature spec shipped with the package."""
    ref = resources.files("fhirsynth").joinpath("data", "feature-spec.yaml")
    return Path(str(ref))


def reference_date(spec: TableSpec) -> date:
    """The spec's ``reference_date`` as a date (a :class:`SpecError` if absent or invalid)."""
    raw = spec.reference_date
    if isinstance(raw, date):
        return raw
    if raw is None:
        raise SpecError(f"spec {spec.name!r}: reference_date is missing: set it to a full "
                        "date YYYY-MM-DD (ages are computed at that date)")
    try:
        return date.fromisoformat(str(raw))
    except (TypeError, ValueError):
        raise SpecError(
            f"spec {spec.name!r}: reference_date ({str(raw)!r}) must be a full date "
            "YYYY-MM-DD") from None


def _rules(spec: TableSpec) -> dict[str, Rule]:
    cached = _RULE_CACHE.get(id(spec))
    if cached is not None and cached[0] is spec:
        return cached[1]
    rules: dict[str, Rule] = {}
    for col in spec.columns:
        if col.source is None:
            raise SpecError(f"spec {spec.name!r}: column {col.name!r} has no 'source' rule")
        rules[col.name] = parse_rule(col.name, col.source)
    _RULE_CACHE[id(spec)] = (spec, rules)
    return rules


def load_feature_spec(path: str | Path | None = None) -> TableSpec:
    """Load and validate a YAML feature spec (every column needs a ``source`` rule).

    Parameters
    ----------
    path : str or Path, optional
        The spec file; the packaged default (:func:`default_spec_path`) when omitted.

    Raises
    ------
    SpecError
        When the file does not parse, a column lacks or has an invalid rule, or the
        ``reference_date`` is missing.
    """
    spec = load_spec(default_spec_path() if path is None else path)
    if spec.reference_date is None and not spec.has_fhir_rules:
        raise SpecError(f"{path}: a table schema (no reference_date, no column with a "
                        "'source: {from: ...}' rule), not a FHIR feature spec: FHIR input "
                        "needs a feature spec (docs/feature-spec.md)")
    try:
        reference_date(spec)
        _rules(spec)
        _check_birth_year_bounds(spec)
    except SpecError as exc:
        raise SpecError(f"{path or default_spec_path()}: {exc}") from None
    return spec


def _check_birth_year_bounds(spec: TableSpec) -> None:
    """A birth-year column's bounds must hold every year its age column implies.

    The synthetic birth year is derived from the synthetic age and the reference date
    (export/harmonise.py); bounds that do not cover ``reference year - top-coded age ..
    reference year`` would let exported birth years fall outside the declared domain (a
    spec whose reference_date was moved without its birth-year bounds).  Ages from
    ``SUPPRESS_AGE`` (89) on have no birth year (Safe Harbor).
    """
    from fhirsynth.export.harmonise import SUPPRESS_AGE

    ref = reference_date(spec).year
    ages = [c for c in spec.columns if isinstance(c.source, dict)
            and c.source.get("field") == "age" and c.bounds is not None]
    for col in spec.columns:
        src = col.source if isinstance(col.source, dict) else {}
        if src.get("field") != "birth_year" or col.bounds is None or not ages:
            continue
        oldest = ref - min(int(ages[0].bounds[1]), SUPPRESS_AGE)
        if col.bounds[0] > oldest or col.bounds[1] < ref:
            raise SpecError(
                f"column {col.name}: bounds [{col.bounds[0]:g}, {col.bounds[1]:g}] do not hold "
                f"the birth years that the ages at the reference_date ({ref}) imply "
                f"({oldest} .. {ref}); set them to [{oldest}, {ref}]")


def column_types(spec: TableSpec) -> dict[str, set[str]]:
    """The resource types other than Patient each modelled column is extracted from."""
    rules = _rules(spec)
    return {c.name: set(rules[c.name].reads()) - {"Patient"} for c in spec.modelled}


def spec_reads(spec: TableSpec) -> dict[str, set[str]]:
    """Which top-level elements of which resource types the spec reads.

    The reader validates only these elements.  ``Patient`` always includes ``id``, and every
    other type its ``subject`` (needed to group resources by patient).
    """
    out: dict[str, set[str]] = {"Patient": {"id"}}
    for rule in _rules(spec).values():
        for rtype, elements in rule.reads().items():
            out.setdefault(rtype, set()).update(elements | {"id"})
    return out


def _check_value(col: Column, value: Any, ctx: Ctx) -> Any:
    if value is None:
        return None
    if col.kind == "categorical":
        v = str(value)
        if v not in col.categories and not col.other:
            ctx.report.add(f"{col.name}: value outside the declared categories", ctx.record,
                           ctx.record.patient, col.name,
                           "value not in the declared category list; set to missing")
            return None
        return v
    if col.kind == "boolean":
        return bool(value)
    return value


def extract_row(record: PatientRecord, spec: TableSpec,
                report: ExtractReport | None = None) -> dict[str, Any]:
    """Fold one patient's resources into one row ``{column: value or None}``.

    Parameters
    ----------
    record : PatientRecord
        The patient and its resources.
    spec : TableSpec
        A feature spec (every column has a ``source`` rule).
    report : ExtractReport, optional
        Collects issues (unknown units, unresolved references...); a throwaway one if omitted.
    """
    report = report if report is not None else ExtractReport()
    rules = _rules(spec)
    ref = reference_date(spec)
    row: dict[str, Any] = {}
    cache: dict[str, Any] = {}
    for col in spec.columns:
        ctx = Ctx(record=record, ref=ref, report=report, column=col.name, cache=cache)
        row[col.name] = _check_value(col, rules[col.name].evaluate(ctx), ctx)
    return row


def _dtype(col: Column) -> str:
    if col.kind == "boolean":
        return "boolean"
    if col.kind == "categorical":
        return "string"
    return "Int64" if col.integer else "float64"


def extract_table(records: Iterable[PatientRecord], spec: TableSpec,
                  report: ExtractReport | None = None,
                  patient_ids: list[str] | None = None) -> pd.DataFrame:
    """One row per patient, columns typed per spec (boolean, Int64, float64, string).

    Records are consumed one at a time (memory bounded by the largest patient).  A patient id
    seen twice is folded into one row: the later record is dropped and counted in the
    report, never learned as a second person.  ``patient_ids``, when given, receives the
    ``Patient.id`` of each row (internal: the privacy ledger's patient digests).
    """
    report = report if report is not None else ExtractReport()
    data: dict[str, list[Any]] = {c.name: [] for c in spec.columns}
    seen: set[str] = set()
    n = 0
    for record in records:
        if record.patient_id in seen:
            report.add("duplicate patient record", record, record.patient, "",
                       "patient id seen before; record dropped")
            continue
        seen.add(record.patient_id)
        if patient_ids is not None:
            patient_ids.append(record.patient_id)
        row = extract_row(record, spec, report)
        for name, values in data.items():
            values.append(row[name])
        n += 1
    logger.info("extracted %d patient rows, %d columns", n, len(data))
    frame = {}
    for col in spec.columns:
        dtype = _dtype(col)
        missing = float("nan") if dtype == "float64" else pd.NA
        vals = [missing if v is None else v for v in data[col.name]]
        frame[col.name] = pd.Series(vals, dtype=dtype, name=col.name)
    return pd.DataFrame(frame, columns=spec.names)
