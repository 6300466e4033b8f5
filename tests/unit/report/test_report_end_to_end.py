"""End to end: write_reports on a small table with Unicode names and canary identifiers."""

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fhirsynth.cli import app
from fhirsynth.domain import Column, TableSpec
from fhirsynth.privacy.budget import Accountant, PrivacyBudget, Step
from fhirsynth.report import verify_release, write_reports

pypdf = pytest.importorskip("pypdf")

SEED_VALUE = 987654321
CANARIES = [f"CANARY{i:04d}QX" for i in range(40)]

SPEC = TableSpec(
    name="klinik",
    target="outcome",
    positive="1",
    columns=(
        Column(name="name", role="identifier"),
        Column(name="sex", categories=("female", "male"), nullable=False),
        Column(name="Größe_cm", kind="numeric", bounds=(100, 220), nullable=True, unit="cm"),
        Column(name="体重", kind="numeric", bounds=(30, 200), integer=True, nullable=False),
        Column(name="smoker", categories=("no", "yes", "早期"), nullable=False),
        Column(name="outcome", categories=("0", "1"), nullable=False, role="target"),
    ),
)


def _real(n, rng):
    height = rng.normal(170, 10, n).round(1)
    height[rng.random(n) < 0.1] = np.nan
    smoker = rng.choice(["no", "yes", "早期"], n)
    outcome = np.where(rng.random(n) < np.where(smoker == "yes", 0.6, 0.2), "1", "0")
    return pd.DataFrame({
        "name": [CANARIES[i % len(CANARIES)] for i in range(n)],
        "sex": rng.choice(["female", "male"], n), "Größe_cm": height,
        "体重": rng.integers(45, 120, n), "smoker": smoker, "outcome": outcome,
    })


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    rng = np.random.default_rng(5)
    real = _real(500, rng)
    train, hold = real.iloc[:350].reset_index(drop=True), real.iloc[350:].reset_index(drop=True)
    modelled = [c.name for c in SPEC.modelled]
    synth = pd.DataFrame({c: train[c].sample(400, replace=True, random_state=i).to_numpy()
                          for i, c in enumerate(modelled)})
    acc = Accountant(PrivacyBudget(epsilon=1.0, delta=1e-6))
    acc.spend(Step(name="structure", mechanism="Exponential", epsilon=0.3, sensitivity=1.0))
    for c in modelled:
        acc.spend(Step(name=f"marginal {c}", mechanism="Laplace", epsilon=0.7 / len(modelled),
                       sensitivity=2.0))
    out = tmp_path_factory.mktemp("release")
    synth.to_csv(out / "synthetic.csv", index=False)
    src = out.parent / "input.csv"
    real.to_csv(src, index=False)
    paths = write_reports(
        out, spec=SPEC, real_train=train, real_holdout=hold, synthetic=synth,
        budget_table=acc.table(), config={"epsilon": 1.0, "seed": SEED_VALUE,
                                          "learn": {"random_state": SEED_VALUE, "degree": 2}},
        inputs=[src], outputs=["synthetic.csv"], dataset="Klinik\u202eNord\u2066",
        import_report={"patients": 500, "rejected rows": 0},
        model_summary={"released_marginals": [{"columns": ["sex"], "values": [0.52, 0.48]}]},
    )
    return out, paths, acc


def _text(path):
    reader = pypdf.PdfReader(str(path))
    return [p.extract_text() for p in reader.pages]


def test_shareable_report_has_the_sections_and_unicode(release):
    _, paths, _ = release
    pages = _text(paths.report)
    assert len(pages) > 1
    text = "\n".join(pages)
    for heading in ("Summary", "The privacy guarantee", "Public facts",
                    "The synthetic data's own statistics", "Fidelity against released",
                    "Limitations", "Appendix: configuration", "Unit of privacy"):
        assert heading in text, heading
    assert "ε = 1" in text and "Größe_cm" in text
    assert "\u202e" not in text and "\u2066" not in text and "KlinikNord" in text
    assert "page 1 of" in pages[0]


def test_shareable_report_holds_no_identifier_no_seed_no_real_data(release):
    out, paths, _ = release
    raw = paths.report.read_bytes()
    text = "\n".join(_text(paths.report))
    audit = (out / "audit.json").read_text(encoding="utf-8")
    for canary in CANARIES:
        assert canary not in text and canary.encode() not in raw and canary not in audit
    assert str(SEED_VALUE) not in text and str(SEED_VALUE) not in audit
    assert "seed" not in audit and "random_state" not in audit
    assert "CUSTODIAN ONLY" not in text
    assert "TSTR" not in text and "membership-inference" not in text.lower()


