import math
from collections import defaultdict

import numpy as np

from lstmviz.baseline import ngram_baseline


def _discount(table):
    values = [c for followers in table.values() for c in followers.values()]
    n1, n2 = values.count(1), values.count(2)
    return min(max(n1 / (n1 + 2 * n2) if n1 + n2 else 0.5, 0.05), 0.95)


def _brute_force(train, test, vocab, order_max):
    """Interpolated Kneser-Ney with dictionaries, straight from the formula."""
    raw = [defaultdict(lambda: defaultdict(int)) for _ in range(order_max + 1)]  # raw[k][ctx of length k][x]
    for doc in train:
        s = [-1] * order_max + list(doc)
        for i in range(order_max, len(s)):
            for k in range(order_max + 1):
                raw[k][tuple(s[i - k : i])][s[i]] += 1
    cont = [defaultdict(lambda: defaultdict(int)) for _ in range(order_max)]  # distinct left extensions
    for k in range(order_max):
        for ctx, followers in raw[k + 1].items():
            for x in followers:
                cont[k][ctx[1:]][x] += 1

    def interpolate(table, discount, ctx, x, lower):
        followers = table.get(ctx)
        if not followers:
            return lower
        total, types = sum(followers.values()), len(followers)
        return max(followers.get(x, 0) - discount, 0) / total + discount * types / total * lower

    def lower_prob(order, ctx, x):  # P'_order
        if order == 0:
            return 1 / vocab
        k = order - 1
        return interpolate(cont[k], _discount(cont[k]), tuple(ctx[len(ctx) - k :]) if k else (), x, lower_prob(order - 1, ctx, x))

    result = {}
    for order in range(1, order_max + 1):
        k = order - 1
        logs = []
        for doc in test:
            s = [-1] * order_max + list(doc)
            for i in range(order_max + 1, len(s)):
                ctx = tuple(s[i - k : i]) if k else ()
                p = interpolate(raw[k], _discount(raw[k]), ctx, s[i], lower_prob(order - 1, s[:i], s[i]))
                logs.append(math.log2(p))
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
