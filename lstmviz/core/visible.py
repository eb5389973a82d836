"""How a character is named in a plain-text table, where a newline or a space would not show."""

from __future__ import annotations

_NAMES = {"\n": "\\n", " ": "space", "\t": "\\t"}


def char_name(ch: str) -> str:
    """``"\\n"`` -> ``\\n``, ``" "`` -> ``space``, ``"\\t"`` -> ``\\t``; any other character as it is."""
    return _NAMES.get(ch, ch)
