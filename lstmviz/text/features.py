"""Hypothesis tracks over text: one value per character, for the cells of Karpathy et al.
(2015, sec. 5): quotes, comments, indentation, line position, bracket depth.

Python source is read with the standard ``tokenize`` module, so strings and comments are
exact; other text (or Python that does not tokenize) falls back to a small scanner: quote
parity within a line, ``#`` and ``//`` comments, triple quotes. Which method served each
document is reported.
"""

from __future__ import annotations

import io
import re
import token
import tokenize
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import regex

from ..core.errors import LstmvizError

BINARY = ("in_string", "in_docstring", "in_comment")
NUMERIC = ("indent", "column", "to_eol", "bracket_depth")
BUILTIN = BINARY + NUMERIC
TAB = 8  # tab stops, as Python's tokenizer counts indentation
_OPEN, _CLOSE = "([{", ")]}"

FeatureFn = Callable[[str], np.ndarray]


@dataclass
class Features:
    """Named per-character tracks over one text, with the method used per document."""

    values: dict[str, np.ndarray]
    binary: set[str]
    methods: dict[str, str] = field(default_factory=dict)  # document name -> tokenize | heuristic

    def __getitem__(self, name: str) -> np.ndarray:
        return self.values[name]

    def names(self) -> list[str]:
        return list(self.values)

    def is_binary(self, name: str) -> bool:
        return name in self.binary

    def absent(self) -> list[str]:
        """The features this text lacks: one value throughout (prose has no docstring, no
        comment), so no neuron can be ranked against them."""
        return [k for k, v in self.values.items() if len(v) == 0 or bool((v == v[0]).all())]


def line_features(text: str) -> dict[str, np.ndarray]:
    """indent, column and to_eol for every character (vectorised)."""
    n = len(text)
    chars = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    newline = chars == ord("\n")
    idx = np.arange(n)
    # Start of each character's line, and its end (the newline, or the end of text).
    line_start = np.maximum.accumulate(np.where(np.concatenate([[True], newline[:-1]]), idx, 0)) if n else idx
    nl_pos = np.flatnonzero(newline)
    line_end = nl_pos[np.minimum(np.searchsorted(nl_pos, idx), len(nl_pos) - 1)] if len(nl_pos) else np.full(n, n)
    if len(nl_pos):
        line_end = np.where(idx > nl_pos[-1], n, line_end)
    column = idx - line_start
    to_eol = line_end - idx
    # Indentation width of each line (tabs to the next multiple of TAB), broadcast to its characters.
    indent = np.zeros(n, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate([[True], newline[:-1]])) if n else np.array([], dtype=np.int64)
    widths = np.zeros(len(starts), dtype=np.int64)
    for k, s in enumerate(starts):
        w, j = 0, s
        while j < n and text[j] in " \t":
            w = (w // TAB + 1) * TAB if text[j] == "\t" else w + 1
            j += 1
        widths[k] = w if j < n and text[j] != "\n" else 0  # blank lines have no indentation
    if n:
        indent = widths[np.searchsorted(starts, idx, side="right") - 1]
    return {"indent": indent, "column": column, "to_eol": to_eol}


def _offsets(text: str) -> np.ndarray:
    """Offset of the first character of each line (1-based row -> index row-1)."""
    return np.concatenate([[0], np.flatnonzero(np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32) == 10) + 1])


