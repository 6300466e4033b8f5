"""A release never replaces, holds or lies inside its input (trial 11: `--out` naming the input
folder deleted every input bundle; a release inside the input folder was read back as real
patients by the next run)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fhirsynth.errors import ConfigError, InputError
from fhirsynth.pipeline import RunConfig, run_release

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures" / "cohort"


@pytest.fixture()
def cohort(tmp_path: Path) -> Path:
    folder = tmp_path / "inout"
    shutil.copytree(FIXTURES, folder)
    return folder


def _names(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("where", ["same", "inside"])
def test_out_may_not_be_or_lie_inside_the_input(cohort: Path, tmp_path: Path, where: str):
    (cohort / "audit.json").write_text("{}")  # looks like an earlier release to --overwrite
    before = _names(cohort)
    out = cohort if where == "same" else cohort / "rel"
    cfg = RunConfig(inputs=[cohort], out=out, epsilon=1.0, overwrite=True,
                    ledger=tmp_path / "ledger.sqlite")
    with pytest.raises(ConfigError, match="--out .* (is|lies inside) the input"):
        run_release(cfg)
    assert _names(cohort) == before
    assert not (tmp_path / "ledger.sqlite").exists()  # refused before anything was charged


def test_out_may_not_hold_the_input(cohort: Path, tmp_path: Path):
    cfg = RunConfig(inputs=[cohort], out=tmp_path, epsilon=1.0, overwrite=True,
                    ledger=tmp_path / "ledger.sqlite")
    with pytest.raises(ConfigError, match="holds the input"):
        run_release(cfg)
    assert len(list(cohort.iterdir())) == len(list(FIXTURES.iterdir()))


def test_a_release_inside_an_input_folder_is_refused(cohort: Path, tmp_path: Path):
    rel = cohort / "old-release"
    (rel / "synthetic" / "fhir").mkdir(parents=True)
    (rel / "audit.json").write_text("{}")
    (rel / "model.json").write_text("{}")
    shutil.copy(next(p for p in FIXTURES.iterdir() if p.is_file()),
                rel / "synthetic" / "fhir" / "copy.ndjson")
    cfg = RunConfig(inputs=[cohort], out=tmp_path / "out", epsilon=1.0,
                    ledger=tmp_path / "ledger.sqlite")
    with pytest.raises(InputError, match="a fhirsynth release .* inside the input"):
        run_release(cfg)
    assert not (tmp_path / "out").exists()
