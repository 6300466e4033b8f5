"""Commands of the audit trail: verify a release, the persistent privacy ledger."""

from __future__ import annotations

from pathlib import Path

import typer

from fhirsynth.cli._app import app, friendly_errors

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
    partial: bool = typer.Option(False, "--partial", help="The folder holds only some of "
                                 "the release's files: check those, list the others as not "
                                 "given."),
    shareable: bool = typer.Option(False, "--shareable", help="Check too that the folder is "
                                   "a copy fit to share: exit 1 when it holds internal/ "
                                   "(custodian-only), is a test release (--seed), was "
                                   "made by `fhirsynth report` or its Safe Harbor scan "
                                   "failed."),
) -> None:
    """Check a release against its audit.json; exit 0 when intact, 1 when anything disagrees.

    The file hashes, and the record itself: its config and spec hashes, the budget arithmetic
    (epsilon, delta, rho), model.json's budget table and the internal evaluation's hash.
    A folder holding internal/ (custodian-only) is still intact, with a warning; with
    --shareable it fails.
    """
    from fhirsynth.report.audit import verify_release

    result = verify_release(directory, partial=partial)
    for label, names in (("changed", result.changed), ("missing", result.missing),
                         ("added", result.added), ("inconsistent", result.inconsistent)):
        for name in names:
            typer.echo(f"{label}: {name}")
    record = _record(directory)
    config = record.get("config") if isinstance(record.get("config"), dict) else {}
    test_release = bool(config.get("reproducible_noise"))
    if result.ok:
        typer.echo(f"intact: {result.checked} file(s) match audit.json, and")
        for what in result.consistency_checked:
            typer.echo(f"  - {what}")
        for what in result.not_checked:
            typer.echo(f"not checked: {what}")
        for name in result.not_given:
            typer.echo(f"not given (--partial, not checked): {name}")
        if test_release:
            typer.echo("note: a test release: a fixed seed (--seed) drew its noise, so it is "
                       "not differentially private against whoever knows or guesses the "
                       "seed; do not share it")
    _warn_internal(result.internal, result.internal_present, shareable)
    if not result.ok:
        typer.echo("TAMPERED: the release does not match its audit record", err=True)
        if result.missing and not (result.changed or result.added or result.inconsistent):
            typer.echo("(only files are missing: if you were given some of the release's "
                       "files, `fhirsynth verify --partial` checks those)", err=True)
        raise typer.Exit(code=1)
    if shareable:
        why = _not_shareable(result.internal_present, test_release,
                             bool(config.get("report_only")),
                             (record.get("evaluation") or {}).get("safe_harbor")
                             if isinstance(record.get("evaluation"), dict) else None)
        if why:
            typer.echo(f"NOT SHAREABLE: {why}", err=True)
            raise typer.Exit(code=1)
        typer.echo("shareable: no internal/ folder, no file that audit.json does not list, "
                   "not a test release, not made by `fhirsynth report`, the Safe Harbor scan "
                   "of the output passed")


def _not_shareable(internal: bool, test_release: bool, report_only: bool,
                   safe_harbor: object) -> str | None:
    """Why an intact folder is not fit to share, or None."""
    if internal:
        return "it holds internal/"
    if test_release:
        return "a test release"
    if not isinstance(safe_harbor, dict) or safe_harbor.get("passed") is not True:
        # trial 26: a release whose run said "do not share this release yet" was shareable
        findings = safe_harbor.get("findings") if isinstance(safe_harbor, dict) else None
        if not isinstance(safe_harbor, dict) or "passed" not in safe_harbor:
            return ("audit.json records no Safe Harbor scan of the output "
                    "(evaluation.safe_harbor.passed)")
        n = len(findings) if isinstance(findings, list) else 0
        return (f"the Safe Harbor scan of the output failed ({n} finding(s), "
                "evaluation.safe_harbor in audit.json; report.pdf names each): fix the schema "
                "or spec as the run said, and run again")
    if report_only:
        # trial 26: `report` wrapped the real rows, given as "synthetic", in a release-shaped
        # folder; the table was supplied to it, not sampled from the model by a run
        return ("made by `fhirsynth report` (audit.json config.report_only): its synthetic "
                "table was supplied to the command, not sampled from the model by a run, and "
                "nothing here shows which; share the release folder that `fhirsynth run` or "
                "`fhirsynth sample` wrote, and keep rebuilt reports with the custodian")
    return None


def _warn_internal(files: list[str], present: bool, shareable: bool) -> None:
    """Say on stderr that the folder holds custodian-only files, naming each."""
    if not present:
        return
    held = f" ({', '.join(files)})" if files else ""
    typer.echo(f"warning: internal/ is present{held}: custodian-only files, not part of the "
               "release, that may hold statistics of the real patients; remove internal/ "
               "before sharing this folder"
               + ("" if shareable else " (`fhirsynth verify --shareable` checks a copy to "
                  "share)"), err=True)


