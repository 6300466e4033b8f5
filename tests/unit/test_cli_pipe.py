"""A reader that goes away (``fhirsynth columns x.csv | head``) ends the command quietly."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd


def test_closed_stdout_is_not_an_internal_error(tmp_path) -> None:
    table = tmp_path / "wide.csv"
    pd.DataFrame({f"column_{j}": [1, 2] for j in range(400)}).to_csv(table, index=False)
    proc = subprocess.Popen([sys.executable, "-m", "fhirsynth", "columns", str(table)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # the reader is gone before the first line is written
    err = proc.stderr.read()
    proc.wait(timeout=60)
    assert proc.returncode in (0, 141)
    assert "internal error" not in err and "Traceback" not in err and "Exception" not in err


def test_inspect_into_a_closed_pipe_exits_141(tmp_path) -> None:
    # rich's console exits 1 on a closed pipe, which reads as a failure (a trial's
    # `fhirsynth inspect model.json | head -2`); the CLI's consoles end with 141 instead
    import numpy as np

    from fhirsynth.sample import sample_model
    from fhirsynth.synthesizer import Synthesizer
    from learn_nets import SPEC, known_model

    df, _ = sample_model(known_model(), 500, rng=np.random.default_rng(0))
    Synthesizer(SPEC, epsilon=1.0, random_state=0).fit(df).save(tmp_path / "m.json")
    proc = subprocess.Popen([sys.executable, "-m", "fhirsynth", "inspect",
                             str(tmp_path / "m.json")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=60)
    assert proc.returncode == 141, err
    assert "internal error" not in err and "Traceback" not in err
