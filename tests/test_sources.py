"""What commands are pointed at: stores, checkpoints, and the cache of recordings."""

import numpy as np
import pytest

from lstmviz.cli.serve import open_for_dashboard
from lstmviz.core.errors import LstmvizError
from lstmviz.recording.sources import COMPARED_KINDS, NotRecorded, cache_entries, open_source, recorded
from lstmviz.store.reader import ActivationStore


def test_bad_sources_are_one_clear_error(tmp_path):
    with pytest.raises(LstmvizError, match="does not exist"):
        open_source(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(LstmvizError, match="neither an activation store nor a checkpoint"):
        open_source(tmp_path / "plain")


def test_a_checkpoint_is_recorded_into_the_cache_once(tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("LSTMVIZ_CACHE", str(tmp_path / "cache"))
    first, name = open_for_dashboard(str(tiny_checkpoint), progress=False)
    assert isinstance(first, ActivationStore) and first.path.parent == tmp_path / "cache"
    assert name == f"{tiny_checkpoint.name} · test split"  # not the cache file's hashed name
    assert {s.kind for s in first.series} == {"h", "c"}  # a first start records h and c; gates on demand
    stamp = (first.path / "meta.json").stat().st_mtime_ns
    again, _ = open_for_dashboard(str(tiny_checkpoint), progress=False)
    assert again.path == first.path and (again.path / "meta.json").stat().st_mtime_ns == stamp
    as_given, given_name = open_for_dashboard(str(first.path))  # a store opens as it is, by its own name
    assert as_given.path == first.path and given_name == first.name


def test_a_recording_not_asked_for_is_only_read_from_the_cache(tiny_checkpoint, tmp_path, monkeypatch):
    from lstmviz.model.checkpoint import load_checkpoint
    from lstmviz.recording.one_text import OneText

    monkeypatch.setenv("LSTMVIZ_CACHE", str(tmp_path / "cache"))
    ckpt = load_checkpoint(tiny_checkpoint)
    text = OneText.choose([ckpt], max_chars=300)
    with pytest.raises(NotRecorded, match=r"is not recorded on this text \(300 characters\) yet"):
        text.store_for(ckpt, record=False)
    with pytest.raises(NotRecorded):
        next(iter(text.snapshots(ckpt, record=False)))
    assert cache_entries() == []  # nothing written on a miss
    made = text.store_for(ckpt, progress=False)  # asked for: recorded once
    assert text.store_for(ckpt, record=False).path == made.path
    assert recorded(ckpt, text.docs, kinds=COMPARED_KINDS, record=False).path == made.path
    assert [e.path for e in cache_entries()] == [made.path]


def test_debug_mode_is_refused_off_loopback(tiny_store):
    from click.testing import CliRunner

    from lstmviz.cli.main import main

    result = CliRunner().invoke(main, ["serve", str(tiny_store.path), "--debug", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "only allowed on loopback" in result.output


def test_a_whole_recording_replaces_the_h_and_c_one_in_the_cache(tiny_checkpoint, tmp_path, monkeypatch):
    """After the gates are recorded the cache holds each series once: the h-and-c store
    that serve started on is removed (its rankings kept), and the whole one serves for h
    and c from then on, with nothing more to record."""
    import numpy as np

    from lstmviz.analysis.evaluate import evaluation_documents
    from lstmviz.analysis.rankings import RANKINGS_CACHE, store_rankings
    from lstmviz.model.checkpoint import load_checkpoint
    from lstmviz.recording.sources import COMPARED_KINDS, cache_entries, recorded, uncached_bytes

    monkeypatch.setenv("LSTMVIZ_CACHE", str(tmp_path / "cache"))
    ckpt = load_checkpoint(tiny_checkpoint)
    docs = evaluation_documents(ckpt)
    part = recorded(ckpt, docs, kinds=COMPARED_KINDS, progress=False)
    rankings = store_rankings(part)
    whole = recorded(ckpt, docs, progress=False)
    assert [e.path for e in cache_entries()] == [whole.path] and not part.path.exists()
    assert (whole.path / RANKINGS_CACHE).is_file() and store_rankings(whole) == rankings
    again = recorded(ckpt, docs, kinds=COMPARED_KINDS, progress=False)
    assert again.path == whole.path and uncached_bytes([ckpt], docs, COMPARED_KINDS) == 0
    np.testing.assert_array_equal(again.neuron("L1.c.3"), part.neuron("L1.c.3"))  # still mapped, same values
    served, _ = open_for_dashboard(str(tiny_checkpoint), progress=False)
    assert served.path == whole.path


def test_the_ngram_comparison_survives_the_gates_recording(tiny_checkpoint, tmp_path, monkeypatch):
    """Every cache of the h-and-c store moves into the whole one, arrays too: the n-gram
    comparison (minutes on the shipped model) is read, not computed again."""
    from lstmviz.analysis import evaluate
    from lstmviz.model.checkpoint import load_checkpoint
    from lstmviz.recording.sources import COMPARED_KINDS, recorded

    monkeypatch.setenv("LSTMVIZ_CACHE", str(tmp_path / "cache"))
    ckpt = load_checkpoint(tiny_checkpoint)
    docs = evaluate.evaluation_documents(ckpt)
    part = recorded(ckpt, docs, kinds=COMPARED_KINDS, progress=False)
    first = evaluate.store_error_analysis(part)
    whole = recorded(ckpt, docs, progress=False)
    assert not part.path.exists() and (whole.path / evaluate.ERRORS_CACHE).is_file()

    def not_again(*args):
        raise AssertionError("the n-gram comparison was computed again")

    monkeypatch.setattr(evaluate, "ngram_for_store", not_again)
    kept = evaluate.store_error_analysis(whole)
    assert kept["table"] == first["table"]
    np.testing.assert_array_equal(kept["advantage"], first["advantage"])


def test_a_cache_that_cannot_be_copied_keeps_the_h_and_c_recording_and_says_so(tiny_checkpoint, tmp_path, monkeypatch):
    import shutil

    from lstmviz.analysis.evaluate import evaluation_documents
    from lstmviz.analysis.rankings import RANKINGS_CACHE, store_rankings
    from lstmviz.model.checkpoint import load_checkpoint
    from lstmviz.recording.sources import COMPARED_KINDS, recorded

    monkeypatch.setenv("LSTMVIZ_CACHE", str(tmp_path / "cache"))
    ckpt = load_checkpoint(tiny_checkpoint)
    docs = evaluation_documents(ckpt)
    part = recorded(ckpt, docs, kinds=COMPARED_KINDS, progress=False)
    rankings = store_rankings(part)
    copy = shutil.copy2

    def disk_full(source, destination, **options):
        copy(source, destination)
        with open(destination, "r+b") as f:
            f.truncate(7)
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m, pytest.warns(UserWarning, match=f"{RANKINGS_CACHE} \\(No space left on device\\)"):
        m.setattr(shutil, "copy2", disk_full)
        whole = recorded(ckpt, docs, progress=False)
    assert part.path.exists() and not (whole.path / RANKINGS_CACHE).exists()
    assert not list(whole.path.glob(".*"))  # no partial copy left behind
    recorded(ckpt, docs, progress=False)  # the next time, with room on the disk, it moves
    assert not part.path.exists() and store_rankings(whole) == rankings
