import json

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import roc_auc_score

from lstmviz.analysis.contexts import top_contexts
from lstmviz.analysis.hypotheses import range_hypotheses, ranges_mask
from lstmviz.analysis.rankings import rank_neurons
from lstmviz.analysis.saturation import gate_saturation
from lstmviz.cli.main import main
from lstmviz.core.errors import StoreError
from lstmviz.store.writer import write_store
from lstmviz.text.features import Features, compute_features

CODE = "def f(x):\n    s = 'abc'  # note\n    return s\n" * 400


@pytest.fixture
def planted(tmp_path):
    """A store of noise with planted cells: L1.c.2 = in_string + noise, L1.h.1 = indent + noise."""
    n = len(CODE)

    feats = compute_features(CODE, [("a.py", 0, n)])
    rng = np.random.default_rng(0)
    h = rng.normal(size=(4, n))
    c = rng.normal(size=(4, n))
    c[2] = feats["in_string"] * 2 + rng.normal(scale=0.5, size=n)
    h[1] = feats["indent"] / 4 + rng.normal(scale=0.3, size=n)
    gates = rng.uniform(size=(4, n))
    gates[0] = 0.02
    gates[3] = 0.98
    store = write_store(tmp_path / "p.store", CODE, [("a.py", 0, n)], {(1, "h"): h, (1, "c"): c, (1, "f"): gates})
    return store, feats


def test_planted_neurons_rank_first(planted):
    store, feats = planted
    rankings = rank_neurons(store, feats)
    assert rankings["in_string"].table.neuron[0] == "L1.c.2"
    assert rankings["in_string"].table.score[0] > 0.95
    assert rankings["indent"].table.neuron[0] == "L1.h.1"
    assert rankings["indent"].metric == "spearman"


def test_scores_match_scikit_learn_and_scipy(tmp_path):
    rng = np.random.default_rng(1)
    n = 5000
    binary = (rng.random(n) < 0.2).astype(int)
    numeric = rng.integers(0, 10, n)
    acts = rng.normal(size=(6, n)).astype(np.float16)
    acts[0] = np.round(acts[0], 1)  # many ties
    store = write_store(tmp_path / "r.store", "x" * n, [("a", 0, n)], {(1, "h"): acts})
    rankings = rank_neurons(store, Features({"b": binary, "v": numeric}, {"b"}))
    b = rankings["b"].table.set_index("neuron")
    v = rankings["v"].table.set_index("neuron")
    for i in range(6):
        x = acts[i].astype(np.float64)
        nid = f"L1.h.{i}"
        # Ranks are exact; their sum inside the feature is a float32 matrix product.
        assert b.loc[nid, "value"] == pytest.approx(roc_auc_score(binary, x), abs=1e-7)
        assert b.loc[nid, "score"] == pytest.approx(max(b.loc[nid, "value"], 1 - b.loc[nid, "value"]))
        assert v.loc[nid, "value"] == pytest.approx(spearmanr(x, numeric).statistic, abs=1e-5)
        assert v.loc[nid, "pearson"] == pytest.approx(pearsonr(x, numeric).statistic, abs=1e-5)


def test_scores_of_cells_tuned_over_a_long_text_match_scikit_learn_and_scipy(tmp_path):
    """Cells tuned to their features over 60,000 characters: the sums behind the scores grow
    far past each term, where one float32 sum drifts by 1e-5 (``rankings.summed_products``)."""
    rng = np.random.default_rng(2)
    n = 60_000
    binary = (rng.random(n) < 0.3).astype(int)
    numeric = np.cumsum(rng.integers(-1, 2, n)) % 40  # an indentation-like walk
    tuned = [binary * 2 + rng.normal(scale=s, size=n) for s in (0.3, 0.8)]
    tuned += [numeric / 10 + rng.normal(scale=s, size=n) for s in (0.2, 1.0)]
    acts = np.stack(tuned).astype(np.float16)
    store = write_store(tmp_path / "t.store", "x" * n, [("a", 0, n)], {(1, "h"): acts})
    rankings = rank_neurons(store, Features({"b": binary, "v": numeric}, {"b"}))
    b = rankings["b"].table.set_index("neuron")
    v = rankings["v"].table.set_index("neuron")
    for i, x in enumerate(acts.astype(np.float64)):
        nid = f"L1.h.{i}"
        assert b.loc[nid, "value"] == pytest.approx(roc_auc_score(binary, x), abs=1e-7)
        assert b.loc[nid, "pearson"] == pytest.approx(pearsonr(x, binary).statistic, abs=1e-7)
        assert v.loc[nid, "value"] == pytest.approx(spearmanr(x, numeric).statistic, abs=1e-7)
        assert v.loc[nid, "pearson"] == pytest.approx(pearsonr(x, numeric).statistic, abs=1e-7)