def _record(directory: Path) -> dict:
    """The release's audit.json (its ``config``: ``reproducible_noise``, a fixed seed drew the
    noise, ``report_only``, made by ``fhirsynth report``; ``evaluation.safe_harbor``: the
    output scan), or {} when unreadable."""
    import json

    try:
        record = json.loads((directory / "audit.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


_SCHEMA_OPTION = typer.Option(
    None, "--schema", "--spec", help="Read SOURCE (a path) with this schema or feature spec, "
    "to find the source holding its patients as a run would (a copy in another form: other "
    "columns, formatting, a subset).")


def _source_key(source: str, schema: Path | None, ledger: Path) -> str:
    """The ledger source of ``source`` (a fingerprint or a path); with ``schema``, a path is
    read and its patients looked up as :meth:`Ledger.charge` would (nothing is recorded)."""
    from fhirsynth.privacy.ledger import Ledger, ledger_key, resolve_source

    if schema is None or not Path(source).exists():
        return resolve_source(source, ledger)
    from fhirsynth.ingest import read_input
    from fhirsynth.pipeline import load_run_spec

    spec = load_run_spec([Path(source)], schema)
    ids: list[str] = []
    table, _ = read_input([Path(source)], spec, patient_ids=ids)
    book = Ledger(ledger)
    return book.find_source(ledger_key([Path(source)], ledger),
                            book.patients(table, [c.name for c in spec.modelled], ids))


@ledger_app.command("set-cap")
@friendly_errors
def ledger_set_cap(
    source: str = typer.Argument(..., help="Source fingerprint (64 hex) or an input path."),
    epsilon: str = typer.Option(..., "--epsilon", help="Total epsilon over all releases."),
    delta: str | None = typer.Option(None, "--delta", help="Total delta over all releases "
                                     "(default: keep the source's delta cap, 0 for a new "
                                     "source)."),
    label: str = typer.Option("", "--label", help="A name for the dataset in messages."),
    ledger: Path | None = _LEDGER_OPTION,
    schema: Path | None = _SCHEMA_OPTION,
    allow_large_epsilon: bool = typer.Option(
        False, "--allow-large-epsilon", help="Accept a cap above epsilon 10."),
    allow_large_delta: bool = typer.Option(
        False, "--allow-large-delta", help="Accept a delta cap above 1e-5."),
    force: bool = typer.Option(
        False, "--force", help="Set a cap below what the source has already spent (no "
        "further release of it is then possible)."),
) -> None:
    """Set the custodian's cap for a source dataset."""
    from fhirsynth.privacy.budget import PrivacyBudget
    from fhirsynth.privacy.ledger import Ledger

    book = Ledger(ledger)
    fp = _source_key(source, schema, book.path)
    if delta is None:
        known = [s for s in book.summary() if s.fingerprint == fp]
        delta = str(known[0].cap_delta if known and known[0].cap_delta is not None else 0)
    cap = PrivacyBudget.parse(epsilon, delta)
    # the same guard as a release's: a mistyped cap (1e6) would let releases pile up
    cap.check_release(allow_large_epsilon=allow_large_epsilon,
                      allow_large_delta=allow_large_delta, cap=True)
    from fhirsynth.errors import ConfigError

    known = book.summary(fp)
    spent = known[0] if known else None
    below = spent is not None and (spent.spent_epsilon > cap.epsilon
                                   or spent.spent_delta > cap.delta)
    if below and not force:
        raise ConfigError(
            f"{book.path}: source {fp[:12]} has already spent epsilon "
            f"{spent.spent_epsilon:g}, delta {spent.spent_delta:g} in {len(spent.releases)} "
            f"release(s), above the requested cap (epsilon {cap.epsilon:g}, delta "
            f"{cap.delta:g}); a cap does not undo earlier releases. Set a cap of at least the "
            "spent total, or pass --force to set this one anyway (no further release of "
            "this source is then possible); the cap was not changed")
    book.set_cap(fp, cap.epsilon, cap.delta, label=label)
    typer.echo(f"cap for {fp[:12]}: epsilon {cap.epsilon:g}, delta {cap.delta:g}")
    if below:
        typer.echo(f"warning: the releases already made from this source spent epsilon "
                   f"{spent.spent_epsilon:g}, delta {spent.spent_delta:g}, above the new cap "
                   "(--force): no further release is possible, and the cap does not undo the "
                   "earlier ones", err=True)


@ledger_app.command("show")
@friendly_errors
def ledger_show(
    source: str | None = typer.Argument(None, help="Only this source (fingerprint or path)."),
    ledger: Path | None = _LEDGER_OPTION,
    schema: Path | None = _SCHEMA_OPTION,
) -> None:
    """List sources, caps and releases with their totals."""
    from fhirsynth.errors import ConfigError
    from fhirsynth.privacy.ledger import Ledger, default_ledger_path

    path = ledger if ledger is not None else default_ledger_path()
    if not path.is_file():  # reading must not create a ledger
        raise ConfigError(f"no ledger at {path} (nothing has been charged there yet)")
    fp = _source_key(source, schema, path) if source else None
    summaries = Ledger(path).summary(fp)
    if not summaries and fp is not None:
        hint = ("" if schema is not None else "; give its --schema to find the source "
                "holding its patients in another form")
        typer.echo(f"the ledger has no release of this source ({fp[:12]}{hint}): `fhirsynth "
                   "ledger show` lists every source")
    elif not summaries:
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

