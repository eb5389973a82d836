"""lstmviz: see inside character-level recurrent networks.

ckpt = lstmviz.load_checkpoint("checkpoints/stdlib-lstm")
store = lstmviz.record(ckpt, out="stdlib-test.store")   # the checkpoint's test split
store = lstmviz.open_store("stdlib-test.store")
store.neuron("L2.c.117", 0, 1000)
"""

from __future__ import annotations

from .checkpoint import Checkpoint, load_checkpoint
from .corpus import Document, Vocab, load_corpus
from .errors import CheckpointError, CorpusError, LstmvizError, StoreError
from .model import CharRNN, ModelConfig
from .store import ActivationStore, NeuronId, open_store

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
    "record",
]


def record(ckpt: Checkpoint | str, paths=None, out=None, **options) -> ActivationStore:
    """Record every series of ``ckpt`` over ``paths`` (default: its test split) into ``out``."""
    from .evaluate import evaluation_documents
    from .recording import record_activations

    if not isinstance(ckpt, Checkpoint):
        ckpt = load_checkpoint(ckpt)
    if out is None:
        raise LstmvizError("Give the store directory to write: out=...")
    return record_activations(ckpt, evaluation_documents(ckpt, paths), out, **options)
