"""Recording into a store and reading it back."""

import json
import os
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import lstmviz
from lstmviz.cli.main import main
from lstmviz.core.errors import CorpusError, StoreError
from lstmviz.core.neurons import NeuronId
from lstmviz.recording.recorder import record_activations
from lstmviz.store.open import open_store
from lstmviz.text.corpus import Document
from lstmviz.text.lanes import lane_bounds


def test_neuron_ids_parse_and_format_in_one_place():
    n = NeuronId.parse("L2.c.117")
    assert (n.layer, n.kind, n.index) == (2, "c", 117)
    assert str(n) == "L2.c.117"
    for bad in ("L2.c", "2.c.117", "L2.cc.1", "L0x.c.1", ""):
        with pytest.raises(StoreError, match="not a neuron id"):
            NeuronId.parse(bad)


def test_store_holds_every_series_and_the_documents(tiny_store, tiny_checkpoint):
    ckpt = lstmviz.load_checkpoint(tiny_checkpoint)
    store = lstmviz.open_store(tiny_store.path)
    assert len(store.series) == 2 * 6 and store.rows == 2 * 6 * 24
    assert store.activations.dtype == np.float16  # 2 bytes per value
    names = ckpt.config["corpus"]["splits"]["test"]
    assert sorted(d.name for d in store.documents) == sorted(names)
    assert len(store) == sum(len(d) for d in store.documents)
    assert store.checkpoint["content_hash"] == ckpt.content_hash


def test_stored_values_equal_a_direct_run_of_each_document(tiny_store, tiny_checkpoint):
    ckpt = lstmviz.load_checkpoint(tiny_checkpoint)
    for doc in tiny_store.documents:
        ids = torch.tensor([ckpt.vocab.encode(tiny_store.text(doc.start, doc.stop))])
        (logits, _), cache = ckpt.model.run_with_cache(ids)
        for layer, kind, unit in [(1, "c", 0), (2, "h", 5), (2, "f", 23), (1, "g", 7)]:
            expected = cache[f"layers.{layer - 1}.hook_{kind}"][0, :, unit].numpy()
            got = tiny_store.neuron(f"L{layer}.{kind}.{unit}", doc.start, doc.stop)
            np.testing.assert_allclose(got, expected, atol=2e-3, rtol=2e-3)  # float16 storage
        logp = torch.log_softmax(logits[0], -1)
        ids_next = ids[0, 1:]
        expected_logp = logp[:-1].gather(1, ids_next[:, None])[:, 0].numpy()
        np.testing.assert_allclose(tiny_store.logp[doc.start : doc.stop - 1], expected_logp, atol=1e-4)
        assert np.isnan(tiny_store.logp[doc.stop - 1])
        preds = tiny_store.predictions(doc.start, doc.start + 1)
        assert preds["top_chars"][0][0] == ckpt.vocab.chars[int(logp[0].argmax())]


def test_window_and_text(tiny_store):
    w = tiny_store.window(["L1.h.0", "L2.c.3"], 5, 25)
    assert w.shape == (2, 20)
    np.testing.assert_array_equal(w[1], tiny_store.neuron("L2.c.3", 5, 25))
    assert tiny_store.text(0, 10) == tiny_store.text()[:10]


def test_bad_neurons_and_ranges_are_clear_errors(tiny_store):
    with pytest.raises(StoreError, match="layer 1 has units 0-23"):
        tiny_store.neuron("L1.h.24")
    with pytest.raises(StoreError, match="layers 1-2"):
        tiny_store.neuron("L3.h.0")
    with pytest.raises(StoreError, match="kinds c, f, g, h, i, o"):
        tiny_store.neuron("L1.z.0")
    with pytest.raises(StoreError, match="outside the store"):
        tiny_store.neuron("L1.h.0", 0, len(tiny_store) + 1)


def test_lanes_are_contiguous_whole_documents():
    starts = np.array([0, 10, 20, 30, 40])
    assert lane_bounds(starts, 50, 2) == [(0, 20), (20, 50)]  # each document in the lane its middle falls in
    assert lane_bounds(np.array([0, 10, 90]), 100, 2) == [(0, 10), (10, 100)]
    assert lane_bounds(np.array([0]), 1000, 8) == [(0, 1000)]


def test_lane_count_and_staging_do_not_change_the_result(tiny_checkpoint, tmp_path, monkeypatch):
    ckpt = lstmviz.load_checkpoint(tiny_checkpoint)
    docs = [Document(f"d{i}", "x = 'a'  # c\n" * (3 * i + 2)) for i in range(5)]  # lanes end at different chunks
    one = record_activations(ckpt, docs, tmp_path / "one", lanes=1, progress=False)
    many = record_activations(ckpt, docs, tmp_path / "many", lanes=4, chunk_len=7, progress=False)
    monkeypatch.setattr("lstmviz.recording.recorder.STAGE_BYTES", 1)  # the stage holds one chunk: written every chunk
    staged = record_activations(ckpt, docs, tmp_path / "staged", lanes=3, chunk_len=5, progress=False)
    # Batch shape changes float32 rounding, which can move a float16 value by one ulp.
    for other in (many, staged):
        np.testing.assert_allclose(np.asarray(one.activations, np.float32), np.asarray(other.activations, np.float32), atol=1e-3)
        np.testing.assert_allclose(np.asarray(one.logp), np.asarray(other.logp), atol=1e-4)
        np.testing.assert_array_equal(np.asarray(one.top_ids), np.asarray(other.top_ids))


