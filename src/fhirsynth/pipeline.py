"""The whole release job: ingest → encode → learn → sample → export → evaluate → reports.

:func:`run_release` is what ``fhirsynth run`` calls and what the Python API offers for a
complete release.  It charges the persistent ledger *before* any noise is drawn, builds
every output inside a hidden temporary directory beside the destination and moves it into
place only when everything succeeded, so an interrupted run never leaves an output
directory that looks complete, while the budget it charged stays charged.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from fhirsynth.config import LearnConfig
from fhirsynth.domain import TableSpec, load_spec
from fhirsynth.errors import ConfigError, InputError
from fhirsynth.export.harmonise import harmonise
from fhirsynth.ingest import read_input
from fhirsynth.privacy.budget import PrivacyBudget
from fhirsynth.privacy.ledger import Ledger, fingerprint_files

__all__ = ["RunConfig", "RunResult", "load_run_spec", "model_summary", "run_release"]

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]

#: the stages of a run, in order (the CLI shows them)
STAGES = ("ingest", "charge", "learn", "sample", "export", "evaluate", "finish")


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Everything one release needs.  Frozen; every field keyword-only.

    Parameters
    ----------
    inputs : sequence of path
        FHIR files or folders (bundles, NDJSON, gzipped or not), or one clinical CSV.
    out : path
        Release directory to create; it must not exist yet unless ``overwrite``.
    epsilon, delta : float
        Total privacy budget of the release (validated by :class:`PrivacyBudget`).
    spec : path, optional
        Feature spec (FHIR) or table schema (CSV).  FHIR input defaults to the bundled
        feature spec; CSV input needs one.
    rows : int, optional
        Synthetic patients to sample; default: the model's noisy patient count (a DP
        measurement already paid for), never the exact count.
    holdout : float in [0, 0.5]
        Share of patients kept out of the fit for the custodian's internal validation
        (utility on unseen patients, privacy-risk baselines).  0 fits on every patient.
    seed : int, optional
        Reproducible internal runs only; a release run draws from the operating system.
        Never written to any output.
    ledger : path, optional
        The privacy ledger (default: the user's data directory).
    validation, strict : reader settings (see :class:`fhirsynth.ingest.fhir.ReaderConfig`).
    learn : LearnConfig
        Budget split and network shape.
    formats : sequence of {"csv", "parquet"}
        Table formats of the synthetic patients.
    fhir : bool
        Also export synthetic FHIR R4 NDJSON (FHIR feature specs only).
    """

    inputs: Sequence[str | os.PathLike[str]]
    out: str | os.PathLike[str]
    epsilon: float
    delta: float = 0.0
    spec: str | os.PathLike[str] | None = None
    rows: int | None = None
    holdout: float = 0.2
    seed: int | None = None
    ledger: str | os.PathLike[str] | None = None
    validation: Literal["needed", "full"] = "needed"
    strict: bool = False
    learn: LearnConfig = field(default_factory=LearnConfig)
    formats: Sequence[str] = ("csv", "parquet")
    fhir: bool = True
    overwrite: bool = False

    def __post_init__(self) -> None:
        PrivacyBudget.parse(self.epsilon, self.delta)
        if not self.inputs:
            raise ConfigError("inputs (none) must name at least one file or folder")
        if self.rows is not None and (isinstance(self.rows, bool) or not isinstance(
                self.rows, int) or self.rows < 1):
            raise ConfigError(f"rows ({self.rows!r}) must be an integer >= 1")
        if not isinstance(self.holdout, int | float) or not 0 <= self.holdout <= 0.5:
            raise ConfigError(f"holdout ({self.holdout!r}) must be a number in [0, 0.5]")
        bad = [f for f in self.formats if f not in ("csv", "parquet")]
        if bad or not self.formats:
            raise ConfigError(f"formats ({list(self.formats)!r}) must be 'csv' and/or 'parquet'")

    def public(self) -> dict[str, Any]:
        """The configuration as it may appear in a shareable record (no seed, no paths)."""
        return {
            "epsilon": float(self.epsilon), "delta": float(self.delta),
            "rows": self.rows, "holdout": self.holdout, "validation": self.validation,
            "strict": self.strict, "formats": list(self.formats), "fhir": self.fhir,
            "learn": {k: getattr(self.learn, k) for k in self.learn.__dataclass_fields__},
            "spec": None if self.spec is None else Path(self.spec).name,
        }


