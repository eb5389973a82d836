"""Units that are not stored rows: each has a value per character computed from its layer's
series (``core/neurons.py``: a direction ``L2.c~in_string``, a dictionary feature ``L2.c#17``).

A kind of unit registers how to compute its values (:func:`register`): given the store and
the unit, an :class:`Encoder` that maps the series' values over some characters
([units, n] float32) to the unit's ([n]). A store then hands a unit out through the calls a
neuron uses (``store.neuron``, ``store.window``): a window is computed from the float16
block on demand; the whole series (percentiles, contexts, rankings) is computed once, in
blocks of characters, and kept in the store directory as a derived series
(``series-{unit}-{version}.npz``, float16 as the stored rows are).

Directions are registered here: a direction is a unit vector saved in the store directory
by :func:`save_direction` (``lstmviz probe`` saves one per feature and series); so are a
sparse dictionary's features, read from the dictionary ``lstmviz dictionary`` saved in the
store directory (``store/dictionary_format.py``)."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import NeuronError
from ..core.neurons import DirectionId, FeatureId, UnitId, parse_unit
from .cache import cached, read_cached, write_cache
from .dictionary_format import CONFIG_FILE, WEIGHTS_FILE

BLOCK_CHARS = 1 << 16  # characters read and converted to float32 at a time for a whole series


@dataclass(frozen=True)
class Encoder:
    """How one unit's values come from its series: ``encode([units, n] float32) -> [n]``;
    ``version`` changes whenever the values would (so a derived series is never stale)."""

    encode: Callable[[np.ndarray], np.ndarray]
    version: str


Prepare = Callable[[object, UnitId], Encoder]  # (store, unit) -> Encoder, or NeuronError
_KINDS: dict[type, Prepare] = {}


def register(unit_type: type, prepare: Prepare) -> None:
    """Make units of ``unit_type`` readable from any store: ``prepare(store, unit)`` returns
    its :class:`Encoder`, or raises :class:`NeuronError` (one sentence) where the store has
    no such unit."""
    _KINDS[unit_type] = prepare


def series_block_of(store, unit: UnitId) -> np.ndarray:
    """The [units, chars] float16 block of the series ``unit`` lives on."""
    key = (unit.layer, unit.kind, unit.reverse)
    if key not in {s.key for s in store.series}:
        layers = max((s.layer for s in store.series), default=0)
        kinds = ", ".join(sorted({s.kind for s in store.series}))
        raise NeuronError(f"No unit {unit} in this store: it has no series {unit.series} (layers 1-{layers}, kinds {kinds}).")
    return store.series_block(*key)


def encoder_of(store, unit: UnitId) -> Encoder:
    prepare = _KINDS.get(type(unit))
    if prepare is None:
        raise NeuronError(f"Units such as {unit} cannot be read here: nothing that computes them is installed.")
    series_block_of(store, unit)
    return prepare(store, unit)


def unit_window(store, unit: UnitId, start: int, stop: int) -> np.ndarray:
    """``unit``'s values over characters [start, stop), float32, computed from its series."""
    encoder = encoder_of(store, unit)
    block = np.asarray(series_block_of(store, unit)[:, start:stop], dtype=np.float32)
    return np.asarray(encoder.encode(block), dtype=np.float32)


def values_on(store, unit: UnitId, recording) -> np.ndarray:
    """``unit``, kept in ``store``, computed on ``recording`` (another recording of the same
    model, e.g. typed text held in memory), float32 over all its characters."""
    encoder = encoder_of(store, unit)
    return np.asarray(encoder.encode(np.asarray(series_block_of(recording, unit), dtype=np.float32)), dtype=np.float32)


def unit_series(store, unit: str | UnitId) -> np.ndarray:
    """``unit``'s whole series as float16 (as a stored row is): computed once, in blocks of
    characters, and kept in the store directory."""
    unit = parse_unit(unit)
    encoder = encoder_of(store, unit)
    return _whole(store, str(unit), encoder.version)


@functools.lru_cache(maxsize=16)
def _whole(store, unit: str, version: str) -> np.ndarray:
    encoder, block = encoder_of(store, parse_unit(unit)), series_block_of(store, parse_unit(unit))

    def compute() -> dict:
        out = np.empty(len(store), dtype=np.float16)
        for a in range(0, len(store), BLOCK_CHARS):
            b = min(a + BLOCK_CHARS, len(store))
            out[a:b] = encoder.encode(np.asarray(block[:, a:b], dtype=np.float32))
        return {"values": out}

    return cached(store, derived_name(unit, version), compute)["values"]


def derived_name(unit: str | UnitId, version: str) -> str:
    """The file in a store's directory that keeps a unit's whole series."""
    return f"series-{unit}-{version}.npz"


def drop_derived(store, unit: str | UnitId) -> None:
    """Remove every kept series of ``unit`` (its definition has changed)."""
    if getattr(store, "in_memory", False):
        return
    for path in Path(store.path).glob(f"series-{unit}-*.npz"):
        path.unlink(missing_ok=True)
    _whole.cache_clear()


# -- directions ---------------------------------------------------------------------------------


