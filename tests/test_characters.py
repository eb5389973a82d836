"""The one table of how characters a reader cannot see are shown (lstmviz.core.characters),
and the copy of it the browser's painter reads."""

import sys

from lstmviz.core.characters import PAINTER_TABLE, glyph_of, hidden, name_of, one_line, painter_script


def test_the_painters_table_is_made_from_the_python_one():
    assert PAINTER_TABLE.read_text(encoding="utf-8") == painter_script(), "run: python -m lstmviz.core.characters"


def test_names_and_glyphs_of_the_characters_one_cannot_see():
    assert [name_of(c) for c in "\n\t a😀"] == ["\\n", "\\t", "space", "a", "😀"]
    assert [glyph_of(c) for c in "\n\t a😀"] == ["⏎", "⇥", "·", "a", "😀"]
    # any other control or separator character: its code point, as Python writes it
    assert [name_of(c) for c in "\x0c\r\x00\u00a0\u2028\U000e0001"] == [
        "\\u000c",
        "\\u000d",
        "\\u0000",
        "\\u00a0",
        "\\u2028",
        "\\U000e0001",
    ]
    assert glyph_of("\x0c") == "\\u000c"


def test_hidden_characters_are_those_python_does_not_print():
    every = (chr(cp) for cp in range(sys.maxunicode + 1))
    assert [c for c in every if c != " " and hidden(c) != (not c.isprintable())] == []


def test_text_on_one_line():
    assert one_line("def f():\n    return 1\n") == "def f():⏎    return 1⏎"
