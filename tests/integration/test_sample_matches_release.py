"""`fhirsynth sample MODEL` writes the table `fhirsynth run` writes to synthetic/patients.*.

A table sampled later from a release's model.json must combine with the release's own
synthetic patients: the same columns in the same order (derived columns such as the FHIR
spec's birth_year included), the same Parquet dtypes, the same rounding of numbers (also
under --where, whose in-range draws were printed at full float precision), and fresh UUIDv4
keys in a schema's `role: key` column that share nothing with the release's.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fhirsynth.cli import app

ROOT = Path(__file__).resolve().parents[2]
COHORT = ROOT / "fixtures" / "cohort"
RUNNER = CliRunner()
#: the release's rule for a float column: at most two decimals (encode.DECIMALS)
TWO_DECIMALS = re.compile(r"^-?\d+(\.\d{1,2})?$")


def _cli(*args: object) -> None:
    r = RUNNER.invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, r.output


def _release_and_samples(tmp: Path, inputs: list[object], where: list[str]
                         ) -> tuple[Path, dict[str, Path]]:
    out = tmp / "release"
    _cli("run", *inputs, "--epsilon", "2", "--out", out, "--ledger", tmp / "l.sqlite",
         "--seed", "5", "--holdout", "0", "--rows", "400")
    samples = {}
    for fmt in ("csv", "parquet"):
        samples[fmt] = tmp / f"later.{fmt}"
        _cli("sample", out / "model.json", "-n", "300", "--out", samples[fmt],
             *[a for w in where for a in ("--where", w)])
    return out / "synthetic", samples


def _text(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _assert_same_table_shape(synthetic: Path, samples: dict[str, Path]) -> None:
    rel_csv, new_csv = _text(synthetic / "patients.csv"), _text(samples["csv"])
    rel_pq, new_pq = (pd.read_parquet(synthetic / "patients.parquet"),
                      pd.read_parquet(samples["parquet"]))
    floats = [c for c in rel_pq.columns if rel_pq[c].dtype == "float64"]
    assert floats
    for c in floats:  # the same formatting rule in both files
        for table in (rel_csv, new_csv):
            bad = [v for v in table.get(c, []) if v and not TWO_DECIMALS.match(v)]
            assert not bad, (c, bad[:3])
    assert list(new_csv.columns) == list(rel_csv.columns)
    assert list(new_pq.columns) == list(rel_pq.columns) == list(rel_csv.columns)
    assert new_pq.dtypes.astype(str).to_dict() == rel_pq.dtypes.astype(str).to_dict()


def test_sample_of_a_fhir_release_has_its_columns_and_formatting(tmp_path) -> None:
    synthetic, samples = _release_and_samples(tmp_path, [COHORT],
                                              ["age>=60", "bmi>25", "hba1c<7.5"])
    _assert_same_table_shape(synthetic, samples)
    new = pd.read_parquet(samples["parquet"])
    assert "birth_year" in new.columns  # derived from the sampled age, as run does
    assert (new["age"] >= 60).all() and (new["bmi"] > 25).all() and (new["hba1c"] < 7.5).all()
    ref = 2026  # reference_date of the bundled feature spec
    old = new["age"] >= 89
    assert new.loc[old, "birth_year"].isna().all()  # Safe Harbor: no birth year past 89
    dead = new["deceased"].astype(bool)  # age at death: no birth year (test_harmonise.py)
    assert new.loc[dead, "birth_year"].isna().all()
    young = new.loc[~old & ~dead & new["age"].notna()]
    assert len(young) and young["birth_year"].notna().all()
    assert (ref - young["age"] - young["birth_year"]).isin([0, 1]).all()
    # a model saved without the export rules (older versions): no derived column, a warning
    model = json.loads((synthetic.parent / "model.json").read_text())
    del model["output"]
    for col in model["spec"]["columns"]:  # nor the spec's FHIR rules
        col.pop("source", None)
    (tmp_path / "old.json").write_text(json.dumps(model))
    r = RUNNER.invoke(app, ["sample", str(tmp_path / "old.json"), "-n", "20", "--out",
                            str(tmp_path / "old.csv")])
    assert r.exit_code == 0, r.output
    assert "birth_year" in r.output and "older fhirsynth" in " ".join(r.output.split())
    assert "birth_year" not in _text(tmp_path / "old.csv").columns


def test_sample_of_a_csv_release_has_fresh_uuid4_keys(tmp_path) -> None:
    rng = np.random.default_rng(0)
    n = 300
    table = pd.DataFrame({
        "pid": [f"P{i:05d}" for i in range(n)],
        "sex": rng.choice(["F", "M"], n),
        "weight_kg": np.round(rng.normal(75, 12, n), 3),
        "visits": rng.integers(0, 30, n),
        "smoker": rng.choice(["true", "false"], n),
        "note": ["free text"] * n,
    })
    table.to_csv(tmp_path / "t.csv", index=False)
    schema = tmp_path / "t.schema.json"
    schema.write_text(json.dumps({"name": "keyed", "columns": {
        "pid": {"role": "key"},
        "sex": {"type": "categorical", "domain": ["F", "M"], "nullable": False},
        "weight_kg": {"type": "numeric", "bounds": [30, 150], "bins": 12},
        "visits": {"type": "integer", "bounds": [0, 60]},
        "smoker": {"type": "boolean"},
        "note": {"role": "drop"},
    }}))
    synthetic, samples = _release_and_samples(
        tmp_path, [tmp_path / "t.csv", "--spec", schema], ["weight_kg>70.5"])
    _assert_same_table_shape(synthetic, samples)
    rel = _text(synthetic / "patients.csv")
    assert list(rel.columns) == ["pid", "sex", "weight_kg", "visits", "smoker"]
    for path in samples.values():
        new = (_text(path) if path.suffix == ".csv" else pd.read_parquet(path)).astype(
            {"pid": str})
        keys = new["pid"].tolist()
        assert len(set(keys)) == len(keys) == 300
        assert all(uuid.UUID(k).version == 4 and str(uuid.UUID(k)) == k for k in keys)
        assert not set(keys) & set(rel["pid"]) and not set(keys) & set(table["pid"])
        assert (pd.to_numeric(new["weight_kg"]) > 70.5).all()


@pytest.mark.parametrize("release", [False, True])
def test_synthesizer_sample_release_flag(tmp_path, release) -> None:
    """The Python API: ``sample(..., release=True)`` is the table `run` writes."""
    from fhirsynth.domain import TableSpec
    from fhirsynth.synthesizer import Synthesizer

    spec = TableSpec.from_dict({"name": "k", "columns": {
        "id": {"role": "key"}, "x": {"type": "numeric", "bounds": [0, 1], "bins": 3}}})
    df = pd.DataFrame({"id": [str(i) for i in range(200)],
                       "x": np.random.default_rng(1).random(200)})
    synth = Synthesizer(spec, epsilon=2.0, random_state=0).fit(df)
    synth.save(tmp_path / "m.json")
    loaded = Synthesizer.load(tmp_path / "m.json")
    out = loaded.sample(50, evidence=["x>0.5"], random_state=2, release=release)
    assert list(out.columns) == (["id", "x"] if release else ["x"])
    assert (out["x"] > 0.5).all() and (out["x"].round(2) == out["x"]).all()


def test_in_range_draws_are_rounded_inside_range_and_bin() -> None:
    """Strict bounds, a bin's excluded upper edge and a range too narrow for two decimals."""
    from fhirsynth.evidence import _round_inside

    a = np.array([np.nextafter(25.0, np.inf), 0.0, 1.001, 2.0])
    b = np.array([26.0, 0.5, 1.004, 2.5])
    top = np.array([np.inf, 0.5, np.inf, 2.5])
    x = np.array([25.001, 0.499, 1.002, 2.499])
    r = _round_inside(x, a, b, top)
    assert r.tolist() == [25.01, 0.49, 1.002, 2.49]
