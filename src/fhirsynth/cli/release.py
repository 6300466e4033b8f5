"""Commands over clinical input: ingest a cohort, run the whole release job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from fhirsynth.cli._app import SAMPLING_HELP, app, console, friendly_errors, signal_exception
from fhirsynth.errors import ConfigError, InputError

# --------------------------------------------------------------------------------------------
# release block: ingest a cohort, run the whole job
# --------------------------------------------------------------------------------------------


@app.command("ingest")
@friendly_errors
def ingest_cmd(
    inputs: list[Path] = typer.Argument(..., help="FHIR files/folders, or one clinical CSV."),
    out: Path | None = typer.Option(None, "--out",
                                    help="Patient table to write (.csv or .parquet)."),
    spec: Path | None = typer.Option(None, "--spec", "--schema",
                                     help="Feature spec (FHIR) or schema (CSV)."),
    validate: str = typer.Option("needed", "--validate",
                                 help="'needed' (fields the spec reads) or 'full'."),
    which: int | None = typer.Option(
        None, "--which", metavar="N", help="Print the path of input file N (messages show a "
        "file name that may hold an identifier as 'file N of M'), read nothing and exit."),
    strict: bool = typer.Option(False, "--strict", help="Fail on any invalid element."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out."),
    ledger: Path | None = typer.Option(
        None, "--ledger", help="Ledger (default: user data dir, as for run) in which the table "
        "is recorded as read from its input, so that `fit` of the table is charged to the "
        "input's budget."),
    keep_test_patients: bool = typer.Option(
        False, "--keep-test-patients", help="Read Patients labelled as test data (meta.security "
        "HTEST, as fhirsynth's synthetic FHIR is), to check a synthetic export; left out "
        "otherwise."),
) -> None:
    """Fold each patient into one row of the patient table (no DP: stays with the custodian).

    The table is recorded in the privacy ledger as derived from its input (nothing is
    charged): `fit` of the table, or of a copy with the same cells, then spends the input's
    budget, as `run` on the input does.
    """
    import time

    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from fhirsynth._atomic import check_output_path
    from fhirsynth.export.tables import write_table
    from fhirsynth.ingest import read_input
    from fhirsynth.pipeline import check_some_patients, import_warnings, load_run_spec

    if which is not None:
        _print_which(inputs, which)
        return
    if out is None:
        raise ConfigError("--out is required: the patient table to write (.csv or .parquet)")
    if validate not in ("needed", "full"):
        raise ConfigError(f"--validate ({validate!r}) must be 'needed' or 'full'")
    check_output_path(out, kind="file", overwrite=overwrite)
    table_spec = load_run_spec(inputs, spec)
    t0 = time.perf_counter()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("reading", total=None)

        def tick(n: int, resources: int) -> None:
            secs = max(time.perf_counter() - t0, 1e-9)
            bar.update(task, description=f"{n:,} patients ({n / secs:,.0f}/s), {resources:,} "
                                         f"resources ({resources / secs:,.0f}/s)")

        ids: list[str] = []
        table, report = read_input(inputs, table_spec, validation=validate,  # type: ignore[arg-type]
                                   strict=strict, on_patient=tick, patient_ids=ids,
                                   keep_test_patients=keep_test_patients)
    warnings = import_warnings(report, len(table), refuse=False)
    try:
        check_some_patients(inputs, len(table))
    except InputError as exc:  # what the import dropped may be why: say it in the one error
        if not warnings:
            raise
        raise InputError(f"{exc}. The import also said: {'; '.join(warnings)}") from None
    fmt = "parquet" if out.suffix.lower() == ".parquet" else "csv"
    # real patients: the table is the custodian's alone (0600, as a release's internal/)
    write_table(table, out, format=fmt, private=True)
    secs = time.perf_counter() - t0
    _print_import_summary(table, report, secs, warnings)
    console.print(f"patient table written to {out}")
    _record_derived(inputs, out, ledger, (table, [c.name for c in table_spec.modelled], ids))


def _print_which(inputs: list[Path], n: int) -> None:
    """Print the path of input file ``n`` (1-based, in reading order): messages withhold a
    name that may hold an identifier and show its position instead."""
    from fhirsynth.ingest.sources import discover, safe_text

    files = discover(inputs)
    if not 1 <= n <= len(files):
        raise ConfigError(f"--which ({n}): the input has {len(files)} file(s): give N from 1 "
                          f"to {len(files)}")
    # for the custodian's eyes (it may hold an identifier); control characters escaped
    typer.echo(safe_text(str(files[n - 1].path)))


def _record_derived(inputs: list[Path], out: Path, ledger: Path | None,
                    patients: tuple[Any, list[str], list[str]]) -> None:
    """Tie the written table to its input's budget in the ledger (no charge); ``patients``
    (table, modelled columns, ids) makes a copy with other columns or formatting the same
    source."""
    import sqlite3

    from fhirsynth.pipeline import source_label
    from fhirsynth.privacy.ledger import (
        Ledger,
        default_ledger_path,
        ledger_key,
        source_fingerprint,
    )

    path = ledger if ledger is not None else default_ledger_path()
    try:
        source = ledger_key(inputs, path)
        book = Ledger(path)
        linked = book.derive(source_fingerprint([out]), source, label=source_label(inputs),
                             patients=book.patients(*patients))
    except (OSError, sqlite3.Error) as exc:  # the table is written: say what is missing
        console.print(f"[yellow]warning:[/] the table could not be recorded in the ledger "
                      f"{escape(str(path))} ({escape(type(exc).__name__)}): a fit of it will "
                      "be charged as a source of its own")
        return
    if linked:
        console.print(f"ledger {path}: a fit of this table is charged to the budget of its "
                      "input (the same patients)")
    else:
        console.print(f"[yellow]warning:[/] {escape(str(path))} already holds charges made "
                      "to this table as a source of its own; they stay apart from its input's "
                      "budget (set a cap on each, `fhirsynth ledger set-cap`)")


def _print_import_summary(table: Any, report: dict[str, Any], secs: float,
                          warnings: list[str]) -> None:
    from rich.table import Table

    read = report.get("resources_read_total")
    summary = Table(title="import summary", show_header=False, box=None)
    summary.add_row("patients", f"{len(table):,}")
    summary.add_row("columns", f"{table.shape[1]}")
    if read is not None:
        summary.add_row("resources read", f"{read:,} ({read / max(secs, 1e-9):,.0f}/s)")
        summary.add_row("resources accepted", f"{report.get('resources_accepted_total', 0):,}")
        by_type = report.get("resources_accepted", {})
        top = ", ".join(f"{k} {v:,}" for k, v in sorted(by_type.items(), key=lambda kv: -kv[1]))
        summary.add_row("by type", top)
    else:
        summary.add_row("rows read", f"{report.get('rows_read', 0):,}")
    for key, label in (("dropped", "dropped"), ("skipped", "skipped"), ("orphans", "orphans"),
                       ("refer_to_bundle_patients", "refer to Bundle patients"),
                       ("in_files_named_for_another_type", "in files of another type")):
        vals = report.get(key) or {}
        if vals:
            summary.add_row(label, ", ".join(f"{k}: {v}" for k, v in sorted(vals.items())))
    from fhirsynth.ingest.coverage import extraction_issue_count

    summary.add_row("issues", f"{extraction_issue_count(report):,}")
    by_kind = (report.get("extraction") or {}).get("counts") or {}
    if by_kind:
        summary.add_row("extraction issues", ", ".join(
            f"{k}: {v:,}" for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1])))
    console.print(summary)
    for warning in warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")


@app.command("run")
@friendly_errors
def run_cmd(
    inputs: list[Path] = typer.Argument(..., help="FHIR files/folders, or one clinical CSV."),
    epsilon: str = typer.Option(..., "--epsilon", help="Total privacy loss epsilon (> 0)."),
    delta: str = typer.Option("0", "--delta", help="delta in [0, 1); > 0 runs under zCDP "
                              "with Gaussian noise (see --mechanism)."),
    out: Path = typer.Option(..., "--out", help="Release directory to create."),
    spec: Path | None = typer.Option(None, "--spec", "--schema",
                                     help="Feature spec (FHIR) or schema (CSV)."),
    rows: int | None = typer.Option(None, "--rows", help="Synthetic patients (default: the "
                                    "model's noisy patient count)."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of every random choice, the "
                                    "noise included: a test release, marked so, not for "
                                    "sharing (the seed is never written)."),
    ledger: Path | None = typer.Option(None, "--ledger", help="Ledger file (default: user "
                                       "data dir)."),
    holdout: float = typer.Option(0.2, "--holdout", help="Share of patients held out for "
                                  "internal validation (0 to 0.5)."),
    min_rows: int = typer.Option(50, "--min-rows", help="Refuse smaller cohorts."),
    allow_few_rows: bool = typer.Option(
        False, "--allow-few-rows", help="Fit below --min-rows anyway; the report warns that "
        "utility is unreliable."),
    degree: int | None = typer.Option(None, "--degree", help="Max parents per column (k)."),
    mechanism: str = typer.Option(
        "auto", "--mechanism", help="'auto' (Gaussian noise under zCDP when --delta > 0 "
        "and it gives less noise, else Laplace), 'laplace' or 'gaussian'."),
    validate: str = typer.Option("needed", "--validate", help="'needed' or 'full'."),
    strict: bool = typer.Option(False, "--strict", help="Fail on any invalid element or "
                                "resource (default: drop it and report it; unreadable files "
                                "always fail)."),
    overwrite: bool = typer.Option(False, "--overwrite",
                                   help="Replace an earlier release in --out."),
    allow_large_epsilon: bool = typer.Option(
        False, "--allow-large-epsilon", help="Accept an epsilon above 10 (refused otherwise)."),
    allow_large_delta: bool = typer.Option(
        False, "--allow-large-delta", help="Accept a delta above 1e-5 (refused otherwise)."),
    fhir_bundles: bool = typer.Option(
        False, "--fhir-bundles", help="Also write the synthetic FHIR as one transaction "
        "Bundle per patient (synthetic/bundles.ndjson, one Bundle per line)."),
    sampling: str = typer.Option(
        "balanced", "--sampling", metavar="balanced|iid", help=SAMPLING_HELP),
    label: str | None = typer.Option(
        None, "--label", help="The dataset's name in the release and the ledger (default: "
        "the spec's name); shared, so no identifiers."),
) -> None:
    """The whole job: ingest, learn (DP), sample, export, evaluate, reports."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from fhirsynth.config import LearnConfig
    from fhirsynth.pipeline import STAGES, RunConfig, run_release
    from fhirsynth.privacy.budget import PrivacyBudget

    budget = PrivacyBudget.parse(epsilon, delta)
    if seed is not None:
        console.print("[yellow]warning:[/] --seed draws the noise from a fixed seed: whoever "
                      "knows or guesses it can remove the noise, so this is a test release, "
                      "marked as one in report.pdf and audit.json, not for sharing; leave "
                      "--seed out for a release", soft_wrap=True)
    cfg = RunConfig(inputs=inputs, out=out, epsilon=budget.epsilon, delta=budget.delta,
                    spec=spec, rows=rows, seed=seed, ledger=ledger, holdout=holdout,
                    validation=validate, strict=strict,  # type: ignore[arg-type]
                    learn=LearnConfig(min_rows=min_rows, degree=degree,
                                      allow_few_rows=allow_few_rows,
                                      mechanism=mechanism),  # type: ignore[arg-type]
                    overwrite=overwrite, fhir_bundles=fhir_bundles,
                    allow_large_epsilon=allow_large_epsilon,
                    allow_large_delta=allow_large_delta, sampling=sampling, label=label)
    import signal
    import warnings

    from fhirsynth.errors import ReproducibleNoiseWarning

    interrupted: type[KeyboardInterrupt] | None = None

    def on_signal(signum: int, frame: Any) -> None:
        # remembered as well as raised: an interrupt that lands in a finalizer is swallowed
        # by Python, and the next stage boundary raises it again
        nonlocal interrupted
        exc = signal_exception(signum)
        if exc is not None:  # None: the release is being moved into place, or is in place
            interrupted = exc
            raise exc

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=console, transient=True) as bar:
            task = bar.add_task("starting", total=len(STAGES))

            def stage(name: str) -> None:
                if interrupted is not None:
                    raise interrupted
                bar.update(task, description=name, completed=STAGES.index(name))

            with warnings.catch_warnings():
                # said above, in the command's words
                warnings.filterwarnings("ignore", category=ReproducibleNoiseWarning)
                result = run_release(cfg, progress=stage)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _print_run_summary(result)


