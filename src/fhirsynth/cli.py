"""The command line.  Logging handlers and progress bars live here and nowhere else.

Every command turns a :class:`~fhirsynth.errors.FhirsynthError` into one red message on
stderr and exit status 2; nothing reaches the user as a bare traceback.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from fhirsynth import __version__
from fhirsynth.errors import FhirsynthError

app = typer.Typer(
    name="fhirsynth",
    help="Differentially private synthetic patients from FHIR R4 and clinical CSV.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True, highlight=False)

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(func: F) -> F:
    """Turn fhirsynth errors into one clear message and exit status 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except FhirsynthError as exc:
            console.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, soft_wrap=True)
            raise typer.Exit(code=2) from None
        except KeyboardInterrupt:
            console.print("[bold red]interrupted[/]: no output was written")
            raise typer.Exit(code=130) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as exc:  # an unexpected failure: one line, no values, no traceback
            logging.getLogger("fhirsynth").debug("internal error", exc_info=True)
            console.print(
                f"[bold red]internal error[/] ({type(exc).__name__}): fhirsynth failed "
                "unexpectedly and wrote no output. Run again with -vv to see the traceback "
                "(it may quote input values: keep it with the custodian) and report the issue."
            )
            raise typer.Exit(code=3) from None

    return wrapper  # type: ignore[return-value]


def _setup_logging(verbose: int) -> None:
    import warnings

    # pgmpy announces its own API moves on import; they are not the user's concern
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"pgmpy(\..*)?$")
    level = logging.WARNING - 10 * min(verbose, 2)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("fhirsynth")
    root.handlers = [h for h in root.handlers if isinstance(h, logging.NullHandler)]
    root.addHandler(handler)
    root.setLevel(level)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fhirsynth {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log output."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    _setup_logging(verbose)


# ----------------------------------------------------------------- learn: fit / sample / inspect
# (block owned by the learn branch: fit, sample and inspect a DP Bayesian network)


def _read_table(path: Path) -> Any:
    import pandas as pd

    from fhirsynth.errors import TableInputError

    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise TableInputError(f"{path}: file not found") from None
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise TableInputError(f"{path}: not a readable CSV ({type(exc).__name__})") from None


@app.command("fit")
@friendly_errors
def fit_cmd(
    table: Path = typer.Argument(..., help="Patient table, CSV, one row per patient."),
    schema: Path = typer.Option(..., "--schema", help="Public table schema / feature spec."),
    epsilon: str = typer.Option(..., "--epsilon", help="Total privacy loss epsilon (> 0)."),
    delta: str = typer.Option("0", "--delta", help="delta in [0, 1) (unused by Laplace)."),
    out: Path = typer.Option(..., "--out", help="Where to write the model JSON."),
    seed: int | None = typer.Option(None, "--seed", help="Seed (tests/internal runs only)."),
    degree: int | None = typer.Option(None, "--degree", help="Max parents per column (k)."),
    allow_few_rows: bool = typer.Option(
        False, "--allow-few-rows", help="Fit below the minimum cohort size (low utility)."),
) -> None:
    """Fit a differentially private Bayesian network and save it as JSON."""
    from fhirsynth.config import LearnConfig
    from fhirsynth.domain import load_spec
    from fhirsynth.privacy.budget import PrivacyBudget
    from fhirsynth.synthesizer import Synthesizer

    budget = PrivacyBudget.parse(epsilon, delta)
    spec = load_spec(schema)
    config = LearnConfig(degree=degree, allow_few_rows=allow_few_rows)
    df = _read_table(table)
    synth = Synthesizer(spec, epsilon=budget.epsilon, delta=budget.delta, config=config,
                        random_state=seed)
    synth.fit(df)
    synth.save(out)
    console.print(f"model written to {out} (epsilon spent "
                  f"{synth.accountant_.spent_epsilon:g} of {budget.epsilon:g})")


@app.command("sample")
@friendly_errors
def sample_cmd(
    model: Path = typer.Argument(..., help="Model JSON written by `fhirsynth fit`."),
    n: int = typer.Option(..., "-n", help="Number of synthetic patients."),
    out: Path = typer.Option(..., "--out", help="Output .csv or .parquet."),
    where: list[str] = typer.Option([], "--where", help="Evidence, e.g. 'age>=60' (repeat)."),
    seed: int | None = typer.Option(None, "--seed", help="Seed (tests/internal runs only)."),
) -> None:
    """Sample synthetic patients from a fitted model (spends no budget)."""
    import os
    import tempfile

    from fhirsynth.errors import ConfigError
    from fhirsynth.synthesizer import Synthesizer

    if out.suffix.lower() not in (".csv", ".parquet"):
        raise ConfigError(f"--out ({out}) must end in .csv or .parquet")
    if n < 0:
        raise ConfigError(f"-n ({n}) must be >= 0")
    synth = Synthesizer.load(model)
    df = synth.sample(n, evidence=list(where) or None, random_state=seed)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent or ".")
    os.close(fd)
    try:
        if out.suffix.lower() == ".csv":
            df.to_csv(tmp, index=False)
        else:
            df.to_parquet(tmp, index=False)
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    msg = f"{len(df)} rows written to {out}"
    if where:
        msg += f" (model probability of the evidence: {synth.last_evidence_probability_:.4g})"
    console.print(msg)


