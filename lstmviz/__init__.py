"""lstmviz: see inside character-level recurrent networks.

ckpt = lstmviz.load_checkpoint("checkpoints/stdlib-lstm")
store = lstmviz.record(ckpt, out="stdlib-test.store")   # the checkpoint's test split
store = lstmviz.open_store("stdlib-test.store")
store.neuron("L2.c.117", 0, 1000)
lstmviz.sample(ckpt, prime="x = '", clamp={"L2.c.90": 20})   # text with a neuron held
lstmviz.ablate(ckpt, "L2.c.90").to_json()                     # bits lost, beside random controls
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .errors import CheckpointError, CorpusError, LstmvizError, StoreError

if TYPE_CHECKING:
    from .checkpoint import Checkpoint, load_checkpoint
    from .corpus import Document, Vocab, load_corpus
    from .model import CharRNN, ModelConfig
    from .store import ActivationStore, NeuronId, open_store

# The public names and the module each lives in, imported on first use (PEP 562): importing
# torch takes over a second, and ``lstmviz --help`` or reading a store needs none of it.
_LAZY = {
    "Checkpoint": "checkpoint",
    "load_checkpoint": "checkpoint",
    "Document": "corpus",
    "Vocab": "corpus",
    "load_corpus": "corpus",
    "CharRNN": "model",
    "ModelConfig": "model",
    "ActivationStore": "store",
    "NeuronId": "store",
    "open_store": "store",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'lstmviz' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ActivationStore",
    "CharRNN",
    "Checkpoint",
    "CheckpointError",
    "CorpusError",
    "Document",
    "LstmvizError",
    "ModelConfig",
    "NeuronId",
    "StoreError",
    "Vocab",
    "load_checkpoint",
    "load_corpus",
    "open_store",
    "ablate",
    "dashboard",
    "heatmap",
    "record",
    "sample",
    "show",
]


def record(ckpt: Checkpoint | str, paths=None, out=None, **options) -> ActivationStore:
    """Record every series of ``ckpt`` over ``paths`` (default: its test split) into ``out``."""
    from .checkpoint import Checkpoint, load_checkpoint
    from .evaluate import evaluation_documents
    from .recording import record_activations

    if not isinstance(ckpt, Checkpoint):
        ckpt = load_checkpoint(ckpt)
    if out is None:
        raise LstmvizError("Give the store directory to write: out=...")
    return record_activations(ckpt, evaluation_documents(ckpt, paths), out, **options)


def show(source, neuron, text=None, range=None):
    """A neuron over a text or a range of a store, for a notebook; see :func:`lstmviz.notebook.show`."""
    from .notebook import show as coloured

    return coloured(source, neuron, text, range)


def heatmap(source, neurons, range: str = "0:200"):
    """The Heatmap page's figure, for a notebook; see :func:`lstmviz.notebook.heatmap`."""
    from .notebook import heatmap as figure

    return figure(source, neurons, range)


def dashboard(sources, mode: str = "inline", port: int = 8050, height: int = 800):
    """The whole dashboard inside a notebook; see :func:`lstmviz.notebook.dashboard`."""
    from .notebook import dashboard as inline

    return inline(sources, mode, port, height)


def sample(ckpt: Checkpoint | str, prime: str = "", length: int = 200, **options):
    """Generate text, neurons held if asked (``clamp={"L2.c.90": 20}``, ``ablate=[...]``);
    see :func:`lstmviz.sampling.sample`."""
    from .sampling import sample as generate

    return generate(ckpt, prime, length, **options)


def ablate(ckpt: Checkpoint | str, neurons, paths=None, mode: str = "zero", max_chars: int | None = 50_000, **options):
    """Bits lost when ``neurons`` are replaced, on ``paths`` (default: the test split), beside
    random control sets; see :func:`lstmviz.ablation.ablate`."""
    from .ablation import ablate as run_ablation
    from .checkpoint import Checkpoint, load_checkpoint
    from .evaluate import evaluation_documents
    from .lanes import limit_chars

    if not isinstance(ckpt, Checkpoint):
        ckpt = load_checkpoint(ckpt)
    return run_ablation(ckpt, limit_chars(evaluation_documents(ckpt, paths), max_chars), neurons, mode, **options)
