"""lstmviz: see inside character-level recurrent networks.

ckpt = lstmviz.load_checkpoint("stdlib-lstm")                # the shipped model, by name
store = lstmviz.record(ckpt, out="stdlib-test.store")          # the checkpoint's test split
store = lstmviz.open_store("stdlib-test.store")
store.neuron("L2.c.117", 0, 1000)
lstmviz.rank_neurons(store, lstmviz.store_features(store))     # every neuron against every feature
lstmviz.explain(store).search("digit")                         # every unit explained in words, scored
lstmviz.sample(ckpt, prime="x = '", clamp={"L2.c.90": 20})     # text with a neuron held
lstmviz.ablate(ckpt, "L2.c.90").to_json()                      # bits lost, beside random controls
lstmviz.probe(store).to_json()                                  # linear probes; directions as units (L2.c~in_string)
lstmviz.attribute(ckpt, "L2.c.90", pos=1234)                     # which earlier characters made it so
lstmviz.circuit(store, "L2.c.90", feature="in_string")         # what drives it, and cutting its top edges

README.md shows these at work; docs/architecture.md says which module does what.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .core.errors import CheckpointError, CorpusError, LstmvizError, StoreError

if TYPE_CHECKING:
    from .analysis.compare import Comparison, compare_stores
    from .analysis.contexts import top_contexts
    from .analysis.dictionary import dictionary
    from .analysis.explain.explainer import explain
    from .analysis.hypotheses import range_hypotheses
    from .analysis.rankings import Ranking, rank_neurons
    from .analysis.saturation import gate_saturation
    from .core.neurons import NeuronId
    from .model.checkpoint import Checkpoint, load_checkpoint
    from .model.rnn import CharRNN, ModelConfig
    from .recording.recorder import record_text
    from .render.lstmvis import export_lstmvis
    from .render.report import write_report
    from .store.open import open_store
    from .store.reader import ActivationStore
    from .store.writer import write_store
    from .text.corpus import Document, Vocab, load_corpus
    from .text.features import Features, store_features

# The public names and the module each lives in, imported on first use (PEP 562): importing
# torch takes over a second, and ``lstmviz --help`` or reading a store needs none of it.
_LAZY = {
    "Checkpoint": "model.checkpoint",
    "load_checkpoint": "model.checkpoint",
    "Document": "text.corpus",
    "Vocab": "text.corpus",
    "load_corpus": "text.corpus",
    "CharRNN": "model.rnn",
    "ModelConfig": "model.rnn",
    "ActivationStore": "store.reader",
    "NeuronId": "core.neurons",
    "open_store": "store.open",
    "write_store": "store.writer",
    "record_text": "recording.recorder",
    "Features": "text.features",
    "store_features": "text.features",
    "Ranking": "analysis.rankings",
    "rank_neurons": "analysis.rankings",
    "top_contexts": "analysis.contexts",
    "explain": "analysis.explain.explainer",
    "gate_saturation": "analysis.saturation",
    "range_hypotheses": "analysis.hypotheses",
    "Comparison": "analysis.compare",
    "compare_stores": "analysis.compare",
    "dictionary": "analysis.dictionary",
    "write_report": "render.report",
    "export_lstmvis": "render.lstmvis",
}


# Modules of the public API, by a short name: ``from lstmviz import interventions as iv``.
_MODULES = {"interventions": "model.interventions", "hooks": "model.hooks"}


def __getattr__(name: str):
    if name in _MODULES:
        value = importlib.import_module(f".{_MODULES[name]}", __name__)
    elif name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    else:
        raise AttributeError(f"module 'lstmviz' has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_MODULES))


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
    "write_store",
    "record_text",
    "Features",
    "store_features",
    "Ranking",
    "rank_neurons",
    "top_contexts",
    "explain",
    "gate_saturation",
    "range_hypotheses",
    "Comparison",
    "compare_stores",
    "dictionary",
    "write_report",
    "export_lstmvis",
    "hooks",
    "interventions",
    "ablate",
    "probe",
    "attribute",
    "circuit",
    "dashboard",
    "heatmap",
    "record",
    "sample",
    "show",
]


def record(ckpt: Checkpoint | str, paths=None, out=None, **options) -> ActivationStore:
    """Record every series of ``ckpt`` over ``paths`` (default: its test split) into ``out``."""
    from .model.checkpoint import Checkpoint, load_checkpoint
    from .recording.one_text import evaluation_documents
    from .recording.recorder import record_activations

    if not isinstance(ckpt, Checkpoint):
        ckpt = load_checkpoint(ckpt)
    if out is None:
        raise LstmvizError("Give the store directory to write: out=...")
    return record_activations(ckpt, evaluation_documents(ckpt, paths), out, **options)


def show(source, neuron, text=None, range=None):
    """A neuron over a text or a range of a store, for a notebook; see :func:`lstmviz.app.notebook.show`."""
    from .app.notebook import show as coloured

    return coloured(source, neuron, text, range)


def heatmap(source, neurons, range: str = "0:200"):
    """The Heatmap page's figure, for a notebook; see :func:`lstmviz.app.notebook.heatmap`."""
    from .app.notebook import heatmap as figure

    return figure(source, neurons, range)


