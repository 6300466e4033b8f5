"""Layout: a heading kept with a long table does not push the table to the next page."""

from __future__ import annotations

from pypdf import PdfReader

from fhirsynth.report.pdf import Styles, build_pdf, para, table


def test_a_long_table_starts_under_its_heading(tmp_path) -> None:
    s = Styles()
    rows = [[f"column_{i}", "categorical", ", ".join(f"code{j}" for j in range(40))]
            for i in range(60)]  # taller than a page: it has to split
    story = [para("Public facts", s.h1), para("Declared before any data was read.", s.body),
             para("Columns and their public domains", s.h2),
             table(["column", "kind", "public domain"], rows, [2, 1.2, 6], s)]
    pdf = build_pdf(tmp_path / "r.pdf", story, title="t", footer="f")
    first = PdfReader(pdf).pages[0].extract_text()
    # reportlab moves a kept-together block taller than the space left to a new page as a
    # whole, which left the first page with two lines
    assert "Columns and their public domains" in first and "column_0" in first
