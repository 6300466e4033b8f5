"""The whole release job: ingest → encode → learn → sample → export → evaluate → reports.

:func:`run_release` is what ``fhirsynth run`` calls and what the Python API offers for a
complete release.  It refuses a spec whose outputs could fail the Safe Harbor scan before
reading any data (:mod:`fhirsynth.evaluate.safe_harbor_spec`), charges the persistent ledger
*before* any noise is drawn, builds every output inside a hidden temporary directory beside
the destination and moves it into place only when everything succeeded, so an interrupted
run never leaves an output directory that looks complete, while the budget it charged stays
charged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import math
import os
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from fhirsynth import _memory
from fhirsynth._atomic import PUBLICATION, check_output_path, set_release_modes
from fhirsynth.config import LearnConfig
from fhirsynth.domain import TableSpec, load_spec
from fhirsynth.errors import ConfigError, InputError, TooFewRowsError
from fhirsynth.evaluate.safe_harbor_advice import scan_warnings
from fhirsynth.evaluate.safe_harbor_spec import check_spec_safe_harbor, identifier_kinds
from fhirsynth.export.harmonise import release_table, with_fresh_keys
from fhirsynth.ingest import read_input
from fhirsynth.ingest.sources import display_name
from fhirsynth.learn import check_degree
from fhirsynth.privacy.budget import PrivacyBudget
from fhirsynth.privacy.ledger import (
    Ledger,
    default_ledger_path,
    first_cap_note,
    ledger_key,
    source_fingerprint,
)
from fhirsynth.report.summary import model_summary, utility_notes
from fhirsynth.sample import SAMPLING

__all__ = ["RunConfig", "RunResult", "check_report_inputs", "load_run_spec", "model_summary",
           "run_release", "source_label", "with_fresh_keys"]

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]

#: a CSV run fails when more than this share of rows do not fit the schema
MAX_DROPPED_SHARE = 0.05
#: the default number of synthetic rows never falls below this
MIN_DEFAULT_ROWS = 100
#: ... and never rises above this (more with --rows)
MAX_DEFAULT_ROWS = 1_000_000
#: the default output's size when the noisy patient count is less than three noise sds
#: from zero and above this
UNRELIABLE_COUNT_ROWS = 1000

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
    fhir_bundles : bool
        With ``fhir``, also write the same patients as transaction Bundles, one per patient
        and per line, to ``synthetic/bundles.ndjson``.
    allow_large_epsilon, allow_large_delta : bool
        Accept an epsilon above ``LARGE_EPSILON`` (10) or a delta above ``LARGE_DELTA``
        (1e-5), refused otherwise.
    sampling : {"balanced", "iid"}
        How the synthetic patients are drawn from the model (:mod:`fhirsynth.sample`):
        balanced (default) spreads each column's values over its parent groups by
        systematic sampling in random row order; iid draws every patient independently.
    label : str, optional
        The dataset's name in the release (report titles, ``audit.json``'s ``dataset``,
        ``model.json``'s spec name, the ledger's label) instead of the spec's name, so that
        releases of one spec from different sources tell themselves apart.  Shared with the
        release: at most 80 characters, and refused when it looks like it holds an
        identifier (a date, phone number, e-mail, ...; :func:`check_label`).
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
    fhir_bundles: bool = False
    allow_large_epsilon: bool = False
    allow_large_delta: bool = False
    overwrite: bool = False
    sampling: str = "balanced"
    label: str | None = None

    def __post_init__(self) -> None:
        from fhirsynth.privacy.noise import Noise

        budget = PrivacyBudget.parse(self.epsilon, self.delta)
        budget.check_release(allow_large_epsilon=self.allow_large_epsilon,
                             allow_large_delta=self.allow_large_delta)
        Noise.for_budget(budget, self.learn.mechanism)
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
        if self.sampling not in SAMPLING:
            raise ConfigError(f"sampling ({self.sampling!r}) must be one of "
                              f"{', '.join(SAMPLING)}")
        if self.label is not None:
            # stored as shown: one line, no control characters
            object.__setattr__(self, "label", check_label(self.label))

    def public(self) -> dict[str, Any]:
        """The configuration as it may appear in a shareable record (no seed, no paths).

        ``fhir_version`` is the FHIR version of the reader and of any FHIR output (case 001).
        """
        from fhirsynth.export.fhir import FHIR_VERSION

        return {
            "fhir_version": FHIR_VERSION,
            "epsilon": float(self.epsilon), "delta": float(self.delta),
            "rows": self.rows, "holdout": self.holdout, "validation": self.validation,
            "strict": self.strict, "formats": list(self.formats), "fhir": self.fhir,
            "fhir_bundles": self.fhir_bundles, "sampling": self.sampling,
            "learn": {k: getattr(self.learn, k) for k in self.learn.__dataclass_fields__},
            "spec": None if self.spec is None else Path(self.spec).name,
            "label": self.label,
            # whether --seed drew the noise: a test release (the seed itself is never written)
            "reproducible_noise": self.seed is not None,
        }


def check_label(label: str) -> str:
    """The release label as it will be shown, or a refusal.

    The label is shared with the release, so it is held to more than the output scan's
    value rules (dates finer than a year, phone numbers, e-mail and web addresses, record
    numbers...): no number of five or more digits (ZIP codes, record numbers) and no date
    with a month name.  Control characters and line breaks become spaces.  The message
    never quotes the label.
    """
    from fhirsynth.report.text import clean

    text = " ".join(clean(label).split()) if isinstance(label, str) else ""
    if not text or len(text) > 80:
        raise ConfigError("label must be 1 to 80 characters of text")
    kinds = identifier_kinds(text)
    if kinds:
        raise ConfigError(f"label looks like it holds an identifier ({', '.join(kinds)}); "
                          "it is printed in the shareable report: choose a plain name")
    return text


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
    notes: list[str] = field(default_factory=list)
    #: notes for the custodian that are no warning (a year column named as a date, a cap
    #: recorded from this release): printed as "note:" lines
    info: list[str] = field(default_factory=list)
    #: the noise of the fit: "laplace" (pure epsilon-DP) or "gaussian" (zCDP), and its rho
    noise: str = "laplace"
    rho_spent: float | None = None
    #: the Safe Harbor scan of the outputs (``passed``, ``findings`` with kinds and counts)
    safe_harbor: dict[str, Any] = field(default_factory=dict)
    #: whether --seed drew the noise (a test release, not for sharing)
    reproducible_noise: bool = False

    @property
    def shareable(self) -> bool:
        """Whether the Safe Harbor scan of the outputs passed (nothing found)."""
        return bool(self.safe_harbor.get("passed", True))


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


def _check_out(out: Path, overwrite: bool, inputs: Sequence[str | os.PathLike[str]] = ()
               ) -> bool:
    """Whether an existing ``out`` may be replaced: only an earlier release, only when asked.

    ``out`` may not be an input, hold one or lie inside an input folder: replacing it would
    delete the input, and a release inside an input folder would be read as real patients
    by the next run (a trial lost its input bundles to ``--out`` naming the input folder).
    """
    check_output_path(out, kind="folder")
    target = out.resolve()
    for item in inputs:
        src = Path(item).resolve()
        if target == src or target in src.parents or src in target.parents:
            how = ("is" if target == src else "holds" if target in src.parents
                   else "lies inside")
            raise ConfigError(
                f"--out ({out}) {how} the input {item}: give an output folder outside the "
                "input, so that the input is never replaced and the synthetic patients are "
                "never read back as real ones")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out ({out}) is a file, not an earlier release: give the name of "
                          "a new folder for the release")
    if not out.exists():
        return False
    if out.is_dir() and not any(out.iterdir()):
        return True
    if not overwrite:
        raise ConfigError(f"output directory {str(out)!r} already exists (use --overwrite to "
                          "replace an earlier release)")
    if not (out / "audit.json").is_file():
        raise ConfigError(f"output directory {str(out)!r} is not a fhirsynth release (no "
                          "audit.json): --overwrite only replaces an earlier release")
    return True


def _plan_out(out: Path, replace: bool) -> Path:
    """The temporary folder a release is built in, named but not created yet.

    Its name is known before it exists, so the ``except`` that removes it on a failure or a
    signal covers its creation too (a folder created before the ``try`` was left behind by
    a signal arriving in between).
    """
    if out.exists() and not replace:
        raise ConfigError(f"output directory {str(out)!r} appeared during the run")
    return out.parent.resolve() / f".{out.name}.partial-{uuid.uuid4().hex[:12]}"


def _create_tmp(tmp: Path, out: Path) -> None:
    try:
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir(mode=0o700)
    except OSError as exc:
        raise ConfigError(f"--out ({out}): cannot create the output folder "
                          f"({exc.strerror or type(exc).__name__})") from None


#: the ledger's name for a source whose folder name may hold an identifier
WITHHELD_SOURCE = "an input folder (its name withheld: it may hold an identifier)"


def source_label(inputs: Sequence[Path]) -> str:
    """A name for the source in the ledger and its messages: a folder's name, or the folder
    holding the input files (file names may be patient names, as Synthea's are); a name that
    may hold an identifier (:func:`~fhirsynth.ingest.sources.may_hold_identifier`, or what a
    ``--label`` would be refused for) is withheld: the ledger keeps no path or name of the
    input, and is shared by everyone releasing from the source."""
    from fhirsynth.ingest.sources import may_hold_identifier

    first = inputs[0]
    if len(inputs) == 1 and first.is_dir():
        name, shown = first.name or str(first), "{}"
    else:
        parent = first.resolve().parent
        name, shown = parent.name or str(parent), "files in {}/"
    try:
        check_label(name)
    except ConfigError:
        return WITHHELD_SOURCE
    return WITHHELD_SOURCE if may_hold_identifier(name) else shown.format(name)


def import_warnings(report: dict[str, Any], kept: int, *, refuse: bool = True) -> list[str]:
    """The import's warnings for the custodian, as ``run`` and ``ingest`` print them: rows
    that did not fit the schema, then the reader's own.  An import that lost more than
    :data:`MAX_DROPPED_SHARE` of its rows is refused (``refuse``, as ``run`` does) or warned
    of in the same words (``ingest``: the table stays with the custodian, who may look)."""
    try:
        rows = _check_rows_dropped(report, kept)
    except InputError as exc:
        if refuse:
            raise
        rows = [str(exc)]
    # columns the schema mostly does not describe (values mapped to 'other', or outside the
    # bounds): the schema is probably wrong (fhirsynth.ingest.csv.share_problems)
    refusals = [str(r) for r in report.get("refusals") or []]
    if refusals and refuse:
        raise InputError("; ".join(refusals))
    return rows + refusals + list(report.get("warnings") or [])


def check_some_patients(inputs: Sequence[Path], n: int) -> None:
    """Refuse an import without any patient (``run`` and ``ingest`` alike)."""
    if n == 0:
        names = ", ".join(display_name(Path(p).name) for p in inputs)
        raise InputError(f"no patients found in {names} (no Patient resources, or no rows)")


def _check_rows_dropped(report: dict[str, Any], kept: int) -> list[str]:
    """Fail when a CSV lost many rows to the schema; note it when it lost a few."""
    dropped = int(report.get("rows_dropped") or 0)
    if not dropped:
        return []
    first = (report.get("issues") or ["(see the internal report)"])[0]
    # rows read, not rows kept + dropped: rows folded into another row of their patient
    # were read and fit the schema
    total = int(report.get("rows_read") or dropped + kept)
    share = dropped / max(total, 1)
    if share > MAX_DROPPED_SHARE:
        raise InputError(f"{dropped} of {total} rows do not fit the schema "
                         f"({share:.0%}); the schema is probably wrong. First: {first}")
    return [f"{dropped} row(s) did not fit the schema and were dropped; first: {first}"]


def _default_rows(model: Any, cfg: RunConfig, notes: list[str]) -> int:
    """The noisy patient count (already released), within public bounds.

    The count's noise sd follows from its step in the budget table (Laplace: sqrt(2) / e).
    A count less than three sds from zero says little of the cohort's size (at epsilon 1e-6
    a trial's 5,110 patients came out as 174 million rows, which no memory could hold): it
    sizes the output only up to :data:`UNRELIABLE_COUNT_ROWS`.  A reliable count is capped at
    :data:`MAX_DEFAULT_ROWS`.  Either way the output has at least the floor (``min_rows``,
    :data:`MIN_DEFAULT_ROWS`).  Each adjustment is noted.  Public values only.
    """
    noisy = model.info.get("n_patients_noisy")
    if not noisy:
        raise ConfigError("rows (None) must be given when the fit spends no budget on a "
                          "patient count (count_share = 0)")
    floor = max(cfg.learn.min_rows, MIN_DEFAULT_ROWS)
    eps = next((float(st.get("epsilon") or 0.0) for st in model.budget.get("steps", [])
                if st.get("name") == "patient count"), 0.0)
    sd = math.sqrt(2.0) / eps if eps > 0 else math.inf
    if noisy < 3 * sd:
        n = max(floor, min(int(noisy), UNRELIABLE_COUNT_ROWS))
        notes.append(f"the noisy patient count ({noisy:,}) is less than three noise sds "
                     f"({sd:,.0f} each) from zero, so it says little of the cohort's size: "
                     f"sampling {n:,} rows (use --rows to choose)")
        return n
    if noisy > MAX_DEFAULT_ROWS:
        notes.append(f"the noisy patient count ({noisy:,}) is above {MAX_DEFAULT_ROWS:,}: "
                     f"sampling {MAX_DEFAULT_ROWS:,} rows (use --rows to choose)")
        return MAX_DEFAULT_ROWS
    if noisy < floor:
        notes.append(f"the noisy patient count ({noisy}) is below {floor}: sampling {floor} "
                     "rows (use --rows to choose)")
        return floor
    return int(noisy)


def _move_into_place(tmp: Path, out: Path) -> None:
    set_release_modes(tmp, out)
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
    if cfg.label is not None:
        spec = dataclasses.replace(spec, name=cfg.label)
    info: list[str] = []
    if csv_input:
        from fhirsynth.ingest.csv import year_name_note

        info += [n for n in (year_name_note(spec),) if n]
    # a release the spec alone makes unshareable is refused before anything is read or charged
    check_spec_safe_harbor(spec, str(cfg.spec) if cfg.spec is not None
                           else "the default feature spec")
    if cfg.spec is not None and (kinds := identifier_kinds(Path(cfg.spec).name)):
        raise ConfigError(f"the schema's file name looks like it holds an identifier "
                          f"({', '.join(kinds)}); it is recorded in the shareable audit record: "
                          "rename the file. Nothing was read, written or charged to the ledger")
    check_degree(spec, cfg.learn)  # from the spec alone, before anything is charged
    out = Path(cfg.out).resolve()
    out_check = _check_out(out, cfg.overwrite, inputs)
    run_id = uuid.uuid4().hex
    rng = np.random.default_rng(cfg.seed)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()

    ledger_path = Path(cfg.ledger) if cfg.ledger is not None else default_ledger_path()
    source = ledger_key(inputs, ledger_path)
    if ledger_path.is_file():
        # refuse early (before reading the data) a release the ledger would refuse anyway
        Ledger(ledger_path).check(source, budget)
    fhir_out = cfg.fhir and not csv_input and spec.has_fhir_rules
    if cfg.rows is not None:
        # refused now, before anything is read or charged, not by the kernel's OOM killer
        # (read through the module, so tests can stand in a machine's memory)
        _memory.check_rows_fit(spec, cfg.rows, _memory.available_memory(), option="--rows",
                               fhir=fhir_out, release=True,
                               hint="choose fewer --rows (the release's model.json can give "
                               "more rows later with `fhirsynth sample`, into several files)")

    note("ingest")
    ids: list[str] = []  # the patients' ids: only their keyed digests reach the ledger
    table, import_report = read_input(inputs, spec, validation=cfg.validation,
                                      strict=cfg.strict, patient_ids=ids)
    seconds["ingest"] = time.perf_counter() - t0
    logger.info("ingested %d patients, %d columns", len(table), table.shape[1])
    warnings_ = import_warnings(import_report, len(table))
    try:
        check_some_patients(inputs, len(table))
        _check_size(len(table), cfg)
    except (InputError, TooFewRowsError) as exc:
        # what the import dropped may be why: say it in the one error, since no release
        # (and no warning line after it) follows
        if not warnings_:
            raise
        raise type(exc)(f"{exc}. The import also said: {'; '.join(warnings_)}") from None
    train, holdout = _split(table, cfg.holdout, rng)
    if holdout is None:  # the internal report says "Not run"; the terminal must say it too
        warnings_.append(
            ("no patient was held out (--holdout 0)" if cfg.holdout <= 0 else
             "no patient was held out (a cohort under 10 patients is not split)")
            + ", so the privacy-risk tests (membership and attribute inference, which need "
            "real patients the model never saw) are not run; the internal report says so"
            + ("; --holdout 0.2 (the default) runs them" if cfg.holdout <= 0 else ""))

    tmp = _plan_out(out, out_check)
    try:
        _create_tmp(tmp, out)
        note("charge")
        ledger = Ledger(ledger_path)
        label = (spec.name if cfg.spec is not None or cfg.label is not None
                 else source_label(inputs))
        # charged to the source holding these patients (whatever the file looks like)
        patients = ledger.patients(table, [c.name for c in spec.modelled], ids)
        charged = ledger.charge(source, budget, run_id=run_id, label=label, patients=patients)
        if charged.matched:
            warnings_.append(f"this release is charged to the ledger source {charged.matched}")
        capped = first_cap_note(charged, cfg.ledger)
        if capped:  # the first release set the cap: say so, and how to raise it
            info.append(capped)
        history = _history(ledger)

        note("learn")
        t = time.perf_counter()
        synth = Synthesizer(spec, epsilon=budget.epsilon, delta=budget.delta,
                            config=cfg.learn, random_state=cfg.seed)
        synth.fit(train, _warn_notes=False, _checked_input=True)
        model = synth.model
        seconds["learn"] = time.perf_counter() - t

        note("sample")
        t = time.perf_counter()
        n_out = cfg.rows or _default_rows(model, cfg, warnings_)
        if cfg.rows is None:  # (--rows was checked before anything was charged)
            _memory.check_rows_fit(spec, n_out, _memory.available_memory(), option="--rows",
                                   fhir=fhir_out, release=True,
                                   hint="the default is the noisy patient count: choose "
                                   "fewer --rows")
        utility = list(synth.notes_)  # (Synthesizer.fit computed them)
        warnings_ += utility
        sample_seed = None if cfg.seed is None else cfg.seed + 1
        synthetic = synth.sample(int(n_out), random_state=sample_seed, sampling=cfg.sampling)
        # the same post-processing as `fhirsynth sample` from the saved model
        synthetic = release_table(
            model, synthetic, np.random.default_rng(None if cfg.seed is None else cfg.seed + 3),
            key_rng=np.random.default_rng(None if cfg.seed is None else cfg.seed + 4))
        seconds["sample"] = time.perf_counter() - t

        note("export")
        t = time.perf_counter()
        outputs: dict[str, Path] = {}
        (tmp / "synthetic").mkdir()
        for fmt in cfg.formats:
            outputs[f"patients.{fmt}"] = write_table(
                synthetic, tmp / "synthetic" / f"patients.{fmt}", format=fmt)  # type: ignore[arg-type]
        if fhir_out:
            written = write_fhir(synthetic, spec, tmp / "synthetic" / "fhir",
                                 rng_or_seed=None if cfg.seed is None else cfg.seed + 2,
                                 bundles=(tmp / "synthetic" / "bundles.ndjson"
                                          if cfg.fhir_bundles else None))
            outputs.update({("bundles.ndjson" if k == "Bundle" else f"fhir/{k}"): v
                            for k, v in written.items()})
        synth.save(tmp / "model.json")
        outputs["model.json"] = tmp / "model.json"
        seconds["export"] = time.perf_counter() - t

        note("evaluate")
        t = time.perf_counter()
        paths = write_reports(
            tmp, spec=spec, real_train=train, real_holdout=holdout, synthetic=synthetic,
            budget_table=model.budget,
            model_summary=model_summary(
                model, notes=_notes(cfg) + utility,
                import_report=import_report, output_columns=list(synthetic.columns)),
            import_report=import_report,
            # what this release wrote: no FHIR from a CSV input (trial 22: "fhir": true)
            config={**cfg.public(), "fhir": fhir_out,
                    "fhir_bundles": cfg.fhir_bundles and fhir_out},
            inputs=inputs,
            outputs=list(outputs.values()), run_id=run_id, dataset=spec.name,
            source_fingerprint=source, ledger_history=history)
        seconds["evaluate"] = time.perf_counter() - t

        note("finish")
        rel = {k: out / v.relative_to(tmp) for k, v in outputs.items()}
        rel.update({p.relative_to(tmp).as_posix(): out / p.relative_to(tmp)
                    for p in (paths.report, paths.validation, paths.evaluation, paths.audit,
                              paths.readme, paths.commitment) if p is not None})
        with PUBLICATION.moving():  # a signal now waits until the release is in place
            _move_into_place(tmp, out)
            ledger.complete(run_id, sorted(str(p.relative_to(out)) for p in rel.values()))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    summary = ledger.summary(charged.fingerprint)[0]
    evaluation = _evaluation(out / paths.evaluation.relative_to(tmp))
    seconds["total"] = time.perf_counter() - t0
    return RunResult(
        out=out, run_id=run_id, n_patients_in=len(table), n_patients_out=len(synthetic),
        epsilon_spent=model.budget["epsilon_spent"], delta_spent=model.budget["delta_spent"],
        noise=str(model.info.get("noise", "laplace")), rho_spent=model.budget.get("rho_spent"),
        ledger_epsilon_total=summary.spent_epsilon, ledger_epsilon_cap=summary.cap_epsilon,
        outputs=rel, headline=_headline(evaluation), seconds=seconds,
        notes=warnings_ + scan_warnings(evaluation.get("safe_harbor") or {}), info=info,
        safe_harbor=dict(evaluation.get("safe_harbor") or {}),
        reproducible_noise=cfg.seed is not None)


def _check_size(n: int, cfg: RunConfig) -> None:
    """Refuse a cohort too small to fit *before* the ledger is charged (case 015)."""
    lc = cfg.learn
    if lc.allow_few_rows:
        return
    n_train = n if cfg.holdout <= 0 or n < 10 else n - int(round(cfg.holdout * n))
    if n < lc.min_rows:
        raise TooFewRowsError(f"need at least {lc.min_rows} rows to fit a DP model (min_rows); "
                              f"got {n} (--allow-few-rows, or LearnConfig(allow_few_rows=True), "
                              "fits anyway, with a warning in the report); no budget was spent")
    if n_train < lc.min_rows:
        raise TooFewRowsError(
            f"need at least {lc.min_rows} rows to fit a DP model (min_rows); got {n}, of which "
            f"{n - n_train} are held out for internal validation (--holdout 0, or "
            "RunConfig(holdout=0), fits on every patient); no budget was spent")


def _history(ledger: Ledger) -> dict[str, Any]:
    """The custodian's ledger after this release, over every source: releases and totals.

    Not the source's own account: which source a release is charged to is decided on the
    exact data (the share of patients in common), so that account, and the source's cap,
    go to the custodian only.  The ledger-wide totals bound what any patient of this
    release has spent across the ledger's releases, whichever source they were charged to.
    """
    sources = ledger.summary()
    charges = [r for s in sources for r in s.releases]
    # this run is charged, not yet completed; a charge never completed ended without a
    # release (interrupted, failed), and its budget is spent all the same
    done = sum(r.status == "completed" for r in charges)
    return {"scope": "every source of the custodian's ledger",
            "releases": done + 1, "charges": len(charges),
            "epsilon_spent_total": math.fsum(s.spent_epsilon for s in sources),
            "delta_spent_total": math.fsum(s.spent_delta for s in sources)}


def _notes(cfg: RunConfig) -> list[str]:
    """Warnings for the shareable report, from the configuration only (never the data: even
    "the cohort was below min_rows" would be an exact, un-noised fact about it)."""
    if cfg.learn.allow_few_rows:
        return [f"the minimum cohort size (min_rows = {cfg.learn.min_rows}) was overridden "
                "(--allow-few-rows); on a cohort that small the output is dominated by noise "
                "and its utility is unreliable"]
    return []


def _evaluation(path: Path) -> dict[str, Any]:
    import json

    try:
        ev = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return ev if isinstance(ev, dict) else {}


def _headline(ev: dict[str, Any]) -> dict[str, Any]:
    fid = ev.get("fidelity") or {}
    out: dict[str, Any] = {}
    tvd = fid.get("tvd") or {}
    for k in ("1way", "2way", "3way"):
        out[f"tvd_{k}_mean"] = (tvd.get(k) or {}).get("mean")
    out["cramers_v_mad"] = (fid.get("cramers_v") or {}).get("mean_abs_diff")
    return out


def report_release(
    model_path: str | os.PathLike[str],
    synthetic_path: str | os.PathLike[str],
    inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    spec: str | os.PathLike[str] | None = None,
    validation: Literal["needed", "full"] = "needed",
    overwrite: bool = False,
    commitment: str | os.PathLike[str] | None = None,
) -> Any:
    """Write the reports of an existing model and synthetic table into a new ``out``.

    The real ``inputs`` (the model's source) serve the custodian's internal validation only;
    the model was fitted before, so nothing is spent.  Without the holdout of the original
    run the internal report has no privacy-risk baselines and its TSTR uses a split of the
    real data.  When the model sits in a release folder, the inputs must be that release's
    (the content fingerprint in its ``audit.json``); other real data is refused.
    ``commitment`` is the release's key file (``internal/input-commitment.json``) for a model
    copied out of its release folder; without a release to check against, the inputs are
    taken as given, with a warning and a note in the internal report.
    """
    from fhirsynth.export.tables import write_table
    from fhirsynth.model import FittedModel
    from fhirsynth.report.release import write_reports
    from fhirsynth.report.supplied import check_model_could_produce, check_not_copied

    dest = Path(out).resolve()
    replace = _check_out(dest, overwrite=overwrite, inputs=inputs)
    # the inputs' content fingerprint, read once: checked against the release and recorded
    fingerprint = source_fingerprint([Path(p) for p in inputs])
    model = FittedModel.from_json(model_path)
    unchecked = _check_report_source(Path(model_path), inputs, fingerprint,
                                     None if commitment is None else Path(commitment),
                                     from_fhir=model.spec.has_fhir_rules)
    sp = Path(synthetic_path)
    try:
        synthetic = (pd.read_parquet(sp) if sp.suffix == ".parquet"
                     else pd.read_csv(sp, dtype=str, keep_default_na=False))
    except (OSError, ValueError) as exc:
        raise InputError(f"{sp}: cannot read the synthetic table ({type(exc).__name__})") \
            from None
    read_spec = load_run_spec(inputs, spec)
    check_report_inputs(model.spec, read_spec, list(synthetic.columns),
                        schema=Path(spec).name if spec is not None else "the default spec",
                        synthetic=sp.name)
    # a table the model cannot have produced is refused before the real data is read, and
    # one that repeats the real rows far more than the model does after (trial 26: the real
    # rows given as "synthetic" made a release-shaped folder with a Safe Harbor pass)
    check_model_could_produce(model.spec, synthetic, sp.name)
    real, import_report = read_input(inputs, read_spec, validation=validation)
    check_not_copied(model, synthetic, real, sp.name)
    # the model keeps the public domain but not the extraction rules; use the read spec when
    # it describes the same domain (it carries the Safe Harbor top codes of the FHIR rules)
    spec_used = read_spec if read_spec.fingerprint() == model.spec.fingerprint() else model.spec
    tmp = _plan_out(dest, replace)
    try:
        _create_tmp(tmp, dest)
        outputs = [write_table(synthetic, tmp / "synthetic" / sp.name,
                               format="parquet" if sp.suffix == ".parquet" else "csv")]
        shutil.copyfile(model_path, tmp / "model.json")
        outputs.append(tmp / "model.json")
        paths = write_reports(
            tmp, spec=spec_used, real_train=real, real_holdout=None,
            synthetic=synthetic, budget_table=model.budget,
            model_summary=model_summary(model, notes=utility_notes(model),
                                        import_report=import_report,
                                        output_columns=list(synthetic.columns)),
            import_report=import_report, config=_report_only_config(model), inputs=inputs,
            outputs=outputs, dataset=model.spec.name,
            source_fingerprint=fingerprint, no_holdout=REPORT_ONLY_NO_HOLDOUT,
            output_rules=model.output, real_unchecked=unchecked)
        with PUBLICATION.moving():
            _move_into_place(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return paths


def _check_report_source(model_path: Path, inputs: Sequence[str | os.PathLike[str]],
                         fingerprint: str, commitment: Path | None = None, *,
                         from_fhir: bool = True) -> str | None:
    """Refuse real inputs (content ``fingerprint``) other than those of the release the model
    comes from; the reason it could not be checked, or None when it was.

    A model in a release folder has that release's ``audit.json`` beside it, whose
    ``source_commitment`` commits to the content fingerprint of the release's input (the
    ledger's key) under the key in the release's ``internal/`` folder (older releases:
    ``source_fingerprint``, the fingerprint itself): fidelity against another dataset would
    be meaningless (a trial compared a Synthea model with MIMIC patients).  ``commitment``
    names that key file (``internal/input-commitment.json``, or a copy of it) for a model
    copied out of its release, or a release copy without ``internal/``: the release's
    ``audit.json`` is the one beside the model, else the one two folders above the key file
    (where a release keeps it), and then the model must be that release's (its hash among
    the record's outputs).  Without either the input cannot
    be checked: a warning and the returned reason (said in the internal report) tell how to
    check it.  A CSV table given to a release of FHIR input (``from_fhir``: the model's spec
    keeps FHIR rules) may be the table ``fhirsynth ingest`` made from it (the ledger's
    mapping, which this command does not read): it is warned about and said in the internal
    report, not refused; to a release of a CSV it is another input and refused (trial 18: a
    2,000-row subset was only warned about).
    """
    import warnings

    from fhirsynth.report.release import (
        COMMITMENT_NAME,
        commitment_key,
        input_commitment,
        read_commitment_key,
    )

    how = (f"to check it, run `fhirsynth report` on the model.json inside its release folder "
           f"(with its {COMMITMENT_NAME}), or pass --commitment with that key file")
    release = model_path.resolve().parent
    audit = release / "audit.json"
    if commitment is not None and not audit.is_file():
        audit = commitment.resolve().parent.parent / "audit.json"
        if not audit.is_file():
            raise ConfigError(
                f"--commitment {commitment}: no audit.json two folders above it, where a "
                f"release keeps it beside internal/; pass the {COMMITMENT_NAME} of the "
                f"release {model_path} comes from, inside that release folder")
        release = audit.parent
        _check_model_in_release(model_path, audit, commitment)
    if not audit.is_file():
        why = (f"{model_path} is not in a release folder (no audit.json beside it), so --real "
               "could not be checked against the release's input: the report compares the "
               "model with whatever patients --real holds")
        warnings.warn(f"{why}; {how}", UserWarning, stacklevel=3)
        return f"{why}; {how}."
    try:
        record = json.loads(audit.read_text(encoding="utf-8"))
        want, old = record.get("source_commitment"), record.get("source_fingerprint")
    except (OSError, ValueError, AttributeError):
        return None
    if isinstance(want, str):
        if commitment is not None:
            key = read_commitment_key(commitment)
            if key is None:
                raise ConfigError(
                    f"--commitment {commitment}: not a commitment key file (the release's "
                    f"{COMMITMENT_NAME} is a JSON object whose 'key' is 32 bytes in hex)")
        else:
            key = commitment_key(release)
        if key is None:
            why = (f"the release {release.name} has no {COMMITMENT_NAME} (the key of its "
                   "input commitment), so --real could not be checked against its input: "
                   "the report compares the model with whatever patients --real holds")
            warnings.warn(f"{why}; {how}", UserWarning, stacklevel=3)
            return f"{why}; {how}."
        if hmac.compare_digest(want, input_commitment(fingerprint, key)):
            return None
    elif not isinstance(old, str) or old == fingerprint:
        return None
    if _is_csv([Path(p) for p in inputs]) and from_fhir:
        why = (f"--real (a CSV table) could not be checked against the release's input: "
               f"it differs from the FHIR input {release.name}'s audit.json commits to, as a "
               "table made from it by `fhirsynth ingest` does; if it is not that table, the "
               "report compares the model with other patients")
        warnings.warn(why, UserWarning, stacklevel=3)
        return f"{why}."
    raise ConfigError(
        f"--real is not the input of the release {release.name} (its "
        "content differs from the one that release's audit.json commits to): give the "
        "release's own input, or the report would compare the model with other patients")


def _check_model_in_release(model_path: Path, audit: Path, commitment: Path) -> None:
    """Refuse a model that is not the ``model.json`` listed in the release record ``audit``."""
    try:
        outputs = json.loads(audit.read_text(encoding="utf-8")).get("outputs") or []
        want = {o.get("sha256") for o in outputs if o.get("path") == "model.json"}
        have = hashlib.sha256(model_path.read_bytes()).hexdigest()
    except (OSError, ValueError, AttributeError):
        want, have = set(), ""
    if have not in want:
        raise ConfigError(
            f"--commitment {commitment}: {model_path} is not the model.json of that release "
            f"(its sha256 is not among the outputs of {audit}); pass the key file of the "
            "release the model comes from")


#: what the internal report says where a rebuilt report has no holdout
REPORT_ONLY_NO_HOLDOUT = (
    "this report was rebuilt from an existing model (fhirsynth report), which does not "
    "know which patients the release held out, so every real row given counts as training "
    "data (fidelity and TSTR are measured against patients the model may have seen) and the "
    "privacy-risk tests, which need patients the model never saw, are not run; the "
    "release's own internal report has them.")


def _report_only_config(model: Any) -> dict[str, Any]:
    """The audit config of a rebuilt report: what the saved model says of its fit (budget,
    noise, learner settings), marked report-only; the run's options are not known."""
    b = model.budget
    return {"report_only": True, "epsilon": b.get("epsilon_total"),
            "delta": b.get("delta_total"), "noise": model.info.get("noise"),
            "learn": model.info.get("config") or {},
            # a test model stays a test release (models from before the flag: unknown)
            "reproducible_noise": model.info.get("reproducible_noise")}


def _names(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def check_report_inputs(model_spec: TableSpec, read_spec: TableSpec,
                        synthetic_columns: Sequence[str], *, schema: str = "the schema",
                        synthetic: str = "the synthetic table") -> None:
    """Refuse ``fhirsynth report`` inputs that do not belong to the model.

    The schema (or feature spec) the real data is read with must model the same columns, of
    the same kinds, as the model's public spec, and the synthetic table must hold every
    modelled column.  Only column names and kinds (public spec facts) enter the messages.

    Raises
    ------
    ConfigError
        The schema models other columns or kinds than the model.
    InputError
        The synthetic table lacks some of the model's columns.
    """
    want = {c.name: c.kind for c in model_spec.modelled}
    got = {c.name: c.kind for c in read_spec.modelled}
    if want != got:
        parts = []
        missing = [n for n in want if n not in got]
        extra = [n for n in got if n not in want]
        kinds = [f"{n} ({got[n]}, the model has {want[n]})" for n in want
                 if n in got and got[n] != want[n]]
        if missing:
            parts.append(f"the model's columns {_names(missing)} are not modelled by it")
        if extra:
            parts.append(f"it models {_names(extra)}, which the model does not have")
        if kinds:
            parts.append(f"other kinds: {_names(kinds)}")
        raise ConfigError(
            f"--schema/--spec ({schema}) does not match the model ({model_spec.name!r}): "
            + "; ".join(parts) + ". Pass the schema or spec, and the real data, the model was "
            "fitted with")
    lacking = [n for n in want if n not in set(synthetic_columns)]
    if lacking:
        raise InputError(f"{synthetic}: the synthetic table lacks the model's column(s) "
                         f"{_names(lacking)}; pass the synthetic table sampled from this model")
