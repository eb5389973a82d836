"""A store as an LSTMVis project folder, so LSTMVis users can browse our recordings.

LSTMVis (Strobelt, Gehrmann, Pfister and Rush, "LSTMVis: A Tool for Visual Analysis of Hidden
State Dynamics in Recurrent Neural Networks", IEEE VIS 2017; github.com/HendrikStrobelt/LSTMVis)
serves every subfolder of its data directory that holds an ``lstm.yml`` (``python lstm_server.py
-dir <datadir>``). :func:`export_lstmvis` writes such a folder:

  lstm.yml     the project: ``files`` (reference name -> file), ``word_sequence``, ``states``
               (a default ``file`` and one ``types`` entry per layer and kind), ``meta``, ``etc``
  states.h5    ``states{layer}_{kind}`` for each layer (from 1) and kind: [characters, units] float32
  words.h5     ``words``: [characters] int32, one "word" per character, ids from 1
  words.dict   one ``token id`` line per distinct character (LSTMVis splits each line on whitespace)
  meta.h5      one [characters] track per text feature of :func:`lstmviz.text.features.store_features`
  README.txt   what is in the folder and the placeholders below

A dictionary line is split on whitespace, so a token must hold none. Characters that cannot be
tokens are written as visible placeholders: newline ``⏎``, tab ``⇥``, space ``·``; any other
whitespace or non-printable character, and the three placeholder glyphs themselves when they
occur in the text, as ``\\uXXXX`` (``\\UXXXXXXXX`` above U+FFFF). A lone backslash stays itself,
so the mapping reads back without ambiguity (:func:`char_for`).

States are written raw (``transform: none``); sigmoid gates (i f o of an LSTM, r z of a GRU) are
marked ``unsigned: true``, everything else (h, c, and the tanh candidates g and n) is signed.
An LSTM's h is listed with ``type: output`` and every other series with ``type: state``, as in
LSTMVis's own example (cell states are states, h is the output), so its project page tells h and c
apart; the ``path`` names the kind in any case.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import yaml

from ..core.atomic import move_into_place, temporary_name
from ..core.characters import SHOWN, code_of, glyph_of
from ..core.errors import LstmvizError
from ..text.features import store_features

PLACEHOLDERS = {char: glyph for char, (_, glyph) in SHOWN.items()}  # the dashboard's glyphs (core/characters.py)
UNSIGNED_KINDS = frozenset({"i", "f", "o", "r", "z"})  # sigmoid gates: their values lie in [0, 1]
BLOCK_BYTES = 64 << 20  # float32 values transposed at a time, so a big store never sits in memory whole
FILES = {"states": "states.h5", "words": "words.h5", "dict": "words.dict", "meta": "meta.h5"}

_GLYPHS = {glyph: char for char, glyph in PLACEHOLDERS.items()}


def token_for(char: str) -> str:
    """The dictionary token LSTMVis shows for one character: its glyph, as the dashboard's
    labels show it, except that a glyph character in the text itself is written as its code.
    The dashboard may show ``⏎`` for both; a token is read back (:func:`char_for`), so it
    must stand for one character."""
    return code_of(char) if char in _GLYPHS else glyph_of(char)


def char_for(token: str) -> str:
    """The character a dictionary token stands for (the inverse of :func:`token_for`)."""
    if token in _GLYPHS:
        return _GLYPHS[token]
    if len(token) > 1 and token[:2] in ("\\u", "\\U"):
        return chr(int(token[2:], 16))
    return token


def _checked_kinds(store, kinds: tuple[str, ...]) -> tuple[str, ...]:
    have = list(dict.fromkeys(s.kind for s in store.series))
    unknown = [k for k in kinds if k not in have]
    if unknown or not kinds:
        missing = f"it has no {', '.join(unknown)}" if unknown else "give at least one"
        raise LstmvizError(f"This store has kinds {', '.join(have)}; {missing} to export.")
    return tuple(dict.fromkeys(kinds))


def _empty_folder(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise LstmvizError(f"Cannot export to {out}: it exists and is not an empty folder.")


def _write_states(h5, store, kinds: tuple[str, ...]) -> list[dict]:
    """One [chars, units] float32 dataset per series; returns the lstm.yml ``types`` entries."""
    series = sorted((s for s in store.series if s.kind in kinds), key=lambda s: (s.layer, s.reverse, kinds.index(s.kind)))
    lstm = store.meta.get("model", {}).get("cell") in ("lstm", "peephole", "cifg")
    types = []
    for s in series:
        path = f"states{s.layer}{'r' if s.reverse else ''}_{s.kind}"
        data = h5.create_dataset(path, shape=(len(store), s.units), dtype=np.float32)
        block = store.series_block(*s.key)
        step = max(1, BLOCK_BYTES // (4 * s.units))
        for start in range(0, len(store), step):
            data[start : start + step] = block[:, start : start + step].astype(np.float32).T
        kind_type = "output" if lstm and s.kind == "h" else "state"
        entry = {"file": "states", "path": path, "type": kind_type, "layer": s.layer}
        types.append(entry | {"unsigned": s.kind in UNSIGNED_KINDS, "transform": "none"})
    return types


def _write_words(h5, dict_path: Path, store) -> None:
    """Word ids from 1 (as LSTMVis's own dictionaries count) for each distinct character."""
    step = BLOCK_BYTES // 4
    seen = [np.unique(store.codepoints[start : start + step]) for start in range(0, len(store), step)]
    codes = np.unique(np.concatenate(seen)) if seen else np.zeros(0, dtype=np.uint32)
    words = h5.create_dataset("words", shape=(len(store),), dtype=np.int32)
    for start in range(0, len(store), step):
        words[start : start + step] = np.searchsorted(codes, store.codepoints[start : start + step]) + 1
    lines = (f"{token_for(chr(code))} {i}\n" for i, code in enumerate(codes.tolist(), start=1))
    dict_path.write_text("".join(lines), encoding="utf-8")


def _write_meta(h5, store) -> dict:
    """Each text feature as a track; binary ones are ``discrete`` 0/1, the others ``scalar``."""
    features = store_features(store)
    meta = {}
    for name in features.names():
        values = np.asarray(features[name])
        h5.create_dataset(name, data=values)
        if features.is_binary(name):
            vis = {"type": "discrete", "range": [0, 1]}
        else:
            low, high = (values.min().item(), values.max().item()) if values.size else (0, 0)
            vis = {"type": "scalar", "range": [low, high]}
        meta[name] = {"file": "meta", "path": name, "vis": vis}
    return meta


def _readme(store, types: list[dict]) -> str:
    mapping = ", ".join(f"{glyph} for {char!r}" for char, glyph in PLACEHOLDERS.items())
    lines = [
        f"LSTMVis project exported by lstmviz from the store {store.name!r} ({len(store)} characters).",
        "Open it with LSTMVis (github.com/HendrikStrobelt/LSTMVis): put this folder in a data directory",
        "and run `python lstm_server.py -dir <that directory>`.",
        "",
        "Every character is one word. states.h5 holds, as [characters, units] float32, raw (transform: none):",
        "  " + ", ".join(t["path"] for t in types),
        "words.h5 (dataset words) holds the word ids, words.dict maps them to characters,",
        "meta.h5 holds the text features (see the meta section of lstm.yml).",
        "",
        f"Placeholders in words.dict: {mapping}; any other whitespace or non-printable character,",
        "and these glyphs themselves when the text holds them, as \\uXXXX (\\UXXXXXXXX above U+FFFF).",
        "words.dict is UTF-8: run LSTMVis under a UTF-8 locale.",
    ]
    return "\n".join(lines) + "\n"


def export_lstmvis(store, out: str | Path, kinds: tuple[str, ...] = ("h", "c")) -> Path:
    """Write ``store`` (its series of ``kinds``) as the LSTMVis project folder ``out``; returns it.
    Written beside ``out`` and moved into place when complete, so a failure leaves nothing half-written."""
    import h5py  # only this export needs it

    out = Path(out)
    kinds = _checked_kinds(store, tuple(kinds))
    _empty_folder(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(out)
    tmp.mkdir()
    try:
        with h5py.File(tmp / FILES["states"], "w") as h5:
            types = _write_states(h5, store, kinds)
        with h5py.File(tmp / FILES["words"], "w") as h5:
            _write_words(h5, tmp / FILES["dict"], store)
        with h5py.File(tmp / FILES["meta"], "w") as h5:
            meta = _write_meta(h5, store)
        cell = store.meta.get("model", {}).get("cell") or "rnn"
        config = {
            "name": store.name,
            "description": f"{cell.upper()} states over {len(store)} characters ({len(store.documents)} document(s)), "
            "one word per character (exported by lstmviz)",
            "files": dict(FILES),
            "word_sequence": {"file": "words", "path": "words", "dict_file": "dict"},
            "states": {"file": "states", "types": types},
            "meta": meta,
            # One character per word: LSTMVis's regex search joins the first character of each word.
            "etc": {"regex_search": True},
        }
        (tmp / "lstm.yml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
        (tmp / "README.txt").write_text(_readme(store, types), encoding="utf-8")
        _empty_folder(out)  # again: another writer may have filled it meanwhile
        move_into_place(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