def test_pages_flushed_and_dropped_while_recording_hold_the_same_bytes(tiny_checkpoint, tmp_path, monkeypatch):
    """Pages dropped from the cache mid-recording (after every write here, most of them
    shared by two lanes' runs or by two neurons) leave the file exactly as a recording
    that keeps them all."""
    import os

    ckpt = lstmviz.load_checkpoint(tiny_checkpoint)
    docs = [Document(f"d{i}", "def f(x):\n    return 'a' * x  # c\n" * (20 + 9 * i)) for i in range(4)]  # 4,556 chars
    monkeypatch.setattr("lstmviz.recording.recorder.STAGE_BYTES", 1)  # one chunk per write: many runs, most ending mid-page
    kept = record_activations(ckpt, docs, tmp_path / "kept", lanes=3, chunk_len=50, progress=False)
    drops = []
    fadvise = os.posix_fadvise
    monkeypatch.setattr(os, "posix_fadvise", lambda *args: (drops.append(args), fadvise(*args)))
    monkeypatch.setattr("lstmviz.store.writer.ColumnStage.FLUSH_BYTES", 1)  # flushed and dropped after every write
    record_activations(ckpt, docs, tmp_path / "dropped", lanes=3, chunk_len=50, progress=False)
    assert len(drops) > 1000 and len(kept) * 2 > 2 * 4096  # each neuron's row spans over two pages
    for name in ("activations.f16", "logp.f32", "top_ids.u16", "text.u32"):
        assert (tmp_path / "kept" / name).read_bytes() == (tmp_path / "dropped" / name).read_bytes(), name


def test_zeroed_arrays_are_zero_writable_and_of_the_shape_asked():
    from lstmviz.store.writer import zeroed_array

    block = zeroed_array((3, 5, 4096), np.float16)
    assert block.shape == (3, 5, 4096) and block.dtype == np.float16 and not block.any()
    block[2, 4, -1] = 1.5
    assert block.sum() == 1.5
    assert zeroed_array((0, 7), np.uint16).shape == (0, 7)


def test_interrupted_recording_leaves_nothing(tiny_checkpoint, tmp_path, monkeypatch):
    ckpt = lstmviz.load_checkpoint(tiny_checkpoint)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("lstmviz.recording.recorder._write_series", interrupt)
    with pytest.raises(KeyboardInterrupt):
        record_activations(ckpt, [Document("a", "abc" * 50)], tmp_path / "s", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_what_a_killed_recording_left_is_removed_by_the_next(tiny_checkpoint, tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    abandoned = tmp_path / f".s.writing-{int(dead.stdout)}-0a1b2c3d"  # its writer was killed mid-recording
    abandoned.mkdir()
    (abandoned / "activations.f16").write_bytes(b"\0" * 1000)
    mine = tmp_path / f".s.writing-{os.getppid()}-4e5f6a7b"  # a live process's recording is left alone
    mine.mkdir()
    record_activations(lstmviz.load_checkpoint(tiny_checkpoint), [Document("a", "abc" * 50)], tmp_path / "s", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["s", mine.name])


def test_truncated_store_is_refused(tiny_store, tmp_path):
    copy = tmp_path / "copy.store"
    shutil.copytree(tiny_store.path, copy)
    with open(copy / "activations.f16", "r+b") as f:
        f.truncate(100)
    with pytest.raises(StoreError, match="truncated"):
        open_store(copy)
    (copy / "meta.json").unlink()
    with pytest.raises(StoreError, match="did not finish"):
        open_store(copy)


def test_store_of_a_changed_checkpoint_is_refused(tiny_checkpoint, tmp_path):
    ckpt_copy = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, ckpt_copy)
    store = lstmviz.record(ckpt_copy, out=tmp_path / "s.store", progress=False)
    ckpt = lstmviz.load_checkpoint(ckpt_copy)
    with torch.no_grad():
        ckpt.model.decoder.bias.add_(1.0)
    from lstmviz.model.checkpoint import save_checkpoint

    save_checkpoint(ckpt_copy, ckpt.model, ckpt.vocab, corpus=ckpt.config["corpus"], training=ckpt.config["training"])
    with pytest.raises(StoreError, match="earlier version of the checkpoint"):
        open_store(store.path)


def test_empty_text_is_a_clear_error(tiny_checkpoint, tmp_path):
    ckpt = lstmviz.load_checkpoint(tiny_checkpoint)
    with pytest.raises(CorpusError, match="no text to record"):
        record_activations(ckpt, [Document("e", "")], tmp_path / "s", progress=False)


def test_record_cli(tiny_checkpoint, corpus_dir, tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli.store"
    args = ["record", str(tiny_checkpoint), str(corpus_dir / "module_1.py"), "--out", str(out), "--max-chars", "300", "--json"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["chars"] == 300 and data["series"] == 12 and data["store"] == str(out)
    again = runner.invoke(main, args)
    assert again.exit_code == 2 and "already exists" in again.output
    bad = runner.invoke(main, ["record", str(tmp_path / "nope"), "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "does not exist" in bad.output
