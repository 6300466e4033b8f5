"""Commands over one model: fit, sample, inspect; and the CSV column classifier."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from fhirsynth.cli._app import SAMPLING_HELP, PipeConsole, app, console, friendly_errors

# ----------------------------------------------------------------- learn: fit / sample / inspect
# (block owned by the learn branch: fit, sample and inspect a DP Bayesian network)


def _read_table(path: Path, spec: Any, ids: list[str] | None = None) -> Any:
    """The patient table of a CSV under its schema (the same reader as ``run``); ``ids``
    receives its key column's ids (for the ledger's patient digests)."""
    from rich.markup import escape

    from fhirsynth.errors import TableInputError
    from fhirsynth.ingest.csv import read_csv_table, read_notes, year_name_note
    from fhirsynth.ingest.sources import shown_path

    if path.is_dir():
        raise TableInputError(f"{path}: a folder; fit reads one CSV patient table (for FHIR "
                              "input use `fhirsynth run`, or `fhirsynth ingest` first)")
    if not path.is_file():
        raise TableInputError(f"{path}: file not found")
    table, report = read_csv_table(path, spec, patient_ids=ids)
    refusals, notes = read_notes(shown_path(path.name), spec, report, strict_option=False)
    if refusals:  # the schema mostly does not describe a column: as `run` refuses it
        raise TableInputError("; ".join(refusals))
    for note in notes:
        console.print(f"[yellow]warning:[/] {escape(note)}")
    named = year_name_note(spec)
    if named:  # the output is right, only its name misleads: a note, not a warning
        console.print(f"note: {escape(named)}", soft_wrap=True)
    return table


@app.command("fit")
@friendly_errors
def fit_cmd(
    table: Path = typer.Argument(..., help="Patient table, CSV, one row per patient."),
    schema: Path = typer.Option(..., "--schema", help="Public table schema / feature spec."),
    epsilon: str = typer.Option(..., "--epsilon", help="Total privacy loss epsilon (> 0)."),
    delta: str = typer.Option("0", "--delta", help="delta in [0, 1); > 0 runs under zCDP "
                              "with Gaussian noise (see --mechanism)."),
    out: Path = typer.Option(..., "--out", help="Where to write the model JSON."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the noise too: a test "
                                    "model, not for sharing (tests/internal runs only)."),
    degree: int | None = typer.Option(None, "--degree", help="Max parents per column (k)."),
    allow_few_rows: bool = typer.Option(
        False, "--allow-few-rows", help="Fit below the minimum cohort size (low utility)."),
    mechanism: str = typer.Option(
        "auto", "--mechanism", help="'auto' (Gaussian noise under zCDP when --delta > 0 "
        "and it gives less noise, else Laplace), 'laplace' or 'gaussian'."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out."),
    ledger: Path | None = typer.Option(None, "--ledger", help="Ledger file charged for this "
                                       "fit (default: the user data dir, as for run)."),
    allow_large_epsilon: bool = typer.Option(
        False, "--allow-large-epsilon", help="Accept an epsilon above 10 (refused otherwise)."),
    allow_large_delta: bool = typer.Option(
        False, "--allow-large-delta", help="Accept a delta above 1e-5 (refused otherwise)."),
) -> None:
    """Fit a differentially private Bayesian network and save it as JSON.

    The fit is charged to the privacy ledger under the fingerprint of the table's cells
    (independent of row and column order and of the file's bytes; the same key as `run`
    and `ledger` give the file) before any noise is drawn, as a release is: fits and runs
    of the same table add up against its cap.  A table holding a charged source's patients
    (its modelled rows in another file or formatting, or most of them) is charged to it.
    """
    import warnings

    from fhirsynth._atomic import check_output_path
    from fhirsynth.config import LearnConfig
    from fhirsynth.domain import load_spec
    from fhirsynth.errors import ReproducibleNoiseWarning
    from fhirsynth.evaluate.safe_harbor_spec import check_spec_safe_harbor
    from fhirsynth.learn import check_degree, check_rows
    from fhirsynth.privacy.budget import PrivacyBudget
    from fhirsynth.privacy.ledger import Ledger, default_ledger_path, first_cap_note, ledger_key
    from fhirsynth.privacy.noise import describe_noise
    from fhirsynth.synthesizer import Synthesizer

    budget = PrivacyBudget.parse(epsilon, delta)
    budget.check_release(allow_large_epsilon=allow_large_epsilon,
                         allow_large_delta=allow_large_delta)
    check_output_path(out, kind="file", overwrite=overwrite)
    if seed is not None:
        console.print("[yellow]warning:[/] --seed draws the noise from a fixed seed: whoever "
                      "knows or guesses it can remove the noise, so the model is not "
                      "differentially private against them; a test model, not for sharing "
                      "(model.json records reproducible_noise)", soft_wrap=True)
    spec = load_spec(schema)
    # as for `run`: a model whose samples could not be shared is refused before anything
    # is read or charged
    check_spec_safe_harbor(spec, str(schema))
    config = LearnConfig(degree=degree, allow_few_rows=allow_few_rows,
                         mechanism=mechanism)  # type: ignore[arg-type]
    check_degree(spec, config)
    synth = Synthesizer(spec, epsilon=budget.epsilon, delta=budget.delta, config=config,
                        random_state=seed)
    ledger_path = ledger if ledger is not None else default_ledger_path()
    ids: list[str] = []
    df = _read_table(table, spec, ids)
    # the table's cells, not its bytes: line endings, row order or a re-save elsewhere
    # give the same source (and the same cap), as for `run` on the same file
    source = ledger_key([table], ledger_path)
    check_rows(len(df), config)  # a refused fit spends nothing
    book = Ledger(ledger_path)
    charged = book.charge(source, budget, label=spec.name, patients=book.patients(
        df, [c.name for c in spec.modelled], ids))  # the source holding these patients
    if charged.matched:
        console.print(f"ledger: this fit is charged to the ledger source "
                      f"{escape(charged.matched)}")
    capped = first_cap_note(charged, ledger)
    if capped:  # the first release set the cap: say so, and how to raise it
        console.print(f"note: {escape(capped)}", soft_wrap=True)
    with warnings.catch_warnings():  # --seed was warned about above, in the command's words
        warnings.filterwarnings("ignore", category=ReproducibleNoiseWarning)
        synth.fit(df, _warn_notes=False, _checked_input=True)
    synth.save(out)
    book.complete(charged.run_id, [out.name])
    for note in synth.notes_:  # the same warnings as `run` prints
        console.print(f"[yellow]warning:[/] {escape(note)}")
    noise = describe_noise(str(synth.model_.info.get("noise")),
                           synth.model_.budget.get("rho_spent"))
    total = book.summary(charged.fingerprint)[0]
    cap = ("no cap" if total.cap_epsilon is None else f"cap {total.cap_epsilon:g}")
    console.print(f"model written to {out} (epsilon spent "
                  f"{synth.accountant_.spent_epsilon:g} of {budget.epsilon:g}, delta "
                  f"{synth.accountant_.spent_delta:g}; {noise}; charged to the ledger "
                  f"{ledger_path}: this source has spent epsilon {total.spent_epsilon:g} "
                  f"({cap}))")


@app.command("sample")
@friendly_errors
def sample_cmd(
    model: Path = typer.Argument(..., help="Model JSON written by `fhirsynth fit`."),
    n: int = typer.Option(..., "-n", help="Number of synthetic patients."),
    out: Path = typer.Option(..., "--out", help="Output .csv or .parquet."),
    where: list[str] = typer.Option([], "--where", metavar="EXPR",
                                    help="One condition, e.g. 'age>=60', 'sex=f', 'bmi is "
                                         "missing' (repeat --where for several)."),
    seed: int | None = typer.Option(None, "--seed", help="Seed (tests/internal runs only)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out."),
    sampling: str = typer.Option(
        "balanced", "--sampling", metavar="balanced|iid", help=SAMPLING_HELP),
    fhir: Path | None = typer.Option(
        None, "--fhir", help="Also write the same patients as FHIR R4 Bulk NDJSON "
        "(<Type>.ndjson) into this new folder (models fitted from FHIR)."),
    fhir_bundles: Path | None = typer.Option(
        None, "--fhir-bundles", help="With --fhir: also write one transaction Bundle per "
        "patient, one per line, to this .ndjson file (outside the --fhir folder)."),
) -> None:
    """Sample synthetic patients from a fitted model (spends no budget).

    The table has the columns, order, types and rounding of a release's
    synthetic/patients.csv: derived columns (birth year) follow from the sampled ones and
    each key column gets fresh random UUIDv4s.  With --fhir the same rows are written as
    validated FHIR R4 resources, as a release's synthetic/fhir/ (conditional samples too).
    """
    import warnings

    from fhirsynth._atomic import check_output_path
    from fhirsynth._memory import available_memory, check_rows_fit
    from fhirsynth.errors import ConfigError, SafeHarborWarning
    from fhirsynth.export.tables import write_table
    from fhirsynth.synthesizer import Synthesizer

    if out.suffix.lower() not in (".csv", ".parquet"):
        raise ConfigError(f"--out ({out}) must end in .csv or .parquet")
    if n < 1:
        raise ConfigError(f"-n ({n}) must be >= 1")
    check_output_path(out, kind="file", overwrite=overwrite)
    _check_fhir_outputs(fhir, fhir_bundles, out, overwrite)
    with warnings.catch_warnings():
        # the scan of what is written below says whether these samples fail Safe Harbor
        warnings.filterwarnings("ignore", category=SafeHarborWarning)
        synth = Synthesizer.load(model)
    if fhir is not None and not synth.model.spec.has_fhir_rules:
        raise ConfigError(f"--fhir: model {model.name} was not fitted from FHIR with a feature "
                          "spec (or was saved by an earlier fhirsynth without its FHIR rules); "
                          "its rows cannot become FHIR resources")
    # a row count whose table cannot fit is refused now, not by the kernel's OOM killer
    check_rows_fit(synth.model.spec, n, available_memory(), fhir=fhir is not None)
    df = synth.sample(n, evidence=list(where) or None, random_state=seed, sampling=sampling,
                      release=True)
    if fhir is not None:
        _write_sample_fhir(df, synth.model.spec, fhir, fhir_bundles, seed)
    write_table(df, out, format=None)
    # the scan a release runs on its output: a model whose spec allows, say, ages above 89
    # (fitted through the Python API, or by an older version) says so here
    for line in _scan_sample(synth.model, df, out.name):
        console.print(f"[yellow]warning:[/] {escape(line)}")
    msg = f"{len(df)} rows written to {out}"
    if where:
        msg += f" (model probability of the evidence: {synth.last_evidence_probability_:.4g})"
    console.print(msg)


def _check_fhir_outputs(fhir: Path | None, bundles: Path | None, out: Path,
                        overwrite: bool) -> None:
    """Refuse --fhir / --fhir-bundles paths before anything is sampled or written."""
    from fhirsynth._atomic import check_output_path
    from fhirsynth.errors import ConfigError

    if fhir is None:
        if bundles is not None:
            raise ConfigError("--fhir-bundles needs --fhir (the folder of the FHIR resources)")
        return
    check_output_path(fhir, kind="folder", option="--fhir")
    if fhir.is_file():
        raise ConfigError(f"--fhir ({fhir}) is a file; name a folder")
    if fhir.is_dir() and any(fhir.iterdir()):
        # only an earlier FHIR output (NDJSON files and nothing else) may be replaced
        earlier = all(p.is_file() and p.suffix == ".ndjson" for p in fhir.iterdir())
        if not (overwrite and earlier):
            raise ConfigError(
                f"--fhir ({fhir}) is a folder that is not empty; name a new one"
                + (", or pass --overwrite to replace the NDJSON files of an earlier sample"
                   if earlier else " (it holds more than an earlier sample's NDJSON files)"))
    if bundles is not None:
        if bundles.suffix.lower() != ".ndjson":
            raise ConfigError(f"--fhir-bundles ({bundles}) must end in .ndjson")
        if fhir.resolve() in bundles.resolve().parents:
            raise ConfigError(f"--fhir-bundles ({bundles}) must be outside the --fhir folder: "
                              "a reader of that folder would count every resource twice")
        check_output_path(bundles, kind="file", option="--fhir-bundles", overwrite=overwrite)
    if fhir.resolve() in out.resolve().parents:
        raise ConfigError(f"--out ({out}) must be outside the --fhir folder")


def _write_sample_fhir(df: Any, spec: Any, fhir: Path, bundles: Path | None,
                       seed: int | None) -> None:
    """The FHIR files of a sampled table: written in a temporary folder beside ``fhir`` and
    moved into place when every file is complete and valid."""
    import shutil
    import tempfile

    from fhirsynth.export.fhir import write_fhir

    fhir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{fhir.name}-", dir=fhir.parent))
    try:
        written = write_fhir(df, spec, tmp / "fhir",
                             rng_or_seed=None if seed is None else seed + 2,
                             bundles=tmp / "bundles.ndjson" if bundles is not None else None)
        # an earlier sample's folder is set aside, not removed, until the new one is in place
        earlier = fhir.exists()
        if earlier:
            fhir.rename(tmp / "earlier")
        try:
            (tmp / "fhir").rename(fhir)
        except OSError:
            if earlier:
                (tmp / "earlier").rename(fhir)
            raise
        if bundles is not None:
            (tmp / "bundles.ndjson").replace(bundles)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    files = ", ".join(sorted(v.name for k, v in written.items() if k != "Bundle"))
    console.print(f"FHIR R4 written to {fhir} ({files})"
                  + (f"; transaction Bundles to {bundles}" if bundles is not None else ""))


def _scan_sample(model: Any, df: Any, name: str) -> list[str]:
    """The Safe Harbor scan of a sampled table, as warnings (empty when it passes)."""
    from fhirsynth.evaluate.safe_harbor import scan_table
    from fhirsynth.evaluate.safe_harbor_advice import scan_warnings

    if model.output is not None:
        top = {c: float(v) for c, v in (model.output.get("top_codes") or {}).items()}
    else:  # saved before the top codes were kept: a column bounded at 90 was top-coded there
        top = {c.name: 90.0 for c in model.spec.columns
               if c.kind == "numeric" and c.bounds is not None and c.bounds[1] == 90}
    from fhirsynth.export.harmonise import age_columns, birth_year_columns, saved_birth_years

    # a model.json older than output.birth_years: the birth years its spec still tells
    rules, unknown = saved_birth_years(model.spec, model.output)
    keys = [c.name for c in model.spec.columns if c.role == "key"]
    report = scan_table(df, location=name, exempt=keys, top_coded=top,
                        ages=age_columns(model.spec, rules),
                        birth_years=birth_year_columns(model.spec, rules)).to_dict()
    oldest = _dt.date.today().year - 89
    lines = [f"the Safe Harbor birth-year check could not be applied to column {c!r}: its "
             "range is one of years, and this model.json, written before models recorded which "
             "columns are birth years (output.birth_years), does not say whether it holds "
             f"birth years; if it does, a year before {oldest} implies an age over 89 and must "
             "not be shared" for c in unknown]
    found = scan_warnings(report)
    if found:
        found.append("do not share this table: the model's spec lets its samples hold these "
                     "values; `fhirsynth fit` and `run` refuse such a spec (docs/csv-input.md)")
    return lines + found


@app.command("inspect")
@friendly_errors
def inspect_cmd(
    model: Path = typer.Argument(..., help="Model JSON written by `fhirsynth fit`."),
) -> None:
    """Print the network (parents of each column) and the privacy budget table."""
    from rich.table import Table

    from fhirsynth.model import FittedModel

    m = FittedModel.from_json(model)
    out = PipeConsole(highlight=False)
    # names (columns, steps) fold onto the next line instead of being cut with an ellipsis
    graph = Table(title="network: parents of each column")
    graph.add_column("column", overflow="fold")
    graph.add_column("states", justify="right", no_wrap=True)
    graph.add_column("parents", overflow="fold")
    for col, parents in m.graph().items():
        graph.add_row(col, str(m.by_name[col].card), ", ".join(parents) or "-")
    out.print(graph)
    b = m.budget
    tab = Table(title=f"privacy budget ({b['composition']})")
    tab.add_column("step", overflow="fold")
    tab.add_column("mechanism", overflow="fold", max_width=13)  # wraps "laplace (diffprivlib)"
    tab.add_column("epsilon", no_wrap=True)
    tab.add_column("sensitivity", no_wrap=True)
    zcdp = "rho_total" in b  # zCDP: each step's rho beside its share of epsilon
    if zcdp:
        tab.add_column("rho", no_wrap=True)
    for s in b["steps"]:
        rho = [f"{s['rho']:.4g}" if s.get("rho") else "-"] if zcdp else []
        tab.add_row(s["name"], s["mechanism"], f"{s['epsilon']:.6g}", f"{s['sensitivity']:g}",
                    *rho)
    tab.add_row("total", "", f"{b['epsilon_spent']:.6g} of {b['epsilon_total']:g}", "",
                *([f"{b['rho_spent']:.4g} of {b['rho_total']:.4g}"] if zcdp else []))
    out.print(tab)
    if m.info.get("reproducible_noise"):
        from fhirsynth.synthesizer import SEEDED_MODEL

        out.print(f"warning: {escape(SEEDED_MODEL)}")



# ----------------------------------------------------------------- features helper: columns
@app.command("columns")
@friendly_errors
def columns_command(
    path: Path = typer.Argument(
        ..., help="A clinical CSV (only its header is read), or FHIR input (a bundle, NDJSON, "
        "a folder): then the columns the feature spec extracts from it (no data is read)."),
    spec: Path | None = typer.Option(
        None, "--spec", "--schema", help="FHIR: the feature spec (default: the bundled one). "
        "CSV: a schema, to show what a read under it does with each column."),
    write_schema: Path | None = typer.Option(
        None, "--write-schema", help="CSV only: also write a *.schema.json skeleton of the "
        "column names for you to fill in (no value of the data goes into it)."),
    overwrite: bool = typer.Option(False, "--overwrite", metavar="",  # a flag: no <bool>
                                   help="Replace an existing --write-schema file."),
) -> None:
    """List the columns of an input: one line each, tab-separated (name, role, treatment, why).

    For a CSV: a proposed class (key, identifier, quasi-identifier, feature) per header
    column, or with --spec what a read under that schema does with it; --write-schema also
    writes a schema skeleton to fill in.  For FHIR input: the columns the feature spec
    extracts (role, treatment, public domain, source rule), read from the spec alone.
    """
    from fhirsynth.ingest.describe import is_fhir_input

    if is_fhir_input(path):
        _fhir_columns(path, spec, write_schema)
        return
    from fhirsynth.domain import load_spec
    from fhirsynth.ingest.columns import shown_names
    from fhirsynth.ingest.csv import classify_columns, header_treatments, no_key_note
    from fhirsynth.ingest.sources import shown_path
    from fhirsynth.schema_skeleton import read_csv_header, write_skeleton

    header = read_csv_header(path)
    if write_schema is not None:
        write_skeleton(write_schema, header, overwrite=overwrite)
    if spec is None:
        from fhirsynth.ingest.columns import year_column_advice

        classes = classify_columns(header)
        for name, shown in zip(header, shown_names(header), strict=True):
            cls = classes[name]  # a name that looks like a value is shown as "column i"
            reason = cls.reason + (f"; {year_column_advice(name)}" if cls.treatment == "year"
                                   else "")
            why = reason if shown == name or not name.strip() else (
                "its name looks like a value (a number, date, code, phone number or e-mail), "
                "so it is shown by its place; rename it in the file, or declare it in a schema")
            typer.echo(f"{shown}\t{cls.role}\t{cls.treatment}\t{why}")
    else:
        from fhirsynth.evaluate.safe_harbor_spec import spec_findings
        from fhirsynth.ingest.columns import AGE_REASON, BIRTH_YEAR_REASON, UNIT_AGE_REASONS

        schema = load_spec(spec)
        classes, treatments = header_treatments(header, schema)
        findings = spec_findings(schema)
        flagged = {f.column: f for f in findings}
        advice = {AGE_REASON, BIRTH_YEAR_REASON, *UNIT_AGE_REASONS.values()}
        # the columns the pre-check holds to Safe Harbor: what the release outputs
        checked = {c.name for c in schema.columns if c.modelled or c.role == "key"}
        for name, t in treatments.items():
            reason = classes[name].reason
            what = reason.split(":", 1)[0] + ": " if reason in advice else ""
            outputs = [o for o in t.get("output", ()) if o in checked]
            found = next((flagged[o] for o in outputs if o in flagged), None)
            if found is not None:  # the pre-check's own finding, as `run` will refuse it
                reason = (f"{what}`run` refuses this schema: {found.where}: {found.why} "
                          f"(Safe Harbor: {found.kind})")
            elif reason in advice and outputs:
                # the schema outputs it and already bounds or top-codes it: the advice is met
                reason = what + ("within the Safe Harbor limit in this schema (bounded from "
                                 "this year - 89)" if reason == BIRTH_YEAR_REASON else
                                 "within the Safe Harbor limit in this schema (bounded at 89 "
                                 "years, or top-coded)")
            typer.echo(f"{name}\t{t['role']}\t{t['treatment']}\t{reason}")
        for f in findings:  # what `run` would refuse before reading anything
            console.print(f"[yellow]warning:[/] {escape(f.where)}: {escape(f.why)} "
                          f"(Safe Harbor: {f.kind}); `run` refuses this schema; fix: "
                          f"{escape(f.fix)}", soft_wrap=True)
        no_key = no_key_note(shown_path(path.name), schema, classes)
        if no_key:  # what `run` will say: a patient on two rows would count twice
            console.print(f"[yellow]warning:[/] {escape(no_key)}", soft_wrap=True)
    if write_schema is not None:
        console.print(f"schema skeleton written to {write_schema}: decide each column (its "
                      "'fill_in' says how), then delete the 'fill_in' entries; until then "
                      "the schema is refused", soft_wrap=True)


def _fhir_columns(path: Path, spec: Path | None, write_schema: Path | None) -> None:
    from fhirsynth.errors import ConfigError
    from fhirsynth.ingest.describe import describe_spec_columns
    from fhirsynth.ingest.features import default_spec_path, load_feature_spec
    from fhirsynth.ingest.sources import discover

    if write_schema is not None:
        raise ConfigError(
            f"{path} is FHIR input, and --write-schema starts a schema for a clinical CSV. "
            f"FHIR input is read with a feature spec: copy {default_spec_path()}, edit it "
            "(docs/feature-spec.md) and pass it with --spec")
    discover([path])  # a folder without FHIR files is an error; no resource is parsed
    feature_spec = load_feature_spec(spec)
    for column in describe_spec_columns(feature_spec):
        typer.echo(column.line())
    console.print(f"{path} is FHIR input: these are the columns the feature spec "
                  f"{feature_spec.name!r} ({spec or default_spec_path()}) extracts, one row "
                  "per patient, read from the spec alone (no patient data was read). "
                  "`fhirsynth ingest` builds the table; --spec FILE lists another spec.",
                  soft_wrap=True, markup=False)
# ------------------------------------------------------------- end features helper: columns
