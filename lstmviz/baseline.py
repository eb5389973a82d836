"""The n-gram character model that a recurrent model must beat (Karpathy et al. 2015, sec. 4.2,
compared against up to 20-grams).

Interpolated Witten-Bell smoothing (Witten & Bell 1991; Chen & Goodman 1998, sec. 2.5):
    P_k(x | ctx) = (c(ctx, x) + T(ctx) * P_{k-1}(x | ctx')) / (c(ctx) + T(ctx))
with T(ctx) the number of distinct characters seen after ctx, ctx' the context shortened by
one, and P_0 uniform. Contexts are 64-bit hashes of the previous characters, so every order
is counted with one sort over the training text, vectorised in numpy.

Each document is scored like the recurrent model scores it: every character after the first,
with no context from other documents.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit multiplier for the rolling context hash
_BOS = -1  # id of "before the document starts"


@dataclass
class NgramResult:
    order: int  # the best order tried
    bpc: float  # its bits per character
    bpc_by_order: dict[int, float]
    log2_probs: np.ndarray  # [targets] log2 P(actual next char) at the best order
    chars: int

    def to_json(self) -> dict:
        return {
            "name": "interpolated Witten-Bell n-gram",
            "order": self.order,
            "bpc": round(self.bpc, 5),
            "bpc_by_order": {str(k): round(v, 5) for k, v in self.bpc_by_order.items()},
        }


def _with_bos(docs: list[np.ndarray], pad: int) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate documents, each preceded by ``pad`` BOS ids; return ids and a mask of the
    positions that are scored targets (every real character but a document's first)."""
    parts, scored = [], []
    for d in docs:
        d = np.asarray(d, dtype=np.int64)
        parts.append(np.full(pad, _BOS, dtype=np.int64))
        parts.append(d)
        m = np.ones(len(d), dtype=bool)
        if len(d):
            m[0] = False
        scored.append(np.zeros(pad, dtype=bool))
        scored.append(m)
    return np.concatenate(parts), np.concatenate(scored)


def _context_hashes(ids: np.ndarray, k: int, prev: np.ndarray | None) -> np.ndarray:
    """Hash of the k characters before each position, from the hash of the k-1 before."""
    shifted = np.empty_like(ids)
    shifted[:k] = _BOS
    shifted[k:] = ids[:-k]
    base = np.zeros(len(ids), dtype=np.uint64) if prev is None else prev
    with np.errstate(over="ignore"):
        return base * _MIX + (shifted + 2).astype(np.uint64)


def _lookup(sorted_keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    pos = np.searchsorted(sorted_keys, queries)
    pos_c = np.minimum(pos, len(sorted_keys) - 1)
    hit = (pos < len(sorted_keys)) & (sorted_keys[pos_c] == queries)
    return np.where(hit, values[pos_c], 0)


def _count(ctx: np.ndarray, pair: np.ndarray) -> tuple[np.ndarray, ...]:
    """Sorted unique (context, char) pair keys with their counts, and for each context the
    number of distinct characters that follow it (Witten-Bell's T)."""
    idx = np.argsort(pair)
    sorted_pair = pair[idx]
    starts = np.ones(len(pair), dtype=bool)
    starts[1:] = sorted_pair[1:] != sorted_pair[:-1]
    start_idx = np.flatnonzero(starts)
    pair_counts = np.diff(np.append(start_idx, len(pair)))
    type_keys, type_counts = np.unique(ctx[idx][starts], return_counts=True)
    return sorted_pair[start_idx], pair_counts, type_keys, type_counts


def ngram_baseline(
    train_docs: list[np.ndarray], eval_docs: list[np.ndarray], vocab_size: int, max_order: int = 12
) -> NgramResult:
    """Train on ``train_docs`` and score ``eval_docs`` (encoded id arrays) for orders
    1..``max_order``; report the best."""
    if max_order < 1:
        raise ValueError("max_order must be at least 1")
    train, _ = _with_bos(train_docs, max_order)
    test, scored = _with_bos(eval_docs, max_order)
    targets = test[scored]
    if len(targets) == 0:
        raise ValueError("nothing to score: every document has fewer than two characters")
    prob = np.full(len(targets), 1.0 / vocab_size)  # P_0: uniform
    bpc_by_order, probs_by_order = {}, {}
    train_ctx = test_ctx = None
    train_real = train != _BOS
    train_x = train.astype(np.uint64)
    for order in range(1, max_order + 1):
        k = order - 1
        if k > 0:
            train_ctx = _context_hashes(train, k, train_ctx)
            test_ctx = _context_hashes(test, k, test_ctx)
        tctx = np.zeros(len(train), dtype=np.uint64) if train_ctx is None else train_ctx
        qctx = np.zeros(len(test), dtype=np.uint64) if test_ctx is None else test_ctx
        ctx = tctx[train_real]
        with np.errstate(over="ignore"):
            pair = ctx * _MIX + train_x[train_real]
            query_pair = qctx[scored] * _MIX + targets.astype(np.uint64)
        pair_keys, pair_counts, type_keys, type_counts = _count(ctx, pair)
        ctx_keys, ctx_counts = np.unique(ctx, return_counts=True)
        c_pair = _lookup(pair_keys, pair_counts, query_pair)
        c_ctx = _lookup(ctx_keys, ctx_counts, qctx[scored])
        t_ctx = _lookup(type_keys, type_counts, qctx[scored])
        seen = c_ctx > 0
        prob = np.where(seen, (c_pair + t_ctx * prob) / np.maximum(c_ctx + t_ctx, 1), prob)
        logp = np.log2(prob)
        bpc_by_order[order] = float(-logp.mean())
        probs_by_order[order] = logp
    best = min(bpc_by_order, key=bpc_by_order.get)
    return NgramResult(best, bpc_by_order[best], bpc_by_order, probs_by_order[best], int(len(targets)))