@app.command("inspect")
@friendly_errors
def inspect_cmd(
    model: Path = typer.Argument(..., help="Model JSON written by `fhirsynth fit`."),
) -> None:
    """Print the network (parents of each column) and the privacy budget table."""
    from rich.table import Table

    from fhirsynth.model import FittedModel

    m = FittedModel.from_json(model)
    out = Console(highlight=False)
    graph = Table(title="network: parents of each column")
    graph.add_column("column")
    graph.add_column("states", justify="right")
    graph.add_column("parents")
    for col, parents in m.graph().items():
        graph.add_row(col, str(m.by_name[col].card), ", ".join(parents) or "-")
    out.print(graph)
    b = m.budget
    tab = Table(title=f"privacy budget ({b['composition']})")
    for h in ("step", "mechanism", "epsilon", "sensitivity"):
        tab.add_column(h)
    for s in b["steps"]:
        tab.add_row(s["name"], s["mechanism"], f"{s['epsilon']:.6g}", f"{s['sensitivity']:g}")
    tab.add_row("total", "", f"{b['epsilon_spent']:.6g} of {b['epsilon_total']:g}", "")
    out.print(tab)


# ----------------------------------------------------------------- features helper: columns
@app.command("columns")
@friendly_errors
def columns_command(
    csv_path: str = typer.Argument(..., help="A clinical CSV; only its header is read."),
) -> None:
    """Propose a class (key, identifier, quasi-identifier, feature) for each CSV column."""
    import csv
    from pathlib import Path

    from fhirsynth.errors import TableInputError
    from fhirsynth.ingest.csv import classify_columns

    path = Path(csv_path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError) as exc:
        raise TableInputError(f"{path}: cannot read the header ({type(exc).__name__})") from None
    for name, cls in classify_columns(header).items():
        typer.echo(f"{name}\t{cls.role}\t{cls.treatment}\t{cls.reason}")
# ------------------------------------------------------------- end features helper: columns


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()


# --------------------------------------------------------------------------------------------
# report helper block: verify a release, the privacy ledger
# --------------------------------------------------------------------------------------------

