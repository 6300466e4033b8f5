"""Reading clinical input: FHIR R4 resources and clinical CSV, folded one row per patient.

:func:`read_input` is the one entry point the pipeline and the CLI use: FHIR files and
folders go through the streaming reader (:mod:`.fhir`) and the feature extractor
(:mod:`.features`); one clinical CSV goes through :mod:`.csv`.  It returns the patient table
and a JSON-ready import report (counts and issue locations, never patient values), whose
``warnings`` (custodian only) say what the FHIR reader dropped as invalid, how many values
(CSV or extracted from FHIR) were clipped to the bounds, and name files skipped as not FHIR
and columns that extraction left empty for (nearly) every patient.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from fhirsynth.domain import TableSpec
from fhirsynth.errors import ConfigError

__all__ = ["read_fhir", "read_input"]


def read_fhir(
    paths: Sequence[str | os.PathLike[str]],
    spec: TableSpec,
    *,
    validation: Literal["needed", "full"] = "needed",
    strict: bool = False,
    on_patient: Callable[[int, int], None] | None = None,
    patient_ids: list[str] | None = None,
    keep_test_patients: bool = False,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One row per patient of FHIR input under a feature spec, and the import report.

    Only the elements the spec reads are validated in the default mode; ``full`` validates
    every resource.  ``on_patient(patients, resources)`` is called after each patient with
    the running counts (progress).  ``patient_ids`` receives each row's ``Patient.id``.
    Patients labelled as test data (fhirsynth's synthetic output) are left out unless
    ``keep_test_patients`` (:class:`~fhirsynth.ingest.fhir.ReaderConfig`).
    """
    from fhirsynth.errors import FHIRValidationError
    from fhirsynth.ingest.coverage import (
        absent_type_warnings,
        empty_column_warnings,
        out_of_bounds,
        unit_drops,
    )
    from fhirsynth.ingest.csv import bounds_warning
    from fhirsynth.ingest.features import (
        ExtractReport,
        column_types,
        extract_table,
        spec_reads,
    )
    from fhirsynth.ingest.fhir import ImportReport, ReaderConfig, iter_patients
    from fhirsynth.ingest.report import drop_warning

    report = ImportReport()
    extract = ExtractReport()
    cfg = ReaderConfig(needed=spec_reads(spec), validation=validation, strict=strict,
                       keep_test_patients=keep_test_patients)
    records = iter_patients(list(paths), report=report, config=cfg)
    if on_patient is not None:
        records = _counting(records, lambda n: on_patient(n, sum(report.resources_read.values())))
    table = extract_table(records, spec, extract, patient_ids)
    units, refusal = unit_drops(extract.counts, extract.first, spec)
    if strict and refusal is not None:
        # a value dropped for its unit is a FHIR issue like an invalid element
        raise FHIRValidationError(refusal)
    out = report.to_dict()
    out["extraction"] = {"counts": dict(sorted(extract.counts.items())),
                         "issues": [report.anonymise(str(i)) for i in extract.issues[:200]]}
    # custodian only (console, internal report): columns extraction left (nearly) empty
    # and files skipped as not FHIR (named: the custodian must see which one)
    dropped = drop_warning(out)
    # values outside their column's bounds: clipped by encoding, counted for the custodian
    out["out_of_bounds"] = out_of_bounds(table, spec)
    clipped = bounds_warning("FHIR input", out["out_of_bounds"], strict_option=False)
    out["warnings"] = ([dropped] if dropped else []) + ([clipped] if clipped else []) \
        + units + list(report.warnings) + empty_column_warnings(table, extract.counts, spec)
    if len(table):
        out["warnings"] += absent_type_warnings(column_types(spec), report.resources_read)
    return table, out


def _counting(records: Any, callback: Callable[[int], None]) -> Any:
    for i, r in enumerate(records, 1):
        yield r
        callback(i)


def read_input(
    paths: Sequence[str | os.PathLike[str]],
    spec: TableSpec,
    *,
    validation: Literal["needed", "full"] = "needed",
    strict: bool = False,
    on_patient: Callable[[int, int], None] | None = None,
    patient_ids: list[str] | None = None,
    keep_test_patients: bool = False,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The patient table of FHIR input or of one clinical CSV (chosen by file suffix).

    ``patient_ids``, when given, receives the patients' ids (FHIR ``Patient.id``, a CSV
    ``role: key`` column): internal, for the privacy ledger's patient digests.
    ``keep_test_patients``: see :func:`read_fhir`.
    """
    ps = [Path(p) for p in paths]
    csvs = [p for p in ps if p.suffix.lower() == ".csv"]
    if csvs:
        if len(csvs) != len(ps):
            raise ConfigError("inputs mix CSV and FHIR files: run them separately")
        if len(csvs) > 1:
            raise ConfigError(f"only one CSV file is accepted per run ({len(csvs)} given: "
                              f"{', '.join(p.name for p in csvs)}); run each separately, or "
                              "join them into one file with one row per patient")
        from fhirsynth.ingest.sources import check_regular_file

        check_regular_file(ps[0])  # a FIFO would block the read
        from fhirsynth.ingest.csv import OMITTED_NOT_IN_SCHEMA, read_csv_table, read_notes
        from fhirsynth.ingest.sources import shown_path

        # --strict refuses values outside the bounds; by default they are clipped and counted
        table, rep = read_csv_table(ps[0], spec, strict=strict,
                                    bounds="fail" if strict else "clip", patient_ids=patient_ids)
        unknown = [h for h, t in rep.treatments.items()
                   if t.get("treatment") == OMITTED_NOT_IN_SCHEMA]
        # --strict refuses a column more than 5 % mapped to 'other'; see share_problems
        refusals, warnings = read_notes(shown_path(ps[0].name), spec, rep, strict=strict)
        if unknown:
            warnings.append(
                f"{ps[0].name}: {len(unknown)} column(s) not in the schema, left out of the "
                f"release: {', '.join(unknown[:10])}{' ...' if len(unknown) > 10 else ''} "
                "(declare them in the schema to model them)")
        return table, {
            "rows_read": rep.rows_read, "rows_dropped": rep.rows_dropped,
            "rows_folded": rep.rows_folded,
            "columns": rep.treatments,
            "out_of_bounds": rep.out_of_bounds,
            "mapped_to_other": rep.mapped_to_other,
            "refusals": refusals,
            "issues": [str(i) for i in rep.issues[:200]],
            "warnings": warnings,
        }
    return read_fhir(ps, spec, validation=validation, strict=strict, on_patient=on_patient,
                     patient_ids=patient_ids, keep_test_patients=keep_test_patients)
