"""The grammar of candidate explanations: each form is a small program that gives one value
per character of a text (a binary "holds here" or a count), with a sentence in words beside
it. Forms are plain tuples, so they travel as JSON:

    ("feature", name)       a text feature (``text/features.py``) or the user's regex feature
    ("class", name)         the character is a digit, a letter, uppercase, whitespace, ...
    ("char", c)             the character is ``c``
    ("previous", c)         the character right after ``c``
    ("ngram", s)            the last ``len(s)`` characters are ``s``
    ("span", x, y)          after ``x`` until ``y`` (``x`` a word or a character)
    ("since_in_span", x, y) counts characters since ``x``, until ``y``
    ("between", q)          between ``q`` quotes on one line
    ("since", c)            counts characters since ``c`` ("word": since the word began)
    ("until", c)            counts characters until ``c``
    ("depth", o)            nesting depth of the bracket ``o``
    ("inside", o)           inside the bracket ``o``
    ("line_starts", w)      on a line whose first word is ``w``
    ("leading_space",)      in a line's leading whitespace
    ("and", a, b)           both ``a`` and ``b`` (for a count: the count where ``a`` holds)
    ("char_table", cs)      which character it is, of ``cs`` (a table from character to value)
    ("previous_table", cs)  which character came just before, of ``cs``
"""

from __future__ import annotations

import numpy as np

from ...text.features import BINARY
from .context import TextContext

Form = tuple

FEATURE_WORDS = {
    "in_string": "inside a string literal",
    "in_docstring": "inside a docstring (a triple-quoted string)",
    "in_comment": "inside a comment",
    "indent": "the line's indentation (its width)",
    "column": "the column (characters since the line began)",
    "to_eol": "characters to the end of the line",
    "bracket_depth": "the nesting depth of brackets",
}

CLASSES = {
    "digit": ("the character is a digit", lambda c: (c >= 48) & (c <= 57)),
    "letter": ("the character is a letter", lambda c: ((c | 32) >= 97) & ((c | 32) <= 122)),
    "uppercase": ("the character is an uppercase letter", lambda c: (c >= 65) & (c <= 90)),
    "lowercase": ("the character is a lowercase letter", lambda c: (c >= 97) & (c <= 122)),
    "whitespace": ("the character is whitespace", lambda c: (c == 32) | (c == 9) | (c == 10) | (c == 13)),
    "punctuation": (
        "the character is punctuation",
        lambda c: (c > 32) & (c < 127) & ~(((c | 32) >= 97) & ((c | 32) <= 122)) & ~((c >= 48) & (c <= 57)),
    ),
    "identifier": ("the character is part of a name (letter, digit or _)", None),
    "non_ascii": ("the character is not ASCII", lambda c: c > 127),
}

BRACKETS = {"(": ")", "[": "]", "{": "}"}
TABLE_KINDS = ("char_table", "previous_table")  # fitted as a table, one value a character, not a monotone map
BINARY_KINDS = {"class", "char", "previous", "ngram", "span", "between", "inside", "line_starts", "leading_space"}


def shown(s: str) -> str:
    """A character or string as the words show it."""
    return {"\n": "the newline", " ": "a space", "\t": "a tab", "word": "the word's start"}.get(s) or "`" + s.replace(
        "\n", "⏎"
    ) + "`"


def words(form: Form) -> str:
    """The form in words."""
    kind, *args = form
    if kind == "feature":
        return FEATURE_WORDS.get(args[0], f"inside a match of the feature `{args[0]}`")
    if kind == "class":
        return CLASSES[args[0]][0]
    if kind == "and":
        return f"{words(args[0])}, and {words(args[1])}" if is_binary(args[1]) else f"{words(args[1])}, {words(args[0])}"
    simple = {
        "char": lambda c: f"the character is {shown(c)}",
        "previous": lambda c: f"right after {shown(c)}",
        "ngram": lambda s: f"at the end of {shown(s)}",
        "span": lambda x, y: f"after {shown(x)} until {shown(y)}",
        "since_in_span": lambda x, y: f"counts characters since {shown(x)}, until {shown(y)}",
        "between": lambda q: f"between {shown(q)} quotes on one line",
        "since": lambda c: (
            "counts characters since the newline (the column)" if c == "\n" else f"counts characters since {shown(c)}"
        ),
        "until": lambda c: (
            "counts characters until the newline (to the end of the line)" if c == "\n" else f"counts characters until {shown(c)}"
        ),
        "depth": lambda o: f"nesting depth of {shown(o)} brackets",
        "inside": lambda o: f"inside {shown(o + BRACKETS[o])} brackets",
        "line_starts": lambda w: f"on a line that starts with {shown(w)}",
        "leading_space": lambda: "in a line's leading whitespace (its indentation)",
        "char_table": lambda cs: "the character itself",
        "previous_table": lambda cs: "the character before",
    }
    return simple[kind](*args)