def _python_tracks(text: str) -> dict[str, np.ndarray]:
    """in_string, in_docstring, in_comment, bracket_depth from Python's tokenizer."""
    n = len(text)
    starts = _offsets(text)
    out = {name: np.zeros(n, dtype=np.int64) for name in (*BINARY, "bracket_depth")}
    depth_delta = np.zeros(n + 1, dtype=np.int64)
    fstring_start = None
    fstring_nesting = 0
    fstart_tok = getattr(token, "FSTRING_START", None)
    fend_tok = getattr(token, "FSTRING_END", None)

    def at(row: int, col: int) -> int:  # the tokenizer ends a text without a final newline one row further
        return min(int(starts[row - 1] + col), n) if row - 1 < len(starts) else n

    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        a, b = at(*tok.start), at(*tok.end)
        if tok.type == token.STRING:
            body = tok.string.lstrip("rRbBuUfF")
            multi = body[:3] in ('"""', "'''") or tok.start[0] != tok.end[0]
            out["in_docstring" if multi else "in_string"][a:b] = 1
        elif fstart_tok is not None and tok.type == fstart_tok:  # Python 3.12+: f-strings are split
            if fstring_nesting == 0:
                fstring_start = (a, tok.string.lstrip("rRbBuUfF")[:3] in ('"""', "'''"), tok.start[0])
            fstring_nesting += 1
        elif fend_tok is not None and tok.type == fend_tok:
            fstring_nesting -= 1
            if fstring_nesting == 0 and fstring_start is not None:
                s, triple, row = fstring_start
                multi = triple or row != tok.end[0]
                out["in_docstring" if multi else "in_string"][s:b] = 1
        elif tok.type == token.COMMENT:
            out["in_comment"][a:b] = 1
        elif tok.type == token.OP and fstring_nesting == 0:
            if tok.string in _OPEN:
                depth_delta[b] += 1  # the character after an opening bracket is inside it
            elif tok.string in _CLOSE:
                depth_delta[a] -= 1
    out["bracket_depth"] = np.maximum(np.cumsum(depth_delta[:n]), 0)
    return out


class _Scanner:
    """The small scanner for text that ``tokenize`` cannot read, one character at a time:
    quote parity within a line, triple quotes, ``#`` and ``//`` comments to the end of the
    line, and bracket depth outside all of them. Each ``_in_*`` reads the character at ``i``
    in one state and returns where the next read starts."""

    def __init__(self, text: str):
        self.text = text
        self.tracks = {name: np.zeros(len(text), dtype=np.int64) for name in (*BINARY, "bracket_depth")}
        self.quote: str | None = None  # the open single-line quote character
        self.triple: str | None = None  # the open triple quote
        self.comment = False
        self.depth = 0

    def scan(self) -> dict[str, np.ndarray]:
        i = 0
        while i < len(self.text):
            self.tracks["bracket_depth"][i] = self.depth  # strings and comments inside brackets are inside them too
            if self.comment:
                i = self._in_comment(i)
            elif self.triple:
                i = self._in_triple(i)
            elif self.quote:
                i = self._in_quote(i)
            else:
                i = self._in_code(i)
        return self.tracks

    def _mark(self, track: str, a: int, b: int) -> None:
        """Characters a..b belong to ``track``, at the current bracket depth."""
        self.tracks[track][a:b] = 1
        self.tracks["bracket_depth"][a:b] = self.depth

    def _in_comment(self, i: int) -> int:
        if self.text[i] == "\n":
            self.comment = False
        else:
            self.tracks["in_comment"][i] = 1
        return i + 1

    def _in_triple(self, i: int) -> int:
        if self.text.startswith(self.triple, i):
            self._mark("in_docstring", i, i + 3)
            self.triple = None
            return i + 3
        self.tracks["in_docstring"][i] = 1
        return i + 1

    def _in_quote(self, i: int) -> int:
        ch, text = self.text[i], self.text
        if ch == "\\" and i + 1 < len(text) and text[i + 1] != "\n":  # an escaped character stays in the string
            self._mark("in_string", i, i + 2)
            return i + 2
        if ch == "\n":  # a line ends an unclosed quote; the newline is outside it
            self.quote = None
            return i + 1
        self.tracks["in_string"][i] = 1
        if ch == self.quote:
            self.quote = None
        return i + 1

    def _in_code(self, i: int) -> int:
        ch, text = self.text[i], self.text
        if text.startswith(('"""', "'''"), i):
            self.triple = text[i : i + 3]
            self._mark("in_docstring", i, i + 3)
            return i + 3
        if ch in "\"'":
            self.quote = ch
            self.tracks["in_string"][i] = 1
        elif ch == "#" or text.startswith("//", i):
            self.comment = True
            self.tracks["in_comment"][i] = 1
        elif ch in _OPEN:
            self.depth += 1
        elif ch in _CLOSE:
            self.depth = max(self.depth - 1, 0)
            self.tracks["bracket_depth"][i] = self.depth  # a bracket sits at the depth outside it, as with tokenize
        return i + 1


def _heuristic_tracks(text: str) -> dict[str, np.ndarray]:
    """in_string, in_docstring, in_comment and bracket_depth by :class:`_Scanner`."""
    return _Scanner(text).scan()