def dashboard(sources, mode: str = "inline", port: int = 8050, height: int = 800):
    """The whole dashboard inside a notebook; see :func:`lstmviz.app.notebook.dashboard`."""
    from .app.notebook import dashboard as inline

    return inline(sources, mode, port, height)


def sample(ckpt: Checkpoint | str, prime: str = "", length: int = 200, **options):
    """Generate text, neurons held if asked (``clamp={"L2.c.90": 20}``, ``ablate=[...]``);
    see :func:`lstmviz.model.sampling.sample`."""
    from .model.sampling import sample as generate

    return generate(ckpt, prime, length, **options)


def ablate(ckpt: Checkpoint | str, neurons, paths=None, mode: str = "zero", max_chars: int | None = 50_000, **options):
    """Bits lost when ``neurons`` are replaced, on ``paths`` (default: the test split), beside
    random control sets; see :func:`lstmviz.analysis.ablation.ablate`."""
    from .analysis.ablation import ablate as run_ablation
    from .model.checkpoint import Checkpoint, load_checkpoint
    from .recording.one_text import evaluation_documents
    from .text.lanes import limit_chars

    if not isinstance(ckpt, Checkpoint):
        ckpt = load_checkpoint(ckpt)
    return run_ablation(ckpt, limit_chars(evaluation_documents(ckpt, paths), max_chars), neurons, mode, **options)


def probe(source, features=None, **options):
    """Linear probes of each feature (default: the built-in ones) on every series of a store,
    trained on half its documents and scored on the other half, beside the best single
    unit; each direction is kept in the store as a unit (``L2.c~in_string``). See
    :func:`lstmviz.analysis.probes.probe_features`."""
    from .analysis.probes import probe_features
    from .store.open import open_store
    from .store.reader import ActivationStore

    store = source if isinstance(source, ActivationStore) else open_store(source)
    return probe_features(store, [features] if isinstance(features, str) else features, **options)


def attribute(source, neuron=None, *, pos: int, logit: str | None = None, text: str | None = None, **options):
    """Each earlier character's contribution to ``neuron`` (or to the next character
    ``logit``'s log-probability) at ``pos``; see :func:`lstmviz.analysis.attribution.attribute`."""
    from .analysis.attribution import attribute as attribute_characters

    return attribute_characters(source, neuron, pos=pos, logit=logit, text=text, **options)


def circuit(source, neuron, feature: str | None = None, range: str | None = None, **options):
    """What drives ``neuron`` over a feature's positions, a range ``"A:B"`` or the whole text of
    ``source`` (a store, or a checkpoint: its test split): each gate's terms per source, two
    levels back, and the causal check; see :func:`lstmviz.analysis.circuits.circuit`."""
    from .analysis.circuits import Selection, model_and_store
    from .analysis.circuits import circuit as find_circuit
    from .render.figures import parse_range

    ckpt, store = model_and_store(source)
    span = None if range is None else parse_range(range, len(store))
    return find_circuit(ckpt, store, neuron, Selection.of_store(store, feature, span), **options)
