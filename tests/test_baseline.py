import math
from collections import defaultdict

import numpy as np

from lstmviz.baseline import ngram_baseline


def _brute_force(train, test, vocab, order_max):
    """Interpolated Witten-Bell with dictionaries, straight from the formula."""
    counts = [defaultdict(lambda: defaultdict(int)) for _ in range(order_max)]
    for doc in train:
        s = [-1] * order_max + list(doc)
        for i in range(order_max, len(s)):
            for k in range(order_max):
                counts[k][tuple(s[i - k : i])][s[i]] += 1

    def prob(order, ctx, x):
        if order == 0:
            return 1 / vocab
        lower = prob(order - 1, ctx, x)
        k = order - 1
        followers = counts[k].get(tuple(ctx[len(ctx) - k :]) if k else ())
        if not followers:
            return lower
        total, types = sum(followers.values()), len(followers)
        return (followers.get(x, 0) + types * lower) / (total + types)

    result = {}
    for order in range(1, order_max + 1):
        logs = []
        for doc in test:
            s = [-1] * order_max + list(doc)
            for i in range(order_max + 1, len(s)):
                logs.append(math.log2(prob(order, s[:i], s[i])))
        result[order] = -float(np.mean(logs))
    return result


def test_matches_the_formula():
    rng = np.random.default_rng(0)
    train = [rng.integers(0, 5, size=n) for n in (60, 90, 30)]
    test = [rng.integers(0, 6, size=n) for n in (40, 25)]
    got = ngram_baseline(train, test, vocab_size=6, max_order=4)
    expected = _brute_force(train, test, 6, 4)
    for order, bpc in expected.items():
        assert abs(got.bpc_by_order[order] - bpc) < 1e-9
    assert got.order == min(expected, key=expected.get)
    assert got.chars == (40 - 1) + (25 - 1)  # every character but a document's first


def test_predictable_text_gets_few_bits():
    doc = np.array([1, 2, 3, 4] * 200)
    result = ngram_baseline([doc], [doc[:100]], vocab_size=5, max_order=3)
    assert result.bpc < 0.1 < result.bpc_by_order[1]
