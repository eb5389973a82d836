"""How characters a reader cannot see are shown: one table for every view (hover texts,
tables, the terminal, the heatmap's labels, the LSTMVis export, the painter in the browser).

A character has a *name*, used where it is spoken of alone (a hover's ``char '\\n'``, a
guess ``'space' 12.3%``, a table cell), and a *glyph*, used where it stands in a row of
characters (a heatmap's labels, LSTMVis's tokens). In coloured text only a newline is drawn
as its glyph (followed by the line break itself where lines are kept): spaces and tabs
stay, or the text would not read as written. Any other character that Unicode counts as
Other or Separator (control characters, a non-breaking space, line separators: what
``str.isprintable`` refuses) is written as its code point, ``\\u000c``, in both.

The browser's painter reads the same table: ``lstmviz/assets/characters.js`` is made from it
by ``python -m lstmviz.core.characters`` (a test checks that it is up to date)."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

# character: (name, glyph)
SHOWN = {"\n": ("\\n", "⏎"), "\t": ("\\t", "⇥"), " ": ("space", "·")}
HIDDEN_CATEGORIES = ("C", "Z")  # Unicode's Other and Separator (general categories Cc, Zs...)

NEWLINE_GLYPH = SHOWN["\n"][1]
PAINTER_TABLE = Path(__file__).resolve().parents[1] / "assets" / "characters.js"


def code_of(char: str) -> str:
    """``\\uXXXX`` (``\\UXXXXXXXX`` above U+FFFF), as Python writes the character in a string."""
    return f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}"


def hidden(char: str) -> bool:
    """Whether ``char`` shows nothing legible by itself (a space, a control character...)."""
    return unicodedata.category(char)[0] in HIDDEN_CATEGORIES


def name_of(char: str) -> str:
    """How one character is spoken of: ``\\n``, ``space``, ``\\u000c``, or itself."""
    if char in SHOWN:
        return SHOWN[char][0]
    return code_of(char) if hidden(char) else char


def glyph_of(char: str) -> str:
    """How one character stands in a row of characters: ``⏎``, ``·``, ``\\u000c``, or itself."""
    if char in SHOWN:
        return SHOWN[char][1]
    return code_of(char) if hidden(char) else char


def one_line(text: str) -> str:
    """``text`` on one line: each newline as its glyph."""
    return text.replace("\n", NEWLINE_GLYPH)


def painter_script() -> str:
    """The table as ``assets/characters.js`` holds it for the browser (``window.lstmvizCharacters``)."""
    table = {
        "names": {char: name for char, (name, _) in SHOWN.items()},
        "glyphs": {char: glyph for char, (_, glyph) in SHOWN.items()},
        "hiddenCategories": list(HIDDEN_CATEGORIES),
    }
    return (
        "/* Made from lstmviz/core/characters.py by `python -m lstmviz.core.characters`: edit the\n"
        "   table there, then run that. How the painter shows characters a reader cannot see. */\n"
        f"window.lstmvizCharacters = {json.dumps(table, indent=1)};\n"
    )


if __name__ == "__main__":
    PAINTER_TABLE.write_text(painter_script(), encoding="utf-8")
    print(f"wrote {PAINTER_TABLE}")
