"""Results kept in a store's directory: computed once and read after; a damaged one (JSON or
arrays) is computed again with a warning that names it, and written whole again."""

import json
import shutil

import numpy as np
import pytest

from lstmviz.store.cache import cache_files, cached, copy_caches, read_cached
from lstmviz.store.open import open_store


@pytest.fixture
def store(tiny_store, tmp_path):
    shutil.copytree(tiny_store.path, tmp_path / "copy.store")
    return open_store(tmp_path / "copy.store")


class Counted:
    """A computation that says how often it ran."""

    def __init__(self, result):
        self.result, self.runs = result, 0

    def __call__(self):
        self.runs += 1
        return self.result


ARRAYS = {"advantage": np.linspace(-1, 1, 7, dtype=np.float32), "summary": np.array(json.dumps({"table": [1, 2]}))}
JSON = {"in_string": {"metric": "auroc", "rows": [{"neuron": "L1.c.3", "score": 0.9}]}}


def _same(a, b) -> bool:
    if isinstance(a, dict) and all(isinstance(v, np.ndarray) for v in a.values()):
        return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    return a == b


@pytest.mark.parametrize(("name", "data"), [("rankings-v9.json", JSON), ("errors-v9.npz", ARRAYS)])
def test_a_result_is_computed_once_then_read(store, name, data):
    compute = Counted(data)
    assert read_cached(store, name) is None
    assert _same(cached(store, name, compute), data)
    assert _same(cached(store, name, compute), data) and compute.runs == 1
    assert _same(read_cached(store, name), data)
    assert cache_files(store.path) == [store.path / name]  # the store's own files are no caches


def test_a_cache_is_named_json_or_npz(store):
    with pytest.raises(ValueError, match="ending in .json or .npz"):
        cached(store, "rankings.pickle", Counted(JSON))
    with pytest.raises(ValueError, match="ending in"):
        read_cached(store, "../elsewhere.json")


def _truncated(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flipped(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _garbage(path):
    path.write_bytes(b"\x00\xff\xfe not what was written")


def _one_bare_array(path):
    with open(path, "wb") as f:
        np.save(f, np.arange(5))


@pytest.mark.parametrize("damage", [_truncated, _flipped, _garbage, _one_bare_array, lambda p: p.write_bytes(b"")])
@pytest.mark.parametrize(("name", "data"), [("rankings-v9.json", JSON), ("errors-v9.npz", ARRAYS)])
def test_a_damaged_result_is_computed_again_with_a_warning_that_names_it(store, name, data, damage):
    compute = Counted(data)
    cached(store, name, compute)
    if name.endswith(".json") and damage is _flipped:
        (store.path / name).write_text(json.dumps(data)[:-1])  # a flipped byte can still be JSON; a cut never is
    else:
        damage(store.path / name)
    with pytest.warns(UserWarning, match=f"{name}.*computed again"):
        again = cached(store, name, compute)
    assert _same(again, data) and compute.runs == 2
    assert _same(read_cached(store, name), data)  # written whole again: read without a warning
    with pytest.warns(UserWarning, match=name):
        damage(store.path / name)
        assert read_cached(store, name) is None


def test_a_recording_in_memory_keeps_nothing(tiny_checkpoint):
    from lstmviz.model.checkpoint import load_checkpoint
    from lstmviz.recording.recorder import record_text

    live = record_text(load_checkpoint(tiny_checkpoint), "def f(x):\n    return 'a'\n")
    compute = Counted(JSON)
    cached(live, "rankings-v9.json", compute)
    cached(live, "rankings-v9.json", compute)
    assert compute.runs == 2 and read_cached(live, "rankings-v9.json") is None


def test_copies_are_whole_or_not_there(store, tmp_path, monkeypatch):
    cached(store, "rankings-v9.json", Counted(JSON))
    cached(store, "errors-v9.npz", Counted(ARRAYS))
    target = tmp_path / "target"
    target.mkdir()
    (target / "rankings-v9.json").write_text("{}")  # already there: kept as it is
    real_copy = shutil.copy2

    def disk_full(source, destination, **options):
        real_copy(source, destination)
        with open(destination, "r+b") as f:
            f.truncate(10)  # half written, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copy2", disk_full)
    assert copy_caches(store.path, target) == ["errors-v9.npz (No space left on device)"]
    assert sorted(p.name for p in target.iterdir()) == ["rankings-v9.json"]  # no partial copy, no leftovers
    assert (target / "rankings-v9.json").read_text() == "{}"
    monkeypatch.setattr(shutil, "copy2", real_copy)
    assert copy_caches(store.path, target) == []
    assert _same(read_cached(open_store(store.path), "errors-v9.npz"), ARRAYS)
    assert np.array_equal(np.load(target / "errors-v9.npz")["advantage"], ARRAYS["advantage"])


def test_a_damaged_ngram_comparison_is_recomputed_with_a_warning(store, monkeypatch):
    from lstmviz.analysis import evaluate

    runs = []
    ngram = evaluate.ngram_for_store
    monkeypatch.setattr(evaluate, "ngram_for_store", lambda *a: runs.append(1) or ngram(*a))
    first = evaluate.store_error_analysis(store)
    assert len(runs) == 1 and (store.path / evaluate.ERRORS_CACHE).is_file()
    _truncated(store.path / evaluate.ERRORS_CACHE)
    with pytest.warns(UserWarning, match=evaluate.ERRORS_CACHE):
        again = evaluate.store_error_analysis(store)
    assert len(runs) == 2
    np.testing.assert_array_equal(again["advantage"], first["advantage"])
    assert again["table"] == first["table"] and again["baseline"] == first["baseline"]
    evaluate.store_error_analysis(store)
    assert len(runs) == 2  # whole again: read
