"""Honest scores: the documents split in two halves, one to choose and fit the explanation
on, the other to score it on; the score is the correlation of the simulated with the real
activation there (OpenAI's explain-simulate-score), with precision and recall where the
explanation is binary, beside the same score on the held-out text shuffled (a baseline
near zero: what an explanation scores when the text carries nothing of the unit)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core.errors import StoreError
from .context import TextContext

SHUFFLE_SEED = 0


@dataclass
class Halves:
    """The characters an explanation is fitted on and those it is scored on."""

    fit: list[tuple[int, int]]  # character ranges
    held_out: list[tuple[int, int]]

    @staticmethod
    def positions(ranges: list[tuple[int, int]]) -> np.ndarray:
        return np.concatenate([np.arange(a, b) for a, b in ranges]) if ranges else np.zeros(0, dtype=np.int64)


def _pieces(text: str, documents: list[tuple[str, int, int]]) -> list[tuple[int, int]]:
    """The documents; a text of one document is cut in two at the newline nearest its middle."""
    pieces = [(a, b) for _, a, b in documents if b > a]
    if len(pieces) == 1:
        a, b = pieces[0]
        middle = (a + b) // 2
        newline = text.find("\n", middle, b - 1)
        cut = newline + 1 if newline >= 0 else middle
        pieces = [(a, cut), (cut, b)] if a < cut < b else pieces
    return pieces


def split_halves(text: str, documents: list[tuple[str, int, int]]) -> Halves:
    """Whole documents into two halves of about equal size, the larger documents first,
    each to the half with fewer characters so far (the fit half on a tie)."""
    pieces = _pieces(text, documents)
    if len(pieces) < 2:
        raise StoreError(
            "Explaining units needs a text of at least two documents or two lines, to fit on one and score on the other."
        )
    halves: tuple[list, list] = ([], [])
    sizes = [0, 0]
    for a, b in sorted(pieces, key=lambda p: (-(p[1] - p[0]), p[0])):
        side = 0 if sizes[0] <= sizes[1] else 1
        halves[side].append((a, b))
        sizes[side] += b - a
    return Halves(sorted(halves[0]), sorted(halves[1]))


def shuffled_context(ctx: TextContext, ranges: list[tuple[int, int]], seed: int = SHUFFLE_SEED) -> TextContext:
    """The text of ``ranges`` with each range's characters in a random order, as one text
    of as many documents (its positions follow ``Halves.positions(ranges)``)."""
    rng = np.random.default_rng(seed)
    pieces, documents, at = [], [], 0
    for k, (a, b) in enumerate(ranges):
        chars = np.array(list(ctx.text[a:b]), dtype=object)
        pieces.append("".join(chars[rng.permutation(len(chars))]))
        documents.append((f"shuffled-{k}", at, at + b - a))
        at += b - a
    return TextContext("".join(pieces), documents, ctx.extra)


def correlation(simulated: np.ndarray, actual: np.ndarray) -> float:
    """Pearson's r; 0 where either is constant."""
    s = simulated.astype(np.float64) - simulated.mean(dtype=np.float64)
    y = actual.astype(np.float64) - actual.mean(dtype=np.float64)
    norm = float(np.sqrt((s * s).sum() * (y * y).sum()))
    return float((s * y).sum() / norm) if norm > 0 else 0.0


def precision_recall(holds: np.ndarray, actual: np.ndarray, low: float, high: float) -> tuple[float, float]:
    """Of a binary explanation whose map gives ``low`` where it does not hold and ``high``
    where it does: the unit "fires" past the midpoint, towards ``high``; precision is how
    often the explanation holds where it fires, recall how often it fires where it holds."""
    fires = actual > (low + high) / 2 if high >= low else actual < (low + high) / 2
    both = int((fires & holds).sum())
    return both / max(int(fires.sum()), 1), both / max(int(holds.sum()), 1)
