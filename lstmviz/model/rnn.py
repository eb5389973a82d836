"""The character-level recurrent network of Karpathy, Johnson & Fei-Fei (2015),
"Visualizing and Understanding Recurrent Networks": an embedding, a stack of LSTM, GRU or
vanilla RNN layers (or the LSTM variants of ``variants.py``: peephole, cifg), and a linear
decoder to next-character logits.

Parameters keep PyTorch's fused-module layout (``rnn.weight_ih_l0``, ``rnn.weight_hh_l0``,
...), so training runs the fast fused ``nn.LSTM``/``nn.GRU``/``nn.RNN`` and the
instrumented paths (``instrument.py`` to read, ``stepwise.py`` to replace) use the very
same weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..core.errors import ConfigError, LstmvizError, NeuronError
from ..core.neurons import NeuronId, hook_name
from .hooks import (
    HookCall,
    HookPoint,
    Hooks,
    PreActivationPoint,
    active_hooks,
    apply_hooks,
    caching_readers,
    hook_points,
    hooks,
    is_reader,
    pairs_of,
)
from .instrument import FUSED_MODULES, fast_layer
from .stepwise import StepWeights, step_layer
from .variants import VARIANTS, VariantLSTM, layer_params

FUSED_CELLS = tuple(FUSED_MODULES)
CELLS = (*FUSED_CELLS, *VARIANTS)
LSTM_KINDS = ("h", "c", "i", "f", "g", "o")
# The per-character series each cell type exposes, in the order they are recorded.
SERIES_KINDS = {"lstm": LSTM_KINDS, "gru": ("h", "r", "z", "n"), "rnn": ("h",), "peephole": LSTM_KINDS, "cifg": LSTM_KINDS}
# Gate names in PyTorch's weight layout order (rows of weight_ih / weight_hh); cifg has no i rows (i = 1 - f).
GATE_ORDER = {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n"), "rnn": ("h",)}
GATE_ORDER |= {"peephole": GATE_ORDER["lstm"], "cifg": ("f", "g", "o")}


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int  # characters, the unknown character included
    cell: str = "lstm"  # lstm | gru | rnn | peephole | cifg
    num_layers: int = 2  # stacked recurrent layers
    hidden_size: int = 256  # units per layer
    embed_dim: int = 64  # input embedding width
    dropout: float = 0.0  # between recurrent layers and before the decoder, training only
    bidirectional: bool = False  # imported taggers: each layer also reads every document from its end
    num_labels: int = 0  # a tagger's classes per character (its head); 0: the decoder predicts the next character

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ConfigError(f"Unknown cell type {self.cell!r}; choose one of {', '.join(CELLS)}.")
        if self.bidirectional != (self.num_labels > 0) or (self.bidirectional and self.cell not in FUSED_CELLS):
            raise ConfigError(
                "Only a bidirectional model is a tagger (num_labels at least 1), and its layers are nn.LSTM, nn.GRU or nn.RNN."
            )
        if self.num_layers < 1 or self.hidden_size < 1 or self.embed_dim < 1 or self.vocab_size < 2:
            raise ConfigError("Layers (--layers), units (--hidden) and embedding width (--embed) must be at least 1.")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"Dropout must be at least 0 and below 1, not {self.dropout}.")

    def to_json(self) -> dict:
        return asdict(self)

    @property
    def series_kinds(self) -> tuple[str, ...]:
        return SERIES_KINDS[self.cell]

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def has_c(self) -> bool:
        """Whether the state is (h, c) rather than h alone."""
        return "c" in self.series_kinds


class LayerHooks(nn.Module):
    """The hook points of one layer: ``hook_h``, ``hook_c``, ``hook_i``... each [batch, time, hidden];
    ``hook_pre_i``... each gate's pre-activation, one step at a time [batch, 1, hidden] (the
    exact step path; not in a bidirectional model); in a bidirectional model also
    ``reverse.hook_h``... (the backward direction, in text order)."""

    def __init__(self, kinds: tuple[str, ...], reverse: bool = False, gates: tuple[str, ...] = ()):
        super().__init__()
        for kind in kinds:
            self.add_module(f"hook_{kind}", HookPoint())
        for gate in gates:
            self.add_module(f"hook_pre_{gate}", PreActivationPoint())
        if reverse:
            self.reverse = LayerHooks(kinds)


# A recurrent state: (h, c) for LSTM and its variants, h for GRU/RNN; each [layers, batch, hidden].
State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


class CharRNN(nn.Module):
    """Character model. ``forward`` runs the fused module (training's fast path);
    ``forward_instrumented`` runs the same function layer by layer through every hook point:
    the fast path for reading (``instrument.py``), the exact step path for a layer whose
    values a hook replaces (``stepwise.py``)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embed_dim)
        dropout = config.dropout if config.num_layers > 1 else 0.0
        if config.cell in VARIANTS:  # no fused kernel: the step functions, also for training
            self.rnn = VariantLSTM(config.cell, config.embed_dim, config.hidden_size, config.num_layers, dropout)
        else:
            self.rnn = FUSED_MODULES[config.cell](
                config.embed_dim,
                config.hidden_size,
                num_layers=config.num_layers,
                batch_first=True,
                dropout=dropout,
                bidirectional=config.bidirectional,
            )
        self.drop = nn.Dropout(config.dropout)
        self.decoder = nn.Linear(config.hidden_size * config.directions, config.num_labels or config.vocab_size)
        # Hook points only; no parameters, so the state dict keeps the fused layout.
        gates = () if config.bidirectional else GATE_ORDER[config.cell]
        self.layers = nn.ModuleList(
            LayerHooks(config.series_kinds, config.bidirectional, gates) for _ in range(config.num_layers)
        )

    def initial_state(self, batch: int, device: torch.device | str = "cpu") -> State:
        shape = (self.config.num_layers * self.config.directions, batch, self.config.hidden_size)
        zeros = torch.zeros(shape, device=device)
        return (zeros, zeros.clone()) if self.config.has_c else zeros

    def forward(self, ids: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """``ids`` [batch, time] -> logits [batch, time, vocab] and the final state. With hooks
        added (``model.hooks``), this is ``forward_instrumented``, so no hook is ignored."""
        if any(p.fns for p in hook_points(self).values()):
            return self.forward_instrumented(ids, state)
        x = self.embedding(ids)  # [batch, time, embed]
        out, state = self.rnn(x, state)  # [batch, time, hidden]
        return self.decoder(self.drop(out)), state

    def layer_weights(self, layer: int, reverse: bool = False) -> dict[str, torch.Tensor]:
        """Layer ``layer`` (from 0) of the fused module (``reverse``: its backward direction),
        named as a one-layer module's."""
        suffix = "_reverse" if reverse else ""
        return {f"{p}_l0": getattr(self.rnn, f"{p}_l{layer}{suffix}") for p in layer_params(self.config.cell)}

    def step_weights(self, layer: int) -> StepWeights:
        """Layer ``layer``'s weights laid out for the step path, made once (again only if the
        weights change)."""
        weights = self.layer_weights(layer)
        key = (layer, *((w.data_ptr(), _version(w)) for w in weights.values()))
        cache = self.__dict__.setdefault("_step_weights", {})
        if cache.get(layer, (None,))[0] != key:
            with torch.no_grad():
                cache[layer] = (key, StepWeights.of(self.config.cell, weights))
        return cache[layer][1]

    @torch.no_grad()
    def forward_instrumented(
        self,
        ids: torch.Tensor,
        state: State | None = None,
        keep: torch.Tensor | None = None,
        *,
        hooks: Hooks | None = None,
        offset: int = 0,
    ) -> tuple[torch.Tensor, State]:
        """The same function as ``forward``, through every hook point. ``keep`` [batch, time]
        (0 or 1) zeroes a row's state before the steps where a new document starts. ``hooks``
        are added for this call only (the model is left untouched, so calls from several
        threads do not mix); ``offset`` is the position of step 0, as hooks see it in
        ``hook.positions`` (for a long text run in chunks). Inference only."""
        if state is None:
            state = self.initial_state(ids.shape[0], ids.device)
        top, state = self.run_layers(self.embedding(ids), state, keep, active_hooks(self, hooks), offset)
        return self.decoder(top), state

    def run_layers(self, x, state: State, keep=None, hooks=None, offset: int = 0, layers: range | None = None):
        """``layers`` (default: all) over the input of the first: (the last one's h
        [batch, time, hidden], their new state). ``state`` holds the state of those layers."""
        cfg = self.config
        hooks = hooks or {}
        if keep is not None:
            keep = keep.to(x.dtype)
        if cfg.bidirectional:
            return self._both_directions(x, keep, hooks, offset), None
        new_h, new_c = [], []
        for k, layer in enumerate(range(cfg.num_layers) if layers is None else layers):
            s = (state[0][k], state[1][k]) if cfg.has_c else state[k]
            x, final = self._run_layer(layer, x, s, keep, hooks, offset)
            new_h.append(final[0] if cfg.has_c else final)
            if cfg.has_c:
                new_c.append(final[1])
        h_n = torch.stack(new_h)
        return x, ((h_n, torch.stack(new_c)) if cfg.has_c else h_n)

    def _run_layer(self, layer: int, x, s, keep, hooks, offset: int, reverse: bool = False):
        """One layer (one direction) over x from state ``s``, its readers called with its
        series: (its h [batch, time, hidden], its final state). The backward direction runs
        over the text reversed and its series are handed back in text order."""
        cfg = self.config
        names = {kind: hook_name(layer, kind, reverse) for kind in cfg.series_kinds}
        if not reverse and not cfg.bidirectional:
            names |= {f"pre_{gate}": hook_name(layer, f"pre_{gate}") for gate in GATE_ORDER[cfg.cell]}
        layer_hooks = {kind: hooks[name] for kind, name in names.items() if hooks.get(name)}
        # a pre-activation exists on the step path only: its readers run there too
        writers = {kind: [f for f in fns if kind.startswith("pre_") or not is_reader(f)] for kind, fns in layer_hooks.items()}
        writers = {kind: fns for kind, fns in writers.items() if fns}
        readers = {kind: [f for f in fns if is_reader(f)] for kind, fns in layer_hooks.items() if not kind.startswith("pre_")}
        readers = {kind: fns for kind, fns in readers.items() if fns}  # a kind only replaced is not read
        series = None
        if writers or cfg.cell in VARIANTS:  # the variants have no fused kernel: always the step path
            w = self.step_weights(layer)
            series, final, changed = step_layer(w, x, s, keep, writers, names, tuple(readers), offset)
            if not changed and cfg.cell not in VARIANTS:  # hooks that changed nothing leave the fast path's values
                series = None
        if series is None:
            series, final = fast_layer(cfg.cell, x, self.layer_weights(layer, reverse), s, keep, tuple(readers))
        if reverse:
            series = {kind: value.flip(1) for kind, value in series.items()}
        steps = range(offset, offset + x.shape[1])
        for kind, fns in readers.items():
            apply_hooks(fns, series[kind], HookCall(names[kind], steps))
        return series["h"], final

    def _both_directions(self, x, keep, hooks, offset: int) -> torch.Tensor:
        """Every layer of a bidirectional model over whole documents (``keep`` marks where each
        starts; the chunk must end where a document ends): the forward direction from each
        document's start, the backward one from its end, both from a zero state. Returns the
        top layer's [forward h, backward h] [batch, time, 2 * hidden]."""
        if any(not is_reader(f) for fns in hooks.values() for f in fns):
            raise LstmvizError("Values of a bidirectional model can be read but not replaced: it has no exact step path.")
        B, T, _ = x.shape
        zero = self.initial_state(B, x.device)
        zero = (zero[0][0], zero[1][0]) if self.config.has_c else zero[0]
        back_keep = None
        if keep is not None:  # a document ends before the next one starts, and at the chunk's end
            ends = torch.cat([keep[:, 1:], keep.new_zeros(B, 1)], 1)
            back_keep = ends.flip(1)
        for layer in range(self.config.num_layers):
            forward, _ = self._run_layer(layer, x, zero, keep, hooks, offset)
            backward, _ = self._run_layer(layer, x.flip(1), zero, back_keep, hooks, offset, reverse=True)
            x = torch.cat([forward, backward], -1)
        return x

    def hook_names(self) -> list[str]:
        cfg = self.config
        directions = (False, True) if cfg.bidirectional else (False,)
        return [hook_name(layer, kind, r) for layer in range(cfg.num_layers) for r in directions for kind in cfg.series_kinds]

    def require_next_character(self, action: str) -> None:
        """One clear error where ``action`` needs a next-character model and this is a tagger."""
        if self.config.num_labels:
            raise LstmvizError(
                f"This is a bidirectional tagger (it reads each document from both ends), not a next-character model: "
                f"it cannot {action}."
            )

    def hooks(self, fwd_hooks: Hooks):
        """``with model.hooks({"layers.1.hook_c": fn}): ...``: hooks that read or replace a
        value (``fn(x, hook) -> tensor | None``, see ``hooks.py``), always removed when the
        block exits. A replaced value acts as if the cell had computed it: it changes its own
        layer's next steps, the layers above and the predictions."""
        return hooks(self, fwd_hooks)

    def run_with_cache(
        self, ids: torch.Tensor, names_filter=None, state: State | None = None, hooks: Hooks | None = None, keep=None
    ):
        """Run the instrumented forward on ``ids`` [batch, time] and return
        ``((logits, state), {hook name: [batch, time, hidden]})`` for the selected names
        (thread-safe: the readers are given to the call, not added to the model)."""
        readers, cache = caching_readers(self, names_filter)
        result = self.forward_instrumented(ids, state, keep, hooks=[*readers, *pairs_of(hooks)])
        return result, cache

    def check_neuron(self, neuron: str | NeuronId) -> NeuronId:
        """The neuron id, if this model has it; else one clear error."""
        n = NeuronId.parse(neuron)
        cfg = self.config
        if n.reverse and not cfg.bidirectional:
            raise NeuronError(f"No neuron {n} in this model: it reads in one direction (L{n.layer}.{n.kind}.{n.index}?).")
        if not 1 <= n.layer <= cfg.num_layers or n.kind not in cfg.series_kinds:
            raise NeuronError(
                f"No neuron {n} in this model: it has layers 1-{cfg.num_layers} and kinds {', '.join(cfg.series_kinds)}."
            )
        if not 0 <= n.index < cfg.hidden_size:
            raise NeuronError(f"No neuron {n} in this model: each layer has units 0-{cfg.hidden_size - 1}.")
        return n


def _version(tensor: torch.Tensor) -> int:
    """How often ``tensor`` was changed in place (an inference tensor cannot be: 0)."""
    try:
        return tensor._version
    except RuntimeError:
        return 0


def detach_state(state: State) -> State:
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def mask_state(state: State, keep: torch.Tensor) -> State:
    """Zero the state of batch rows where ``keep`` [batch] is 0 (a new document starts)."""
    keep = keep.view(1, -1, 1)
    return tuple(s * keep for s in state) if isinstance(state, tuple) else state * keep
