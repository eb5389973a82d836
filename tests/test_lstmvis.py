"""Exporting a store as an LSTMVis project: read back with h5py and yaml, as LSTMVis reads it."""

from __future__ import annotations

import h5py  # noqa: E402
import numpy as np
import pytest
import yaml

from lstmviz.core.errors import LstmvizError
from lstmviz.render import lstmvis
from lstmviz.render.lstmvis import char_for, export_lstmvis, token_for
from lstmviz.store.writer import write_store
from lstmviz.text.features import store_features


@pytest.fixture(scope="module")
def project(tiny_store, tmp_path_factory):
    return export_lstmvis(tiny_store, tmp_path_factory.mktemp("lstmvis") / "tiny")


def config(folder) -> dict:
    return yaml.safe_load((folder / "lstm.yml").read_text(encoding="utf-8"))


def read_dict(path) -> dict[int, str]:
    """id -> token, split the way LSTMVis's data handler splits each line."""
    mapping = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        token, word_id = line.split()  # exactly two fields, or LSTMVis skips the line
        mapping[int(word_id)] = token
    return mapping


def decoded_text(folder) -> str:
    cfg = config(folder)
    ws = cfg["word_sequence"]
    with h5py.File(folder / cfg["files"][ws["file"]], "r") as f:
        ids = f[ws["path"]][:]
    tokens = read_dict(folder / cfg["files"][ws["dict_file"]])
    return "".join(char_for(tokens[i]) for i in ids.tolist())


def test_every_file_and_dataset_named_in_lstm_yml_exists(project):
    cfg = config(project)
    written = sorted(p.name for p in project.iterdir())
    assert written == ["README.txt", "lstm.yml", "meta.h5", "states.h5", "words.dict", "words.h5"]
    assert all((project / name).is_file() for name in cfg["files"].values())
    h5 = {key: h5py.File(project / name, "r") for key, name in cfg["files"].items() if name.endswith(".h5")}
    try:
        for entry in cfg["states"]["types"]:
            assert entry["path"] in h5[entry["file"]]
        assert cfg["word_sequence"]["path"] in h5[cfg["word_sequence"]["file"]]
        assert cfg["files"][cfg["word_sequence"]["dict_file"]].endswith(".dict")
        for track in cfg["meta"].values():
            assert track["path"] in h5[track["file"]]
    finally:
        for f in h5.values():
            f.close()
    assert cfg["etc"]["regex_search"] is True


def test_states_are_character_major_float32_per_layer_and_kind(project, tiny_store):
    with h5py.File(project / "states.h5", "r") as f:
        assert list(f) == ["states1_c", "states1_h", "states2_c", "states2_h"]  # h5py lists names sorted
        for name in f:
            assert f[name].shape == (len(tiny_store), 24)
            assert f[name].dtype == np.float32
        np.testing.assert_array_equal(f["states2_c"][:, 5], tiny_store.neuron("L2.c.5"))
        np.testing.assert_array_equal(f["states1_h"][:], tiny_store.series_block(1, "h").astype(np.float32).T)
    entries = config(project)["states"]["types"]
    assert [(e["layer"], e["path"]) for e in entries] == [(1, "states1_h"), (1, "states1_c"), (2, "states2_h"), (2, "states2_c")]


def test_a_big_store_is_transposed_a_block_at_a_time_with_the_same_values(tiny_store, tmp_path, monkeypatch):
    monkeypatch.setattr(lstmvis, "BLOCK_BYTES", 7 * 24 * 4)  # seven characters per block
    out = export_lstmvis(tiny_store, tmp_path / "blocks", kinds=("c",))
    with h5py.File(out / "states.h5", "r") as f:
        assert list(f) == ["states1_c", "states2_c"]
        np.testing.assert_array_equal(f["states2_c"][:], tiny_store.series_block(2, "c").astype(np.float32).T)
    assert decoded_text(out) == tiny_store.text()