def test_neuron_summaries_are_computed_once_and_kept_in_the_store(planted, monkeypatch):
    from lstmviz.analysis import summaries as analysis
    from lstmviz.analysis.contexts import context_positions

    store, _ = planted
    summaries = analysis.store_summaries(store, progress=False)
    assert sorted(summaries) == sorted(str(n) for n in store.neuron_ids(("h", "c")))  # gates are summarised on demand
    assert (store.path / analysis.SUMMARIES_CACHE).is_file()
    one = summaries["L1.c.2"]
    values = store.neuron("L1.c.2").astype(np.float64)
    assert one["stats"]["abs99"] == pytest.approx(np.quantile(np.abs(values), 0.99))
    assert one["stats"]["q01"] == pytest.approx(np.quantile(values, 0.01))
    assert one["contexts"] == context_positions(store, "L1.c.2", analysis.SUMMARY_CONTEXTS, analysis.SUMMARY_WIDTH)
    assert sum(one["histogram"]["counts"]) == len(store)
    monkeypatch.setattr(analysis, "neuron_summary", lambda *a: pytest.fail("computed again"))
    assert analysis.store_summaries(store, progress=False) == summaries
    monkeypatch.undo()
    (store.path / analysis.SUMMARIES_CACHE).write_bytes(b"\xff\xfe garbage")  # a damaged cache is rebuilt
    assert analysis.store_summaries(store, progress=False) == summaries


def test_top_contexts_are_extreme_and_do_not_overlap(planted):
    store, _ = planted
    ctx = top_contexts(store, "L1.c.2", k=5, width=10)
    assert len(ctx["high"]) == 5 and len(ctx["low"]) == 5
    positions = [c.position for c in ctx["high"]]
    assert all(abs(a - b) > 10 for i, a in enumerate(positions) for b in positions[i + 1 :])
    values = store.neuron("L1.c.2")
    assert ctx["high"][0].value == pytest.approx(values.max(), abs=1e-3)
    assert ctx["low"][0].value == pytest.approx(values.min(), abs=1e-3)
    assert ctx["high"][0].text[ctx["high"][0].offset] == CODE[ctx["high"][0].position]
    assert any(label.startswith("q") for label in ctx)


def test_gate_saturation(planted):
    store, _ = planted
    table = gate_saturation(store).set_index("neuron")
    assert table.loc["L1.f.0", "left"] == 1.0 and table.loc["L1.f.3", "right"] == 1.0
    assert 0.05 < table.loc["L1.f.1", "left"] < 0.15


def test_range_hypotheses_find_a_planted_on_off_neuron(planted):
    store, feats = planted
    starts = [i for i in range(len(CODE)) if CODE.startswith("'abc'", i)]
    table = range_hypotheses(store, ranges_mask(len(store), [(a, a + 5) for a in starts]))
    assert table.neuron[0] == "L1.c.2" and table.direction[0] == "high"
    assert table.recall[0] > 0.9 and table.precision[0] > 0.75  # noise (sd 0.5) crosses the threshold ~2% of the time
    with pytest.raises(StoreError, match="Nothing is marked"):
        range_hypotheses(store, np.zeros(len(store), bool))
    with pytest.raises(StoreError, match="outside the store"):
        ranges_mask(len(store), [(0, len(store) + 5)])


