import gzip
import multiprocessing as mp
import sqlite3

import pytest

from fhirsynth.errors import BudgetExhaustedError, InputError
from fhirsynth.privacy.budget import PrivacyBudget
from fhirsynth.privacy.ledger import (
    Ledger,
    fingerprint_csv,
    fingerprint_files,
    ledger_key,
    resolve_source,
    source_fingerprint,
)

FP = "a" * 64


def test_cap_refuses_before_recording(tmp_path):
    led = Ledger(tmp_path / "l.sqlite")
    led.set_cap(FP, 1.0, 1e-6, label="cohort-a")
    led.charge(FP, PrivacyBudget(epsilon=0.6, delta=5e-7), run_id="r1")
    with pytest.raises(BudgetExhaustedError) as exc:
        led.charge(FP, PrivacyBudget(epsilon=0.5), run_id="r2")
    msg = str(exc.value)
    assert "budget exhausted for dataset cohort-a" in msg
    assert "spent epsilon 0.6 of cap 1" in msg and "needs 0.5" in msg
    (s,) = led.summary()
    assert [r.run_id for r in s.releases] == ["r1"]
    led.charge(FP, PrivacyBudget(epsilon=0.4, delta=5e-7), run_id="r3")  # exactly at the cap
    assert led.summary()[0].spent_epsilon == pytest.approx(1.0)


def test_delta_cap_is_enforced(tmp_path):
    led = Ledger(tmp_path / "l.sqlite")
    led.set_cap(FP, 10.0, 1e-6)
    led.charge(FP, PrivacyBudget(epsilon=1, delta=8e-7), run_id="r1")
    with pytest.raises(BudgetExhaustedError, match="delta"):
        led.charge(FP, PrivacyBudget(epsilon=1, delta=8e-7), run_id="r2")


def test_first_release_sets_the_cap_so_a_second_run_is_refused(tmp_path):
    """Case 018: the same data twice -> refused until the custodian raises the cap."""
    led = Ledger(tmp_path / "l.sqlite")
    led.charge(FP, PrivacyBudget(epsilon=1.5), run_id="r1", config_hash="c1")
    led.complete("r1", ["synthetic.csv"])
    with pytest.raises(BudgetExhaustedError, match="spent epsilon 1.5 of cap 1.5"):
        Ledger(tmp_path / "l.sqlite").charge(FP, PrivacyBudget(epsilon=1.5), run_id="r2")
    assert led.find_reusable(FP, "c1").outputs == ("synthetic.csv",)
    assert led.find_reusable(FP, "other") is None
    led.set_cap(FP, 3.0)
    led.charge(FP, PrivacyBudget(epsilon=1.5), run_id="r2")


def test_crash_after_charge_keeps_the_charge(tmp_path):
    led = Ledger(tmp_path / "l.sqlite")
    led.set_cap(FP, 1.0)
    led.charge(FP, PrivacyBudget(epsilon=0.7), run_id="crashed")  # never completed
    (s,) = Ledger(tmp_path / "l.sqlite").summary()
    assert s.releases[0].status == "charged" and s.spent_epsilon == pytest.approx(0.7)
    with pytest.raises(BudgetExhaustedError):
        led.charge(FP, PrivacyBudget(epsilon=0.7), run_id="retry")


def _worker(args):
    path, i = args
    try:
        Ledger(path).charge(FP, PrivacyBudget(epsilon=0.4), run_id=f"p{i}")
        return True
    except BudgetExhaustedError:
        return False


def test_concurrent_processes_never_both_slip_under_the_cap(tmp_path):
    path = tmp_path / "l.sqlite"
    Ledger(path).set_cap(FP, 1.0)
    with mp.get_context("spawn").Pool(4) as pool:
        ok = pool.map(_worker, [(path, i) for i in range(8)])
    assert sum(ok) == 2
    with sqlite3.connect(path) as con:
        (total,) = con.execute("SELECT SUM(epsilon) FROM releases").fetchone()
    assert total == pytest.approx(0.8)


def test_fingerprint_is_content_not_path(tmp_path):
    a = tmp_path / "a.ndjson"
    a.write_bytes(b'{"resourceType": "Patient"}\n')
    b = tmp_path / "sub" / "renamed.ndjson.gz"
    b.parent.mkdir()
    b.write_bytes(gzip.compress(b'\xef\xbb\xbf{"resourceType": "Patient"}\n'))
    assert fingerprint_files([a]) == fingerprint_files([b]) == resolve_source(str(a))
    a.write_bytes(b'{"resourceType": "Group"}\n')
    assert fingerprint_files([a]) != fingerprint_files([b])
    assert resolve_source("B" * 64) == "b" * 64


