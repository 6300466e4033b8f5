"""The ``audit`` command: empirical privacy audit of the pipeline (internal validation)."""

from __future__ import annotations

import math

import typer

from fhirsynth.cli._app import app, console, friendly_errors


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
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out."),
) -> None:
    """Empirical privacy audit: fit on D and D + one rare patient, bound epsilon from below.

    Internal validation for the custodian: the result describes the private table.
    """
    from rich.progress import Progress

    from fhirsynth._atomic import check_output_path
    from fhirsynth.domain import load_spec
    from fhirsynth.evaluate.audit_pipeline import audit_synthesizer, read_table, write_result
    from fhirsynth.privacy.budget import PrivacyBudget

    if out:
        check_output_path(out, kind="file", overwrite=overwrite)  # before the fits
    spec_obj = load_spec(spec)
    budget = PrivacyBudget.parse(epsilon, delta)
    data = read_table(table)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("fitting on D and D'", total=2 * trials)
        result = audit_synthesizer(
            spec_obj, data, epsilon=budget.epsilon, delta=budget.delta, trials=trials,
            rows=rows, seed=seed, progress=lambda done, _: bar.update(task, completed=done))
    if out:
        from fhirsynth.privacy.ledger import source_fingerprint

        write_result(result, out, {"table_fingerprint": source_fingerprint([table]),
                                   "spec": spec_obj.name, "rows": rows})
    verdict = "[bold red]FLAGGED[/]" if result.flagged else "[green]not flagged[/]"
    # the test is chosen on some fits and measured on the others: name both counts once
    # and, later, the measuring one as such
    n, m = result.trials, result.n_eval
    fits = f"{n} fits per side" + (f": {n - m} chose the test, {m} measured it" if m < n
                                   else "")
    measured = f"{m} fits per side that measured"
    console.print(
        f"empirical epsilon lower bound {result.epsilon_lower:.3f} "
        f"(point {result.epsilon_point:.3f}, {result.confidence:.0%} interval "
        f"{result.interval_low:.3f} .. {result.interval_high:.3f}) against the claimed "
        f"{result.claimed_epsilon:g}: "
        f"{verdict} ({fits}; {result.seconds:.1f} s)",
        markup=True, soft_wrap=True,
    )
    if result.fpr == 0.0 and result.fnr == 1.0 or result.fpr == 1.0 and result.fnr == 0.0:
        console.print(
            "note: the test chosen on the first half of the fits never told D' from D on the "
            "second half (it gave the same answer every time), so this audit has no power at "
            f"{n} fits per side ({m} measured the test): a lower bound of 0 is no evidence "
            "either way. More "
            "--trials, or a table where the added patient is rarer, give the test a chance.",
            soft_wrap=True)
    if math.isinf(result.epsilon_point) or math.isinf(result.interval_high):
        console.print(
            f"note: the best distinguisher made no error of one kind in the {measured} it, "
            "so the point estimate and the interval's top are unbounded (inf): they say "
            "nothing at this number of trials. The lower bound is the audit's "
            "result; more --trials narrow the interval.", soft_wrap=True)
    if result.epsilon_point > result.claimed_epsilon and not result.flagged:
        console.print(
            "note: the point estimate is above the claim, but it is a noisy estimate from "
            f"the {measured} the test; only the lower bound (at "
            f"{result.confidence:.0%} confidence) above the claim flags a release.",
            soft_wrap=True)

