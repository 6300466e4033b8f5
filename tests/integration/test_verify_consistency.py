"""`verify` checks the audit record against itself and the release, not only file hashes.

Each tamper below edits one part of a genuine release's audit.json and recomputes
``record_sha256``, so that only the consistency checks can catch it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fhirsynth.cli import app
from fhirsynth.pipeline import RunConfig, run_release
from fhirsynth.report.audit import config_hash, record_digest, verify_release

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures" / "cohort"


def _build(tmp: Path, name: str, delta: float) -> Path:
    cfg = RunConfig(inputs=[FIXTURES], out=tmp / name, epsilon=1.0, delta=delta, seed=11,
                    ledger=tmp / f"{name}.sqlite")
    return run_release(cfg).out


@pytest.fixture(scope="module")
def releases(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("verify")
    return {"laplace": _build(tmp, "laplace", 0.0), "zcdp": _build(tmp, "zcdp", 1e-9)}


def _tampered(src: Path, dest: Path, edit: Callable[[dict], None]) -> Path:
    shutil.copytree(src, dest)
    path = dest / "audit.json"
    rec = json.loads(path.read_text(encoding="utf-8"))
    edit(rec)
    rec["record_sha256"] = record_digest(rec)
    path.write_text(json.dumps(rec, indent=2), encoding="utf-8")
    return dest


def _field_in(field: str, lines: list[str]) -> bool:
    return any(line.startswith(f"{field}:") for line in lines)


@pytest.mark.parametrize("kind", ["laplace", "zcdp"])
def test_genuine_release_verifies_with_every_check(releases, kind):
    out = releases[kind]
    res = verify_release(out)
    assert res.ok, res.inconsistent
    assert res.not_checked == []
    checked = " | ".join(res.consistency_checked)
    assert "config_sha256" in checked and "model.json" in checked
    assert "internal_evaluation_sha256" in checked
    assert ("zCDP" in checked) == (kind == "zcdp")
    assert json.loads((out / "audit.json").read_text())["delta_total"] == \
        (0.0 if kind == "laplace" else 1e-9)
    cli = CliRunner().invoke(app, ["verify", str(out)])
    assert cli.exit_code == 0 and cli.output.startswith("intact:"), cli.output


def test_shared_copy_without_internal_verifies_and_says_what_was_not_checked(releases,
                                                                             tmp_path):
    copy = tmp_path / "shared"
    shutil.copytree(releases["laplace"], copy)
    shutil.rmtree(copy / "internal")
    res = verify_release(copy)
    assert res.ok, res.inconsistent
    assert any("internal_evaluation_sha256" in n for n in res.not_checked)
    cli = CliRunner().invoke(app, ["verify", str(copy)])
    assert cli.exit_code == 0 and "not checked: internal_evaluation_sha256" in cli.output


def _set(path: str, value):
    def edit(rec):
        *head, last = path.split(".")
        obj = rec
        for k in head:
            obj = obj[int(k)] if isinstance(obj, list) else obj[k]
        obj[int(last) if isinstance(obj, list) else last] = value
    return edit


def _move_epsilon(rec, key="epsilon"):
    # shift part of one step to another: the sum (and epsilon_spent) stays the same
    x = rec["steps"][1][key] / 2
    rec["steps"][1][key] -= x
    rec["steps"][2][key] += x


def _all(*edits):
    def edit(rec):
        for e in edits:
            e(rec)
    return edit


def _config(key, value):
    def edit(rec):
        rec["config"][key] = value
        rec["config_sha256"] = config_hash(rec["config"])
    return edit


def _scale(key, factor):
    def edit(rec):
        rec[key] *= factor
    return edit


TAMPERS = [
    # (release, label, edit, field expected in the failure lines)
    ("laplace", "holdout", _set("config.holdout", 0.5),
     "config_sha256"),
    ("laplace", "spec", _set("spec_sha256", "0" * 64), "spec_sha256"),
    ("laplace", "totals", _all(_set("epsilon_total", 0.1), _set("epsilon_spent", 0.1)),
     "epsilon_spent"),
    ("laplace", "spent above total", _all(_set("epsilon_total", 0.5), _config("epsilon", 0.5)),
     "epsilon_spent"),
    ("laplace", "config epsilon", _config("epsilon", 0.1), "config.epsilon"),
    ("laplace", "step epsilon", _move_epsilon, "steps[1].epsilon"),
    ("laplace", "step name", _set("steps.0.name", "nothing measured"), "steps[0].name"),
    ("laplace", "step mechanism", _set("steps.1.mechanism", "none"), "steps[1].mechanism"),
    ("laplace", "delta", _set("delta_spent", 1e-6), "delta_spent"),
    ("laplace", "composition", _set("composition", "parallel composition"), "composition"),
    ("laplace", "internal", _set("evaluation.internal_evaluation_sha256", "0" * 64),
     "evaluation.internal_evaluation_sha256"),
    ("laplace", "source", _set("source_commitment", "1" * 64), "inputs[0].hmac_sha256"),
    ("laplace", "history", _set("ledger_history.epsilon_spent_total", 0.1),
     "ledger_history.epsilon_spent_total"),
    ("laplace", "dataset", _set("dataset", "another cohort"), "dataset"),
    ("laplace", "safe harbor", _set("evaluation.safe_harbor.passed", False),
     "evaluation.safe_harbor.passed"),
    ("zcdp", "rho spent", _scale("rho_spent", 0.5), "rho_spent"),
    ("zcdp", "rho total", _all(_scale("rho_total", 2.0), _scale("rho_spent", 2.0)),
     "rho_total"),
    ("zcdp", "step rho", lambda rec: _move_epsilon(rec, "rho"), "steps[1].rho"),
    ("zcdp", "zcdp delta", _set("delta_spent", 0.0), "delta_spent"),
]


@pytest.mark.parametrize(("kind", "label", "edit", "field"), TAMPERS,
                         ids=[t[1] for t in TAMPERS])
def test_tampered_record_with_a_recomputed_digest_is_caught(releases, tmp_path, kind, label,
                                                            edit, field):
    copy = _tampered(releases[kind], tmp_path / "t", edit)
    res = verify_release(copy)
    assert not res.ok
    assert res.changed == [] and res.missing == [] and res.added == []
    assert _field_in(field, res.inconsistent), res.inconsistent


def test_cli_names_each_failed_check_on_one_line_and_exits_1(releases, tmp_path):
    copy = _tampered(releases["laplace"], tmp_path / "t", _all(
        _set("epsilon_total", 0.1), _set("epsilon_spent", 0.1),
        _set("spec_sha256", "0" * 64), _set("config.holdout", 0.5)))
    cli = CliRunner().invoke(app, ["verify", str(copy)])
    assert cli.exit_code == 1
    lines = [ln for ln in cli.output.splitlines() if ln.startswith("inconsistent: ")]
    for field in ("config_sha256", "spec_sha256", "epsilon_spent", "epsilon_total"):
        assert any(ln.startswith(f"inconsistent: {field}:") for ln in lines), cli.output
    assert "intact" not in cli.output


def _file_entry_updated(rec, copy: Path, rel: str) -> None:
    from fhirsynth.report.audit import file_entry

    for o in rec["outputs"]:
        if o["path"] == rel:
            o.update(file_entry(copy / rel, copy))


def test_forger_who_also_rewrites_model_json_is_caught_by_the_report(releases, tmp_path):
    copy = tmp_path / "t"
    shutil.copytree(releases["laplace"], copy)
    model = json.loads((copy / "model.json").read_text(encoding="utf-8"))
    model["budget"]["epsilon_total"] = 2.0
    (copy / "model.json").write_text(json.dumps(model), encoding="utf-8")

    def edit(rec):
        rec["epsilon_total"] = 2.0
        rec["ledger_history"]["epsilon_spent_total"] = 2.0
        _config("epsilon", 2.0)(rec)
        _file_entry_updated(rec, copy, "model.json")

    path = copy / "audit.json"
    rec = json.loads(path.read_text(encoding="utf-8"))
    edit(rec)
    rec["record_sha256"] = record_digest(rec)
    path.write_text(json.dumps(rec), encoding="utf-8")
    res = verify_release(copy)
    assert not res.ok and res.changed == []
    # everything else agrees: only what report.pdf states gives the forgery away
    # (the old config and model.json hashes printed on the report are no longer in the record)
    assert [ln.split(":", 1)[0] for ln in res.inconsistent] == [
        "epsilon_total", "steps", "config_sha256", "outputs (model.json)", "outputs"], \
        res.inconsistent
    assert res.inconsistent[0] == "epsilon_total: 2 is not the epsilon on report.pdf's title page"


def test_replaced_synthetic_table_with_a_recomputed_hash_is_caught(releases, tmp_path):
    copy = tmp_path / "t"
    shutil.copytree(releases["laplace"], copy)
    csv = copy / "synthetic" / "patients.csv"
    lines = csv.read_text(encoding="utf-8").splitlines(keepends=True)
    csv.write_text("".join(lines[: len(lines) // 2]), encoding="utf-8")
    path = copy / "audit.json"
    rec = json.loads(path.read_text(encoding="utf-8"))
    _file_entry_updated(rec, copy, "synthetic/patients.csv")
    rec["record_sha256"] = record_digest(rec)
    path.write_text(json.dumps(rec), encoding="utf-8")
    res = verify_release(copy)
    assert not res.ok and res.changed == []
    assert _field_in("evaluation.synthetic_statistics", res.inconsistent), res.inconsistent
    assert any("differs from synthetic/patients.csv" in ln for ln in res.inconsistent)


def test_edited_synthetic_statistics_are_caught(releases, tmp_path):
    def edit(rec):
        entry = rec["evaluation"]["synthetic_statistics"][0]
        entry["shares"][0] += 0.5
    copy = _tampered(releases["laplace"], tmp_path / "t", edit)
    res = verify_release(copy)
    assert not res.ok
    assert _field_in("evaluation.synthetic_statistics", res.inconsistent), res.inconsistent


def test_without_pypdf_the_report_is_not_checked_but_named(releases, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pypdf", None)
    res = verify_release(releases["laplace"])
    assert res.ok, res.inconsistent
    assert any("report.pdf" in n and "pypdf" in n for n in res.not_checked)


HOSTILE_FIELDS = ["schema", "config", "config_sha256", "steps", "steps.0", "steps.1.rho",
                  "steps.1.epsilon", "epsilon_total", "epsilon_spent", "delta_total",
                  "delta_spent", "rho_total", "rho_spent", "composition", "spec_sha256",
                  "dataset", "run_id", "inputs", "source_commitment", "ledger_history",
                  "ledger_history.releases", "evaluation", "evaluation.safe_harbor",
                  "evaluation.synthetic_statistics", "evaluation.internal_evaluation_sha256",
                  "config.epsilon"]


#: may be absent or null in a record built by the library; never of another type
OPTIONAL = {"inputs", "source_commitment", "ledger_history", "evaluation",
            "evaluation.safe_harbor", "evaluation.synthetic_statistics",
            "evaluation.internal_evaluation_sha256"}


@pytest.mark.parametrize("field", HOSTILE_FIELDS)
def test_a_field_of_the_wrong_type_is_a_failed_check_not_a_crash(releases, tmp_path, field):
    copy = tmp_path / "t"
    shutil.copytree(releases["zcdp"], copy)
    path = copy / "audit.json"
    genuine = path.read_text(encoding="utf-8")
    optional = field in OPTIONAL
    for value in ("x" * 500, [1], *(() if optional else (None,))):
        rec = json.loads(genuine)
        _set(field, value)(rec)
        rec["record_sha256"] = record_digest(rec)
        path.write_text(json.dumps(rec), encoding="utf-8")
        res = verify_release(copy)
        assert not res.ok, (field, value)
        assert res.changed == [], res.changed
        assert all(len(line) < 300 for line in res.inconsistent), res.inconsistent


def test_a_consistent_but_invented_safe_harbor_verdict_disagrees_with_the_report(releases,
                                                                                  tmp_path):
    def edit(rec):
        sh = rec["evaluation"]["safe_harbor"]
        sh["passed"] = False
        sh["findings"] = [{"kind": "phone", "location": "patients.csv", "field": "x",
                           "count": 1, "rule": "r"}]
    copy = _tampered(releases["laplace"], tmp_path / "t", edit)
    res = verify_release(copy)
    assert res.inconsistent == ["evaluation.safe_harbor: report.pdf does not say "
                                "'1 finding(s), see below'"]


def test_a_truncated_report_is_named_once_without_pypdf_chatter(releases, tmp_path):
    # a trial: verify printed pypdf's own "EOF marker not found" before its verdict
    copy = tmp_path / "cut"
    shutil.copytree(releases["laplace"], copy)
    pdf = copy / "report.pdf"
    pdf.write_bytes(pdf.read_bytes()[: pdf.stat().st_size // 2])
    path = copy / "audit.json"
    rec = json.loads(path.read_text(encoding="utf-8"))
    _file_entry_updated(rec, copy, "report.pdf")
    rec["record_sha256"] = record_digest(rec)
    path.write_text(json.dumps(rec, indent=2), encoding="utf-8")
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "fhirsynth", "verify", str(copy)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "report.pdf: not a readable PDF" in proc.stdout + proc.stderr
    assert "EOF marker" not in proc.stdout + proc.stderr


def test_an_output_removed_from_folder_and_record_is_caught_by_the_report(releases, tmp_path):
    # a trial removed synthetic/fhir/Encounter.ndjson from the folder and from `outputs`,
    # recomputed the digest, and verify said intact; report.pdf still prints its hash
    def drop(rec):
        rec["outputs"] = [o for o in rec["outputs"]
                          if o["path"] != "synthetic/fhir/Encounter.ndjson"]
    copy = _tampered(releases["laplace"], tmp_path / "t", drop)
    (copy / "synthetic" / "fhir" / "Encounter.ndjson").unlink()
    res = verify_release(copy)
    assert not res.ok
    assert any(line.startswith("outputs: report.pdf prints 1 hash(es)")
               for line in res.inconsistent), res.inconsistent


#: the subject of each consistency check, as the checked and not-checked lines name it
_SUBJECTS = ("config_sha256", "steps add up", "hmac_sha256", "ledger_history",
             "Safe Harbor verdict", "spec_sha256", "evaluation.synthetic_statistics",
             "report.pdf", "internal_evaluation_sha256")


@pytest.mark.parametrize("given", [["synthetic/patients.csv"], ["model.json"],
                                   ["model.json", "synthetic/patients.csv"]])
def test_partial_reports_every_check_as_checked_or_not_checked(releases, tmp_path, given):
    # a trial gave audit.json and synthetic/patients.csv alone: the synthetic statistics
    # appeared in neither list
    full = verify_release(releases["laplace"])
    assert all(any(s in line for line in full.consistency_checked) for s in _SUBJECTS)
    part = tmp_path / "part"
    for rel in ["audit.json", *given]:
        (part / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(releases["laplace"] / rel, part / rel)
    res = verify_release(part, partial=True)
    assert res.ok, res.inconsistent
    for subject in _SUBJECTS:
        said = [line for line in res.consistency_checked + res.not_checked if subject in line]
        assert said, f"{subject} is neither checked nor named as not checked"
    both = {"model.json", "synthetic/patients.csv"} <= set(given)  # the spec and a table
    stats = res.consistency_checked if both else res.not_checked
    assert any(line.startswith("evaluation.synthetic_statistics") for line in stats)


def test_internal_folder_is_named_as_custodian_only_and_fails_a_shareable_check(releases,
                                                                                  tmp_path):
    out = releases["laplace"]
    internal = sorted(p.relative_to(out).as_posix() for p in (out / "internal").rglob("*")
                      if p.is_file())
    assert internal
    res = verify_release(out)
    assert res.ok and res.internal == internal and res.internal_present
    cli = CliRunner().invoke(app, ["verify", str(out)])
    assert cli.exit_code == 0, cli.output
    warning = [line for line in cli.output.splitlines()
               if line.startswith("warning: internal/ is present")]
    assert len(warning) == 1, cli.output
    assert all(name in warning[0] for name in internal)
    assert "custodian-only" in warning[0] and "remove internal/ before sharing" in warning[0]
    strict = CliRunner().invoke(app, ["verify", "--shareable", str(out)])
    assert strict.exit_code == 1 and "NOT SHAREABLE: it holds internal/" in strict.output
    # an empty internal/ is still a folder that must not travel
    copy = tmp_path / "empty-internal"
    shutil.copytree(out, copy)
    shutil.rmtree(copy / "internal")
    (copy / "internal").mkdir()
    assert CliRunner().invoke(app, ["verify", "--shareable", str(copy)]).exit_code == 1


def test_shareable_check_passes_a_shared_copy_and_refuses_a_test_release(releases,
                                                                         tmp_path):
    cfg = RunConfig(inputs=[FIXTURES], out=tmp_path / "os-noise", epsilon=1.0, delta=0.0,
                    ledger=tmp_path / "os-noise.sqlite")
    out = run_release(cfg).out
    shutil.rmtree(out / "internal")
    cli = CliRunner().invoke(app, ["verify", "--shareable", str(out)])
    assert cli.exit_code == 0 and "shareable: no internal/ folder" in cli.output, cli.output
    assert "warning: internal/" not in cli.output
    seeded = tmp_path / "seeded"
    shutil.copytree(releases["laplace"], seeded)
    shutil.rmtree(seeded / "internal")
    cli = CliRunner().invoke(app, ["verify", "--shareable", str(seeded)])
    assert cli.exit_code == 1 and "NOT SHAREABLE: a test release" in cli.output
    # a file the record does not list fails as before, shareable or not
    (out / "notes.txt").write_text("x", encoding="utf-8")
    cli = CliRunner().invoke(app, ["verify", "--shareable", str(out)])
    assert cli.exit_code == 1 and "added: notes.txt" in cli.output


def test_safe_harbor_record_names_every_shipped_file_scanned_or_why_not(releases):
    out = releases["laplace"]
    rec = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    sh = rec["evaluation"]["safe_harbor"]
    shipped = {o["path"] for o in rec["outputs"]}
    assert set(sh["scanned"]) | set(sh["not_scanned"]) == shipped
    assert not set(sh["scanned"]) & set(sh["not_scanned"])
    assert {"synthetic/patients.csv", "synthetic/patients.parquet"} <= set(sh["scanned"])
    assert {"model.json", "README.md", "report.pdf"} == set(sh["not_scanned"])
    assert [k["letter"] for k in sh["identifiers"]] == list("ABCDEFGHIJKLMNOPQR")


def test_partial_copy_says_model_json_is_not_given_rather_than_not_in_the_release(releases,
                                                                                   tmp_path):
    copy = tmp_path / "partner"
    (copy / "synthetic").mkdir(parents=True)
    shutil.copy(releases["laplace"] / "audit.json", copy)
    shutil.copy(releases["laplace"] / "synthetic" / "patients.csv", copy / "synthetic")
    cli = CliRunner().invoke(app, ["verify", "--partial", str(copy)])
    assert cli.exit_code == 0, cli.output
    assert "against model.json (not given)" in cli.output
    assert "model.json, which is not given)" in cli.output
    assert "not in the release" not in cli.output
    assert "not given (--partial, not checked): model.json" in cli.output


def _shared_copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    shutil.rmtree(dest / "internal")
    return dest


def test_a_symbolic_link_to_a_folder_or_file_is_not_part_of_the_release(releases, tmp_path):
    # trial 26: `ln -s /raw/data release/source` passed `verify --shareable` (rglob does not
    # enter a linked folder, and the link itself is not a file)
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "patients.csv").write_text("x\n", encoding="utf-8")
    copy = _shared_copy(releases["laplace"], tmp_path / "linked")
    (copy / "source").symlink_to(raw, target_is_directory=True)
    (copy / "synthetic" / "notes.csv").symlink_to(raw / "patients.csv")
    res = verify_release(copy)
    assert not res.ok
    assert res.added == ["source (a symbolic link)", "synthetic/notes.csv (a symbolic link)"]
    cli = CliRunner().invoke(app, ["verify", "--shareable", str(copy)])
    assert cli.exit_code == 1 and "added: source (a symbolic link)" in cli.output
    assert "TAMPERED" in cli.output and "shareable:" not in cli.output


def test_a_listed_folder_replaced_by_a_link_to_identical_files_is_not_intact(releases,
                                                                            tmp_path):
    copy = _shared_copy(releases["laplace"], tmp_path / "relinked")
    shutil.move(copy / "synthetic", tmp_path / "elsewhere")
    (copy / "synthetic").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    res = verify_release(copy)
    assert not res.ok and "synthetic (a symbolic link)" in res.added
    assert "synthetic/patients.csv" in res.missing


def test_internal_in_another_letter_case_is_still_custodian_only(releases, tmp_path):
    # a link named Internal to the release's internal/ passed; so would a copy spelt Internal
    linked = _shared_copy(releases["laplace"], tmp_path / "link")
    (linked / "Internal").symlink_to(releases["laplace"] / "internal",
                                     target_is_directory=True)
    res = verify_release(linked)
    assert "Internal (a symbolic link)" in res.added and not res.ok
    renamed = tmp_path / "renamed"
    shutil.copytree(releases["laplace"], renamed)
    (renamed / "internal").rename(renamed / "Internal")
    res = verify_release(renamed)
    assert res.internal_present and res.internal and not res.added
    assert all(f.startswith("Internal/") for f in res.internal)
    cli = CliRunner().invoke(app, ["verify", "--shareable", str(renamed)])
    assert cli.exit_code == 1 and "NOT SHAREABLE: it holds internal/" in cli.output
