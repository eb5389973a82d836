import math
import textwrap
from collections import Counter, defaultdict

import numpy as np
import pytest

from lstmviz.analysis.ngram import ngram_baseline

TEXT = textwrap.dedent(
    '''
    def greet(name):
        """Say hello to someone, or to nobody."""
        if not name:
            return "hello, nobody"  # nobody there
        return "hello, " + name + "!"


    for name in ("ada", "alan", "grace", ""):
        print(greet(name))


    def farewell(name):
        """Say goodbye to someone, or to nobody."""
        if not name:
            return "goodbye, nobody"  # nobody left
        return "goodbye, " + name + "."
    '''
)


def _discounts(table):
    """Chen & Goodman's three discounts from a table's counts of counts (the module's rule
    for tiny texts: one discount for all three where some n_k is zero; each inside [0.05, k - 0.05])."""
    n = Counter(c for followers in table.values() for c in followers.values())
    y = n[1] / (n[1] + 2 * n[2]) if n[1] + n[2] else 0.5
    if all(n[k] for k in (1, 2, 3, 4)):
        d = [1 - 2 * y * n[2] / n[1], 2 - 3 * y * n[3] / n[2], 3 - 4 * y * n[4] / n[3]]
    else:
        d = [y, y, y]
    return [0.0] + [min(max(v, 0.05), k - 0.05) for k, v in enumerate(d, start=1)]


def _modified_kneser_ney(train, test, vocab, order_max):
    """Interpolated modified Kneser-Ney with dictionaries, straight from the formula: per
    order, every scored character's log2 probability."""
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
    d_raw = [_discounts(t) for t in raw]
    d_cont = [_discounts(t) for t in cont]

    def interpolate(table, d, ctx, x, lower):
        followers = table.get(ctx)
        if not followers:
            return lower
        total = sum(followers.values())
        passed_on = sum(d[min(c, 3)] for c in followers.values())
        c = followers.get(x, 0)
        return (c - d[min(c, 3)]) / total + passed_on / total * lower

    def lower_prob(order, ctx, x):  # P'_order, from continuation counts
        if order == 0:
            return 1 / vocab
        k = order - 1
        return interpolate(cont[k], d_cont[k], tuple(ctx[len(ctx) - k :]) if k else (), x, lower_prob(order - 1, ctx, x))

    logs = {}
    for order in range(1, order_max + 1):
        k = order - 1
        logs[order] = []
        for doc in test:
            s = [-1] * order_max + list(doc)
            for i in range(order_max + 1, len(s)):
                ctx = tuple(s[i - k : i]) if k else ()
                p = interpolate(raw[k], d_raw[k], ctx, s[i], lower_prob(order - 1, s[:i], s[i]))
                logs[order].append(math.log2(p))
    return logs, raw


def _check(train, test, vocab, order_max=4):
    got = ngram_baseline(train, test, vocab_size=vocab, max_order=order_max)
    expected, raw = _modified_kneser_ney(train, test, vocab, order_max)
    for order, logs in expected.items():
        assert got.bpc_by_order[order] == pytest.approx(-float(np.mean(logs)), abs=1e-9)
    assert got.order == min(got.bpc_by_order, key=got.bpc_by_order.get)
    np.testing.assert_allclose(got.log2_probs, expected[got.order], rtol=0, atol=1e-9)
    assert got.chars == sum(len(d) - 1 for d in test)  # every character but a document's first
    return raw


def test_matches_modified_kneser_ney_written_plainly():
    chars = sorted(set(TEXT))
    encode = {ch: i for i, ch in enumerate(chars)}
    docs = [np.array([encode[ch] for ch in part]) for part in TEXT.split("\n\n\n")]
    raw = _check(docs, [docs[1][:60], docs[0][20:90]], len(chars))
    for k in range(4):  # every order has counts seen 1..4 times: Chen & Goodman's three discounts
        n = Counter(c for followers in raw[k].values() for c in followers.values())
        assert all(n[c] for c in (1, 2, 3, 4)), (k, n)


def test_matches_it_on_random_text_where_some_orders_have_too_few_counts_for_three_discounts():
    rng = np.random.default_rng(0)
    train = [rng.integers(0, 5, size=n) for n in (60, 90, 30)]
    _check(train, [rng.integers(0, 6, size=n) for n in (40, 25)], 6)


def test_predictable_text_gets_few_bits():
    doc = np.array([1, 2, 3, 4] * 200)
    result = ngram_baseline([doc], [doc[:100]], vocab_size=5, max_order=3)
    assert result.bpc < 0.1 < result.bpc_by_order[1]
