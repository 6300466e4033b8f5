"""``fhirsynth report`` refuses a schema, real table or synthetic table of another model."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fhirsynth.cli import app
from fhirsynth.domain import TableSpec
from fhirsynth.errors import ConfigError, InputError
from fhirsynth.pipeline import check_report_inputs
from fhirsynth.synthesizer import Synthesizer

runner = CliRunner()

SCHEMA = {"name": "mine", "columns": {
    "sex": {"type": "categorical", "domain": ["f", "m"], "nullable": False},
    "smoker": {"type": "categorical", "domain": ["no", "yes"], "nullable": False},
    "age": {"type": "numeric", "bounds": [0, 100], "integer": True, "nullable": False}}}
OTHER = {"name": "other", "columns": {
    "sex": {"type": "categorical", "domain": ["f", "m"], "nullable": False},
    "income": {"type": "categorical", "domain": ["<=50K", ">50K"], "nullable": False}}}


def _spec(d: dict) -> TableSpec:
    return TableSpec.from_dict(d)


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("rep")
    rng = np.random.default_rng(0)
    n = 200
    real = pd.DataFrame({"sex": rng.choice(["f", "m"], n), "smoker": rng.choice(["no", "yes"], n),
                         "age": rng.integers(0, 100, n)})
    real.to_csv(tmp / "mine.csv", index=False)
    (tmp / "mine.schema.json").write_text(json.dumps(SCHEMA), encoding="utf-8")
    other = pd.DataFrame({"sex": rng.choice(["f", "m"], n),
                          "income": rng.choice(["<=50K", ">50K"], n)})
    other.to_csv(tmp / "other.csv", index=False)
    (tmp / "other.schema.json").write_text(json.dumps(OTHER), encoding="utf-8")
    synth = Synthesizer(_spec(SCHEMA), epsilon=1.0, random_state=1)
    synth.fit(pd.read_csv(tmp / "mine.csv", dtype={"sex": "string", "smoker": "string"}))
    synth.save(tmp / "model.json")
    synth.sample(100, random_state=2).to_csv(tmp / "synthetic.csv", index=False)
    return tmp


def _report(tmp: Path, out: Path, real: str, schema: str, synthetic: str = "synthetic.csv"):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        result = runner.invoke(app, ["report", str(tmp / "model.json"), str(tmp / synthetic),
                                     "--real", str(tmp / real), "--schema", str(tmp / schema),
                                     "--out", str(out)])
    text = " ".join(result.output.split())
    assert "Traceback" not in text and "internal error" not in text, text
    return result.exit_code, text


def test_schema_and_real_data_of_another_dataset_are_refused(release, tmp_path):
    code, text = _report(release, tmp_path / "o", "other.csv", "other.schema.json")
    assert code == 2, text
    assert "does not match the model ('mine')" in text
    assert "smoker, age are not modelled by it" in text and "it models income" in text
    assert "Mean of empty slice" not in text
    # the one warning: a model outside a release folder cannot be checked against its input
    assert text.lower().count("warning") == 1 and "not in a release folder" in text
    assert not (tmp_path / "o").exists()


def test_synthetic_table_without_the_models_columns_is_refused(release, tmp_path):
    pd.read_csv(release / "synthetic.csv").drop(columns=["smoker"]).to_csv(
        release / "partial.csv", index=False)
    code, text = _report(release, tmp_path / "o", "mine.csv", "mine.schema.json",
                         synthetic="partial.csv")
    assert code == 2, text
    assert "partial.csv: the synthetic table lacks the model's column(s) smoker" in text
    assert not (tmp_path / "o").exists()


def test_matching_inputs_still_give_the_reports(release, tmp_path):
    code, text = _report(release, tmp_path / "o", "mine.csv", "mine.schema.json")
    assert code == 0, text
    audit = json.loads((tmp_path / "o" / "audit.json").read_text(encoding="utf-8"))
    assert audit["dataset"] == "mine"


def test_check_names_kinds_that_differ():
    changed = json.loads(json.dumps(SCHEMA))
    changed["columns"]["age"] = {"type": "categorical", "domain": ["young", "old"]}
    with pytest.raises(ConfigError, match=r"other kinds: age \(categorical, the model has "
                                          r"numeric\)"):
        check_report_inputs(_spec(SCHEMA), _spec(changed), ["sex", "smoker", "age"])
    # columns the schema does not model (dropped, identifiers) do not matter
    extra = json.loads(json.dumps(SCHEMA))
    extra["columns"]["mrn"] = {"role": "identifier"}
    check_report_inputs(_spec(SCHEMA), _spec(extra), ["sex", "smoker", "age"])
    with pytest.raises(InputError, match="lacks the model's column"):
        check_report_inputs(_spec(SCHEMA), _spec(SCHEMA), ["sex", "age"])


def test_report_source_check_refuses_other_fhir_and_warns_for_a_csv(tmp_path) -> None:
    from fhirsynth.errors import ConfigError
    from fhirsynth.pipeline import _check_report_source
    from fhirsynth.privacy.ledger import source_fingerprint

    rel = tmp_path / "rel"
    rel.mkdir()
    (rel / "audit.json").write_text(json.dumps({"source_fingerprint": "0" * 64}))
    cohort = Path(__file__).resolve().parents[3] / "fixtures" / "cohort"
    with pytest.raises(ConfigError, match="--real is not the input of the release rel"):
        _check_report_source(rel / "model.json", [cohort], source_fingerprint([cohort]))
    table = tmp_path / "t.csv"
    table.write_text("a,b\n1,2\n")
    with pytest.warns(UserWarning, match="fhirsynth ingest"):
        _check_report_source(rel / "model.json", [table], source_fingerprint([table]))
    # no audit.json beside the model: nothing to check, and the custodian is told so
    # (trial 13: a model copied out of its release took any --real without a word)
    with pytest.warns(UserWarning, match="not in a release folder"):
        _check_report_source(tmp_path / "model.json", [cohort], "1" * 64)


def test_report_source_check_reads_the_keyed_commitment(tmp_path) -> None:
    from fhirsynth.errors import ConfigError
    from fhirsynth.pipeline import _check_report_source
    from fhirsynth.privacy.ledger import source_fingerprint
    from fhirsynth.report.release import COMMITMENT_NAME, input_commitment

    cohort = Path(__file__).resolve().parents[3] / "fixtures" / "cohort"
    fp = source_fingerprint([cohort])
    key = bytes(range(32))
    rel = tmp_path / "rel"
    (rel / "internal").mkdir(parents=True)
    (rel / COMMITMENT_NAME).write_text(json.dumps({"key": key.hex()}))
    (rel / "audit.json").write_text(json.dumps(
        {"source_commitment": input_commitment(fp, key)}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _check_report_source(rel / "model.json", [cohort], fp)  # its own input
    with pytest.raises(ConfigError, match="--real is not the input of the release rel"):
        _check_report_source(rel / "model.json", [cohort], "2" * 64)
    (rel / COMMITMENT_NAME).unlink()  # a shared copy without internal/: cannot be checked
    with pytest.warns(UserWarning, match="has no internal/input-commitment.json"):
        _check_report_source(rel / "model.json", [cohort], "2" * 64)
