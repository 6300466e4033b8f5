"""The ledger's patient digests: what makes two inputs one source, and what the file keeps."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest

from fhirsynth.errors import BudgetExhaustedError
from fhirsynth.privacy.budget import PrivacyBudget
from fhirsynth.privacy.ledger import Ledger
from fhirsynth.privacy.patients import MIN_COMMON, digest_patients, overlap_matches

KEY = b"k" * 32
COLS = ["age", "sex", "glucose"]


def _table(seed: int, n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "age": pd.array(rng.integers(18, 89, n), dtype="Int64"),
        "sex": pd.array(rng.choice(["f", "m"], n), dtype="string"),
        "glucose": np.round(rng.uniform(55, 290, n), 2)})


def test_the_content_key_is_the_parsed_modelled_rows_as_a_multiset() -> None:
    t = _table(1)
    ref = digest_patients(t, COLS, KEY)
    same = t.sample(frac=1.0, random_state=2)[["glucose", "sex", "age"]].assign(junk=1)
    same["age"] = same["age"].astype("float64")  # 82 read as 82.0
    assert digest_patients(same, COLS, KEY).content == ref.content
    assert digest_patients(same, COLS + ["not there"], KEY).content == ref.content
    changed = t.copy()
    changed.loc[0, "glucose"] += 0.01
    assert digest_patients(changed, COLS, KEY).content != ref.content
    doubled = pd.concat([t, t.iloc[:1]])  # one patient twice is another multiset
    assert digest_patients(doubled, COLS, KEY).content != ref.content
    # another ledger's secret: nothing comparable
    other = digest_patients(t, COLS, b"x" * 32)
    assert other.content != ref.content
    (kind,), (other_kind,) = ref.sets, other.sets  # the column set's name is keyed too
    assert kind != other_kind
    assert not np.intersect1d(other.sets[other_kind], ref.sets[kind]).size


def test_missing_values_and_booleans_have_codes_of_their_own() -> None:
    a = pd.DataFrame({"x": pd.array([1.0, None, 0.0], dtype="Float64"),
                      "b": pd.array([True, None, False], dtype="boolean"),
                      "s": pd.array(["a", None, ""], dtype="string")})
    b = a.copy()
    b["x"] = [1.0, np.nan, -0.0]
    assert digest_patients(a, list(a), KEY).content == digest_patients(b, list(b), KEY).content
    c = a.copy()
    c.loc[1, "s"] = "<NA>"  # the text of a missing value is not a missing value
    assert digest_patients(c, list(c), KEY).content != digest_patients(a, list(a), KEY).content


def test_rows_identify_patients_only_when_nearly_every_row_is_unique() -> None:
    assert digest_patients(_table(1), COLS, KEY).sets  # a continuous column: unique rows
    few = digest_patients(_table(1), ["age", "sex"], KEY)  # 142 values for 300 rows
    assert not few.sets
    ids = digest_patients(_table(1), ["sex"], KEY, ids=[f" p{i} " for i in range(300)])
    assert list(ids.sets) == ["id"] and ids.sets["id"].size == 300


def test_the_overlap_rule() -> None:
    full = digest_patients(_table(1), COLS, KEY)
    (kind,) = full.sets
    part = digest_patients(_table(1).sample(frac=0.9, random_state=1), COLS, KEY).sets[kind]
    assert overlap_matches(part, full.sets[kind])[0]
    assert overlap_matches(full.sets[kind], part)[0]
    other = digest_patients(_table(2), COLS, KEY).sets[kind]
    assert overlap_matches(other, full.sets[kind]) == (False, 0, 0.0)
    few = full.sets[kind][: MIN_COMMON - 1]
    assert not overlap_matches(few, full.sets[kind])[0]  # a few common patients decide nothing


def test_the_ledger_file_keeps_digests_never_a_value_or_a_name(tmp_path) -> None:
    led = Ledger(tmp_path / "l.sqlite")
    t = _table(1).assign(sex=["zebra-category"] * 300)
    ids = [f"patient-id-{i:04d}" for i in range(300)]
    led.charge("a" * 64, PrivacyBudget(epsilon=1), label="cohort",
               patients=led.patients(t, COLS, ids))
    raw = (tmp_path / "l.sqlite").read_bytes()
    for text in ("zebra", "patient-id-", "glucose", str(tmp_path)):
        assert text.encode() not in raw
    assert f"{t['glucose'].iloc[0]}".encode() not in raw


def test_a_ledger_of_the_earlier_schema_keeps_working(tmp_path) -> None:
    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE sources (fingerprint TEXT PRIMARY KEY, label TEXT NOT NULL DEFAULT '',
            cap_epsilon REAL, cap_delta REAL, cap_origin TEXT NOT NULL DEFAULT '',
            created TEXT NOT NULL);
        CREATE TABLE releases (id INTEGER PRIMARY KEY AUTOINCREMENT,
            fingerprint TEXT NOT NULL REFERENCES sources(fingerprint),
            run_id TEXT NOT NULL UNIQUE, epsilon REAL NOT NULL, delta REAL NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('charged', 'completed')),
            config_hash TEXT NOT NULL DEFAULT '', outputs TEXT NOT NULL DEFAULT '[]',
            charged_at TEXT NOT NULL, completed_at TEXT);
        CREATE TABLE derived (fingerprint TEXT PRIMARY KEY,
            source TEXT NOT NULL REFERENCES sources(fingerprint), created TEXT NOT NULL);
        INSERT INTO sources VALUES ('""" + "b" * 64 + """', 'old', 1.0, 0.0, 'custodian', 't');
        INSERT INTO releases (fingerprint, run_id, epsilon, delta, status, charged_at)
            VALUES ('""" + "b" * 64 + """', 'r0', 0.5, 0.0, 'completed', 't');
    """)
    con.commit()
    con.close()
    led = Ledger(path)
    # the old source is found by its key, as before; its next release adds its digests
    t = _table(1)
    r = led.charge("b" * 64, PrivacyBudget(epsilon=0.25), patients=led.patients(t, COLS))
    assert r.fingerprint == "b" * 64 and not r.matched
    # from then on a reformatted copy is that source
    copy = t.assign(age=t["age"].astype("float64"))
    with pytest.raises(BudgetExhaustedError, match="the input is the ledger source old"):
        led.charge("c" * 64, PrivacyBudget(epsilon=0.5), patients=led.patients(copy, COLS))
    (only,) = led.summary()
    assert only.spent_epsilon == 0.75 and [x.run_id for x in only.releases][0] == "r0"