@dataclass
class RunResult:
    """What a run wrote and the headline figures of its summary."""

    out: Path
    run_id: str
    n_patients_in: int
    n_patients_out: int
    epsilon_spent: float
    delta_spent: float
    ledger_epsilon_total: float
    ledger_epsilon_cap: float | None
    outputs: dict[str, Path]
    headline: dict[str, Any]
    seconds: dict[str, float]


def _is_csv(inputs: Sequence[Path]) -> bool:
    kinds = {p.suffix.lower() == ".csv" or p.name.lower().endswith(".csv.gz") for p in inputs}
    if len(kinds) > 1:
        raise ConfigError("inputs mix CSV and FHIR files: run them separately")
    return kinds == {True}


def load_run_spec(inputs: Sequence[str | os.PathLike[str]],
                  spec: str | os.PathLike[str] | None) -> TableSpec:
    """The spec of a run: the given file, or the bundled feature spec for FHIR input."""
    csv_input = _is_csv([Path(p) for p in inputs])
    if spec is not None:
        if csv_input:
            return load_spec(spec)
        from fhirsynth.ingest.features import load_feature_spec

        return load_feature_spec(spec)
    if csv_input:
        raise ConfigError("CSV input needs a schema: pass --spec/--schema FILE (public domains)")
    from fhirsynth.ingest.features import load_feature_spec

    return load_feature_spec(None)


def _prepare_out(out: Path, overwrite: bool) -> Path:
    if out.exists() and not overwrite:
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        else:
            raise ConfigError(f"output directory {str(out)!r} already exists (use --overwrite)")
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent)).resolve()


