"""CLI: fhirsynth fit / sample / inspect end to end on a small generated table."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fhirsynth.cli import app
from fhirsynth.sample import sample_model
from learn_nets import SPEC, known_model

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    df, _ = sample_model(known_model(), 2000, rng=np.random.default_rng(0))
    df.to_csv(d / "t.csv", index=False)
    (d / "t.schema.json").write_text(json.dumps(SPEC.to_dict()))
    return d


def _fit(files, *extra: str):
    return runner.invoke(app, ["fit", str(files / "t.csv"), "--schema",
                               str(files / "t.schema.json"), "--out", str(files / "m.json"),
                               "--overwrite", *extra])


def test_fit_sample_inspect(files) -> None:
    r = _fit(files, "--epsilon", "1.5", "--seed", "3", "--degree", "2")
    assert r.exit_code == 0, r.output
    m = json.loads((files / "m.json").read_text())
    assert m["budget"]["epsilon_total"] == 1.5
    out = files / "s.csv"
    r = runner.invoke(app, ["sample", str(files / "m.json"), "-n", "300", "--out", str(out),
                            "--where", "D=true", "--where", "E>=4", "--seed", "1"])
    assert r.exit_code == 0, r.output
    s = pd.read_csv(out)
    assert len(s) == 300 and s["D"].all() and (s["E"] >= 4).all()
    r = runner.invoke(app, ["sample", str(files / "m.json"), "-n", "50", "--out",
                            str(files / "s.parquet")])
    assert r.exit_code == 0 and len(pd.read_parquet(files / "s.parquet")) == 50
    r = runner.invoke(app, ["inspect", str(files / "m.json")])
    assert r.exit_code == 0
    assert "parents" in r.output and "patient count" in r.output and "of 1.5" in r.output


@pytest.mark.parametrize("eps", ["0", "-1", "abc", "nan"])
def test_bad_epsilon_exits_2(files, eps) -> None:
    r = _fit(files, f"--epsilon={eps}")
    assert r.exit_code == 2
    assert "epsilon" in r.output and "Traceback" not in r.output


def test_bad_delta_and_bad_evidence_exit_2(files) -> None:
    r = _fit(files, "--epsilon", "1", "--delta", "1")
    assert r.exit_code == 2 and "delta" in r.output
    assert _fit(files, "--epsilon", "1", "--seed", "0").exit_code == 0
    r = runner.invoke(app, ["sample", str(files / "m.json"), "-n", "5", "--out",
                            str(files / "x.csv"), "--where", "A=zzz"])
    assert r.exit_code == 2 and "allowed: a0, a1, a2" in r.output
    assert not (files / "x.csv").exists()


def test_error_messages_keep_square_brackets(tmp_path) -> None:
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps({"columns": {"x": {"type": "numeric"}}}))
    (tmp_path / "t.csv").write_text("x\n1\n")
    r = runner.invoke(app, ["fit", str(tmp_path / "t.csv"), "--schema", str(schema),
                            "--epsilon", "1", "--out", str(tmp_path / "m.json")])
    assert r.exit_code == 2 and "bounds: [low, high]" in r.output


def test_allow_few_rows_flag(files, tmp_path) -> None:
    small = tmp_path / "small.csv"
    pd.read_csv(files / "t.csv").head(12).to_csv(small, index=False)
    args = ["fit", str(small), "--schema", str(files / "t.schema.json"), "--epsilon", "1",
            "--out", str(tmp_path / "m.json")]
    r = runner.invoke(app, args)
    assert r.exit_code == 2 and "need at least 50 rows" in r.output
    r = runner.invoke(app, [*args, "--allow-few-rows"])
    assert r.exit_code == 0 and (tmp_path / "m.json").exists()


def test_large_epsilon_warning_is_printed_once(files) -> None:
    r = _fit(files, "--epsilon", "20", "--seed", "1", "--allow-large-epsilon")
    assert r.exit_code == 0, r.output
    assert r.output.count("is very large") == 1


def test_a_large_epsilon_is_refused_unless_allowed(files, tmp_path) -> None:
    # a mistyped epsilon would spend and, as the source's first charge, cap it for good
    base = ["fit", str(files / "t.csv"), "--schema", str(files / "t.schema.json"),
            "--epsilon", "1e6", "--ledger", str(tmp_path / "l.sqlite"),
            "--out", str(tmp_path / "m.json")]
    r = runner.invoke(app, base)
    assert r.exit_code == 2 and "epsilon (1e+06) is above 10" in r.output
    assert "--allow-large-epsilon" in r.output
    assert not (tmp_path / "m.json").exists() and not (tmp_path / "l.sqlite").exists()
    r = runner.invoke(app, [*base[:4], "--epsilon", "10", *base[6:]])  # 10 itself is allowed
    assert r.exit_code == 0, r.output


def test_fit_with_delta_runs_under_zcdp_and_gaussian_needs_delta(files, tmp_path) -> None:
    out = tmp_path / "z.json"
    r = runner.invoke(app, ["fit", str(files / "t.csv"), "--schema", str(files / "t.schema.json"),
                            "--out", str(out), "--epsilon", "1", "--delta", "1e-9", "--seed", "2",
                            "--mechanism", "gaussian"])
    assert r.exit_code == 0, r.output
    b = json.loads(out.read_text())["budget"]
    assert "zero-concentrated" in b["composition"] and b["delta_spent"] == 1e-9
    assert "Gaussian noise under zCDP" in r.output
    r = runner.invoke(app, ["inspect", str(out)])
    assert r.exit_code == 0 and "gaussian" in r.output
    assert "rho" in r.output and f"{b['rho_total']:.4g}" in r.output
    bad = tmp_path / "bad.json"
    r = runner.invoke(app, ["fit", str(files / "t.csv"), "--schema", str(files / "t.schema.json"),
                            "--out", str(bad), "--epsilon", "1", "--mechanism", "gaussian"])
    assert r.exit_code != 0 and "delta" in r.output and "Traceback" not in r.output
    assert not bad.exists()
    r = runner.invoke(app, ["fit", str(files / "t.csv"), "--schema", str(files / "t.schema.json"),
                            "--out", str(bad), "--epsilon", "1", "--mechanism", "uniform"])
    assert r.exit_code != 0 and "mechanism" in r.output and not bad.exists()


def test_fit_and_ingest_never_replace_an_existing_file_without_overwrite(files, tmp_path) -> None:
    # a shareable file must not be silently replaced by a model or, worse, the real table
    keep = tmp_path / "synthetic.csv"
    keep.write_text("a,b\n1,2\n")
    for cmd in (["fit", str(files / "t.csv"), "--schema", str(files / "t.schema.json"),
                 "--epsilon", "1", "--out", str(keep)],
                ["ingest", str(files / "t.csv"), "--schema", str(files / "t.schema.json"),
                 "--out", str(keep)]):
        r = runner.invoke(app, cmd)
        assert r.exit_code == 2 and "already exists" in r.output and "--overwrite" in r.output
        assert keep.read_text() == "a,b\n1,2\n"
    r = runner.invoke(app, ["ingest", str(files / "t.csv"), "--schema",
                            str(files / "t.schema.json"), "--out", str(keep), "--overwrite"])
    assert r.exit_code == 0, r.output
    assert keep.read_text() != "a,b\n1,2\n"


def test_fit_is_charged_to_the_ledger_like_a_release(files, tmp_path) -> None:
    from fhirsynth.privacy.ledger import Ledger

    led = tmp_path / "led.sqlite"
    base = ["fit", str(files / "t.csv"), "--schema", str(files / "t.schema.json"),
            "--epsilon", "1", "--ledger", str(led)]
    r = runner.invoke(app, [*base, "--out", str(tmp_path / "a.json")])
    assert r.exit_code == 0, r.output
    (summary,) = Ledger(led).summary()
    assert summary.spent_epsilon == pytest.approx(1.0)
    assert [x.status for x in summary.releases] == ["completed"]
    # the first charge set the cap: a second fit of the same table is refused, unwritten
    r = runner.invoke(app, [*base, "--out", str(tmp_path / "b.json")])
    assert r.exit_code == 2 and "budget exhausted" in r.output
    assert not (tmp_path / "b.json").exists()
    # a table too small to fit is refused before anything is charged
    small = tmp_path / "small.csv"
    pd.read_csv(files / "t.csv").head(12).to_csv(small, index=False)
    r = runner.invoke(app, ["fit", str(small), "--schema", str(files / "t.schema.json"),
                            "--epsilon", "1", "--ledger", str(led), "--out",
                            str(tmp_path / "c.json")])
    assert r.exit_code == 2 and "need at least 50 rows" in r.output
    assert len(Ledger(led).summary()) == 1


def test_sample_needs_one_row_and_out_of_bounds_evidence_names_the_domain(files, tmp_path) -> None:
    assert _fit(files, "--epsilon", "1", "--seed", "0").exit_code == 0
    r = runner.invoke(app, ["sample", str(files / "m.json"), "-n", "0", "--out",
                            str(tmp_path / "z.csv")])
    assert r.exit_code == 2 and "-n (0) must be >= 1" in r.output
    assert not (tmp_path / "z.csv").exists()
    r = runner.invoke(app, ["sample", str(files / "m.json"), "-n", "5", "--out",
                            str(tmp_path / "e.csv"), "--where", "E>=25"])
    assert r.exit_code == 2 and "selects no value" in r.output and "[0, 10]" in r.output


def test_fit_ledger_keys_on_the_table_content_not_its_bytes(files, tmp_path) -> None:
    led = tmp_path / "led.sqlite"
    same = tmp_path / "same.csv"
    # the same rows, shuffled, with CRLF line endings and a trailing blank line
    pd.read_csv(files / "t.csv").sample(frac=1.0, random_state=1).to_csv(
        same, index=False, lineterminator="\r\n")
    with same.open("a") as fh:
        fh.write("\r\n")
    args = ["--schema", str(files / "t.schema.json"), "--epsilon", "1", "--ledger", str(led)]
    r = runner.invoke(app, ["fit", str(files / "t.csv"), *args, "--out", str(tmp_path / "a.json")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["fit", str(same), *args, "--out", str(tmp_path / "b.json")])
    assert r.exit_code == 2 and "budget exhausted" in r.output


def test_a_large_delta_is_refused_unless_allowed(files, tmp_path) -> None:
    base = ["fit", str(files / "t.csv"), "--schema", str(files / "t.schema.json"),
            "--epsilon", "1", "--delta", "0.5", "--ledger", str(tmp_path / "l.sqlite"),
            "--out", str(tmp_path / "m.json")]
    r = runner.invoke(app, base)
    assert r.exit_code == 2 and "delta (0.5) is above 1e-05" in r.output
    assert not (tmp_path / "m.json").exists() and not (tmp_path / "l.sqlite").exists()
    r = runner.invoke(app, [*base, "--allow-large-delta"])
    assert r.exit_code == 0, r.output


def test_a_cap_set_on_the_table_path_binds_fit_and_show_finds_it(files, tmp_path) -> None:
    # `ledger set-cap t.csv` and `fit t.csv` name one source: the cap is the custodian's,
    # not a first-release cap of a second source (a bug of an earlier version)
    led = tmp_path / "led.sqlite"
    table = str(files / "t.csv")
    r = runner.invoke(app, ["ledger", "set-cap", table, "--epsilon", "1.5", "--ledger",
                            str(led)])
    assert r.exit_code == 0, r.output
    args = ["fit", table, "--schema", str(files / "t.schema.json"), "--epsilon", "1",
            "--ledger", str(led)]
    assert runner.invoke(app, [*args, "--out", str(tmp_path / "a.json")]).exit_code == 0
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "b.json")])
    assert r.exit_code == 2 and "spent epsilon 1 of cap 1.5" in r.output
    r = runner.invoke(app, ["ledger", "show", table, "--ledger", str(led)])
    assert r.exit_code == 0 and r.output.count("source ") == 1
    assert "cap: epsilon 1.5, delta 0 (custodian)" in r.output
    assert "spent: epsilon 1, delta 0 in 1 release(s)" in r.output


def test_sample_refuses_a_row_count_that_cannot_fit_before_sampling(files, tmp_path,
                                                                    monkeypatch) -> None:
    # -n 100000000000 grew to 24 GB and was killed by the kernel, without a message
    import fhirsynth._memory as memory
    import fhirsynth.sample as sampling

    assert _fit(files, "--epsilon", "1", "--seed", "0").exit_code == 0
    monkeypatch.setattr(memory, "available_memory", lambda: 8 * 10**9)

    def never(*args, **kwargs):
        raise AssertionError("sampled although the rows cannot fit")

    monkeypatch.setattr(sampling, "sample_codes", never)
    out = tmp_path / "huge.csv"
    r = runner.invoke(app, ["sample", str(files / "m.json"), "-n", "100000000000",
                            "--out", str(out)])
    text = " ".join(r.output.split())
    assert r.exit_code == 2, r.output
    assert "-n 100000000000 needs about" in text and "8 GB are available" in text
    assert "sample fewer rows; several `fhirsynth sample` runs give more rows" in text
    assert "Traceback" not in text and not out.exists()
    monkeypatch.undo()
    monkeypatch.setattr(memory, "available_memory", lambda: 8 * 10**9)
    r = runner.invoke(app, ["sample", str(files / "m.json"), "-n", "300", "--out", str(out)])
    assert r.exit_code == 0, r.output


def test_fit_and_ingest_refuse_an_out_in_a_missing_folder(files, tmp_path) -> None:
    # a mistyped folder used to be created silently
    missing = tmp_path / "nonexist" / "dir"
    for cmd in (["fit", str(files / "t.csv"), "--schema", str(files / "t.schema.json"),
                 "--epsilon", "1", "--ledger", str(tmp_path / "l.sqlite"),
                 "--out", str(missing / "m.json")],
                ["ingest", str(files / "t.csv"), "--schema", str(files / "t.schema.json"),
                 "--ledger", str(tmp_path / "l.sqlite"), "--out", str(missing / "t.csv")]):
        r = runner.invoke(app, cmd)
        text = " ".join(r.output.split())
        assert r.exit_code == 2, r.output
        assert f"the folder {missing} of --out does not exist" in text
        assert not (tmp_path / "nonexist").exists() and not (tmp_path / "l.sqlite").exists()


@pytest.mark.parametrize("command", [["sample"], ["run"], ["fit"], ["ledger", "show"]])
def test_help_shows_flags_without_a_value_type(command) -> None:
    # typer 0.29 labels flags "<bool>", as if they took a value (a trial typed
    # "--overwrite true"); flags show no type, options with values keep theirs
    r = runner.invoke(app, [*command, "--help"], terminal_width=120)
    assert r.exit_code == 0, r.output
    assert "<bool>" not in r.output
    assert "--help" in r.output


def test_fit_with_seed_says_the_noise_is_reproducible_once(files) -> None:
    # (the suite ignores ReproducibleNoiseWarning: let it through, as outside the tests)
    from fhirsynth.errors import ReproducibleNoiseWarning

    with warnings.catch_warnings():
        warnings.simplefilter("always", ReproducibleNoiseWarning)
        r = _fit(files, "--epsilon", "1", "--seed", "0")
    assert r.exit_code == 0, r.output
    assert " ".join(r.output.split()).count("guesses it can remove the noise") == 1