def _print_run_summary(r: Any) -> None:
    from rich.table import Table

    from fhirsynth.privacy.noise import describe_noise

    t = Table(title=f"release {r.out}", show_header=False, box=None)
    t.add_row("patients in", f"{r.n_patients_in:,}")
    t.add_row("patients out", f"{r.n_patients_out:,}")
    t.add_row("epsilon spent", f"{r.epsilon_spent:g} (delta {r.delta_spent:g})")
    t.add_row("noise", describe_noise(r.noise, r.rho_spent))
    cap = "no cap" if r.ledger_epsilon_cap is None else f"cap {r.ledger_epsilon_cap:g}"
    t.add_row("ledger, this source", f"epsilon {r.ledger_epsilon_total:g} spent ({cap})")
    for key, label in (("tvd_1way_mean", "mean 1-way TVD"), ("tvd_2way_mean", "mean 2-way TVD"),
                       ("cramers_v_mad", "Cramér's V error")):
        if r.headline.get(key) is not None:
            t.add_row(label + " (internal)", f"{r.headline[key]:.3f}")
    t.add_row("time", f"{r.seconds.get('total', 0):.1f} s")
    for note in r.notes:
        console.print(f"[yellow]warning:[/] {escape(note)}")
    for note in r.info:
        console.print(f"note: {escape(note)}", soft_wrap=True)
    t.add_row("outputs", f"{r.out}/")
    for name in sorted(str(p.relative_to(r.out)) for p in r.outputs.values()):
        t.add_row("", name)
    console.print(t)
    if r.shareable and r.reproducible_noise:
        console.print("[bold red]a test release (--seed drew the noise): not for sharing.[/] "
                      "internal/ stays with the custodian.")
    elif r.shareable:
        console.print("[bold]README.md, report.pdf, audit.json, model.json and synthetic/ may "
                      "be shared; internal/ stays with the custodian.[/]")
    else:
        kinds = sorted({f.get("description", f.get("kind", "?"))
                        for f in r.safe_harbor.get("findings") or []})
        console.print(f"[bold red]do not share this release yet:[/] the Safe Harbor scan of "
                      f"the output found {escape('; '.join(kinds))} (see the warnings above "
                      "and report.pdf); fix the schema or spec as suggested and run again. "
                      "internal/ stays with the custodian.")


