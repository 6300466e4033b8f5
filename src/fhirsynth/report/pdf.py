"""reportlab building blocks shared by both reports: styles, page frame, tables, figures.

Every page carries a footer with "page N of M" and, for the custodian's report, a banner on
top and bottom ("CUSTODIAN ONLY — contains statistics of the real data").  Tables take
relative column widths, wrap their cells and repeat their header across pages, so they
always fit the page.  :func:`build_pdf` writes through a temporary file and moves it into
place.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.pdfgen import canvas as rl_canvas
from reportlab.platypus import (
    CondPageBreak,
    Image,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from fhirsynth._atomic import temp_beside
from fhirsynth.report.text import font_names, markup

__all__ = ["CUSTODIAN_BANNER", "Styles", "build_pdf", "figure", "para", "table"]

CUSTODIAN_BANNER = "CUSTODIAN ONLY — contains statistics of the real data"
PAGE = A4
MARGIN = 1.8 * cm
WIDTH = PAGE[0] - 2 * MARGIN


class Styles:
    """Paragraph styles in the Unicode font."""

    def __init__(self) -> None:
        regular, bold = font_names()
        base = getSampleStyleSheet()
        self.body = ParagraphStyle("body", parent=base["BodyText"], fontName=regular,
                                   fontSize=9, leading=12)
        self.small = ParagraphStyle("small", parent=self.body, fontSize=7.5, leading=9.5)
        self.cell = ParagraphStyle("cell", parent=self.body, fontSize=7.5, leading=9)
        self.cell_bold = ParagraphStyle("cellb", parent=self.cell, fontName=bold)
        self.h1 = ParagraphStyle("h1", parent=base["Heading1"], fontName=bold, fontSize=16,
                                 leading=20, spaceAfter=8, keepWithNext=1)
        self.h2 = ParagraphStyle("h2", parent=base["Heading2"], fontName=bold, fontSize=12,
                                 leading=15, spaceBefore=8, spaceAfter=4, keepWithNext=1)
        self.title = ParagraphStyle("title", parent=self.h1, fontSize=24, leading=30,
                                    alignment=1, spaceAfter=18)
        self.big = ParagraphStyle("big", parent=self.h1, fontSize=34, leading=42, alignment=1)
        self.center = ParagraphStyle("center", parent=self.body, alignment=1, fontSize=11,
                                     leading=15)
        self.quote = ParagraphStyle("quote", parent=self.body, leftIndent=12,
                                    textColor=colors.HexColor("#333333"))
        self.mono = ParagraphStyle("mono", parent=self.small, fontName=regular)


def para(text: str, style: ParagraphStyle, *, raw: bool = False) -> Paragraph:
    """A paragraph of user-safe text (``raw=True`` when ``text`` is trusted markup)."""
    return Paragraph(text if raw else markup(text), style)


def table(
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    widths: Sequence[float],
    styles: Styles,
    *,
    align_right: Sequence[int] = (),
) -> Table:
    """A page-wide table; ``widths`` are relative; every cell wraps; the header repeats."""
    total = float(sum(widths))
    col_w = [WIDTH * w / total for w in widths]
    data = [[para(str(h), styles.cell_bold) for h in header]]
    for r in rows:
        data.append([c if hasattr(c, "wrap") else para(_fmt(c), styles.cell) for c in r])
    # splitInRow: a row taller than the space left (a long public domain) continues on the
    # next page instead of pushing the whole table there
    t = Table(data, colWidths=col_w, repeatRows=1, splitInRow=1)
    cmds: list[tuple[Any, ...]] = [
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#E8EEF6")),
        ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.HexColor("#4C72B0")),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#F7F7F7")]),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
    for j in align_right:
        cmds.append(("ALIGN", (j, 1), (j, -1), "RIGHT"))
    t.setStyle(TableStyle(cmds))
    return t


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if v == 0:
            return "0"
        return f"{v:.3g}" if abs(v) < 1e5 else f"{v:.3e}"
    return str(v)


def figure(png: bytes, width: float = WIDTH, caption: str | None = None,
           styles: Styles | None = None) -> KeepTogether:
    """A PNG scaled to ``width`` (keeps its aspect ratio), with an optional caption."""
    from reportlab.lib.utils import ImageReader

    reader = ImageReader(io.BytesIO(png))
    w, h = reader.getSize()
    height = width * h / w
    max_h = PAGE[1] - 2 * MARGIN - 3 * cm
    if height > max_h:
        width, height = width * max_h / height, max_h
    parts: list[Any] = [Image(io.BytesIO(png), width=width, height=height)]
    if caption and styles is not None:
        parts.append(para(caption, styles.small))
    parts.append(Spacer(1, 6))
    return KeepTogether(parts)


def _canvas_class(banner: str | None, footer: str):
    regular, bold = font_names()

    class NumberedCanvas(rl_canvas.Canvas):
        """Defers page output to print "page N of M" (and the banner) on every page."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("invariant", 1)
            super().__init__(*args, **kwargs)
            self._saved: list[dict[str, Any]] = []

        def showPage(self) -> None:  # noqa: N802 - reportlab API
            self._saved.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._saved)
            for state in self._saved:
                self.__dict__.update(state)
                self._decorate(total)
                super().showPage()
            super().save()

        def _decorate(self, total: int) -> None:
            w, h = PAGE
            self.setFont(regular, 7.5)
            self.setFillColor(colors.HexColor("#555555"))
            self.drawString(MARGIN, 1.0 * cm, footer)
            self.drawRightString(w - MARGIN, 1.0 * cm, f"page {self._pageNumber} of {total}")
            if banner:
                self.setFillColor(colors.HexColor("#B00020"))
                self.setFont(bold, 9)
                self.drawCentredString(w / 2, h - 1.1 * cm, banner)
                self.drawCentredString(w / 2, 1.45 * cm, banner)

    return NumberedCanvas


#: a heading followed by a table starts a new page only when less than this is left
_MIN_SPACE_FOR_TABLE = 4 * cm


def _loosen_headings(story: list[Any]) -> list[Any]:
    """Headings kept with a following table, without the page break that forces.

    A kept-with-next heading and its table form one block, and reportlab moves a block
    taller than the space left to the next page as a whole: a long table (a spec's public
    domains) then left a page holding one sentence.  Such a heading instead gets a
    conditional page break (only when less than ``_MIN_SPACE_FOR_TABLE`` is left) and
    lets the table split.
    """
    out: list[Any] = []
    for i, f in enumerate(story):
        nxt = story[i + 1] if i + 1 < len(story) else None
        if (isinstance(f, Paragraph) and getattr(f.style, "keepWithNext", 0)
                and isinstance(nxt, Table)):
            out.append(CondPageBreak(_MIN_SPACE_FOR_TABLE))
            f = Paragraph(f.text, ParagraphStyle(f"{f.style.name}-loose", parent=f.style,
                                                  keepWithNext=0))
        out.append(f)
    return out


def build_pdf(
    path: str | Path, story: list[Any], *, title: str, footer: str, banner: str | None = None
) -> Path:
    """Render ``story`` to ``path`` (A4) through a temporary file in the same directory."""
    p = Path(path)
    tmp = str(temp_beside(p))
    try:
        doc = SimpleDocTemplate(
            tmp, pagesize=PAGE, leftMargin=MARGIN, rightMargin=MARGIN,
            topMargin=MARGIN, bottomMargin=MARGIN, title=title, author="fhirsynth",
            creator="fhirsynth", producer="fhirsynth",
        )
        doc.build(_loosen_headings(story), canvasmaker=_canvas_class(banner, footer))
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p