def test_internal_report_is_marked_on_every_page(release):
    _, paths, _ = release
    pages = _text(paths.validation)
    assert len(pages) > 1
    assert all("CUSTODIAN ONLY — contains statistics of the real data" in p for p in pages)
    text = "\n".join(pages)
    for heading in ("Total variation distance", "Machine-learning utility", "Privacy-risk tests",
                    "Associations", "Subgroup fidelity", "Safe Harbor scan", "Import report"):
        assert heading in text, heading


def test_audit_record(release):
    out, paths, acc = release
    rec = json.loads(paths.audit.read_text(encoding="utf-8"))
    assert rec["epsilon_total"] == 1.0 and rec["delta_total"] == 1e-6
    assert [s["name"] for s in rec["steps"]] == [s.name for s in acc.steps]
    assert sum(s["epsilon"] for s in rec["steps"]) == pytest.approx(1.0)
    assert set(rec["steps"][0]) >= {"name", "mechanism", "epsilon", "delta", "sensitivity"}
    outs = {o["path"]: o for o in rec["outputs"]}
    assert set(outs) == {"synthetic.csv", "report.pdf", "README.md"}
    data = (out / "synthetic.csv").read_bytes()
    assert outs["synthetic.csv"] == {"path": "synthetic.csv", "bytes": len(data),
                                     "sha256": hashlib.sha256(data).hexdigest()}
    assert rec["inputs"] == [{"path": "all inputs (keyed commitment; its key stays in "
                                      "internal/)",
                             "hmac_sha256": rec["source_commitment"]}]
    assert "input.csv" not in paths.audit.read_text(encoding="utf-8")
    assert rec["spec_sha256"] == SPEC.fingerprint()
    assert {"python", "fhirsynth", "numpy", "pandas", "pgmpy", "diffprivlib", "fhir.resources",
            "scikit-learn", "reportlab"} <= set(rec["software"])
    assert rec["config"] == {"epsilon": 1.0, "learn": {"degree": 2}}
    assert rec["evaluation"]["safe_harbor"]["passed"] is True
    assert "fidelity" not in rec["evaluation"] and "privacy" not in rec["evaluation"]


def test_the_input_is_recorded_only_as_a_keyed_commitment(release, tmp_path):
    # trial 11: the plain fingerprint of the input in audit.json and report.pdf let whoever
    # held every row but one recover that row by trying candidates (8 s on stroke)
    import hmac

    from fhirsynth.privacy.ledger import source_fingerprint

    out, paths, _ = release
    src = out.parent / "input.csv"
    plain = source_fingerprint([src])
    shared = paths.audit.read_text(encoding="utf-8") + "\n".join(_text(paths.report))
    assert plain not in shared
    key = bytes.fromhex(json.loads((out / "internal" / "input-commitment.json")
                                   .read_text(encoding="utf-8"))["key"])
    assert len(key) == 32
    rec = json.loads(paths.audit.read_text(encoding="utf-8"))
    assert rec["source_commitment"] == hmac.new(key, plain.encode(), hashlib.sha256).hexdigest()
    assert rec["source_commitment"] in "".join(_text(paths.report)).replace("\n", "")
    assert "source_fingerprint" not in rec
    # the same data again: another key, another commitment, another evaluation hash (the
    # internal evaluation of a rebuilt report was byte-identical, its hash a data function)
    rng = np.random.default_rng(5)
    real = _real(500, rng)
    train, hold = real.iloc[:350].reset_index(drop=True), real.iloc[350:].reset_index(drop=True)
    synth = pd.read_csv(out / "synthetic.csv")
    again = tmp_path / "again"
    again.mkdir()
    synth.to_csv(again / "synthetic.csv", index=False)
    acc = Accountant(PrivacyBudget(epsilon=1.0))
    acc.spend(Step(name="all", mechanism="Laplace", epsilon=1.0, sensitivity=1.0))
    second = write_reports(again, spec=SPEC, real_train=train, real_holdout=hold,
                           synthetic=synth, budget_table=acc.table(), inputs=[src],
                           outputs=["synthetic.csv"])
    rec2 = json.loads(second.audit.read_text(encoding="utf-8"))
    assert rec2["source_commitment"] != rec["source_commitment"]
    assert (rec2["evaluation"]["internal_evaluation_sha256"]
            != rec["evaluation"]["internal_evaluation_sha256"])