_GZ = gzip.compress(b"".join(b'{"resourceType": "Patient", "id": "%d"}\n' % i
                             for i in range(2000)))


@pytest.mark.parametrize("blob", [_GZ[: len(_GZ) // 2], b"not gzip at all"])
def test_a_corrupt_gzip_is_fingerprinted_by_its_bytes_and_left_to_the_reader(tmp_path, blob):
    # the reader, which runs before anything is charged, refuses it with its place in the
    # input (its name withheld where it may hold an identifier); the fingerprint, which runs
    # first, used to print the bare file name (trial 18). Its bytes still key the source.
    bad = tmp_path / "Condition.000.ndjson.gz"
    bad.write_bytes(blob)
    first = fingerprint_files([tmp_path])
    assert fingerprint_files([tmp_path]) == first
    bad.write_bytes(blob + b"x")
    assert fingerprint_files([tmp_path]) != first


def test_a_linked_folder_is_fingerprinted_as_the_reader_reads_it(tmp_path):
    # the reader follows links to folders (trial 24): what it reads keys the source
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    linked = elsewhere / "Condition.ndjson"
    linked.write_bytes(b'{"resourceType": "Condition", "id": "c1"}\n')
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "Patient.ndjson").write_bytes(b'{"resourceType": "Patient", "id": "p1"}\n')
    (folder / "conditions").symlink_to(elsewhere, target_is_directory=True)
    (folder / "loop").symlink_to(folder, target_is_directory=True)  # walked once
    first = fingerprint_files([folder])
    linked.write_bytes(b'{"resourceType": "Condition", "id": "c2"}\n')
    assert fingerprint_files([folder]) != first


def test_a_csv_table_is_keyed_by_its_cells_not_its_bytes(tmp_path):
    a = tmp_path / "a.csv"
    a.write_bytes(b"age,sex,note\n34,f,x\n51,m,\n29,f,\"y,z\"\n")
    same = {
        "rows reordered": b"age,sex,note\n29,f,\"y,z\"\n51,m,\n34,f,x\n",
        "columns reordered": b"sex,note,age\nf,x,34\nm,,51\nf,\"y,z\",29\n",
        "CRLF, BOM, blank lines":
            b"\xef\xbb\xbfage,sex,note\r\n34,f,x\r\n\r\n51,m,\r\n29,f,\"y,z\"\r\n\r\n",
        "quoting and spaces": b'"age", sex ,note\n"34",f, x\n51,"m",\n29,f,"y,z"\n',
    }
    for i, (what, blob) in enumerate(same.items()):
        b = tmp_path / f"same{i}.csv"
        b.write_bytes(blob)
        assert fingerprint_csv(b) == fingerprint_csv(a), what
    gz = tmp_path / "a.csv.gz"
    gz.write_bytes(gzip.compress(a.read_bytes()))
    assert source_fingerprint([gz]) == source_fingerprint([a]) == resolve_source(str(a))
    assert resolve_source(str(a)) == fingerprint_csv(a) != fingerprint_files([a])
    different = {
        "a changed cell": b"age,sex,note\n34,f,x\n52,m,\n29,f,\"y,z\"\n",
        "a renamed column": b"age_years,sex,note\n34,f,x\n51,m,\n29,f,\"y,z\"\n",
        "a duplicated row": b"age,sex,note\n34,f,x\n34,f,x\n51,m,\n29,f,\"y,z\"\n",
        "a cell moved to another column": b"age,sex,note\n34,x,f\n51,m,\n29,f,\"y,z\"\n",
    }
    for i, (what, blob) in enumerate(different.items()):
        b = tmp_path / f"diff{i}.csv"
        b.write_bytes(blob)
        assert fingerprint_csv(b) != fingerprint_csv(a), what


def test_a_csv_fingerprint_never_fails_on_what_the_reader_refuses(tmp_path):
    ragged = tmp_path / "ragged.csv"
    ragged.write_bytes(b"a,b\n1,2,3\n4\n\xff\xfe,\"unclosed\n")
    assert len(fingerprint_csv(ragged)) == 64
    bad = tmp_path / "t.csv.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(InputError, match=r"t\.csv\.gz: truncated or corrupt gzip"):
        fingerprint_csv(bad)


def test_an_older_ledger_entry_of_a_csv_moves_to_its_cell_key(tmp_path):
    # ledgers of earlier versions keyed a CSV table by its bytes: the first use after the
    # upgrade moves cap and releases to the new key instead of starting afresh
    table = tmp_path / "t.csv"
    table.write_text("a,b\n1,2\n3,4\n", encoding="utf-8")
    led = Ledger(tmp_path / "l.sqlite")
    old = fingerprint_files([table])
    led.set_cap(old, 2.0, label="t")
    led.charge(old, PrivacyBudget(epsilon=1.5), run_id="before")
    key = ledger_key([table], led.path)
    assert key == fingerprint_csv(table)
    (s,) = led.summary()
    assert s.fingerprint == key and s.cap_epsilon == 2.0 and s.spent_epsilon == 1.5
    assert [r.run_id for r in s.releases] == ["before"]
    with pytest.raises(BudgetExhaustedError):
        led.charge(key, PrivacyBudget(epsilon=1.0))
    # both keys known: kept apart, nothing moves
    led.set_cap(old, 1.0)
    assert not led.adopt(old, key)
    assert len(led.summary()) == 2


def test_charge_without_run_id_gets_one(tmp_path):
    led = Ledger(tmp_path / "l.sqlite")
    rel = led.charge(FP, PrivacyBudget(epsilon=0.1))
    assert len(rel.run_id) == 32
    led.complete(rel.run_id, ["a.csv"])
    assert led.summary(FP)[0].releases[0].status == "completed"


def test_the_refusal_offers_the_released_model_only_when_a_release_completed(tmp_path):
    led = Ledger(tmp_path / "l.sqlite")
    led.charge(FP, PrivacyBudget(epsilon=1.0), run_id="cut")  # the first charge sets the cap
    for refuse in (lambda: led.charge(FP, PrivacyBudget(epsilon=1.0)),
                   lambda: led.check(FP, PrivacyBudget(epsilon=1.0))):
        with pytest.raises(BudgetExhaustedError) as exc:
            refuse()
        assert "fhirsynth sample" not in str(exc.value)
        assert "no release of this source completed" in str(exc.value)
    led.complete("cut", ["model.json"])
    with pytest.raises(BudgetExhaustedError,
                       match="model.json with .fhirsynth sample., which spends nothing"):
        led.check(FP, PrivacyBudget(epsilon=1.0))



def test_a_refusal_names_the_source_as_ledger_show_does(tmp_path):
    led = Ledger(tmp_path / "l.sqlite")
    led.charge(FP, PrivacyBudget(epsilon=1.0), label="25-patients")  # run: the folder's name
    with pytest.raises(BudgetExhaustedError, match="for dataset 25-patients:"):
        led.charge(FP, PrivacyBudget(epsilon=1.0), label="fhir-default")  # fit: the spec's
    assert led.summary()[0].label == "25-patients"


def test_a_fifo_given_as_input_is_named_not_said_missing(tmp_path):
    # helper's remainder: `run fifo.csv` said "input 'fifo.csv' does not exist"
    import os

    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match=r"fifo\.csv: not a regular file"):
        source_fingerprint([fifo])


def test_the_ledger_name_of_a_source_withholds_a_folder_name_that_may_hold_an_identifier(
        tmp_path):
    # trial 26: `run MRN99887766_Quorthwick_1931-03-14` stored and printed that folder name
    # as the source's name in the ledger, which keeps no path or name of the input
    from fhirsynth.pipeline import WITHHELD_SOURCE, source_label

    for name in ("MRN99887766_Quorthwick_1931-03-14", "pt 617-555-0142", "a@b.org export"):
        d = tmp_path / name
        d.mkdir()
        assert source_label([d]) == WITHHELD_SOURCE
        f = d / "x.json"
        f.write_text("{}")
        assert source_label([f]) == WITHHELD_SOURCE
    plain = tmp_path / "synthea-2026"
    plain.mkdir()
    assert source_label([plain]) == "synthea-2026"
    (plain / "a.json").write_text("{}")
    assert source_label([plain / "a.json"]) == "files in synthea-2026/"
