"""The n-gram character model that a recurrent model must beat (Karpathy et al. 2015, sec. 4.2,
compared against up to 20-grams).

Interpolated modified Kneser-Ney (Chen & Goodman 1998, sec. 3.5 and 4.1.6):
    P_k(x | ctx) = (c(ctx x) - D_k(c(ctx x))) / c(ctx) + gamma(ctx) * P'_{k-1}(x | ctx')
    gamma(ctx)   = (D_k1 N1(ctx) + D_k2 N2(ctx) + D_k3+ N3+(ctx)) / c(ctx)
where D_k(0) = 0 and D_k(1), D_k(2), D_k(3 or more) are three discounts per order, N1, N2,
N3+ count the characters seen once, twice, three times or more after ctx, and ctx' is ctx
without its oldest character. The highest order counts occurrences; the lower orders P'
count continuations, c'(ctx x) = the number of distinct characters seen before ctx x. P'_0 is
uniform. A context never seen backs off. Each order's discounts come from its counts of
counts n1..n4 (Chen & Goodman's estimates):
    Y = n1 / (n1 + 2 n2),  D1 = 1 - 2Y n2/n1,  D2 = 2 - 3Y n3/n2,  D3+ = 3 - 4Y n4/n3,
or, where one of n1..n4 is zero (tiny texts), one discount Y for all three; each is then held
inside [0.05, k - 0.05] (k = 1, 2, 3), so no count loses all of its mass and every context
passes some on.

Contexts are 64-bit hashes of the previous characters, so every order is counted with a few
sorts over the training text, vectorised in numpy. Each document is scored as the
recurrent model scores it: every character after the first, with no context from other
documents.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit multiplier for the rolling context hash
_BOS = -1  # id of "before the document starts"
DEFAULT_MAX_ORDER = 20  # Karpathy et al. compared against up to 20-grams


@dataclass
class NgramResult:
    order: int  # the best order tried
    bpc: float  # its bits per character
    bpc_by_order: dict[int, float]
    log2_probs: np.ndarray  # [targets] log2 P(actual next char) at the best order
    chars: int

    def to_json(self) -> dict:
        return {
            "name": "interpolated modified Kneser-Ney n-gram",
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
        parts += [np.full(pad, _BOS, dtype=np.int64), d]
        m = np.ones(len(d), dtype=bool)
        m[:1] = False
        scored += [np.zeros(pad, dtype=bool), m]
    return np.concatenate(parts), np.concatenate(scored)


def _extend(ids: np.ndarray, k: int, shorter: np.ndarray) -> np.ndarray:
    """Hash of the k characters before each position, from the hash of the k-1 before."""
    older = np.full(len(ids), _BOS, dtype=np.int64)
    older[k:] = ids[:-k]
    with np.errstate(over="ignore"):
        return shorter * _MIX + (older + 2).astype(np.uint64)


def _pair(ctx: np.ndarray, x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return ctx * _MIX + (x + 2).astype(np.uint64)


def _lookup(keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    pos = np.minimum(np.searchsorted(keys, queries), max(len(keys) - 1, 0))
    return np.where(keys[pos] == queries, values[pos], 0) if len(keys) else np.zeros(len(queries), dtype=values.dtype)


def discounts(count_of_counts: dict[int, int]) -> tuple[float, float, float]:
    """D1, D2, D3+ of one order from how many (context, character) pairs occur 1..4 times."""
    n1, n2, n3, n4 = (count_of_counts.get(k, 0) for k in (1, 2, 3, 4))
    y = n1 / (n1 + 2 * n2) if n1 + n2 else 0.5
    if min(n1, n2, n3, n4) > 0:
        raw = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
    else:
        raw = (y, y, y)
    return tuple(min(max(d, 0.05), k - 0.05) for k, d in enumerate(raw, start=1))


@dataclass
class _Counts:
    """One order's statistics: (context, char) pair counts, context totals, the mass each
    context passes to the order below (the numerator of gamma), and the three discounts."""

    pair_keys: np.ndarray
    pair_counts: np.ndarray
    ctx_keys: np.ndarray
    ctx_totals: np.ndarray
    ctx_backoff: np.ndarray
    discount: np.ndarray  # [4]: D(0) = 0, D1, D2, D3+

    @classmethod
    def build(cls, ctx: np.ndarray, x: np.ndarray) -> _Counts:
        """From parallel arrays of contexts and characters, each pair counted once."""
        pairs = _pair(ctx, x)
        order = np.argsort(pairs, kind="stable")
        sp = pairs[order]
        first = np.ones(len(sp), dtype=bool)
        first[1:] = sp[1:] != sp[:-1]
        starts = np.flatnonzero(first)
        counts = np.diff(np.append(starts, len(sp))).astype(np.int64)
        pair_ctx = ctx[order][starts]
        ctx_keys, inverse = np.unique(pair_ctx, return_inverse=True)
        totals = np.bincount(inverse, weights=counts, minlength=len(ctx_keys)).astype(np.int64)
        seen_times = np.bincount(np.minimum(counts, 5), minlength=6)
        discount = np.array((0.0, *discounts({k: int(seen_times[k]) for k in (1, 2, 3, 4)})))
        backoff = np.bincount(inverse, weights=discount[np.minimum(counts, 3)], minlength=len(ctx_keys))
        return cls(sp[starts], counts, ctx_keys, totals, backoff, discount)

    def prob(self, qctx: np.ndarray, qx: np.ndarray, lower: np.ndarray) -> np.ndarray:
        c = _lookup(self.pair_keys, self.pair_counts, _pair(qctx, qx))
        total = _lookup(self.ctx_keys, self.ctx_totals, qctx)
        backoff = _lookup(self.ctx_keys, self.ctx_backoff, qctx)
        seen = total > 0
        safe = np.maximum(total, 1)
        p = (c - self.discount[np.minimum(c, 3)]) / safe + backoff / safe * lower
        return np.where(seen, p, lower)


def ngram_baseline(
    train_docs: list[np.ndarray], eval_docs: list[np.ndarray], vocab_size: int, max_order: int = DEFAULT_MAX_ORDER
) -> NgramResult:
    """Train on ``train_docs`` and score ``eval_docs`` (encoded id arrays) for every order
    1..``max_order``; report the best."""
    if max_order < 1:
        raise ValueError("max_order must be at least 1")
    train, _ = _with_bos(train_docs, max_order)
    test, scored = _with_bos(eval_docs, max_order)
    if not scored.any():
        raise ValueError("nothing to score: every document has fewer than two characters")
    real = train != _BOS
    x_train, x_test = train[real], test[scored]
    short_train = np.zeros(len(train), dtype=np.uint64)  # context of length k-1 (k = order)
    short_test = np.zeros(len(test), dtype=np.uint64)
    lower = np.full(len(x_test), 1.0 / vocab_size)  # P'_{k-1}: continuation model, uniform at 0
    bpc_by_order, logs = {}, {}
    for order in range(1, max_order + 1):
        long_train = _extend(train, order, short_train)  # context of length k, for continuations
        long_test = _extend(test, order, short_test)
        qctx = short_test[scored]
        top = _Counts.build(short_train[real], x_train).prob(qctx, x_test, lower)
        logs[order] = np.log2(top)
        bpc_by_order[order] = float(-logs[order].mean())
        if order < max_order:
            # c'(ctx x): distinct (longer context, x) pairs ending in ctx x.
            long_pairs = _pair(long_train[real], x_train)
            _, first = np.unique(long_pairs, return_index=True)
            cont = _Counts.build(short_train[real][first], x_train[first])
            lower = cont.prob(qctx, x_test, lower)
        short_train, short_test = long_train, long_test
    best = min(bpc_by_order, key=bpc_by_order.get)
    return NgramResult(best, bpc_by_order[best], bpc_by_order, logs[best], int(len(x_test)))