def test_verify_intact_then_tampered(release, tmp_path):
    import shutil

    out, _, _ = release
    copy = tmp_path / "rel"
    shutil.copytree(out, copy)
    assert verify_release(copy).ok
    runner = CliRunner()
    assert runner.invoke(app, ["verify", str(copy)]).exit_code == 0
    (copy / "synthetic.csv").write_text("sex\nfemale\n", encoding="utf-8")
    (copy / "extra.csv").write_text("x\n", encoding="utf-8")
    (copy / "report.pdf").unlink()
    (copy / "internal" / "notes.txt").write_text("custodian notes", encoding="utf-8")
    res = verify_release(copy)
    assert (res.changed, res.missing, res.added) == (["synthetic.csv"], ["report.pdf"],
                                                     ["extra.csv"])
    cli = runner.invoke(app, ["verify", str(copy)])
    assert cli.exit_code == 1 and "changed: synthetic.csv" in cli.output


def test_verify_detects_an_edited_audit_record(release, tmp_path):
    import shutil

    out, _, _ = release
    copy = tmp_path / "rel"
    shutil.copytree(out, copy)
    rec = json.loads((copy / "audit.json").read_text(encoding="utf-8"))
    rec["epsilon_total"] = 0.1
    (copy / "audit.json").write_text(json.dumps(rec), encoding="utf-8")
    assert verify_release(copy).changed == ["audit.json"]


def test_verify_without_audit_is_a_clear_error(tmp_path):
    res = CliRunner().invoke(app, ["verify", str(tmp_path)])
    assert res.exit_code == 2 and "no audit.json" in res.output


def test_verify_of_a_missing_or_file_path_says_so(tmp_path):
    res = CliRunner().invoke(app, ["verify", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "release directory not found" in res.output
    f = tmp_path / "f.txt"
    f.write_text("x")
    res = CliRunner().invoke(app, ["verify", str(f)])
    assert res.exit_code == 2 and "not a directory" in res.output


def test_fidelity_noise_table_lists_every_column_beyond_the_figures_twelve() -> None:
    # a trial: the noise table showed 12 of 49 columns without saying so
    from types import SimpleNamespace

    from fhirsynth.report.pdf import Styles
    from fhirsynth.report.shareable import _fidelity

    names = [f"c{i:02d}" for i in range(20)]
    ctx = SimpleNamespace(
        model_summary={"n_patients_noisy": 500, "released_marginals": [
            {"columns": [c], "values": [0.5, 0.5]} for c in names]},
        synthetic_stats=[{"column": c, "states": ["a", "b"], "shares": [0.4, 0.6]}
                         for c in names],
        budget_table={"steps": [{"name": f"marginal {c}", "epsilon": 0.05} for c in names]},
        spec=TableSpec(name="t", columns=tuple(Column(name=c, categories=("a", "b"))
                                               for c in names)))
    flow = _fidelity(ctx, Styles())
    texts = [f.getPlainText() for f in flow if hasattr(f, "getPlainText")]
    assert any("the first 12 of 20 columns" in t for t in texts)
    (tab,) = [f for f in flow if type(f).__name__ == "Table"]
    listed = [row[0].getPlainText() for row in tab._cellvalues[1:]]
    assert listed == names


def test_safe_harbor_scan_is_shown_per_identifier_with_the_files_it_read(release):
    out, paths, _ = release
    sh = json.loads(paths.audit.read_text(encoding="utf-8"))["evaluation"]["safe_harbor"]
    kinds = sh["identifiers"]
    assert [k["letter"] for k in kinds] == list("ABCDEFGHIJKLMNOPQR")
    assert sorted(x for k in kinds for x in k["kinds"]) == sorted(sh["kinds_checked"])
    assert all(k["findings"] == 0 and k["checked"] for k in kinds)
    assert sh["scanned"] == ["synthetic.csv"]
    assert set(sh["not_scanned"]) == {"README.md", "report.pdf"}
    text = " ".join(" ".join(_text(paths.report)).split())
    assert "Safe Harbor scan of the output, per identifier" in text
    for k in kinds:
        assert " ".join(k["identifier"].split()) in text, k["identifier"]
    assert "Files scanned: synthetic.csv. Not scanned: README.md (" in text
    assert "TSTR" not in text