def document_tracks(text: str, name: str = "") -> tuple[dict[str, np.ndarray], str]:
    """The built-in tracks of one document and the method used (tokenize | heuristic)."""
    tracks = line_features(text)
    if name.endswith((".py", ".pyw", ".pyi")) or not name:
        try:
            tracks.update(_python_tracks(text))
            return tracks, "tokenize"
        except (tokenize.TokenError, IndentationError, SyntaxError, ValueError):
            pass
    tracks.update(_heuristic_tracks(text))
    return tracks, "heuristic"


REGEX_SECONDS = 2.0  # a pattern that backtracks for longer is stopped


def as_typed(pattern: str) -> str:
    """A pattern quoted as the user typed it: ``'\\bdef\\b'``, not repr's doubled backslashes."""
    return f"'{pattern}'"


def regex_feature(pattern: str, timeout: float = REGEX_SECONDS) -> FeatureFn:
    """A binary track marking every character inside a match of ``pattern`` (Python's
    syntax). Matched by the ``regex`` package, which gives up after ``timeout`` seconds and
    lets other threads run meanwhile, so a pattern such as ``(a+)+$`` cannot freeze a server."""
    try:
        compiled = regex.compile(pattern, regex.MULTILINE | regex.VERSION0)
    except (regex.error, ValueError, TypeError) as exc:
        raise LstmvizError(f"Invalid regular expression {as_typed(pattern)}: {exc}.") from None

    def mark(text: str) -> np.ndarray:
        out = np.zeros(len(text) + 1, dtype=np.int64)
        try:
            for m in compiled.finditer(text, concurrent=True, timeout=timeout):
                if m.end() > m.start():
                    out[m.start()] += 1
                    out[m.end()] -= 1
        except TimeoutError:
            raise LstmvizError(
                f"The regular expression {as_typed(pattern)} ran for more than {timeout:g} s on this text "
                "(it backtracks too much); write it more simply."
            ) from None
        return (np.cumsum(out[:-1]) > 0).astype(np.int64)

    return mark


def parse_feature_option(option: str) -> tuple[str, FeatureFn]:
    """``name=REGEX`` from the command line."""
    name, sep, pattern = option.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or not pattern:
        raise LstmvizError(f"--feature takes NAME=REGEX (a name of letters, digits and _), got {as_typed(option)}.")
    return name, regex_feature(pattern)


def compute_features(
    text: str,
    documents: list[tuple[str, int, int]],
    extra: dict[str, FeatureFn] | None = None,
    names: list[str] | None = None,
) -> Features:
    """Tracks over ``text`` made of ``documents`` (name, start, stop). ``extra`` adds user
    features (a function of a document's text returning one value per character, binary
    when it only holds 0 and 1); ``names`` keeps only those."""
    n = len(text)
    values = {name: np.zeros(n, dtype=np.int64) for name in BUILTIN}
    extra = extra or {}
    for name in extra:
        values[name] = np.zeros(n, dtype=np.float64)
    methods = {}
    for doc_name, start, stop in documents:
        piece = text[start:stop]
        tracks, method = document_tracks(piece, doc_name)
        methods[doc_name] = method
        for name, track in tracks.items():
            values[name][start:stop] = track
        for name, fn in extra.items():
            track = np.asarray(fn(piece), dtype=np.float64)
            if track.shape != (stop - start,):
                raise LstmvizError(
                    f"Feature {name!r} returned {track.shape[0]} values for a document of {stop - start} characters."
                )
            values[name][start:stop] = track
    binary = set(BINARY) | {k for k in extra if np.isin(values[k], (0, 1)).all()}
    if names is not None:
        unknown = [k for k in names if k not in values]
        if unknown:
            raise LstmvizError(f"Unknown feature {', '.join(unknown)}; built in: {', '.join(BUILTIN)}.")
        values = {k: values[k] for k in names}
    return Features(values, binary & set(values), methods)


def store_features(store, extra: dict[str, FeatureFn] | None = None, names: list[str] | None = None) -> Features:
    """The tracks over a whole activation store's text."""
    docs = [(d.name, d.start, d.stop) for d in store.documents]
    return compute_features(store.text(), docs, extra, names)
