"""FHIR from a saved model: the model keeps its spec's FHIR rules, `sample --fhir` writes them.

A trial found that ``write_fhir(df, Synthesizer.load(...).model.spec, ...)`` wrote Patients
with nothing in them: the saved spec had lost its source rules.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fhirsynth.cli import app
from fhirsynth.domain import TableSpec
from fhirsynth.encode import decode
from fhirsynth.errors import ConfigError
from fhirsynth.export.fhir import write_fhir
from fhirsynth.ingest.features import load_feature_spec
from fhirsynth.synthesizer import Synthesizer

runner = CliRunner()


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    spec = load_feature_spec()
    rng = np.random.default_rng(5)
    cols = spec.modelled
    codes = np.column_stack([rng.integers(0, c.n_states, 400) for c in cols])
    df = decode(spec, [c.name for c in cols], codes, rng)
    path = tmp_path_factory.mktemp("model") / "model.json"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Synthesizer(spec, epsilon=1.0, random_state=1).fit(df).save(path)
    return path


def _types(folder: Path) -> set[str]:
    return {p.stem for p in folder.glob("*.ndjson")}


def test_a_loaded_model_writes_the_same_kinds_of_resource_as_the_feature_spec(
        model_path, tmp_path) -> None:
    s = Synthesizer.load(model_path)
    assert s.model.spec.has_fhir_rules
    df = s.sample(40, evidence=["age>=60"], random_state=2, release=True)
    a = write_fhir(df, s.model.spec, tmp_path / "a", rng_or_seed=3)
    b = write_fhir(df, load_feature_spec(), tmp_path / "b", rng_or_seed=3)
    assert set(a) == set(b) >= {"Patient", "Condition", "Observation", "Encounter"}
    for rtype in a:
        assert a[rtype].read_text() == b[rtype].read_text()
    patients = [json.loads(x) for x in a["Patient"].read_text().splitlines()]
    assert sum("gender" in p for p in patients) == df["gender"].notna().sum() > 0
    # the rules are public configuration: the spec's fingerprint is unchanged by them
    assert s.model.spec.fingerprint() == load_feature_spec().fingerprint()


def test_a_spec_without_fhir_rules_is_refused(model_path, tmp_path) -> None:
    s = Synthesizer.load(model_path)
    df = s.sample(5, random_state=2, release=True)
    bare = TableSpec.from_dict(s.model.spec.to_dict())  # the public description only
    with pytest.raises(ConfigError, match="has no FHIR source rules.*load_feature_spec"):
        write_fhir(df, bare, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_cli_sample_writes_conditional_patients_as_fhir(model_path, tmp_path) -> None:
    out, fhir, bundles = tmp_path / "s.csv", tmp_path / "fhir", tmp_path / "b.ndjson"
    r = runner.invoke(app, ["sample", str(model_path), "-n", "30", "--where", "age>=60",
                            "--out", str(out), "--fhir", str(fhir), "--fhir-bundles",
                            str(bundles)])
    assert r.exit_code == 0, r.output
    assert _types(fhir) >= {"Patient", "Condition", "Observation"}
    assert len((fhir / "Patient.ndjson").read_text().splitlines()) == 30
    assert len(bundles.read_text().splitlines()) == 30
    births = [int(json.loads(x)["birthDate"][:4])
              for x in (fhir / "Patient.ndjson").read_text().splitlines()
              if "birthDate" in json.loads(x)]
    reference_year = int(load_feature_spec().reference_date[:4])
    assert births and max(births) <= reference_year - 60
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries
    # an earlier sample's folder is replaced only with --overwrite
    again = ["sample", str(model_path), "-n", "5", "--out", str(tmp_path / "t.csv"),
             "--fhir", str(fhir)]
    r = runner.invoke(app, again)
    assert r.exit_code == 2 and "not empty" in r.output
    r = runner.invoke(app, [*again, "--overwrite"])
    assert r.exit_code == 0, r.output
    assert len((fhir / "Patient.ndjson").read_text().splitlines()) == 5


def test_cli_sample_fhir_refusals_write_nothing(model_path, tmp_path) -> None:
    out = tmp_path / "s.csv"
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "notes.txt").write_text("x")
    cases = [
        (["--fhir-bundles", str(tmp_path / "b.ndjson")], "needs --fhir"),
        (["--fhir", str(tmp_path / "keep"), "--overwrite"], "holds more than"),
        (["--fhir", str(tmp_path / "f"), "--fhir-bundles", str(tmp_path / "f" / "b.ndjson")],
         "outside the --fhir folder"),
    ]
    for extra, msg in cases:
        r = runner.invoke(app, ["sample", str(model_path), "-n", "5", "--out", str(out),
                                *extra])
        assert r.exit_code == 2 and msg in r.output, r.output
        assert not out.exists() and not (tmp_path / "f").exists()
    assert (tmp_path / "keep" / "notes.txt").read_text() == "x"


def test_rows_without_the_derived_birth_year_are_warned_about(model_path, tmp_path) -> None:
    # a trial passed Synthesizer.sample(n) rows (no birth_year): every birthDate went missing
    s = Synthesizer.load(model_path)
    with pytest.warns(UserWarning, match="lack the derived column.*birth_year.*release=True"):
        write_fhir(s.sample(10, random_state=1), s.model.spec, tmp_path / "x")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_fhir(s.sample(10, random_state=1, release=True), s.model.spec, tmp_path / "y")
