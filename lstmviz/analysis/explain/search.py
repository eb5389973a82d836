"""The search: every candidate form's values computed once per text (not per unit) on a
sample of the fitting half, every unit correlated with every form in one matrix product
per block of units, then for each unit its best forms and their conjunctions fitted through
a monotone map, the best by its fit chosen, and every candidate scored on all held-out
characters (by per-level sums: one counting pass a candidate)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from .candidates import candidate_forms, usable
from .context import TextContext
from .grammar import TABLE_KINDS, Form, is_binary, shown, structure, values, words
from .mapping import MonotoneMap, fit_map, fit_table, level_codes, level_edges
from .results import Candidate, UnitExplanation
from .scoring import Halves, correlation, precision_recall, shuffled_context, split_halves

SEARCH_CHARS = 40_000  # characters of the fitting half the search and the fit read
TOP_FORMS = 6  # a unit's best forms, fitted and paired into conjunctions
SIMPLER_BY = 0.02  # a conjunction is tried only where it beats its unit's best form by this much
SHOWN = 5  # candidates reported a unit
BLOCK = 64  # units read and correlated at once


def _normalised_columns(matrix: np.ndarray) -> np.ndarray:
    """Each column centred, to unit length (a constant one all 0)."""
    centred = matrix - matrix.mean(0, dtype=np.float64).astype(np.float32)
    norm = np.sqrt((centred.astype(np.float64) ** 2).sum(0))
    return (centred / np.where(norm > 0, norm, np.inf).astype(np.float32)).astype(np.float32)


@dataclass
class Prepared:
    """What the search needs of a text, computed once for all its units."""

    ctx: TextContext
    halves: Halves
    sample: np.ndarray  # positions of the fitting half the search reads
    held: np.ndarray  # every held-out position
    forms: list[Form]
    sample_values: np.ndarray  # [sample, forms] float32
    columns: torch.Tensor  # [sample, columns]: each form, and the logarithm of each count, centred and normalised
    first_column: np.ndarray  # [forms]: each form's first column
    tables: list[tuple[Form, np.ndarray]]  # the table forms, tried for every unit, with their sampled values
    _levels: dict = field(default_factory=dict)  # form -> (edges, held-out codes, their counts)
    _shuffled: dict = field(default_factory=dict)  # form -> codes on the held-out text shuffled

    def levels(self, form: Form, sample: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if form not in self._levels:
            edges = level_edges(sample)
            codes = level_codes(values(form, self.ctx)[self.held], edges)
            self._levels[form] = (edges, codes, np.bincount(codes, minlength=len(edges) + 1).astype(np.float64))
        return self._levels[form]

    def shuffled_codes(self, form: Form) -> np.ndarray:
        if form not in self._shuffled:
            if "ctx" not in self._shuffled:
                self._shuffled["ctx"] = shuffled_context(self.ctx, self.halves.held_out)
            self._shuffled[form] = level_codes(values(form, self._shuffled["ctx"]), self._levels[form][0])
        return self._shuffled[form]


def prepare(text: str, documents: list[tuple[str, int, int]], extra=None, seed: int = 0) -> Prepared:
    """Split the text, learn the candidate forms from its fitting half, and compute each
    one's values on a sample of that half."""
    ctx = TextContext(text, documents, dict(extra or {}))
    halves = split_halves(text, documents)
    fit = Halves.positions(halves.fit)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(fit, SEARCH_CHARS, replace=False)) if len(fit) > SEARCH_CHARS else fit
    forms, kept, columns, first, tables = candidate_forms(ctx, "\n".join(text[a:b] for a, b in halves.fit)), [], [], [], []
    for form in forms:
        v = values(form, ctx)[sample]
        if not usable(form, v):
            continue
        if form[0] in TABLE_KINDS:
            tables.append((form, v))
            continue
        first.append(len(columns))
        kept.append(form)
        columns.append(v)
        if not is_binary(form):
            columns.append(np.log1p(np.abs(v)) * np.sign(v))
    matrix = np.stack(columns, 1) if columns else np.zeros((len(sample), 0), np.float32)
    own = np.array(first, dtype=np.int64)
    held = Halves.positions(halves.held_out)
    columns_ = torch.from_numpy(_normalised_columns(matrix))
    return Prepared(ctx, halves, sample, held, kept, matrix[:, own], columns_, own, tables)


def _form_scores(prep: Prepared, sampled: np.ndarray) -> np.ndarray:
    """|r| of each unit ([units, sample]) with each form, the better of its columns: [units, forms]."""
    if not prep.forms:
        return np.zeros((len(sampled), 0))
    r = np.abs((torch.from_numpy(_normalised_columns(sampled.T).T.copy()) @ prep.columns).numpy())
    return np.maximum.reduceat(r, prep.first_column, axis=1)


