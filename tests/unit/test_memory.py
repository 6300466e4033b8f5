"""A row count whose synthetic table cannot fit in memory is refused before sampling.

The estimate is checked against the measured memory of a sampled table (20,000 rows of a
model over the bundled feature spec, and of a schema with a key column); the refusal is
checked with fake available-memory numbers, never with a large allocation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fhirsynth import _memory
from fhirsynth._memory import (
    available_memory,
    check_rows_fit,
    max_rows,
    output_columns,
    row_bytes,
    sample_bytes,
)
from fhirsynth.domain import Column, TableSpec, load_spec
from fhirsynth.errors import ConfigError
from fhirsynth.export.harmonise import output_rules, release_table
from fhirsynth.ingest.features import load_feature_spec
from fhirsynth.model import FittedModel, Node
from fhirsynth.sample import sample_model

ROOT = Path(__file__).resolve().parents[2]
GB = 10**9


def _uniform_model(spec: TableSpec) -> FittedModel:
    """Every modelled column independent and uniform over its states."""
    nodes = []
    for col in spec.modelled:
        labels = col.state_labels()
        nodes.append(Node(col.name, labels, (), np.full((len(labels), 1), 1 / len(labels))))
    return FittedModel(spec=spec, nodes=nodes, budget={"steps": []}, output=output_rules(spec))


def _fifteen_columns() -> TableSpec:
    """A usual 15-column table: 5 categories, 6 numbers, 3 flags, a key."""
    cols = [Column(name="id", role="key")]
    cols += [Column(name=f"cat{i}", categories=tuple(f"value number {j}" for j in range(8)))
             for i in range(5)]
    cols += [Column(name=f"num{i}", kind="numeric", bounds=(0.0, 300.0)) for i in range(6)]
    cols += [Column(name=f"flag{i}", kind="boolean") for i in range(3)]
    return TableSpec(name="fifteen", columns=tuple(cols))


@pytest.mark.parametrize("spec", [
    load_feature_spec(None),
    load_spec(ROOT / "tests" / "data" / "cases" / "case021.schema.json"),
    _fifteen_columns(),
], ids=["feature-spec", "case021-key", "fifteen"])
def test_row_estimate_is_at_least_the_measured_table(spec):
    model = _uniform_model(spec)
    rng = np.random.default_rng(0)
    df, _ = sample_model(model, 20_000, rng=rng)
    table = release_table(model, df, rng)
    measured = table.memory_usage(deep=True, index=False).sum() / len(table)
    cols = output_columns(spec)
    assert [c.name for c in cols] == list(table.columns)
    estimate = row_bytes(cols)
    # above the measurement (honest), but not wildly (the refusal must not bite early)
    assert measured <= estimate <= 1.5 * measured, (measured, estimate)
    # the peak counts two copies of the table and one sampling chunk's codes
    assert sample_bytes(spec, 10**7) >= 2 * 10**7 * measured


def test_a_huge_row_count_is_refused_with_the_numbers():
    spec = _fifteen_columns()
    with pytest.raises(ConfigError) as err:
        check_rows_fit(spec, 100_000_000_000, 8 * GB)
    msg = str(err.value)
    assert msg.startswith("-n 100000000000 needs about ")
    assert "8 GB are available" in msg and "several `fhirsynth sample` runs" in msg
    need = sample_bytes(spec, 100_000_000_000)
    assert f"{need / GB:,.0f} GB" in msg


def test_reasonable_row_counts_pass():
    spec = _fifteen_columns()
    check_rows_fit(spec, 10_000_000, 7 * GB)  # 10 million rows, 15 columns, an 8 GB machine
    check_rows_fit(spec, 1, 10**8)
    check_rows_fit(spec, 100_000_000_000, None)  # available memory unknown: no refusal


def test_max_rows_is_the_boundary():
    spec = _fifteen_columns()
    for available in (10**6, 5 * 10**8, 7 * GB):
        k = max_rows(spec, available)
        check_rows_fit(spec, k, available)
        with pytest.raises(ConfigError, match=f"at most about {k:,} rows fit"):
            check_rows_fit(spec, k + 1, available)


def test_available_memory_reads_memavailable(tmp_path, monkeypatch):
    info = tmp_path / "meminfo"
    info.write_text("MemTotal:       16000000 kB\nMemFree:          500000 kB\n"
                    "MemAvailable:    6000000 kB\n", encoding="ascii")
    assert available_memory(info) == 6000000 * 1024
    monkeypatch.setattr(_memory.os, "sysconf", lambda name: {"SC_AVPHYS_PAGES": 1000,
                                                               "SC_PAGE_SIZE": 4096}[name])
    info.write_text("MemTotal:       16000000 kB\n", encoding="ascii")  # an old kernel
    assert available_memory(info) == 1000 * 4096
    assert available_memory(tmp_path / "absent") == 1000 * 4096

    def no_sysconf(name):
        raise ValueError(name)

    monkeypatch.setattr(_memory.os, "sysconf", no_sysconf)
    assert available_memory(tmp_path / "absent") is None


def test_python_api_sample_refuses_rows_that_do_not_fit(monkeypatch):
    # the same check as the CLI's, before anything is sampled
    from fhirsynth.synthesizer import Synthesizer

    spec = TableSpec(name="t", target=None, columns=(
        Column(name="a", kind="boolean", nullable=False),
        Column(name="b", categories=tuple("xyz"), nullable=False)))
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.random(300) < 0.5, "b": rng.choice(list("xyz"), 300)})
    synth = Synthesizer(spec, epsilon=1.0, random_state=0).fit(df)
    monkeypatch.setattr(_memory, "available_memory", lambda: 50_000_000)
    with pytest.raises(ConfigError, match=r"n 100000000 needs about .* GB of memory"):
        synth.sample(100_000_000)
    assert len(synth.sample(1000, random_state=1)) == 1000
    # a count that is not a whole number is refused by the sampler's own message
    with pytest.raises(ConfigError, match=r"n \('abc'\) must be an integer >= 0"):
        synth.sample("abc")
