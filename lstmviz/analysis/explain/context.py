"""A text as the explainer's grammar reads it: the characters as codes, each character's
document, and the few vectorised scans every description is built from (where a string
starts, the last or next place something holds, within one document), kept once computed."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ...text.features import FeatureFn, Features, compute_features


def _identifier(codes: np.ndarray) -> np.ndarray:
    """Characters that may stand in a Python identifier (ASCII letters, digits, ``_``; any
    non-ASCII letter too)."""
    lower = (codes >= ord("a")) & (codes <= ord("z"))
    upper = (codes >= ord("A")) & (codes <= ord("Z"))
    digit = (codes >= ord("0")) & (codes <= ord("9"))
    return lower | upper | digit | (codes == ord("_")) | (codes > 127)


@dataclass
class TextContext:
    """One text made of ``documents`` (name, start, stop), with the user's regex features."""

    text: str
    documents: list[tuple[str, int, int]]
    extra: dict[str, FeatureFn] = field(default_factory=dict)
    _memo: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.text)

    @cached_property
    def codes(self) -> np.ndarray:
        return np.frombuffer(self.text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)

    @cached_property
    def index(self) -> np.ndarray:
        return np.arange(len(self.text), dtype=np.int64)

    @cached_property
    def doc_start(self) -> np.ndarray:
        """Each character's document's first position."""
        out = np.zeros(len(self.text), dtype=np.int64)
        for _, start, stop in self.documents:
            out[start:stop] = start
        return out

    @cached_property
    def doc_stop(self) -> np.ndarray:
        out = np.full(len(self.text), len(self.text), dtype=np.int64)
        for _, start, stop in self.documents:
            out[start:stop] = stop
        return out

    @cached_property
    def identifier(self) -> np.ndarray:
        return _identifier(self.codes)

    @cached_property
    def features(self) -> Features:
        """The built-in text features and the user's (``text/features.py``)."""
        return compute_features(self.text, self.documents, self.extra)

    def memo(self, key, compute):
        """``compute()``, once per ``key``."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def starts(self, s: str, word: bool = False) -> np.ndarray:
        """Where ``s`` starts (``word``: as a whole word, no identifier character either side)."""

        def compute():
            codes, n, k = self.codes, len(self.text), len(s)
            out = np.zeros(n, dtype=bool)
            if k == 0 or k > n:
                return out
            out[: n - k + 1] = True
            for j, ch in enumerate(s):
                out[: n - k + 1] &= codes[j : n - k + 1 + j] == ord(ch)
            if word:
                before = np.concatenate([[False], self.identifier[:-1]])
                after = np.concatenate([self.identifier[k:], np.zeros(k, dtype=bool)])
                out &= ~before & ~after
            return out

        return self.memo(("starts", s, word), compute)

    def ends(self, s: str, word: bool = False) -> np.ndarray:
        """Where ``s`` ends: its last character."""
        return self.memo(("ends", s, word), lambda: np.roll(self.starts(s, word), len(s) - 1) if s else self.starts(s))

    def last_at(self, mask: np.ndarray) -> np.ndarray:
        """The last position at or before each character where ``mask`` holds, in its
        document; one before the document's start where there is none."""
        last = np.maximum.accumulate(np.where(mask, self.index, -1)) if len(mask) else self.index
        return np.maximum(last, self.doc_start - 1)

    def next_at(self, mask: np.ndarray) -> np.ndarray:
        """The next position at or after each character where ``mask`` holds, in its
        document; the document's end where there is none."""
        n = len(mask)
        if not n:
            return self.index
        nxt = np.minimum.accumulate(np.where(mask, self.index, n)[::-1])[::-1]
        return np.minimum(nxt, self.doc_stop)

    def char_mask(self, char: str) -> np.ndarray:
        return self.memo(("char", char), lambda: self.codes == ord(char))

    @cached_property
    def line_start(self) -> np.ndarray:
        """Each character's line's first position (a newline ends its line)."""
        after_newline = np.concatenate([[False], self.char_mask("\n")[:-1]]) if len(self.text) else self.index.astype(bool)
        return np.maximum(self.last_at(after_newline), self.doc_start)

    @cached_property
    def line_first_word(self) -> np.ndarray:
        """Each character's line's first non-blank position (past the line where it has none)."""
        blank = self.char_mask(" ") | self.char_mask("\t")
        return self.next_at(~blank)[self.line_start] if len(self.text) else self.index
