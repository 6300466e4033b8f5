"""Shared fixtures: paths to the bundled fixtures and to the shared data (skipped when absent).

The shared folder (holding ``data/`` and ``cases/``) is ``$FHIRSYNTH_SHARED`` when set, else
``../shared`` beside the repository.  When part of it is missing, the line after "collected N
items" says how many tests will skip and why, so a checkout elsewhere does not skip silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_ENV = "FHIRSYNTH_SHARED"


def shared_root() -> Path:
    """``$FHIRSYNTH_SHARED`` when set (and not empty), else ``../shared`` beside the repo."""
    env = os.environ.get(SHARED_ENV)
    return Path(env).expanduser() if env else ROOT.parent / "shared"


SHARED = shared_root()
SHARED_DATA = SHARED / "data"
SHARED_CASES = SHARED / "cases"
_NEEDS = {"shared_data": SHARED_DATA, "shared_cases": SHARED_CASES}


def _absent_message(path: Path) -> str:
    return f"{path} is not present (set {SHARED_ENV} to the shared folder holding data/ and cases/)"


def shared_skip_line(items: list[pytest.Item], present: dict[str, bool]) -> str | None:
    """One line saying how many of ``items`` skip because shared data is absent, or None."""
    missing = sorted(name for name, ok in present.items() if not ok)
    if not missing:
        return None
    n = sum(1 for it in items if set(getattr(it, "fixturenames", ())) & set(missing))
    where = ", ".join(str(_NEEDS[m]) for m in missing)
    return (f"fhirsynth: {n} test(s) will skip: shared data not found at {where}; set "
            f"{SHARED_ENV} to the shared folder holding data/ and cases/")


def pytest_report_collectionfinish(config: pytest.Config, start_path: Path,
                                   items: list[pytest.Item]) -> str | None:
    # the header proper is written before collection, so the count goes right after it
    return shared_skip_line(items, {k: p.is_dir() for k, p in _NEEDS.items()})


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(_absent_message(SHARED_DATA))
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_cases() -> Path:
    if not SHARED_CASES.is_dir():
        pytest.skip(_absent_message(SHARED_CASES))
    return SHARED_CASES


@pytest.fixture(scope="session", autouse=True)
def _session_ledger(tmp_path_factory):
    """Fixtures of a wider scope (set up before any test's own ledger) charge this one."""
    mp = pytest.MonkeyPatch()
    mp.setenv("FHIRSYNTH_LEDGER", str(tmp_path_factory.mktemp("ledger") / "ledger.sqlite"))
    yield
    mp.undo()


@pytest.fixture(autouse=True)
def _private_ledger(tmp_path_factory, monkeypatch):
    """Every test charges a ledger of its own, never the user's (``$FHIRSYNTH_LEDGER``)."""
    monkeypatch.setenv("FHIRSYNTH_LEDGER",
                       str(tmp_path_factory.mktemp("ledger") / "ledger.sqlite"))