def _move_into_place(tmp: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _split(table: pd.DataFrame, holdout: float, rng: np.random.Generator
           ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    if holdout <= 0 or len(table) < 10:
        return table, None
    perm = rng.permutation(len(table))
    k = int(round(holdout * len(table)))
    hold = table.iloc[np.sort(perm[:k])].reset_index(drop=True)
    train = table.iloc[np.sort(perm[k:])].reset_index(drop=True)
    return train, hold


def run_release(cfg: RunConfig, progress: Progress | None = None) -> RunResult:
    """Run one complete release; see the module docstring for the guarantees.

    Raises
    ------
    ConfigError, InputError, PrivacyBudgetError, BudgetExhaustedError, ModelError
        Each with one clear message; nothing is left in ``cfg.out`` then.
    """
    from fhirsynth.export.fhir import write_fhir
    from fhirsynth.export.tables import write_table
    from fhirsynth.report.release import write_reports
    from fhirsynth.synthesizer import Synthesizer

    note = progress or (lambda stage: None)
    budget = PrivacyBudget.parse(cfg.epsilon, cfg.delta)
    inputs = [Path(p) for p in cfg.inputs]
    missing = [str(p) for p in inputs if not p.exists()]
    if missing:
        raise InputError(f"input not found: {', '.join(missing)}")
    csv_input = _is_csv(inputs)
    spec = load_run_spec(inputs, cfg.spec)
    out = Path(cfg.out).resolve()
    run_id = uuid.uuid4().hex
    rng = np.random.default_rng(cfg.seed)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()

    note("ingest")
    table, import_report = read_input(inputs, spec, validation=cfg.validation,
                                      strict=cfg.strict)
    seconds["ingest"] = time.perf_counter() - t0
    logger.info("ingested %d patients, %d columns", len(table), table.shape[1])

    tmp = _prepare_out(out, cfg.overwrite)
    try:
        note("charge")
        ledger = Ledger(cfg.ledger)
        source = fingerprint_files(inputs)
        ledger.charge(source, budget, run_id=run_id, label=spec.name)

        note("learn")
        t = time.perf_counter()
        train, holdout = _split(table, cfg.holdout, rng)
        synth = Synthesizer(spec, epsilon=budget.epsilon, delta=budget.delta,
                            config=cfg.learn, random_state=cfg.seed)
        synth.fit(train)
        model = synth.model
        seconds["learn"] = time.perf_counter() - t

        note("sample")
        t = time.perf_counter()
        n_out = cfg.rows or model.info.get("n_patients_noisy")
        if not n_out:
            raise ConfigError("rows (None) must be given when the fit spends no budget on a "
                              "patient count (count_share = 0)")
        sample_seed = None if cfg.seed is None else cfg.seed + 1
        synthetic = synth.sample(int(n_out), random_state=sample_seed)
        synthetic = harmonise(spec, synthetic, np.random.default_rng(
            None if cfg.seed is None else cfg.seed + 3))
        seconds["sample"] = time.perf_counter() - t

        note("export")
        t = time.perf_counter()
        outputs: dict[str, Path] = {}
        (tmp / "synthetic").mkdir()
        for fmt in cfg.formats:
            outputs[f"patients.{fmt}"] = write_table(
                synthetic, tmp / "synthetic" / f"patients.{fmt}", format=fmt)  # type: ignore[arg-type]
        has_fhir_rules = any(c.source and "from" in c.source for c in spec.columns)
        if cfg.fhir and not csv_input and has_fhir_rules:
            written = write_fhir(synthetic, spec, tmp / "synthetic" / "fhir",
                                 rng_or_seed=None if cfg.seed is None else cfg.seed + 2)
            outputs.update({f"fhir/{k}": v for k, v in written.items()})
        synth.save(tmp / "model.json")
        outputs["model.json"] = tmp / "model.json"
        seconds["export"] = time.perf_counter() - t

        note("evaluate")
        t = time.perf_counter()
        paths = write_reports(
            tmp, spec=spec, real_train=train, real_holdout=holdout, synthetic=synthetic,
            budget_table=model.budget, model_summary=model_summary(model),
            import_report=import_report, config=cfg.public(), inputs=inputs,
            outputs=list(outputs.values()), run_id=run_id, dataset=spec.name,
            source_fingerprint=source)
        seconds["evaluate"] = time.perf_counter() - t

        note("finish")
        _move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    rel = {k: out / v.relative_to(tmp) for k, v in outputs.items()}
    rel.update({"report.pdf": out / paths.report.relative_to(tmp),
                "internal/validation.pdf": out / paths.validation.relative_to(tmp),
                "audit.json": out / paths.audit.relative_to(tmp)})
    ledger.complete(run_id, sorted(str(p.relative_to(out)) for p in rel.values()))
    summary = ledger.summary(source)[0]
    seconds["total"] = time.perf_counter() - t0
    return RunResult(
        out=out, run_id=run_id, n_patients_in=len(table), n_patients_out=len(synthetic),
        epsilon_spent=model.budget["epsilon_spent"], delta_spent=model.budget["delta_spent"],
        ledger_epsilon_total=summary.spent_epsilon, ledger_epsilon_cap=summary.cap_epsilon,
        outputs=rel, headline=_headline(tmp_eval=out / paths.evaluation.relative_to(tmp)),
        seconds=seconds)


def _headline(tmp_eval: Path) -> dict[str, Any]:
    import json

    try:
        ev = json.loads(tmp_eval.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    fid = ev.get("fidelity") or {}
    out: dict[str, Any] = {}
    tvd = fid.get("tvd") or {}
    for k in ("1way", "2way", "3way"):
        out[f"tvd_{k}_mean"] = (tvd.get(k) or {}).get("mean")
    out["cramers_v_mad"] = (fid.get("cramers_v") or {}).get("mean_abs_diff")
    return out


def model_summary(model: Any) -> dict[str, Any]:
    """Public facts of a fitted model for the shareable report.

    ``released_marginals`` are the one-way marginals the released model implies, computed
    exactly from its noisy conditional tables by variable elimination: post-processing of
    DP outputs, so they may be shown beside the synthetic data's own shares.
    """
    from pgmpy.inference import VariableElimination

    infer = VariableElimination(model.network)
    marginals = []
    for name in model.columns:
        node = model.by_name[name]
        if node.parents:
            factor = infer.query([name], show_progress=False)
            values = np.asarray(factor.values, float)
        else:
            values = np.asarray(node.cpd[:, 0], float)
        marginals.append({"columns": [name], "states": list(node.states),
                          "values": np.round(values, 6).tolist()})
    return {
        "method": "PrivBayes-style DP Bayesian network (fhirsynth)",
        "graph": model.graph(),
        "released_marginals": marginals,
        "n_patients_noisy": model.info.get("n_patients_noisy"),
    }
