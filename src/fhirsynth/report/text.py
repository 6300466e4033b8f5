"""Safe display text for the reports: bidi controls stripped, markup escaped, fonts that cover it.

User-supplied text (dataset and column names, category labels) is shown only after
:func:`clean`: bidi embedding/override/isolate controls (U+202A-U+202E, U+2066-U+2069) and
the implicit marks are removed, control characters become spaces.  :func:`markup` escapes
it for reportlab paragraphs and puts CJK runs in a CID font that needs no font file, since
the bundled DejaVu Sans has no CJK glyphs.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path
from xml.sax.saxutils import escape

__all__ = ["BOLD", "CJK_FONT", "REGULAR", "clean", "markup", "register_fonts"]

REGULAR = "FhirsynthSans"
BOLD = "FhirsynthSans-Bold"
CJK_FONT = "FhirsynthCJK"
#: CID font used when no CJK TrueType font is found (not embedded: the viewer supplies it)
CJK_CID_FALLBACK = "STSong-Light"
#: system CJK fonts with TrueType outlines that reportlab can embed, tried in order
CJK_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/System/Library/Fonts/Supplemental/Arial Unicode.ttf",
    "C:/Windows/Fonts/msyh.ttc",
)

_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# Han, Hiragana, Katakana, Hangul, CJK punctuation and full-width forms
_CJK = re.compile(r"([\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]+)")


def clean(text: object) -> str:
    """Display form of user-supplied text: NFC, no bidi controls, no control characters."""
    s = unicodedata.normalize("NFC", str(text))
    s = _BIDI.sub("", s)
    s = s.replace("\r\n", " ").replace("\n", " ").replace("\t", " ")
    return _CONTROL.sub(" ", s)


def markup(text: object) -> str:
    """``clean(text)`` escaped for a reportlab Paragraph, CJK runs in a CJK-capable font."""
    s = escape(clean(text))
    if register_fonts()[1]:
        s = _CJK.sub(lambda m: f'<font name="{_CJK_NAME[0]}">{m.group(1)}</font>', s)
    return s


@lru_cache(maxsize=1)
def register_fonts() -> tuple[bool, bool]:
    """Register DejaVu Sans (from matplotlib's bundled fonts) and the CJK CID font.

    Returns whether the Unicode TTF and the CJK font are available; without the TTF the
    reports fall back to Helvetica (Latin-1 only).
    """
    import matplotlib
    from reportlab.lib.fonts import addMapping
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    ttf_dir = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    ok_ttf = False
    try:
        pdfmetrics.registerFont(TTFont(REGULAR, str(ttf_dir / "DejaVuSans.ttf")))
        pdfmetrics.registerFont(TTFont(BOLD, str(ttf_dir / "DejaVuSans-Bold.ttf")))
        addMapping(REGULAR, 0, 0, REGULAR)
        addMapping(REGULAR, 1, 0, BOLD)
        addMapping(REGULAR, 0, 1, REGULAR)
        addMapping(REGULAR, 1, 1, BOLD)
        ok_ttf = True
    except Exception:  # noqa: BLE001 - any font problem falls back to the core fonts
        ok_ttf = False
    return ok_ttf, _register_cjk()


def _register_cjk() -> bool:
    """Embed a system CJK TrueType font if one exists, else fall back to a CID font."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfbase.ttfonts import TTFont

    for candidate in CJK_CANDIDATES:
        if Path(candidate).is_file():
            try:
                pdfmetrics.registerFont(TTFont(CJK_FONT, candidate, subfontIndex=0))
                return True
            except Exception:  # noqa: BLE001, S112 - try the next candidate
                continue
    try:
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_CID_FALLBACK))
        _CJK_NAME[0] = CJK_CID_FALLBACK
        return True
    except Exception:  # noqa: BLE001
        return False


_CJK_NAME = [CJK_FONT]


def font_names() -> tuple[str, str]:
    """(regular, bold) font names to use."""
    return (REGULAR, BOLD) if register_fonts()[0] else ("Helvetica", "Helvetica-Bold")
