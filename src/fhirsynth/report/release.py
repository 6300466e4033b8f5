"""Write the three report artefacts of a release: report.pdf, internal/validation.pdf, audit.json.

:func:`write_reports` runs the evaluation (fidelity, privacy risk, Safe Harbor scan of the
output files), writes the custodian's ``internal/evaluation.json`` and
``internal/validation.pdf``, then the shareable ``report.pdf`` (fed only with the synthetic
table, the public spec, the budget table and released measurements), and last the audit
record listing every output with its hash.  Each file is written atomically.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import json
import logging
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from fhirsynth.domain import OTHER, TableSpec, _category_str
from fhirsynth.evaluate.discretise import discretise, eval_columns
from fhirsynth.evaluate.fidelity import describe, evaluate_fidelity, marginal
from fhirsynth.evaluate.privacy import evaluate_privacy
from fhirsynth.evaluate.safe_harbor import SafeHarborReport, scan_fhir, scan_table
from fhirsynth.report.audit import (
    AUDIT_NAME,
    build_audit,
    file_entry,
    public_config,
    software_versions,
    write_json_atomic,
)
from fhirsynth.report.internal import internal_story
from fhirsynth.report.pdf import CUSTODIAN_BANNER, build_pdf
from fhirsynth.report.shareable import ShareableContext, shareable_story
from fhirsynth.report.text import clean

__all__ = ["ReportPaths", "input_entries", "singleton_categories", "write_reports"]

logger = logging.getLogger(__name__)

REPORT_NAME = "report.pdf"
VALIDATION_NAME = "internal/validation.pdf"
EVALUATION_NAME = "internal/evaluation.json"


@dataclass(frozen=True)
class ReportPaths:
    """Where :func:`write_reports` put its files."""

    report: Path
    validation: Path
    evaluation: Path
    audit: Path
    readme: Path | None = None
    #: the key of the input commitment (None: no inputs given)
    commitment: Path | None = None


#: the one ``inputs`` entry of a shareable record: no input file or folder is named
INPUTS_LABEL = "all inputs (keyed commitment; its key stays in internal/)"
#: the custodian's key of the input commitment (never shared)
COMMITMENT_NAME = "internal/input-commitment.json"


def input_commitment(fingerprint: str, key: bytes) -> str:
    """HMAC-SHA256 of the inputs' content ``fingerprint`` under the release's secret ``key``.

    An unkeyed hash of the whole input is an exact function of the private data: whoever
    holds every patient but one can try each candidate for the last one until the hash
    matches, the very adversary differential privacy is defined against (a red-team trial
    recovered a stroke patient's row this way in 8 seconds).  Keyed with 32 random bytes that
    stay with the custodian (:data:`COMMITMENT_NAME`), the value reveals nothing without the
    key, and the custodian can still show which input a release came from.
    """
    return hmac.new(key, fingerprint.encode("ascii"), hashlib.sha256).hexdigest()


def commitment_key(release: Path) -> bytes | None:
    """The commitment key kept in a release's ``internal/`` folder (None: absent or unreadable)."""
    return read_commitment_key(release / COMMITMENT_NAME)


def read_commitment_key(path: Path) -> bytes | None:
    """The key in a commitment key file (a release's :data:`COMMITMENT_NAME`, or a copy of
    it); None when the file is absent, unreadable or holds no key of 16 bytes or more."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))["key"]
        key = bytes.fromhex(raw)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return key if len(key) >= 16 else None


def input_entries(inputs: Iterable[str | Path], fingerprint: str | None = None,
                  key: bytes | None = None) -> list[dict[str, Any]]:
    """Audit entry of the inputs: one keyed commitment to all of them, and no name.

    Input names are private: Synthea names each bundle after its patient, and a folder name
    may state the cohort size ("25-patients").  A hash per file would let anyone holding one
    patient's record confirm that patient's membership, and the number of entries would be the
    exact cohort size when each patient has a file.  So the record holds one commitment to
    the whole input: :func:`input_commitment` of its content fingerprint
    (:func:`fhirsynth.privacy.ledger.source_fingerprint`; ``fingerprint`` when the caller has
    it already, so the inputs are not read again) under ``key``.
    """
    from fhirsynth.privacy.ledger import source_fingerprint

    paths = [Path(p) for p in inputs]
    if not paths or key is None:
        return []
    return [{"path": INPUTS_LABEL,
             "hmac_sha256": input_commitment(fingerprint or source_fingerprint(paths), key)}]


def limitations_text() -> str:
    """docs/limitations.md as bundled with the package."""
    return resources.files("fhirsynth").joinpath("data/limitations.md").read_text("utf-8")


def _shares(spec: TableSpec, real: pd.DataFrame, synth: pd.DataFrame) -> dict[str, Any]:
    cols = eval_columns(spec, real, synth)
    dr, ds = discretise(spec, real, cols), discretise(spec, synth, cols)
    return {name: {"states": list(dr.labels[j]), "real": marginal(dr, (j,)).tolist(),
                   "synthetic": marginal(ds, (j,)).tolist()}
            for j, name in enumerate(dr.columns)}


def singleton_categories(spec: TableSpec, real: pd.DataFrame) -> list[dict[str, Any]]:
    """Categories of modelled categorical columns that occur exactly once in ``real``.

    A statistic of the real data: for ``internal/`` only, never for the shareable report.
    Only public labels are shown: a declared category, or ``<other>`` (:data:`~fhirsynth.
    domain.OTHER`) for the values outside the declared domain taken together, as the model
    sees them; a raw out-of-domain cell is never shown.
    """
    found = []
    for c in spec.modelled:
        if c.kind != "categorical" or c.name not in real.columns:
            continue
        declared = set(c.categories)
        values = real[c.name].dropna().map(_category_str).str.strip()
        labels = values.where(values.isin(declared), OTHER)
        counts = labels.value_counts()
        found += [{"column": c.name, "category": str(v)}
                  for v in sorted(counts.index[counts == 1])]
    return found


def _scan_outputs(spec: TableSpec, synthetic: pd.DataFrame, out_dir: Path,
                  outputs: list[Path], rules: Mapping[str, Any] | None = None,
                  ) -> SafeHarborReport:
    keys = [c.name for c in spec.columns if c.role == "key"]
    table_name = next((p.name for p in outputs if p.suffix in (".csv", ".parquet")),
                      "synthetic table")
    from fhirsynth.export.harmonise import age_columns, birth_year_columns, top_codes

    tops = {**{c: float(v) for c, v in ((rules or {}).get("top_codes") or {}).items()},
            **top_codes(spec)}
    report = scan_table(synthetic, location=table_name, exempt=keys, top_coded=tops,
                        ages=age_columns(spec, rules),
                        birth_years=birth_year_columns(spec, rules))
    fhir = [p for p in outputs if p.name.endswith((".ndjson", ".ndjson.gz"))]
    if fhir:
        report = report.merge(scan_fhir(fhir))
    return report


#: why a shipped file that the output scan does not read needs no scan
_NOT_SCANNED = {
    "model.json": "the model: its public spec and noisy DP tables of counts, no row and no "
                  "value read from the data",
    "README.md": "written by fhirsynth from public facts only: the spec, the run's settings "
                 "and the file list",
    REPORT_NAME: "public facts, DP measurements and statistics of the scanned synthetic table; "
                 "it states this scan",
}


def scan_coverage(out: Path, outputs: Iterable[Path]) -> tuple[list[str], dict[str, str]]:
    """(shipped files the Safe Harbor scan covers, {other shipped file: why it needs none}).

    Covered: every table file (CSV, Parquet: each written from the one synthetic table the
    scan reads) and every FHIR file (scanned resource by resource).  Paths relative to
    ``out``; ``README.md`` and ``report.pdf``, written after the scan, are included.
    """
    scanned, not_scanned = [], {}
    for p in outputs:
        rel = p.relative_to(out).as_posix() if p.is_relative_to(out) else p.name
        if p.suffix in (".csv", ".parquet") or p.name.endswith((".ndjson", ".ndjson.gz")):
            scanned.append(rel)
        else:
            not_scanned[rel] = _NOT_SCANNED.get(p.name, "not a data file")
    from fhirsynth.report.readme import README_NAME

    for name in (README_NAME, REPORT_NAME):
        not_scanned[name] = _NOT_SCANNED[name]
    return scanned, not_scanned


def write_reports(
    out_dir: str | Path,
    *,
    spec: TableSpec,
    real_train: pd.DataFrame,
    real_holdout: pd.DataFrame | None,
    synthetic: pd.DataFrame,
    budget_table: Mapping[str, Any],
    model_summary: Mapping[str, Any] | None = None,
    import_report: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    inputs: Iterable[str | Path] = (),
    ledger_history: Mapping[str, Any] | None = None,
    outputs: Iterable[str | Path] = (),
    run_id: str | None = None,
    dataset: str | None = None,
    source_fingerprint: str | None = None,
    sensitive: Iterable[str] | None = None,
    created: _dt.datetime | None = None,
    no_holdout: str | None = None,
    output_rules: Mapping[str, Any] | None = None,
    real_unchecked: str | None = None,
) -> ReportPaths:
    """Evaluate a release and write ``report.pdf``, ``internal/`` and ``audit.json``.

    Parameters
    ----------
    out_dir : str or Path
        Release directory; ``outputs`` should lie inside it.
    spec : TableSpec
        The public spec the model was fitted with.
    real_train, real_holdout : pandas.DataFrame
        Real rows the model saw, and real rows it did not (``None``: no privacy-risk tests,
        TSTR tests on a split of ``real_train``).  Used for the internal report only.
    synthetic : pandas.DataFrame
        The released synthetic table.
    budget_table : mapping
        ``Accountant.table()`` of the run.
    model_summary : mapping, optional
        Public facts of the model: ``method`` (str), and ``released_marginals``, a list of
        ``{"columns": [name], "values": [noisy shares in the column's state order]}`` that
        are DP measurements already paid for; only these are compared in ``report.pdf``.
    import_report : mapping, optional
        Counts from ingest (resources read, rejected, patients, values outside the bounds...):
        internal report and ``internal/evaluation.json`` (``import_report``) only.
    config : mapping, optional
        The run configuration; seeds are removed before anything is written.
    inputs, outputs : iterable of path
        Input files/directories and released files (hashed into the audit record).
    run_id, dataset, source_fingerprint : str, optional
        Identify the run (default: a random UUID), the dataset (default: ``spec.name``) and
        the content fingerprint of the inputs (the ledger key of the source; recorded only
        as a keyed commitment, :func:`input_commitment`).
    sensitive : iterable of str, optional
        Columns for the attribute-inference test.
    created : datetime, optional
        Creation time (default: now, UTC).
    no_holdout : str, optional
        Why there is no real holdout (``fhirsynth report`` on an existing model): said in the
        internal report where the holdout's size and the privacy-risk tests would be.
    output_rules : mapping, optional
        A saved model's export rules (``FittedModel.output``): its top codes, ages and
        birth years, which a spec without source rules no longer tells the output scan.
    real_unchecked : str, optional
        Why ``real_train`` could not be checked against the release's input (``fhirsynth
        report`` on a model outside its release): said in the internal report and kept as
        ``real_input_unchecked`` in ``internal/evaluation.json``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    inputs = list(inputs)
    run_id = run_id or uuid.uuid4().hex
    created_at = (created or _dt.datetime.now(_dt.UTC)).replace(microsecond=0)
    dataset = clean(dataset or spec.name)
    out_paths = [Path(p) if Path(p).is_absolute() else out / p for p in outputs]
    version = software_versions()["fhirsynth"]

    logger.info("evaluating the release")
    fidelity = evaluate_fidelity(spec, real_train, synthetic, real_test=real_holdout)
    privacy = None
    if real_holdout is not None and len(real_holdout) and len(real_train):
        privacy = evaluate_privacy(spec, real_train, real_holdout, synthetic,
                                   sensitive=list(sensitive) if sensitive else None)
    sh = _scan_outputs(spec, synthetic, out, out_paths, output_rules).to_dict()
    sh["scanned"], sh["not_scanned"] = scan_coverage(out, out_paths)
    if privacy is None and no_holdout:
        privacy = {"note": f"Not run: {no_holdout}"}
    evaluation = {"fidelity": fidelity, "privacy": privacy, "safe_harbor": sh,
                  "singletons": singleton_categories(spec, real_train)}
    if real_unchecked:
        evaluation["real_input_unchecked"] = real_unchecked
    if import_report is not None:
        from fhirsynth.ingest.report import stored_report

        evaluation["import_report"] = stored_report(import_report)
    # a random nonce: the hash of this file in audit.json is then no exact function of the
    # real data (a rebuilt report's evaluation would otherwise hash the same every time)
    evaluation["nonce"] = secrets.token_hex(16)
    eval_path = write_json_atomic(out / EVALUATION_NAME, evaluation)
    key = secrets.token_bytes(32) if inputs else None
    if key is not None:
        write_json_atomic(out / COMMITMENT_NAME, {
            "key": key.hex(),
            "about": "HMAC-SHA256 key of audit.json's source_commitment (the inputs' content "
                     "fingerprint, fhirsynth.privacy.ledger.source_fingerprint): keep it with "
                     "the custodian; with it the commitment can be checked against an input, "
                     "without it the commitment reveals nothing"})

    ctx = {"dataset": dataset, "run_id": run_id, "created": created_at.isoformat(),
           "n_holdout": None if real_holdout is None else len(real_holdout),
           "no_holdout": no_holdout, "real_unchecked": real_unchecked}
    validation = build_pdf(
        out / VALIDATION_NAME, internal_story(evaluation, _shares(spec, real_train, synthetic),
                                              ctx, import_report),
        title=f"Internal validation: {dataset}", footer=f"fhirsynth {version} · {dataset}",
        banner=CUSTODIAN_BANNER)

    in_entries = input_entries(inputs, source_fingerprint, key)
    cfg = public_config(config or {})
    from fhirsynth.report.readme import write_release_readme

    # the folder's README (public facts only) is an output like the others: hashed in
    # audit.json and printed in report.pdf
    out_entries = [file_entry(p, out) for p in out_paths]  # (each file hashed once)
    readme = write_release_readme(
        out, spec=spec, dataset=dataset, run_id=run_id, created=created_at.date().isoformat(),
        version=version, budget_table=budget_table, config=cfg,
        files=[e["path"] for e in out_entries],
        columns=[str(c) for c in synthetic.columns], ledger_history=ledger_history)
    out_entries.append(file_entry(readme, out))
    from fhirsynth.report.audit import config_hash

    hashes = {"spec": spec.fingerprint(), "configuration": config_hash(cfg),
              "inputs": in_entries, "outputs": out_entries}
    synth_stats = describe(spec, synthetic)
    share_ctx = ShareableContext(
        dataset=dataset, created=created_at.date().isoformat(), run_id=run_id, version=version,
        budget_table=budget_table, spec=spec, synthetic_stats=synth_stats,
        synthetic_columns=[str(c) for c in synthetic.columns], n_synthetic=len(synthetic),
        safe_harbor=sh, software=software_versions(), hashes=hashes, config=cfg,
        limitations=limitations_text(), model_summary=dict(model_summary or {}),
        ledger_history=ledger_history)
    report = build_pdf(out / REPORT_NAME, shareable_story(share_ctx),
                       title=f"Synthetic data release: {dataset}",
                       footer=f"fhirsynth {version} · {dataset} · run {run_id}")

    record = build_audit(
        run_id=run_id, budget_table=budget_table, spec_fingerprint=spec.fingerprint(),
        config=cfg, inputs=in_entries, outputs=[*out_entries, file_entry(report, out)],
        evaluation={"safe_harbor": sh, "synthetic_statistics": synth_stats,
                    "internal_evaluation_sha256": file_entry(eval_path, out)["sha256"]},
        dataset=dataset,
        source_commitment=in_entries[0]["hmac_sha256"] if in_entries else None,
        created=created_at,
        ledger_history=ledger_history)
    audit = write_json_atomic(out / AUDIT_NAME, record)
    return ReportPaths(report=report, validation=validation, evaluation=eval_path, audit=audit,
                       readme=readme, commitment=out / COMMITMENT_NAME if key else None)
