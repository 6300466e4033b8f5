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
