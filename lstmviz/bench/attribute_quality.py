"""``lstmviz bench attribute --quality N``: whether the attribution methods find what is
known to drive a cell of the shipped model. Inside single-line strings the quote cell
(``L2.c.90``) is on because of the opening quote; inside comments the comment cell
(``L1.c.52``) because of the ``#``. For N positions of each (drawn evenly, with the opening
character within the window), how often each method ranks that character among the three
of largest |contribution|, how well each gradient method's ranking of the window agrees
with exact occlusion's (Spearman's rank correlation, median over positions), and integrated
gradients' completeness error at its default path points (median over positions)."""

from __future__ import annotations

import re

import numpy as np
import torch
from scipy.stats import spearmanr

from ..analysis.attribution.attribute import DEFAULT_STEPS, Located, attribute_located, state_before, target_of
from ..analysis.attribution.methods import METHODS
from ..recording.one_text import evaluation_documents
from .fixtures import default_checkpoint
from .harness import result

WINDOW = 200
CASES = {  # what: (unit, the pattern whose first character drives it)
    "string": ("L2.c.90", re.compile(r"'[^'\n]{2,}'")),
    "comment": ("L1.c.52", re.compile(r"#[^\n]{2,}")),
}


def _positions(docs, pattern: re.Pattern, count: int, seed: int = 0) -> list[tuple[int, int, int]]:
    """(document, position, opener position) for ``count`` positions inside matches, the
    opener at most ``WINDOW - 1`` characters before, drawn evenly from all such positions."""
    found = []
    for k, d in enumerate(docs):
        for m in pattern.finditer(d.text):
            end = min(m.end() - 1, m.start() + WINDOW)
            found += [(k, p, m.start()) for p in range(m.start() + 1, end)]
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(found), size=min(count, len(found)), replace=False) if found else []
    return sorted(found[i] for i in chosen)


def _case(ckpt, docs, unit: str, pattern: re.Pattern, count: int) -> dict:
    model, vocab = ckpt.model, ckpt.vocab
    target = target_of(model, vocab, unit)
    hits = {m: 0 for m in METHODS}
    agreement = {m: [] for m in METHODS if m != "occlusion"}
    completeness = []
    positions = _positions(docs, pattern, count)
    doc = None  # positions come in document order: the state before each window is carried on
    for k, p, opener in positions:
        if k != doc:
            doc, ids, read, state = k, torch.from_numpy(vocab.encode_array(docs[k].text)), 0, None
        first = max(0, p - WINDOW + 1)
        state, read = state_before(model, ids[read:first], state), first
        at = Located(ids, docs[k].text, 0, p)
        results = {m: attribute_located(model, vocab, at, target, m, WINDOW, state=state) for m in METHODS}
        completeness.append(results["ig"].completeness_error)
        for m, r in results.items():
            hits[m] += any(q == opener for q, _, _ in r.top(3))
        for m in agreement:
            rho = spearmanr(results[m].contributions, results["occlusion"].contributions).statistic
            agreement[m].append(float(rho))
    n = len(positions)
    return {
        "unit": unit,
        "positions": n,
        **{f"{m}_top3": round(hits[m] / n, 3) if n else None for m in METHODS},
        **{f"{m}_spearman_vs_occlusion": round(float(np.nanmedian(v)), 3) if v else None for m, v in agreement.items()},
        "ig_completeness_error_median": round(float(np.nanmedian(completeness)), 4) if n else None,
    }


def bench_attribute_quality(checkpoint: str | None = None, positions: int = 1000, units: dict | None = None) -> dict:
    """``units``: another unit for a case (``{"string": "L2.c.5"}``), for another model."""
    ckpt = default_checkpoint(checkpoint)
    docs = evaluation_documents(ckpt)
    figures = {
        "model": f"{ckpt.model_config.num_layers}x{ckpt.model_config.hidden_size} {ckpt.model_config.cell}",
        "ig_steps": DEFAULT_STEPS,
    }
    for what, (unit, pattern) in CASES.items():
        unit = (units or {}).get(what, unit)
        figures |= {f"{what}_{name}": value for name, value in _case(ckpt, docs, unit, pattern, positions).items()}
    measures = "how often each method puts the opening quote (or #) among the top three for its cell"
    return result(f"attribute --quality {positions}", measures, figures)
