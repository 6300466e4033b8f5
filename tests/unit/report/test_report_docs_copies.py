"""The bundled copies of auditor-facing documents match the repository's versions."""

from importlib import resources


def test_bundled_limitations_match_docs(root):
    bundled = resources.files("fhirsynth").joinpath("data/limitations.md").read_text("utf-8")
    assert bundled == (root / "docs" / "limitations.md").read_text(encoding="utf-8")


def test_bundled_restricted_zip3_matches_compliance(root):
    bundled = resources.files("fhirsynth").joinpath("data/restricted-zip3.csv").read_text("utf-8")
    assert bundled == (root / "compliance" / "restricted-zip3.csv").read_text(encoding="utf-8")