def direction_name(direction: DirectionId) -> str:
    """The file in a store's directory that holds a direction's vector."""
    return f"direction-{direction}.npz"


def save_direction(store, direction: str | DirectionId, vector, about: dict | None = None) -> DirectionId:
    """Keep ``vector`` (one weight per unit of the direction's series; made unit length) in
    the store directory as the direction ``direction``; ``about``: numbers kept beside it
    (e.g. the probe's score)."""
    d = parse_unit(direction)
    if not isinstance(d, DirectionId):
        raise NeuronError(f"{d} is not a direction id; write e.g. L2.c~in_string.")
    units = series_block_of(store, d).shape[0]
    v = np.asarray(vector, dtype=np.float64).ravel()
    norm = float(np.linalg.norm(v))
    if v.shape != (units,) or not np.isfinite(norm) or norm == 0:
        raise NeuronError(f"A direction on {d.series} is {units} finite numbers, not all 0.")
    extra = {k: np.asarray(float(x)) for k, x in (about or {}).items()}
    write_cache(store, direction_name(d), {"vector": (v / norm).astype(np.float32), **extra})
    drop_derived(store, d)
    return d


def direction_vector(store, direction: str | DirectionId) -> np.ndarray:
    """The unit vector of a saved direction ([units] float32)."""
    d = parse_unit(direction)
    saved = read_cached(store, direction_name(d))
    if saved is None or "vector" not in saved:
        raise NeuronError(f"No direction {d} in this store; lstmviz probe finds one per feature and series.")
    return saved["vector"]


def saved_directions(store) -> list[tuple[DirectionId, float | None]]:
    """The directions kept in the store directory, each with the score kept beside it (a
    probe's held-out score), in name order."""
    if getattr(store, "in_memory", False):
        return []
    out = []
    for path in sorted(Path(store.path).glob("direction-*.npz")):
        try:
            d = parse_unit(path.stem.removeprefix("direction-"))
        except NeuronError:
            continue
        saved = read_cached(store, path.name) or {}
        out.append((d, float(saved["score"]) if "score" in saved else None))
    return out


def _prepare_direction(store, direction: DirectionId) -> Encoder:
    d = direction_vector(store, direction)
    if len(d) != series_block_of(store, direction).shape[0]:
        raise NeuronError(f"The direction {direction} saved in this store does not fit its series; run lstmviz probe again.")
    return Encoder(lambda block: d @ block, hashlib.sha1(d.tobytes()).hexdigest()[:10])


register(DirectionId, _prepare_direction)


# -- dictionary features ------------------------------------------------------------------------


def _dictionaries(store, series: str = "*") -> list[Path]:
    """The folders of the dictionaries kept in the store directory for ``series`` (every
    series: ``*``), saved first to saved last."""
    if getattr(store, "in_memory", False):
        return []
    folders = [p for p in (Path(store.path) / "dictionaries").glob(f"{series}-*") if (p / WEIGHTS_FILE).is_file()]
    return sorted(folders, key=lambda p: (p / WEIGHTS_FILE).stat().st_mtime)


def dictionary_of(store, feature: FeatureId) -> Path:
    """The folder of the dictionary of ``feature``'s series kept in the store directory
    (``lstmviz dictionary`` saves it there); of several, the one saved last."""
    folders = _dictionaries(store, feature.series)
    if not folders:
        raise NeuronError(f"No dictionary of {feature.series} in this store; lstmviz dictionary trains one.")
    return folders[-1]


def saved_dictionaries(store) -> dict[str, int]:
    """{series: features} of the dictionaries the store's units read (for each series, the
    one saved last), from their cfg.json alone (no weights are read)."""
    out = {}
    for folder in _dictionaries(store):
        try:
            cfg = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
            out[str(parse_unit(f"{cfg['metadata']['lstmviz_series']}#0").series)] = int(cfg["d_sae"])
        except (OSError, ValueError, KeyError, TypeError, NeuronError):
            continue  # a damaged one says so when its features are read
    return out


def _prepare_feature(store, feature: FeatureId) -> Encoder:
    import torch

    folder = dictionary_of(store, feature)
    dictionary = _dictionary_at(store, str(folder), (folder / WEIGHTS_FILE).stat().st_mtime_ns)
    if not 0 <= feature.feature < dictionary.size:
        raise NeuronError(f"No feature {feature}: the dictionary of {feature.series} has features 0-{dictionary.size - 1}.")

    @torch.no_grad()
    def encode(block: np.ndarray) -> np.ndarray:
        values, indices = dictionary.top_k(torch.from_numpy(np.ascontiguousarray(block.T)))
        return (values * (indices == feature.feature)).sum(-1).numpy()

    version = hashlib.sha1(f"{folder.name}:{(folder / WEIGHTS_FILE).stat().st_mtime_ns}".encode()).hexdigest()[:10]
    return Encoder(encode, version)


@functools.lru_cache(maxsize=4)
def _dictionary_at(store, folder: str, saved_ns: int):
    """The dictionary saved in ``folder`` (as saved at ``saved_ns``), read from disk once: a
    feature's page reads it at every window."""
    from .dictionary_format import load_dictionary

    return load_dictionary(folder, store)


register(FeatureId, _prepare_feature)