@app.command("report")
@friendly_errors
def report_cmd(
    model: Path = typer.Argument(..., help="Model JSON of a release."),
    synthetic: Path = typer.Argument(..., help="Its synthetic table (.csv or .parquet)."),
    inputs: list[Path] = typer.Option(..., "--real", help="The real input the model came "
                                      "from (FHIR files/folders or one CSV); repeat."),
    out: Path = typer.Option(..., "--out", help="Directory to create for the reports."),
    spec: Path | None = typer.Option(None, "--spec", "--schema",
                                     help="Feature spec (FHIR) or schema (CSV)."),
    overwrite: bool = typer.Option(False, "--overwrite",
                                   help="Replace an earlier release or report in --out."),
    commitment: Path | None = typer.Option(
        None, "--commitment", help="The release's internal/input-commitment.json, to check "
        "--real against the release's input when MODEL is not in its release folder."),
) -> None:
    """Write report.pdf, internal/validation.pdf and audit.json for an existing model."""
    import warnings

    from fhirsynth.pipeline import report_release

    # warnings are shown after the spinner; an unchecked --real is said last, after the
    # reports' lines (below), unless the command fails
    done = False
    caught: list[warnings.WarningMessage] = []
    try:
        with console.status("evaluating and writing the reports"), \
                warnings.catch_warnings(record=True) as caught:
            paths = report_release(model, synthetic, inputs, out, spec=spec,
                                   overwrite=overwrite, commitment=commitment)
        done = True
    finally:
        for w in caught or []:
            if not (done and "could not be checked against" in str(w.message)):
                warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    console.print(f"reports written to {out}: {paths.report.name}, internal/"
                  f"{paths.validation.name}, {paths.audit.name}")
    import json

    from fhirsynth.evaluate.safe_harbor_advice import scan_warnings

    try:
        record = json.loads((out / paths.audit.name).read_text("utf-8"))  # paths: in tmp
        sh = record["evaluation"]["safe_harbor"] or {}
    except (OSError, ValueError, KeyError, TypeError):
        sh = {}
    try:
        unchecked = json.loads((out / "internal" / paths.evaluation.name).read_text("utf-8")
                               ).get("real_input_unchecked")
    except (OSError, ValueError, AttributeError):
        unchecked = None
    if unchecked:  # last, where it cannot scroll away behind the reports' lines
        console.print(f"[yellow]warning:[/] {escape(str(unchecked))}", soft_wrap=True)
    for line in scan_warnings(sh):  # the output scan: kind, file, column, count, fix
        console.print(f"[yellow]warning:[/] {escape(line)}", soft_wrap=True)
    console.print("note: the model does not record which patients its release held out, so "
                  "every real patient given counts as training data and the privacy-risk "
                  "tests are not run; the release's own internal report has them",
                  soft_wrap=True)
