"""Sharded recording on a local Ray cluster started here: the shards read as one store with
a single store's values, find-cells over shards ranks as over one store, a worker killed
mid-shard is retried, a broken manifest is one clear error, a rerun records only what is
missing."""

from __future__ import annotations

import os
import shutil
import signal

import numpy as np
import pytest
from click.testing import CliRunner

ray = pytest.importorskip("ray")

from lstmviz import open_store  # noqa: E402
from lstmviz.analysis.distribution import value_keys  # noqa: E402
from lstmviz.analysis.rankings import rank_neurons  # noqa: E402
from lstmviz.cli.main import main  # noqa: E402
from lstmviz.core.errors import StoreError  # noqa: E402
from lstmviz.model.checkpoint import load_checkpoint  # noqa: E402
from lstmviz.recording.recorder import record_activations  # noqa: E402
from lstmviz.scale import sharding  # noqa: E402
from lstmviz.scale.shard_rankings import rank_neurons_sharded  # noqa: E402
from lstmviz.scale.sharding import plan_shards, record_sharded, shard_name  # noqa: E402
from lstmviz.store.sharded import ShardedStore  # noqa: E402
from lstmviz.text.corpus import load_corpus  # noqa: E402
from lstmviz.text.features import store_features  # noqa: E402

SHARDS = 3


@pytest.fixture(scope="module", autouse=True)
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def docs(corpus_dir):
    return load_corpus([str(corpus_dir)]).documents


@pytest.fixture(scope="module")
def single(tiny_checkpoint, docs, tmp_path_factory):
    return record_activations(
        load_checkpoint(tiny_checkpoint), docs, tmp_path_factory.mktemp("single") / "one.store", progress=False
    )


@pytest.fixture(scope="module")
def sharded(tiny_checkpoint, docs, tmp_path_factory):
    return record_sharded(tiny_checkpoint, docs, tmp_path_factory.mktemp("sharded") / "corpus", shards=SHARDS)


