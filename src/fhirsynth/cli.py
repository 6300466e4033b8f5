"""The command line.  Logging handlers and progress bars live here and nowhere else.

Every command turns a :class:`~fhirsynth.errors.FhirsynthError` into one red message on
stderr and exit status 2; nothing reaches the user as a bare traceback.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

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
            console.print(f"[bold red]error:[/] {exc}", markup=True, soft_wrap=True)
            raise typer.Exit(code=2) from None
        except KeyboardInterrupt:
            console.print("[bold red]interrupted[/]: no output was written")
            raise typer.Exit(code=130) from None

    return wrapper  # type: ignore[return-value]


def _setup_logging(verbose: int) -> None:
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


# ---------------------------------------------------------------- audit (issue 8)
@app.command("audit")
@friendly_errors
def audit_command(
    table: str = typer.Argument(..., help="Patient table (CSV, one row per patient)."),
    spec: str = typer.Option(..., "--spec", help="Feature spec (YAML) or *.schema.json."),
    epsilon: str = typer.Option(..., "--epsilon", help="Claimed epsilon of the release."),
    delta: str = typer.Option("0", "--delta", help="Claimed delta of the release."),
    trials: int = typer.Option(500, "--trials", min=10, help="Fits per side (D and D')."),
    rows: int = typer.Option(100, "--rows", min=2, help="Patients drawn from TABLE as D."),
    seed: int = typer.Option(0, "--seed", help="Seed of the audit (internal runs only)."),
    out: str = typer.Option("", "--out", help="Also write the result as JSON to this path."),
) -> None:
    """Empirical privacy audit: fit on D and D + one rare patient, bound epsilon from below.

    Internal validation for the custodian: the result describes the private table.
    """
    from rich.progress import Progress

    from fhirsynth.domain import load_spec
    from fhirsynth.evaluate.audit_pipeline import audit_synthesizer, read_table, write_result
    from fhirsynth.privacy.budget import PrivacyBudget

    spec_obj = load_spec(spec)
    budget = PrivacyBudget.parse(epsilon, delta)
    data = read_table(table)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("fitting on D and D'", total=2 * trials)
        result = audit_synthesizer(
            spec_obj, data, epsilon=budget.epsilon, delta=budget.delta, trials=trials,
            rows=rows, seed=seed, progress=lambda done, _: bar.update(task, completed=done))
    if out:
        write_result(result, out)
    verdict = "[bold red]FLAGGED[/]" if result.flagged else "[green]not flagged[/]"
    console.print(
        f"empirical epsilon lower bound {result.epsilon_lower:.3f} "
        f"({result.confidence:.0%} interval {result.epsilon_lower:.3f} .. "
        f"{result.epsilon_upper:.3f}) against the claimed {result.claimed_epsilon:g}: "
        f"{verdict} ({result.trials} fits per side, {result.seconds:.1f} s)",
        markup=True, soft_wrap=True,
    )


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
