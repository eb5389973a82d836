"""What commands are pointed at: stores, checkpoints, and the cache of recordings."""

import pytest

from lstmviz.cli import _open_for_dashboard
from lstmviz.errors import LstmvizError
from lstmviz.sources import open_source
from lstmviz.store import ActivationStore


def test_bad_sources_are_one_clear_error(tmp_path):
    with pytest.raises(LstmvizError, match="does not exist"):
        open_source(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(LstmvizError, match="neither an activation store nor a checkpoint"):
        open_source(tmp_path / "plain")


def test_a_checkpoint_is_recorded_into_the_cache_once(tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("LSTMVIZ_CACHE", str(tmp_path / "cache"))
    first, name = _open_for_dashboard(str(tiny_checkpoint), progress=False)
    assert isinstance(first, ActivationStore) and first.path.parent == tmp_path / "cache"
    assert name == f"{tiny_checkpoint.name} · test split"  # not the cache file's hashed name
    assert {s.kind for s in first.series} == {"h", "c"}  # a first start records h and c; gates on demand
    stamp = (first.path / "meta.json").stat().st_mtime_ns
    again, _ = _open_for_dashboard(str(tiny_checkpoint), progress=False)
    assert again.path == first.path and (again.path / "meta.json").stat().st_mtime_ns == stamp
    as_given, given_name = _open_for_dashboard(str(first.path))  # a store opens as it is, by its own name
    assert as_given.path == first.path and given_name == first.name


def test_debug_mode_is_refused_off_loopback(tiny_store):
    from click.testing import CliRunner

    from lstmviz.cli import main

    result = CliRunner().invoke(main, ["serve", str(tiny_store.path), "--debug", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "only allowed on loopback" in result.output
