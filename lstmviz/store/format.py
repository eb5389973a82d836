"""The on-disk format of an activation store: the files, their shapes, what meta.json says.

A store is a directory:
  meta.json         format version, checkpoint id and content hash, model config, vocabulary,
                    documents with character offsets, the series list, file sizes
  text.u32          the text as code points                       [chars]
  activations.f16   every unit of every series, neuron-major     [rows, chars] float16
  logp.f32          log-probability of the actual next character [chars] (NaN at a document's end)
  top_ids.u16       top-5 next-character ids                     [chars, 5]
  top_probs.f16     their probabilities                          [chars, 5]

A neuron is named ``L{layer}.{kind}.{index}`` (layer from 1, as in the paper), e.g. ``L2.c.117``;
:class:`NeuronId` (``core/neurons.py``) is the one place that parses and formats that name.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.errors import StoreError
from ..core.neurons import NeuronId
from ..model.guesses import TOP_K

STORE_FORMAT = "lstmviz-store"
STORE_VERSION = 1
META_KEYS = ("format_version", "checkpoint", "vocab", "chars", "documents", "series", "file_sizes")
# Recording's default batch (documents side by side). Fused throughput on the test split is
# within 10% of 64 lanes, at a quarter of the memory. Here, not in recording.py, so the CLI
# can show it without importing torch.
DEFAULT_LANES = 16
FILES = {  # name -> (dtype, values per character (None: rows))
    "text.u32": (np.uint32, 1),
    "activations.f16": (np.float16, None),
    "logp.f32": (np.float32, 1),
    "top_ids.u16": (np.uint16, TOP_K),
    "top_probs.f16": (np.float16, TOP_K),
}


def file_shape(name: str, rows: int, chars: int) -> tuple[int, ...]:
    """The array shape of one store file."""
    per_char = FILES[name][1]
    return (rows, chars) if per_char is None else ((chars,) if per_char == 1 else (chars, per_char))


@dataclass(frozen=True)
class Series:
    layer: int  # from 1
    kind: str
    units: int
    row: int  # first row in activations.f16
    reverse: bool = False  # the backward direction of a bidirectional layer

    def neuron(self, unit: int) -> NeuronId:
        return NeuronId(self.layer, self.kind, unit, self.reverse)

    @property
    def key(self) -> tuple[int, str, bool]:
        return (self.layer, self.kind, self.reverse)

    def to_json(self) -> dict:
        """As meta.json lists it (``reverse`` only where true, so other stores read as before)."""
        return {k: v for k, v in self.__dict__.items() if k != "reverse" or v}


@dataclass(frozen=True)
class StoredDocument:
    name: str
    start: int  # character offsets in the store's text
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start


def check_range(start: int | None, stop: int | None, length: int) -> tuple[int, int]:
    start = 0 if start is None else int(start)
    stop = length if stop is None else int(stop)
    if start > stop:
        raise StoreError(f"Character range {start}:{stop} is reversed: the start must come before the end ({stop}:{start}?).")
    if not 0 <= start <= stop <= length:
        raise StoreError(f"Character range {start}:{stop} is outside the store (0:{length}).")
    return start, stop


def store_meta(checkpoint, vocab: list[str], chars: int, documents, series: list[Series], recording: dict, sizes: dict) -> dict:
    """What meta.json says of a recording."""
    return {
        "format": STORE_FORMAT,
        "format_version": STORE_VERSION,
        "checkpoint": {
            "path": str(checkpoint.path.resolve()),
            "name": checkpoint.name,
            "id": checkpoint.id,
            "content_hash": checkpoint.content_hash,
        }
        if checkpoint is not None
        else {"path": "", "name": "", "id": "", "content_hash": ""},
        "model": checkpoint.model_config.to_json() if checkpoint is not None else {},
        "vocab": vocab,
        "chars": chars,
        "documents": [{"name": n, "start": a, "stop": b} for n, a, b in documents],
        "series": [s.to_json() for s in series],
        "dtype": "float16",
        "top_k": TOP_K,
        "recording": recording,
        "file_sizes": sizes,
    }
