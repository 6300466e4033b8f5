"""Figures are deterministic; display text is cleaned of bidi controls and escaped."""

import numpy as np

from fhirsynth.report import figures
from fhirsynth.report.text import clean, markup


def test_figures_are_deterministic():
    panels = [("体重", ["a", "b"], {"synthetic": [0.4, 0.6]}), ("x", ["1"], {"s": [1.0]})]
    assert figures.bars(panels) == figures.bars(panels)
    m = {"real": np.eye(3), "synthetic": np.full((3, 3), 0.5)}
    assert figures.heatmaps(m, ["a", "b", "c"]) == figures.heatmaps(m, ["a", "b", "c"])


def test_plot_label_falls_back_when_the_font_lacks_glyphs():
    assert figures.plot_label("Größe_cm", "column 1") == "Größe_cm"
    assert figures.plot_label("体重", "column 2") == "column 2"
    assert figures.plot_label("a\u202eb", "c") == "ab"


def test_clean_and_markup():
    assert clean("Ab\u202ecd\u2066e\u2069\nf\tg\x00") == "Abcde f g "
    assert "&lt;b&gt;" in markup("<b>") and "\u202e" not in markup("x\u202ey")
    assert "体重" in markup("体重")
