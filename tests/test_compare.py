"""Comparing recordings: a model against itself, against a permuted copy, across cell types
and sizes, and the refusals (other text, no snapshots)."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lstmviz.analysis.compare import Block, compare_stores, cross_moments, emergence
from lstmviz.cli.main import main
from lstmviz.core.errors import LstmvizError
from lstmviz.model.train import TrainConfig, train
from lstmviz.recording.sources import snapshot_recordings
from lstmviz.store.writer import write_store
from lstmviz.text.corpus import load_corpus


def _hc_copy(store, out, perm=None):
    """A store with the h and c series of ``store`` (units reordered by ``perm``)."""
    series = {}
    for s in store.series:
        if s.kind in ("h", "c"):
            block = np.asarray(store.series_block(s.layer, s.kind), dtype=np.float32)
            series[(s.layer, s.kind)] = block[perm] if perm is not None else block
    docs = [(d.name, d.start, d.stop) for d in store.documents]
    return write_store(out, store.text(), docs, series, vocab=store.vocab_chars)


def test_a_model_compared_with_itself(tiny_store):
    result = compare_stores(tiny_store, tiny_store, with_features=False)
    np.testing.assert_allclose(np.diag(result.cka), 1.0, atol=1e-5)
    assert all(m["a"] == m["b"] and m["r"] == pytest.approx(1.0, abs=1e-4) for m in result.matches)
    assert result.assignment_mean_r == pytest.approx(1.0, abs=1e-4)
    assert result.loss_summary["b_better_fraction"] == 0.0


def test_the_assignment_recovers_a_permutation(tiny_store, tmp_path):
    units = tiny_store.series[0].units
    perm = np.random.default_rng(0).permutation(units)
    a = _hc_copy(tiny_store, tmp_path / "a.store")
    b = _hc_copy(tiny_store, tmp_path / "b.store", perm)
    result = compare_stores(a, b, with_features=False)
    # unit perm[j] of A is unit j of B
    where = {int(p): j for j, p in enumerate(perm)}
    for pair in result.assignment:
        layer, kind, unit = pair["a"].split(".")
        assert pair["b"] == f"{layer}.{kind}.{where[int(unit)]}"
    assert result.assignment_mean_r == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_allclose(np.diag(result.cka), 1.0, atol=1e-5)


def test_stores_of_other_text_are_refused(tiny_store, tmp_path):
    other = write_store(
        tmp_path / "o.store", "x" * len(tiny_store), [("o", 0, len(tiny_store))], {(1, "h"): np.zeros((3, len(tiny_store)))}
    )
    with pytest.raises(LstmvizError, match="different text"):
        compare_stores(tiny_store, other)


@pytest.fixture(scope="module")
def tiny_gru(corpus_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("gru") / "gru"
    cfg = TrainConfig(cell="gru", num_layers=1, hidden_size=16, embed_dim=8, seq_len=32, batch_size=4, steps=20, seed=5)
    train(load_corpus([str(corpus_dir)]), out, cfg, progress=False)
    return out


def test_compare_cli_across_cell_types_and_sizes(tiny_checkpoint, tiny_gru, tmp_path, monkeypatch):
    monkeypatch.setenv("LSTMVIZ_CACHE", str(tmp_path / "cache"))
    text = tmp_path / "text"
    text.mkdir()
    (text / "a.py").write_text("def f(x):\n    return 'é' + x  # café\n" * 30)
    result = CliRunner().invoke(main, ["compare", str(tiny_checkpoint), str(tiny_gru), str(text), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output[result.output.index("{") :])
    assert np.array(data["cka"]).shape == (2, 1)  # 2 LSTM layers against 1 GRU layer
    assert len(data["matches"]) == 2 * 2 * 24  # every h and c neuron of A
    assert all(m["b"].startswith("L1.h.") for m in data["matches"])  # a GRU has h only
    assert len(data["assignment"]) == 16 and 0 < data["assignment_mean_r"] <= 1
    dropped = data["dropped"]
    assert "é" in dropped["a"]["distinct"] and "é" in dropped["b"]["distinct"]  # in neither vocabulary
    assert dropped["compared_chars"] == data["chars"] - dropped["a"]["chars"]  # same vocabulary: the same drops
    assert set(data["features"]) >= {"in_string", "in_comment"}
    assert data["loss"]["chars"] > 0
    # A second run reuses the recordings.
    again = CliRunner().invoke(main, ["compare", str(tiny_checkpoint), str(tiny_gru), str(text), "--json"])
    assert "recording" not in again.output


def test_compare_cli_bad_inputs(tiny_store, tmp_path):
    missing = CliRunner().invoke(main, ["compare", str(tmp_path / "nope"), str(tiny_store.path)])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "b.py").write_text("x = 1\n")
    other = CliRunner().invoke(main, ["compare", str(tiny_store.path), str(tiny_store.path), str(tmp_path / "other")])
    assert other.exit_code == 2 and "are different text" in other.output and "Traceback" not in other.output


def test_emergence_follows_the_snapshots(tiny_checkpoint, corpus_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LSTMVIZ_CACHE", str(tmp_path / "cache"))
    docs = load_corpus([str(corpus_dir)]).documents[:3]
    data = emergence(snapshot_recordings(tiny_checkpoint, docs, progress=False)).to_json()
    assert data["steps"] == [10, 20, 30]  # two snapshots and the final model
    assert len(data["bpc"]) == 3 and all(len(v) == 3 for v in data["features"].values())
    result = CliRunner().invoke(main, ["emergence", str(tiny_checkpoint), str(corpus_dir), "--max-chars", "3000"])
    assert result.exit_code == 0, result.output
    assert "in_string" in result.output


def test_emergence_needs_snapshots(tiny_gru, corpus_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LSTMVIZ_CACHE", str(tmp_path / "cache"))
    result = CliRunner().invoke(main, ["emergence", str(tiny_gru), str(corpus_dir), "--max-chars", "2000"])
    assert result.exit_code == 2 and "no snapshots" in result.output


def test_correlations_equal_numpy_corrcoef(tmp_path, monkeypatch):
    """Several chunks (the last one short), a mask, series far from zero and a constant one."""
    monkeypatch.setattr("lstmviz.analysis.compare.CHUNK", 1000)
    rng = np.random.default_rng(0)
    n = 3_500
    base = rng.normal(size=(1, n))
    a = (5 + rng.normal(size=(6, n)) * 0.5 + base).astype(np.float16)
    b = (-3 + rng.normal(size=(4, n)) + 2 * base).astype(np.float16)
    b[3] = 1.0
    text, docs = "x" * n, [("d", 0, n)]
    store_a = write_store(tmp_path / "a", text, docs, {(1, "h"): a})
    store_b = write_store(tmp_path / "b", text, docs, {(1, "c"): b})
    mask = rng.random(n) > 0.3
    got = cross_moments(store_a, store_b, Block.of(store_a), Block.of(store_b), mask).correlations()
    x, y = a[:, mask].astype(np.float64), b[:, mask].astype(np.float64)
    expected = np.zeros((6, 4))
    expected[:, :3] = np.corrcoef(np.vstack([x, y[:3]]))[:6, 6:]  # a constant series correlates with nothing
    np.testing.assert_allclose(got, expected, atol=1e-5)


def _linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    x = x - x.mean(1, keepdims=True)
    y = y - y.mean(1, keepdims=True)
    return np.linalg.norm(x @ y.T) ** 2 / (np.linalg.norm(x @ x.T) * np.linalg.norm(y @ y.T))


def test_cka_equals_its_definition_on_the_sample(tmp_path, monkeypatch):
    """The sample is the first CKA_CHARS / chunks characters of every chunk."""
    monkeypatch.setattr("lstmviz.analysis.compare.CHUNK", 1000)
    monkeypatch.setattr("lstmviz.analysis.compare.CKA_CHARS", 800)
    rng = np.random.default_rng(1)
    n = 3_500  # 4 chunks: 200 sample characters from each
    base = rng.normal(size=(1, n))
    a1, a2 = (3 + rng.normal(size=(5, n)) + base).astype(np.float16), rng.normal(size=(3, n)).astype(np.float16)
    b1 = (rng.normal(size=(4, n)) - 2 * base).astype(np.float16)
    text, docs = "x" * n, [("d", 0, n)]
    store_a = write_store(tmp_path / "a", text, docs, {(1, "h"): a1, (2, "h"): a2})
    store_b = write_store(tmp_path / "b", text, docs, {(1, "c"): b1})
    block_a, block_b = Block.of(store_a), Block.of(store_b)
    cka, layers_a, layers_b = cross_moments(store_a, store_b, block_a, block_b).cka(block_a, block_b)
    sample = np.concatenate([np.arange(s, s + 200) for s in range(0, n, 1000)])
    x1, x2, y = (m[:, sample].astype(np.float64) for m in (a1, a2, b1))
    assert (layers_a, layers_b) == ([1, 2], [1])
    np.testing.assert_allclose(cka[:, 0], [_linear_cka(x1, y), _linear_cka(x2, y)], rtol=1e-5)
    assert cka[0, 0] > 0.5 > cka[1, 0]  # layer 1 of A shares a signal with B; layer 2 does not


def test_the_shipped_gru_compares_with_the_shipped_lstm_out_of_the_box(tmp_path, monkeypatch):
    """``lstmviz compare stdlib-lstm stdlib-gru``, as docs/results.md has it
    (here on a small text, and a few thousand characters)."""
    from lstmviz.model.checkpoint import SHIPPED_DIR, load_checkpoint

    lstm, gru = load_checkpoint(SHIPPED_DIR / "stdlib-lstm"), load_checkpoint(SHIPPED_DIR / "stdlib-gru")
    assert (lstm.model_config.cell, gru.model_config.cell) == ("lstm", "gru")
    assert gru.vocab.chars == lstm.vocab.chars and gru.config["corpus"]["splits"] == lstm.config["corpus"]["splits"]

    def chars_per_parameter(ckpt):
        return (
            ckpt.config["training"]["trained_steps"]
            * ckpt.config["training"]["chars_per_step"]
            / sum(p.numel() for p in ckpt.model.parameters())
        )

    assert chars_per_parameter(gru) == pytest.approx(chars_per_parameter(lstm), rel=0.01)  # the same budget per parameter
    monkeypatch.setenv("LSTMVIZ_CACHE", str(tmp_path / "cache"))
    text = tmp_path / "text"
    text.mkdir()
    (text / "a.py").write_text("def f(x):\n    '''Doc.'''\n    return 'abc' + x  # note\n" * 40)
    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # the clone's root, where checkpoints/ is
    result = CliRunner().invoke(main, ["compare", "checkpoints/stdlib-lstm", "checkpoints/stdlib-gru", str(text), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output[result.output.index("{") :])
    assert np.array(data["cka"]).shape == (2, 2)
    assert all(m["b"].split(".")[1] == "h" for m in data["matches"])  # a GRU has h only


def test_stores_on_one_text_record_a_checkpoint_once_and_reuse_a_store_of_its_weights(
    tiny_checkpoint, tiny_store, tiny_gru, tmp_path, monkeypatch
):
    """The service the compare command and the Compare page share: a store of the same
    weights on the text stands for its checkpoint (nothing recorded); another checkpoint is
    recorded once, into the cache, and found there the next time."""
    from lstmviz.model.checkpoint import load_checkpoint
    from lstmviz.recording.one_text import OneText
    from lstmviz.recording.sources import cache_entries

    monkeypatch.setenv("LSTMVIZ_CACHE", str(tmp_path / "cache"))
    own, gru = load_checkpoint(tiny_checkpoint), load_checkpoint(tiny_gru)
    text = OneText.of_store(tiny_store)
    assert text.chars == len(tiny_store) and text.uncached_bytes([own]) == 0
    assert text.store_for(own) is tiny_store and cache_entries() == []
    told = []
    a, b = text.stores([tiny_store, gru], progress=False, before_recording=told.append)
    assert a is tiny_store and told == [gru] and b.checkpoint["content_hash"] == gru.content_hash
    assert np.array_equal(np.asarray(b.codepoints), np.asarray(tiny_store.codepoints))  # on the same text
    assert [e.path for e in cache_entries()] == [b.path] and text.uncached_bytes([gru]) == 0
    told.clear()
    again = OneText.of_store(tiny_store).stores([gru], progress=False, before_recording=told.append)
    assert told == [] and again[0].path == b.path
    shorter = OneText.of_store(tiny_store, max_chars=500)  # not the store's whole text: the store does not hold it
    assert shorter.chars == 500 and shorter.uncached_bytes([own]) > 0
    with pytest.raises(LstmvizError, match="are different text"):
        shorter.store_for(tiny_store)
