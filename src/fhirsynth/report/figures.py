"""Figures of the reports, drawn on matplotlib Agg canvases (no pyplot) into PNG bytes.

Each function takes numbers that the caller is allowed to show (the shareable report passes
only synthetic or released DP figures) and returns PNG bytes for reportlab.  Output is
deterministic: fixed size, dpi and style, no timestamps in the PNG metadata.  Labels with
glyphs the bundled DejaVu Sans lacks (CJK, for instance) are replaced by a position label
here; the PDF text beside the figure shows the real name.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping, Sequence
from functools import lru_cache

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fhirsynth.report.text import clean

__all__ = ["bars", "budget_bars", "heatmaps", "plot_label"]

_COLORS = ("#4C72B0", "#DD8452", "#55A868", "#8172B3")
_RC = {
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.hashsalt": "fhirsynth",
}


@lru_cache(maxsize=1)
def _charmap() -> frozenset[int]:
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    path = font_manager.findfont("DejaVu Sans", fallback_to_default=True)
    return frozenset(FT2Font(path).get_charmap())


def plot_label(text: str, fallback: str, limit: int = 24) -> str:
    """``text`` cleaned and shortened, or ``fallback`` if the font lacks one of its glyphs."""
    s = clean(text)
    cmap = _charmap()
    if any(ord(ch) not in cmap for ch in s if not ch.isspace()):
        return fallback
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _figure(width: float, height: float) -> Figure:
    """A figure on its own Agg canvas (no pyplot, no global backend switch)."""
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    return buf.getvalue()


def bars(
    panels: Sequence[tuple[str, Sequence[str], Mapping[str, Sequence[float]]]],
    *,
    ncols: int = 2,
    width: float = 7.0,
) -> bytes:
    """A grid of grouped bar charts: each panel is (title, state labels, {series: shares})."""
    n = max(len(panels), 1)
    nrows = (n + ncols - 1) // ncols
    with matplotlib.rc_context(_RC):
        fig = _figure(width, 2.3 * nrows)
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for k, ax in enumerate(axes.ravel()):
            if k >= len(panels):
                ax.set_axis_off()
                continue
            title, labels, series = panels[k]
            x = np.arange(len(labels))
            w = 0.8 / max(len(series), 1)
            for i, (name, vals) in enumerate(series.items()):
                ax.bar(x + (i - (len(series) - 1) / 2) * w, vals, width=w, label=name,
                       color=_COLORS[i % len(_COLORS)])
            ax.set_title(plot_label(title, f"column {k + 1}", 40), fontsize=8)
            step = max(1, len(labels) // 12)
            ax.set_xticks(x[::step])
            ax.set_xticklabels([plot_label(lab, f"#{j * step + 1}", 12)
                                for j, lab in enumerate(labels[::step])],
                               rotation=45, ha="right", fontsize=6)
            ax.set_ylabel("share", fontsize=7)
            if k == 0 and len(series) > 1:
                ax.legend(fontsize=6, frameon=False)
        fig.tight_layout()
        return _png(fig)


def heatmaps(matrices: Mapping[str, np.ndarray], names: Sequence[str]) -> bytes:
    """Side-by-side heatmaps of association matrices (Cramér's V, 0 to 1)."""
    labels = [plot_label(n, f"c{i + 1}", 14) for i, n in enumerate(names)]
    m = len(matrices)
    with matplotlib.rc_context(_RC):
        fig = _figure(3.6 * m, 3.6)
        axes = fig.subplots(1, m, squeeze=False)
        im = None
        for k, (ax, (title, mat)) in enumerate(zip(axes.ravel(), matrices.items(),
                                                  strict=False)):
            im = ax.imshow(np.asarray(mat), vmin=0, vmax=1, cmap="viridis")
            ax.set_title(title, fontsize=8)
            ax.set_xticks(range(len(labels)))
            ax.set_yticks(range(len(labels)))
            fs = 6 if len(labels) <= 16 else 4
            ax.set_xticklabels(labels, rotation=90, fontsize=fs)
            ax.set_yticklabels(labels if k == 0 else [], fontsize=fs)
        if im is not None:
            fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.7, label="Cramér's V")
        return _png(fig)


def budget_bars(steps: Sequence[Mapping[str, object]], epsilon_total: float) -> bytes:
    """Horizontal bars of each step's share of the total epsilon."""
    names = [plot_label(str(s.get("name", "")), f"step {i + 1}", 28) for i, s in enumerate(steps)]
    eps = np.array([float(s.get("epsilon") or 0.0) for s in steps])
    share = eps / epsilon_total if epsilon_total > 0 else eps
    with matplotlib.rc_context(_RC):
        fig = _figure(6.5, 0.25 * len(steps) + 0.9)
        ax = fig.subplots()
        y = np.arange(len(steps))
        ax.barh(y, share, color=_COLORS[0])
        ax.set_yticks(y)
        ax.set_yticklabels(names, fontsize=6)
        ax.invert_yaxis()
        ax.set_xlabel("share of total epsilon")
        fig.tight_layout()
        return _png(fig)