def test_find_cells_cli(planted):
    store, _ = planted
    result = CliRunner().invoke(main, ["find-cells", str(store.path), "--json", "--top", "3", "--feature", "ret=return"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    top = data["features"]["in_string"][0]
    assert top == {**top, "neuron": "L1.c.2", "metric": "auroc"} and top["score"] > 0.95
    assert len(data["features"]["ret"]) == 3
    assert data["neurons"] == len(store.neuron_ids(("h", "c")))  # the best cell is an h or c neuron, as in every page
    gates = json.loads(CliRunner().invoke(main, ["find-cells", str(store.path), "--json", "--kinds", "f"]).output)
    assert gates["neurons"] == len(store.neuron_ids(("f",)))
    bad = CliRunner().invoke(main, ["find-cells", str(store.path), "--kinds", "z"])
    assert bad.exit_code == 2 and "no series of kind z" in bad.output


PROSE = "The quick brown fox jumps over the lazy dog, then it runs\naway (far away) into the wood.\n" * 60


def test_features_the_text_lacks_are_reported_absent_not_ranked(tmp_path):
    from lstmviz.analysis.rankings import store_rankings

    n = len(PROSE)
    feats = compute_features(PROSE, [("fox.txt", 0, n)])
    rng = np.random.default_rng(3)
    h = rng.normal(size=(3, n))
    h[1] = feats["column"] + rng.normal(scale=2.0, size=n)
    store = write_store(tmp_path / "prose.store", PROSE, [("fox.txt", 0, n)], {(1, "h"): h})
    rankings = rank_neurons(store, feats)
    # Unindented prose without quotes, comments or docstrings: those tracks hold one value throughout.
    lacking = [name for name in feats.names() if len(np.unique(feats[name])) == 1]
    assert set(lacking) == {"in_string", "in_docstring", "in_comment", "indent"}
    assert [name for name, r in rankings.items() if r.absent] == lacking
    assert all(rankings[name].table.empty and rankings[name].to_json() == [] for name in lacking)
    assert rankings["column"].table.neuron[0] == "L1.h.1" and not rankings["column"].absent
    present = [name for name in feats.names() if name not in lacking]
    alone = rank_neurons(store, Features({k: feats[k] for k in present}, feats.binary & set(present)))
    for name in present:  # the features the text has are ranked as if the others were never asked for
        assert rankings[name].to_json() == alone[name].to_json()
    assert list(store_rankings(store)) == present  # the dashboard's rankings hold the ranked features only

    result = CliRunner().invoke(main, ["find-cells", str(store.path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["absent"] == lacking and list(data["features"]) == present
    text = CliRunner().invoke(main, ["find-cells", str(store.path)]).output
    assert "not ranked, absent from this text (one value throughout): in_string, in_docstring, in_comment, indent" in text
    assert "\nin_docstring (" not in text


def test_error_analysis_aligns_the_ngram_with_the_stored_predictions(tiny_store, tiny_checkpoint):
    import math

    from lstmviz.analysis.evaluate import error_analysis, ngram_for_store
    from lstmviz.model.checkpoint import load_checkpoint

    ckpt = load_checkpoint(tiny_checkpoint)
    ngram, _ = ngram_for_store(tiny_store, ckpt, max_order=3)
    doc = tiny_store.documents[0]
    assert math.isnan(ngram[doc.start]) and not math.isnan(ngram[doc.start + 1])
    advantage, table = error_analysis(tiny_store, ngram)
    # Character p+1 is predicted at position p: its advantage is LSTM log2p minus n-gram log2p.
    p = doc.start + 3
    assert advantage[p + 1] == pytest.approx(tiny_store.logp[p] / math.log(2) - ngram[p + 1])
    assert set(table.columns) == {"char", "count", "advantage", "lstm_bits", "ngram_bits"}
    result = CliRunner().invoke(main, ["vs-ngram", str(tiny_store.path), "--json", "--max-order", "3"])
    assert result.exit_code == 0, result.output
    old_name = CliRunner().invoke(main, ["errors", str(tiny_store.path), "--json", "--max-order", "3"])
    assert old_name.exit_code == 0 and json.loads(old_name.output) == json.loads(result.output)
    listed = CliRunner().invoke(main, ["--help"]).output
    assert "vs-ngram" in listed and "errors" not in listed  # the old name works, unlisted


def test_distribution_by_counting_matches_numpy():
    from lstmviz.analysis.distribution import Distribution, value_keys

    rng = np.random.default_rng(3)
    x = np.concatenate([rng.standard_normal(20_001) * 3, np.full(500, 1.0), [-0.0, 0.0]]).astype(np.float16)
    exact = x.astype(np.float64)
    keys = value_keys(x)
    order = np.argsort(exact, kind="stable")
    assert (np.diff(keys[order].astype(int)) >= 0).all()  # keys keep value order
    d = Distribution.of(keys)
    qs = [0, 0.05, 0.2, 0.5, 0.77, 1]
    np.testing.assert_allclose(d.quantile(qs), np.quantile(exact, qs))
    counts, edges = d.histogram(25)
    np.testing.assert_array_equal(counts, np.histogram(exact, bins=25)[0])
    assert d.mean() == pytest.approx(exact.mean()) and d.std() == pytest.approx(exact.std())
    for q in (0.5, 0.99, 1):
        assert d.abs_quantile(q) == pytest.approx(np.quantile(np.abs(exact), q))
    t = d.top_key(300)
    assert (keys >= t).sum() >= 300 and (keys > t).sum() < 300
    b = d.bottom_key(300)
    assert (keys <= b).sum() >= 300 and (keys < b).sum() < 300
