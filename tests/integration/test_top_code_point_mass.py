"""A top-coded (or bottom-coded) numeric column emits its code value exactly.

Values clipped to a declared top code (``"source": {"top_code": 90}``: 90 means 90 or older)
or to a birth year's lower bound (its bottom code) are one state of their own, a point mass
taken from the schema (public), not the top or bottom of an ordinary bin: the synthetic
table holds ``age == 90``, as the data dictionary promises, and never a value between the
last bin's start and the code that stands for "the code or beyond".
"""

from __future__ import annotations

import datetime as _dt
import json

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from fhirsynth.cli import app
from fhirsynth.domain import TableSpec
from fhirsynth.encode import decode_column, encode_column

YEAR = _dt.date.today().year


def _schema(birth_integer: bool) -> dict:
    return {"name": "coded", "columns": {
        "id": {"role": "key"},
        "age": {"type": "numeric", "bounds": [0, 90], "integer": False, "nullable": False,
                "source": {"top_code": 90}},
        "birth_year": {"type": "numeric", "bounds": [YEAR - 89, YEAR],
                       "integer": birth_integer, "nullable": False},
        "smoker": {"type": "categorical", "domain": ["no", "yes"], "nullable": False},
    }}


def test_top_and_bottom_codes_are_point_masses_of_the_spec():
    spec = TableSpec.from_dict(_schema(birth_integer=False))
    age, birth = spec["age"], spec["birth_year"]
    assert age.point_masses == (90.0,)
    assert birth.point_masses == (float(YEAR - 89),)
    assert age.state_labels()[0] == "90" and birth.state_labels()[0] == str(YEAR - 89)
    # a column with one state per integer already emits its bounds exactly: no extra state
    exact = TableSpec.from_dict(_schema(birth_integer=True))["birth_year"]
    assert exact.point_masses == () and exact.one_state_per_integer
    # round trip through the saved form keeps a single point mass
    again = TableSpec.from_dict(spec.to_dict() | {"columns": spec.to_dict()["columns"]})
    assert again["age"].point_masses == (90.0,)


def test_clipped_values_decode_exactly_at_the_code_and_the_bin_below_stays_below():
    col = TableSpec.from_dict(_schema(birth_integer=False))["age"]
    codes = encode_column(col, pd.Series([95.0, 90.0, 89.9, 86.0, 40.0]))
    assert codes[0] == codes[1] == 0 and len(set(codes[2:4])) == 1 and codes[2] != 0
    rng = np.random.default_rng(0)
    top = decode_column(col, np.zeros(1000, dtype=np.int32), rng)
    assert (top == 90.0).all()
    below = decode_column(col, np.full(20000, codes[2], dtype=np.int32), rng)
    assert below.min() >= 85.5 and below.max() < 90.0


def test_csv_run_emits_the_top_code_and_the_bottom_code(tmp_path):
    rng = np.random.default_rng(5)
    n = 400
    ages = rng.uniform(0, 89.9, n)
    ages[: n // 3] = rng.choice([90.0, 93.0, 97.5, 101.0], n // 3)  # a third "90 or older"
    years = rng.integers(YEAR - 89, YEAR + 1, n).astype(float)
    years[: n // 3] = YEAR - 95  # a third born before the bottom code
    csv = tmp_path / "coded.csv"
    pd.DataFrame({"id": np.arange(n) + 1000, "age": np.round(ages, 2), "birth_year": years,
                  "smoker": rng.choice(["no", "yes"], n)}).to_csv(csv, index=False)
    schema = tmp_path / "coded.schema.json"
    schema.write_text(json.dumps(_schema(birth_integer=False)), encoding="utf-8")
    out = tmp_path / "release"
    res = CliRunner().invoke(app, ["run", str(csv), "--schema", str(schema), "--out", str(out),
                                   "--epsilon", "5", "--rows", "2000", "--seed", "3",
                                   "--ledger", str(tmp_path / "ledger.sqlite")])
    assert res.exit_code == 0, res.output
    synth = pd.read_csv(out / "synthetic" / "patients.csv")
    assert (synth["age"] == 90).mean() > 0.15, synth["age"].describe()
    assert synth["age"].max() == 90
    assert not ((synth["age"] > 89.99) & (synth["age"] < 90)).any()
    assert (synth["birth_year"] == YEAR - 89).mean() > 0.15
    audit = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    assert audit["evaluation"]["safe_harbor"]["passed"] is True
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "90 or older" in readme and f"{YEAR - 89} or earlier" in readme
    assert f"appear exactly: `age` 90, `birth_year` {YEAR - 89}" in readme