def steps_apart(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """How many float16 values lie between a and b (0: equal; -0 and +0 count as one apart)."""
    return np.abs(value_keys(a).astype(np.int64) - value_keys(b).astype(np.int64))


def test_shards_are_whole_documents_of_about_equal_length(docs):
    parts = plan_shards(docs, SHARDS)
    assert [d for p in parts for d in p] == docs
    sizes = [sum(len(d.text) for d in p) for p in parts]
    longest_doc = max(len(d.text) for d in docs)
    assert max(sizes) - min(sizes) <= 2 * longest_doc


def test_sharded_recording_equals_the_single_store(sharded, single):
    store = open_store(sharded.path)
    assert isinstance(store, ShardedStore) and len(store.shards) == SHARDS
    assert len(store) == len(single) and store.text() == single.text()
    assert store.documents == single.documents
    a, b = np.asarray(store.activations), np.asarray(single.activations)
    assert a.shape == b.shape
    # Documents start from zero state, so only the batch layout differs (as between two
    # --lanes of one store): a value is equal or one float16 step away, and rarely.
    assert steps_apart(a, b).max() <= 1
    assert (a != b).mean() < 1e-3
    np.testing.assert_allclose(np.asarray(store.logp), np.asarray(single.logp), rtol=1e-5, atol=1e-6)


def test_reads_cross_shard_boundaries(sharded):
    store = sharded
    cut = int(store.shard_offsets[1])
    whole = np.asarray(store.activations, dtype=np.float32)
    neuron = store.neuron_ids()[5]
    row = store.row_of(neuron)
    np.testing.assert_array_equal(store.neuron(neuron, cut - 7, cut + 9), whole[row, cut - 7 : cut + 9])
    np.testing.assert_array_equal(store.window([neuron, "L1.h.0"], cut - 3, cut + 3), whole[[row, 0], cut - 3 : cut + 3])
    text = "".join(s.text() for s in store.shards)
    assert store.text(cut - 10, cut + 10) == text[cut - 10 : cut + 10]
    assert store.document_at(cut).start == cut
    positions = np.array([len(store) - 1, 0, cut, cut - 1])
    np.testing.assert_array_equal(store.activations[row, positions], whole[row, positions].astype(np.float16))
    block = store.series_block(1, "c")
    np.testing.assert_array_equal(
        np.asarray(block[2:4, cut - 5 : cut + 5]), whole[store.row_of("L1.c.2") : store.row_of("L1.c.4"), cut - 5 : cut + 5]
    )
    predictions = store.predictions(cut - 2, cut + 2)
    assert len(predictions["top_chars"]) == 4


def test_find_cells_over_shards_equals_one_store(sharded, single):
    feats = store_features(sharded)
    over_shards = rank_neurons_sharded(sharded, feats)
    as_one = rank_neurons(sharded, feats)
    recorded_once = rank_neurons(single, store_features(single))
    for name, ranking in as_one.items():
        merged = over_shards[name].table.set_index("neuron").loc[ranking.table.neuron]
        np.testing.assert_allclose(merged.value, ranking.table.value, atol=1e-6)
        np.testing.assert_allclose(merged.pearson, ranking.table.pearson, atol=1e-5)
        assert list(over_shards[name].table.neuron[:3]) == list(ranking.table.neuron[:3])
        once = recorded_once[name].table.set_index("neuron").loc[ranking.table.neuron]
        np.testing.assert_allclose(once.value, ranking.table.value, atol=1e-4)


def test_find_cells_command_takes_a_sharded_store(sharded):
    result = CliRunner().invoke(main, ["find-cells", str(sharded.path), "--ray", "--only", "in_string", "--json"])
    assert result.exit_code == 0, result.output
    assert '"in_string"' in result.output


def killed_once_midway(shard: int, marker):
    """A recording actor whose process is killed (SIGKILL) halfway through ``shard`` the first
    time, when ``marker`` does not exist yet; it writes its process id there first. Defined
    here, so Ray sends it by value: the workers run the real ``ShardRecorder`` inside it."""

    class KilledOnceMidway:
        def __init__(self, *args):
            from lstmviz.scale.sharding import ShardRecorder  # in the worker: the real one

            self.recorder = ShardRecorder(*args)

        def record(self, index, *args):
            from lstmviz.recording import recorder

            real = recorder.record_activations

            def killed_halfway(*a, **options):
                def progress(done, total):
                    if done * 2 >= total:
                        marker.write_text(str(os.getpid()))
                        os.kill(os.getpid(), signal.SIGKILL)

                return real(*a, **{**options, "on_progress": progress})

            if index == shard and not marker.exists():
                recorder.record_activations = killed_halfway
            try:
                return self.recorder.record(index, *args)
            finally:
                recorder.record_activations = real

    return KilledOnceMidway


def test_a_worker_killed_midway_is_retried(tiny_checkpoint, docs, sharded, tmp_path, monkeypatch):
    marker = tmp_path / "killed"
    monkeypatch.setattr(sharding, "ShardRecorder", killed_once_midway(1, marker))
    store = record_sharded(tiny_checkpoint, docs, tmp_path / "again", shards=SHARDS)
    killed = int(marker.read_text())  # the first attempt at shard 1 was killed halfway
    assert killed != os.getpid()
    np.testing.assert_array_equal(np.asarray(store.activations), np.asarray(sharded.activations))
    assert not list((tmp_path / "again").glob(".*writing*"))


def test_a_rerun_records_only_missing_shards(tiny_checkpoint, docs, sharded, tmp_path):
    out = tmp_path / "resumed"
    shutil.copytree(sharded.path, out)
    shutil.rmtree(out / shard_name(1))
    (out / "manifest.json").unlink()  # as a run interrupted before the end leaves it
    kept = {i: (out / shard_name(i) / "meta.json").stat().st_ino for i in (0, 2)}
    store = record_sharded(tiny_checkpoint, docs, out, shards=SHARDS)
    assert {i: (out / shard_name(i) / "meta.json").stat().st_ino for i in (0, 2)} == kept
    np.testing.assert_array_equal(np.asarray(store.activations), np.asarray(sharded.activations))


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_a_broken_shard_is_one_clear_error(sharded, tmp_path, damage):
    out = tmp_path / "broken"
    shutil.copytree(sharded.path, out)
    shard = out / shard_name(2)
    if damage == "missing":
        shutil.rmtree(shard)
    else:
        with open(shard / "activations.f16", "r+b") as f:
            f.truncate(100)
    with pytest.raises(StoreError, match=shard_name(2)):
        open_store(out)
    result = CliRunner().invoke(main, ["find-cells", str(out / "manifest.json")])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and shard_name(2) in result.output