ledger_app = typer.Typer(help="The persistent privacy ledger (caps and releases per source).",
                         no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")

_LEDGER_OPTION = typer.Option(None, "--ledger", help="Ledger file (default: user data dir).")


@app.command("verify")
@friendly_errors
def verify_cmd(
    directory: Path = typer.Argument(..., help="Release directory holding audit.json."),
) -> None:
    """Recompute the hashes of a release; exit 0 when intact, 1 when anything changed."""
    from fhirsynth.report.audit import verify_release

    result = verify_release(directory)
    for label, names in (("changed", result.changed), ("missing", result.missing),
                         ("added", result.added)):
        for name in names:
            typer.echo(f"{label}: {name}")
    if result.ok:
        typer.echo(f"intact: {result.checked} file(s) match audit.json")
        return
    typer.echo("TAMPERED: the release does not match its audit record", err=True)
    raise typer.Exit(code=1)


@ledger_app.command("set-cap")
@friendly_errors
def ledger_set_cap(
    source: str = typer.Argument(..., help="Source fingerprint (64 hex) or an input path."),
    epsilon: str = typer.Option(..., "--epsilon", help="Total epsilon over all releases."),
    delta: str = typer.Option("0", "--delta", help="Total delta over all releases."),
    label: str = typer.Option("", "--label", help="A name for the dataset in messages."),
    ledger: Path | None = _LEDGER_OPTION,
) -> None:
    """Set the custodian's cap for a source dataset."""
    from fhirsynth.privacy.budget import PrivacyBudget
    from fhirsynth.privacy.ledger import Ledger, resolve_source

    cap = PrivacyBudget.parse(epsilon, delta)
    fp = resolve_source(source)
    Ledger(ledger).set_cap(fp, cap.epsilon, cap.delta, label=label)
    typer.echo(f"cap for {fp[:12]}: epsilon {cap.epsilon:g}, delta {cap.delta:g}")


@ledger_app.command("show")
@friendly_errors
def ledger_show(
    source: str | None = typer.Argument(None, help="Only this source (fingerprint or path)."),
    ledger: Path | None = _LEDGER_OPTION,
) -> None:
    """List sources, caps and releases with their totals."""
    from fhirsynth.privacy.ledger import Ledger, resolve_source

    fp = resolve_source(source) if source else None
    summaries = Ledger(ledger).summary(fp)
    if not summaries:
        typer.echo("the ledger has no release")
    for s in summaries:
        cap = "none" if s.cap_epsilon is None else f"epsilon {s.cap_epsilon:g}, delta " \
              f"{s.cap_delta:g} ({s.cap_origin})"
        typer.echo(f"source {s.fingerprint}  {s.label}")
        typer.echo(f"  cap: {cap}")
        typer.echo(f"  spent: epsilon {s.spent_epsilon:g}, delta {s.spent_delta:g} "
                   f"in {len(s.releases)} release(s)")
        for r in s.releases:
            typer.echo(f"  - {r.charged_at}  run {r.run_id}  epsilon {r.epsilon:g}  "
                       f"delta {r.delta:g}  {r.status}  outputs: {', '.join(r.outputs) or '-'}")


# --------------------------------------------------------------------------------------------
# release block: ingest a cohort, run the whole job
# --------------------------------------------------------------------------------------------


@app.command("ingest")
@friendly_errors
def ingest_cmd(
    inputs: list[Path] = typer.Argument(..., help="FHIR files/folders, or one clinical CSV."),
    out: Path = typer.Option(..., "--out", help="Patient table to write (.csv or .parquet)."),
    spec: Path | None = typer.Option(None, "--spec", "--schema",
                                     help="Feature spec (FHIR) or schema (CSV)."),
    validate: str = typer.Option("needed", "--validate",
                                 help="'needed' (fields the spec reads) or 'full'."),
    strict: bool = typer.Option(False, "--strict", help="Fail on any invalid element."),
) -> None:
    """Fold each patient into one row of the patient table (no DP: stays with the custodian)."""
    import time

    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from fhirsynth.export.tables import write_table
    from fhirsynth.ingest import read_input
    from fhirsynth.pipeline import load_run_spec

    if validate not in ("needed", "full"):
        raise typer.BadParameter("--validate must be 'needed' or 'full'")
    table_spec = load_run_spec(inputs, spec)
    t0 = time.perf_counter()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("reading", total=None)

        def tick(n: int) -> None:
            rate = n / max(time.perf_counter() - t0, 1e-9)
            bar.update(task, description=f"{n} patients ({rate:,.0f}/s)")

        table, report = read_input(inputs, table_spec, validation=validate,  # type: ignore[arg-type]
                                   strict=strict, on_patient=tick)
    fmt = "parquet" if out.suffix.lower() == ".parquet" else "csv"
    write_table(table, out, format=fmt)
    secs = time.perf_counter() - t0
    _print_import_summary(table, report, secs)
    console.print(f"patient table written to {out}")


def _print_import_summary(table: Any, report: dict[str, Any], secs: float) -> None:
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
    for key in ("dropped", "skipped", "orphans"):
        vals = report.get(key) or {}
        if vals:
            summary.add_row(key, ", ".join(f"{k}: {v}" for k, v in sorted(vals.items())))
    issues = report.get("issues") or []
    summary.add_row("issues", f"{len(issues)}")
    console.print(summary)


@app.command("run")
@friendly_errors
def run_cmd(
    inputs: list[Path] = typer.Argument(..., help="FHIR files/folders, or one clinical CSV."),
    epsilon: str = typer.Option(..., "--epsilon", help="Total privacy loss epsilon (> 0)."),
    delta: str = typer.Option("0", "--delta", help="delta in [0, 1)."),
    out: Path = typer.Option(..., "--out", help="Release directory to create."),
    spec: Path | None = typer.Option(None, "--spec", "--schema",
                                     help="Feature spec (FHIR) or schema (CSV)."),
    rows: int | None = typer.Option(None, "--rows", help="Synthetic patients (default: the "
                                    "model's noisy patient count)."),
    seed: int | None = typer.Option(None, "--seed", help="Seed (tests/internal runs only; "
                                    "never written to any output)."),
    ledger: Path | None = typer.Option(None, "--ledger", help="Ledger file (default: user "
                                       "data dir)."),
    holdout: float = typer.Option(0.2, "--holdout", help="Share of patients held out for "
                                  "internal validation (0 to 0.5)."),
    min_rows: int = typer.Option(50, "--min-rows", help="Refuse smaller cohorts."),
    degree: int | None = typer.Option(None, "--degree", help="Max parents per column (k)."),
    validate: str = typer.Option("needed", "--validate", help="'needed' or 'full'."),
    strict: bool = typer.Option(False, "--strict", help="Fail on any invalid element."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out."),
) -> None:
    """The whole job: ingest, learn (DP), sample, export, evaluate, reports."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from fhirsynth.config import LearnConfig
    from fhirsynth.pipeline import STAGES, RunConfig, run_release
    from fhirsynth.privacy.budget import PrivacyBudget

    budget = PrivacyBudget.parse(epsilon, delta)
    for note in budget.plausibility():
        console.print(f"[yellow]note:[/] {note}")
    cfg = RunConfig(inputs=inputs, out=out, epsilon=budget.epsilon, delta=budget.delta,
                    spec=spec, rows=rows, seed=seed, ledger=ledger, holdout=holdout,
                    validation=validate, strict=strict,  # type: ignore[arg-type]
                    learn=LearnConfig(min_rows=min_rows, degree=degree), overwrite=overwrite)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("starting", total=len(STAGES))

        def stage(name: str) -> None:
            bar.update(task, description=name, completed=STAGES.index(name))

        result = run_release(cfg, progress=stage)
    _print_run_summary(result)


def _print_run_summary(r: Any) -> None:
    from rich.table import Table

    t = Table(title=f"release {r.out}", show_header=False, box=None)
    t.add_row("patients in", f"{r.n_patients_in:,}")
    t.add_row("patients out", f"{r.n_patients_out:,}")
    t.add_row("epsilon spent", f"{r.epsilon_spent:g} (delta {r.delta_spent:g})")
    cap = "no cap" if r.ledger_epsilon_cap is None else f"cap {r.ledger_epsilon_cap:g}"
    t.add_row("ledger, this source", f"epsilon {r.ledger_epsilon_total:g} spent ({cap})")
    for key, label in (("tvd_1way_mean", "mean 1-way TVD"), ("tvd_2way_mean", "mean 2-way TVD"),
                       ("cramers_v_mad", "Cramér's V error")):
        if r.headline.get(key) is not None:
            t.add_row(label + " (internal)", f"{r.headline[key]:.3f}")
    t.add_row("time", f"{r.seconds.get('total', 0):.1f} s")
    t.add_row("outputs", f"{r.out}/")
    for name in sorted(str(p.relative_to(r.out)) for p in r.outputs.values()):
        t.add_row("", name)
    console.print(t)
    console.print("[bold]report.pdf, audit.json, model.json and synthetic/ may be shared; "
                  "internal/ stays with the custodian.[/]")