def test_word_ids_decode_back_to_the_text(project, tiny_store):
    with h5py.File(project / "words.h5", "r") as f:
        assert f["words"].shape == (len(tiny_store),)
        assert np.issubdtype(f["words"].dtype, np.integer)
    assert decoded_text(project) == tiny_store.text()
    tokens = read_dict(project / "words.dict").values()
    assert {"⏎", "·"} <= set(tokens)  # the snippet's newlines and spaces, made visible


def test_whitespace_and_placeholder_glyphs_round_trip(tmp_path):
    text = "a b\tc\nd\x0be\u00a0f·g⏎h\\u000bi\\j😀\x00"
    store = write_store(tmp_path / "odd.store", text, [("odd.txt", 0, len(text))], {(1, "h"): np.zeros((3, len(text)))})
    out = export_lstmvis(store, tmp_path / "odd", kinds=("h",))
    assert decoded_text(out) == text
    assert [token_for(c) for c in "\n\t \x0b·"] == ["⏎", "⇥", "·", "\\u000b", "\\u00b7"]
    assert token_for("😀") == "😀" and token_for("\U000e0001") == "\\U000e0001"
    for token in read_dict(out / "words.dict").values():
        assert token.isprintable() and not any(c.isspace() for c in token)


def test_every_character_has_a_token_that_reads_back_as_it():
    # The dashboard's glyphs, except that a glyph character in the text is written as its
    # code: "⏎" may stand for a newline or for itself on a page, never in a dictionary.
    every = [chr(cp) for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]
    tokens = [token_for(c) for c in every]
    assert [c for c, t in zip(every, tokens, strict=True) if char_for(t) != c] == []
    assert [t for t in tokens if not t.isprintable() or any(c.isspace() for c in t)] == []
    assert len(set(tokens)) == len(every)


def test_sigmoid_gates_are_unsigned_and_tanh_series_signed(tiny_store, tmp_path):
    out = export_lstmvis(tiny_store, tmp_path / "gates", kinds=("h", "c", "i", "f", "g", "o"))
    entries = config(out)["states"]["types"]
    unsigned = {e["path"]: e["unsigned"] for e in entries if e["layer"] == 1}
    assert unsigned == {
        "states1_h": False,
        "states1_c": False,
        "states1_i": True,
        "states1_f": True,
        "states1_g": False,
        "states1_o": True,
    }
    assert {e["transform"] for e in entries} == {"none"}
    assert {e["path"]: e["type"] for e in entries if e["layer"] == 2}["states2_h"] == "output"  # an LSTM's h is its output
    assert {e["type"] for e in entries if not e["path"].endswith("_h")} == {"state"}
    with h5py.File(out / "states.h5", "r") as f:
        gate = f["states2_f"][:]
    assert gate.min() >= 0 and gate.max() <= 1


def test_text_features_are_meta_tracks(project, tiny_store):
    features = store_features(tiny_store)
    meta = config(project)["meta"]
    assert list(meta) == features.names()
    with h5py.File(project / "meta.h5", "r") as f:
        for name in features.names():
            np.testing.assert_array_equal(f[name][:], features[name])
    assert meta["in_string"]["vis"] == {"type": "discrete", "range": [0, 1]}
    column = features["column"]
    assert meta["column"]["vis"] == {"type": "scalar", "range": [int(column.min()), int(column.max())]}


def test_an_empty_existing_folder_is_used_but_a_full_one_refused(tiny_store, tmp_path):
    (tmp_path / "empty").mkdir()
    assert (export_lstmvis(tiny_store, tmp_path / "empty") / "lstm.yml").is_file()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(LstmvizError, match="not an empty folder"):
        export_lstmvis(tiny_store, tmp_path / "full")
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["notes.txt"]


def test_an_unknown_kind_names_the_kinds_the_store_has(tiny_store, tmp_path):
    with pytest.raises(LstmvizError, match=r"has kinds h, c, i, f, g, o; it has no z") as err:
        export_lstmvis(tiny_store, tmp_path / "gru", kinds=("h", "z"))
    assert "\n" not in str(err.value)
    assert not (tmp_path / "gru").exists()