def structure(form: Form) -> dict:
    """The form as JSON: its kind and named arguments."""
    names = {
        "feature": ("name",), "class": ("class",), "char": ("char",), "previous": ("char",), "ngram": ("chars",),
        "span": ("after", "until"), "since_in_span": ("after", "until"), "between": ("quote",), "since": ("char",),
        "until": ("char",), "depth": ("bracket",), "inside": ("bracket",), "line_starts": ("word",), "leading_space": (),
        "char_table": ("chars",), "previous_table": ("chars",),
    }  # fmt: skip
    kind, *args = form
    if kind == "and":
        return {"kind": "and", "of": [structure(args[0]), structure(args[1])]}
    return {"kind": kind, **dict(zip(names[kind], args, strict=True))}


def from_structure(data: dict) -> Form:
    """The form a :func:`structure` came from."""
    if data["kind"] == "and":
        return ("and", *(from_structure(d) for d in data["of"]))
    return (data["kind"], *(v for k, v in data.items() if k != "kind"))


def is_binary(form: Form) -> bool:
    kind = form[0]
    if kind == "feature":
        return form[1] in BINARY or form[1] not in FEATURE_WORDS
    if kind == "and":
        return is_binary(form[1]) and is_binary(form[2])
    return kind in BINARY_KINDS


def _is_word(s: str) -> bool:
    return len(s) > 1 and s.isidentifier()


def _span(ctx: TextContext, x: str, y: str) -> tuple[np.ndarray, np.ndarray]:
    """Whether each character is after ``x`` (from its start) and before the next ``y``, and
    where that ``x`` started."""
    opened = ctx.last_at(ctx.starts(x, _is_word(x)))
    closed = ctx.last_at(ctx.char_mask(y)) if len(y) == 1 else ctx.last_at(ctx.starts(y, _is_word(y)))
    return opened > closed, opened


def _between(ctx: TextContext, q: str) -> np.ndarray:
    """Inside a pair of ``q`` on one line, the quotes too (by their count since the line began)."""
    is_q = ctx.char_mask(q)
    count = np.cumsum(is_q)
    before_line = np.where(ctx.line_start > 0, count[np.maximum(ctx.line_start - 1, 0)], 0)
    seen = count - before_line
    return (seen % 2 == 1) | (is_q & (seen > 0))


def _depth(ctx: TextContext, o: str) -> np.ndarray:
    step = ctx.char_mask(o).astype(np.int64) - np.concatenate([[0], ctx.char_mask(BRACKETS[o])[:-1]]).astype(np.int64)
    total = np.cumsum(step)
    at_start = np.where(ctx.doc_start > 0, total[np.maximum(ctx.doc_start - 1, 0)], 0)
    return np.maximum(total - at_start, 0)


def _plain_values(form: Form, ctx: TextContext) -> np.ndarray:
    kind, *args = form
    codes, index = ctx.codes, ctx.index
    if kind == "feature":
        return ctx.features[args[0]]
    if kind == "class":
        return ctx.identifier if args[0] == "identifier" else CLASSES[args[0]][1](codes)
    if kind == "char":
        return ctx.char_mask(args[0])
    if kind == "previous":
        return np.concatenate([[False], ctx.char_mask(args[0])[:-1]]) & (index > ctx.doc_start)
    if kind == "ngram":
        return ctx.ends(args[0]) & (index - len(args[0]) + 1 >= ctx.doc_start)
    if kind in ("span", "since_in_span"):
        on, opened = _span(ctx, *args)
        return on if kind == "span" else np.where(on, index - opened, 0)
    if kind == "between":
        return _between(ctx, args[0])
    if kind in ("since", "until"):
        mask = ~ctx.identifier if args[0] == "word" else ctx.char_mask(args[0])
        return index - ctx.last_at(mask) if kind == "since" else ctx.next_at(mask) - index
    if kind in ("depth", "inside"):
        depth = _depth(ctx, args[0])
        return depth if kind == "depth" else depth > 0
    if kind == "line_starts":
        first = np.minimum(ctx.line_first_word, len(ctx) - 1)
        return ctx.starts(args[0], _is_word(args[0]))[first] & (ctx.line_first_word < ctx.doc_stop)
    if kind == "leading_space":
        return index < ctx.line_first_word
    if kind in TABLE_KINDS:
        table = np.zeros(int(codes.max(initial=0)) + 1, dtype=np.int64)
        table[[ord(c) for c in args[0]]] = np.arange(1, len(args[0]) + 1)
        which = table[codes]  # 0: a character not in the table
        return which if kind == "char_table" else np.where(index > ctx.doc_start, np.concatenate([[0], which[:-1]]), 0)
    raise ValueError(f"unknown form {form!r}")


def values(form: Form, ctx: TextContext) -> np.ndarray:
    """The form's value at every character of ``ctx``, float32 (computed each time: a
    store's thousands of forms would not fit in memory at once)."""
    if form[0] == "and":
        return values(form[1], ctx) * values(form[2], ctx)
    return np.asarray(_plain_values(form, ctx), dtype=np.float32)