def _conjunction(prep: Prepared, top: np.ndarray, actual: np.ndarray) -> tuple[Form, np.ndarray, float] | None:
    """The best pair of a unit's best forms, one of them binary: (form, sampled values, |r|)."""
    pairs = [(a, b) for a in top for b in top if a != b and is_binary(prep.forms[a]) and (not is_binary(prep.forms[b]) or a < b)]
    if not pairs:
        return None
    v = prep.sample_values
    products = np.stack([v[:, a] * v[:, b] for a, b in pairs], 1)
    r = np.abs(_normalised_columns(products).T @ _normalised_columns(actual[:, None])[:, 0])
    order = [k for k in np.argsort(-r) if usable(("and", prep.forms[pairs[k][0]], prep.forms[pairs[k][1]]), products[:, k])]
    if not order:
        return None
    a, b = pairs[order[0]]
    return ("and", prep.forms[a], prep.forms[b]), products[:, order[0]], float(r[order[0]])


@dataclass
class _Held:
    """One unit's held-out values, summed once for every candidate's score."""

    values: np.ndarray
    total: float
    squares: float

    def correlation(self, codes: np.ndarray, counts: np.ndarray, fitted: MonotoneMap) -> float:
        """Pearson's r of ``fitted.simulate(codes)`` with the values, from per-level sums."""
        n, m = len(self.values), fitted.values
        by_level = np.bincount(codes, weights=self.values, minlength=len(m))
        cov = float(m @ by_level) - float(counts @ m) * self.total / n
        var_s = float(counts @ (m * m)) - float(counts @ m) ** 2 / n
        var_y = self.squares - self.total**2 / n
        return float(cov / np.sqrt(var_s * var_y)) if var_s > 1e-12 * n and var_y > 0 else 0.0


def _table_words(form: Form, edges: np.ndarray, fitted: MonotoneMap) -> str:
    """A table's words: the characters it gives the highest and lowest values."""
    chars = {int(level): form[1][int(value) - 1] for level, value in enumerate([0.0, *edges]) if value >= 1}
    ranked = [chars[k] for k in np.argsort(-fitted.values) if k in chars]
    high, low = (", ".join(shown(c) for c in part) for part in (ranked[:3], ranked[-2:]))
    return f"{words(form)}: highest on {high}; lowest on {low}"


def _candidate(prep: Prepared, form: Form, sampled_form: np.ndarray, actual: np.ndarray, held: _Held) -> Candidate:
    edges, codes, counts = prep.levels(form, sampled_form)
    sample_codes = level_codes(sampled_form, edges)
    table = form[0] in TABLE_KINDS
    fitted = (fit_table if table else fit_map)(sample_codes, actual.astype(np.float64), len(edges) + 1)
    fit_score = correlation(fitted.simulate(sample_codes), actual)
    if table:
        phrase = _table_words(form, edges, fitted)
    else:
        phrase = words(form) + ("" if fitted.rising else " (low there)" if is_binary(form) else " (falling)")
    score = held.correlation(codes, counts, fitted)
    return Candidate(phrase, structure(form), score, fit_score, {"edges": [float(e) for e in edges], **fitted.to_json()})


def _explain_one(prep: Prepared, name: str, sampled: np.ndarray, scores: np.ndarray, held: _Held) -> UnitExplanation:
    top = np.argsort(-scores)[:TOP_FORMS]
    tried = [(prep.forms[k], prep.sample_values[:, k]) for k in top] + prep.tables
    paired = _conjunction(prep, top, sampled)
    if paired is not None and len(top) and paired[2] >= scores[top[0]] + SIMPLER_BY:
        tried.insert(0, paired[:2])
    candidates = sorted((_candidate(prep, f, v, sampled, held) for f, v in tried), key=lambda c: -c.fit_score)
    if not candidates:
        empty = Candidate("nothing in this text varies", {"kind": "none"}, 0.0, 0.0)
        return UnitExplanation(name, empty, 0.0, None, None, [])
    best = candidates[0]
    form = next(f for f, _ in tried if structure(f) == best.form)
    fitted = np.asarray(best.map["levels"])
    shuffled_codes = prep.shuffled_codes(form)
    shuffled_counts = np.bincount(shuffled_codes, minlength=len(fitted)).astype(np.float64)
    shuffled = held.correlation(shuffled_codes, shuffled_counts, MonotoneMap(fitted, best.map["rising"]))
    precision = recall = None
    if is_binary(form):
        precision, recall = precision_recall(prep.levels(form, None)[1] == 1, held.values, fitted[0], fitted[-1])
    return UnitExplanation(name, best, shuffled, precision, recall, candidates[:SHOWN])


def explain_block(prep: Prepared, names: list[str], series: np.ndarray) -> list[UnitExplanation]:
    """Explain units ``names`` from their values over the whole text ([units, characters])."""
    series = np.nan_to_num(np.asarray(series, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    sampled = series[:, prep.sample]
    scores = _form_scores(prep, sampled)
    out = []
    for i, name in enumerate(names):
        values_ = series[i, prep.held].astype(np.float64)
        held = _Held(values_, float(values_.sum()), float((values_ * values_).sum()))
        out.append(_explain_one(prep, name, sampled[i], scores[i], held))
    return out


def explain_series(
    prep: Prepared, names: list[str], read: Callable[[list[str]], np.ndarray], block: int = BLOCK
) -> list[UnitExplanation]:
    """Explain every unit of ``names``, reading ``block`` of them at a time with ``read``."""
    return [e for k in range(0, len(names), block) for e in explain_block(prep, names[k : k + block], read(names[k : k + block]))]
