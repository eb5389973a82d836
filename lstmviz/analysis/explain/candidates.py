"""Which forms of the grammar are tried on a text: the fixed ones (features, character
classes, brackets, positions) and the ones learned from the text the explainer fits on (its
frequent characters, n-grams, words and first words of lines, and the spans "after X until
Y" they open and close), kept where they neither never nor always hold."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

from .context import TextContext
from .grammar import BRACKETS, CLASSES, Form, is_binary
from .mapping import LEVELS

TOP_CHARS = 48  # "the character is c"
TOP_PREVIOUS = 32  # "right after c"
TOP_NGRAMS = 96  # of each length 2 and 3
TOP_OPENERS = 24  # punctuation and words that open spans, of each
TOP_LINE_WORDS = 16
CLOSERS = ("\n", " ", ",", ")", "]", "}", ":", ".", "(", "=")
COVERAGE = (0.001, 0.9)  # a binary form holding on less or more of the text says nothing


def _punctuation(c: str) -> bool:
    return c.isprintable() and not c.isspace() and not c.isalnum() and c != "_"


def _learned_strings(text: str) -> dict[str, list[str]]:
    """The text's frequent characters, punctuation, n-grams, words and first words of lines."""
    chars = [c for c, _ in Counter(text).most_common()]
    grams = {k: Counter(text[i : i + k] for i in range(len(text) - k + 1)) for k in (2, 3)}
    words = Counter(re.findall(r"[A-Za-z_][A-Za-z0-9_]+", text))
    firsts = Counter(re.findall(r"^[ \t]*([A-Za-z_][A-Za-z0-9_]*|[^\sA-Za-z0-9_])", text, re.MULTILINE))
    return {
        "chars": chars[:TOP_CHARS],
        "punctuation": [c for c in chars if _punctuation(c)][:TOP_OPENERS],
        "ngrams": [g for k in (2, 3) for g, _ in grams[k].most_common(TOP_NGRAMS)],
        "words": [w for w, _ in words.most_common(TOP_OPENERS)],
        "line_words": [w for w, _ in firsts.most_common(TOP_LINE_WORDS)],
    }


def _fixed_forms(ctx: TextContext) -> list[Form]:
    present = [k for k in ctx.features.names() if k not in ctx.features.absent()]
    forms: list[Form] = [("feature", k) for k in present]
    forms += [("class", c) for c in CLASSES]
    forms += [(kind, o) for o in BRACKETS for kind in ("depth", "inside")]
    forms += [("leading_space",)]
    return forms


def _learned_forms(learned: dict[str, list[str]]) -> list[Form]:
    forms: list[Form] = [("char", c) for c in learned["chars"]]
    forms += [("previous", c) for c in learned["chars"][:TOP_PREVIOUS]]
    forms += [("ngram", g) for g in learned["ngrams"]]
    forms += [("line_starts", w) for w in learned["line_words"]]
    table = "".join(learned["chars"][: LEVELS - 1])
    forms += [("char_table", table), ("previous_table", table)]
    forms += [("between", q) for q in ("'", '"', "`") if q in learned["chars"]]
    anchors = ["\n", " ", "word", *learned["punctuation"][:12]]
    forms += [(kind, c) for c in dict.fromkeys(anchors) for kind in ("since", "until") if not (kind == "until" and c == "word")]
    for opener in [*learned["punctuation"], *learned["words"]]:
        closers = [BRACKETS[opener]] if opener in BRACKETS else []
        for closer in dict.fromkeys([*closers, *CLOSERS]):
            if closer != opener:
                forms += [("span", opener, closer), ("since_in_span", opener, closer)]
    return forms


def candidate_forms(ctx: TextContext, learn_text: str) -> list[Form]:
    """The forms to try on ``ctx``, the learned ones learned from ``learn_text`` alone."""
    return list(dict.fromkeys(_fixed_forms(ctx) + _learned_forms(_learned_strings(learn_text))))


def usable(form: Form, sample: np.ndarray) -> bool:
    """Whether a form's values on the characters it is fitted on can tell anything: they
    vary, and a binary one holds on between 0.1% and 90% of them."""
    if not len(sample) or sample.min() == sample.max():
        return False
    return not is_binary(form) or COVERAGE[0] <= float(sample.mean()) <= COVERAGE[1]
