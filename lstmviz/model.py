"""The character-level recurrent network of Karpathy, Johnson & Fei-Fei (2015),
"Visualizing and Understanding Recurrent Networks": an embedding, a stack of LSTM, GRU or
vanilla RNN layers, and a linear decoder to next-character logits.

Parameters keep PyTorch's fused-module layout (``rnn.weight_ih_l0``, ``rnn.weight_hh_l0``,
...), so training runs the fast fused ``nn.LSTM``/``nn.GRU``/``nn.RNN`` and the
instrumented path (``instrument.py``) reads the very same weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .hooks import HookFn, HookPoint, hooks, run_with_cache

CELLS = ("lstm", "gru", "rnn")
# The per-character series each cell type exposes, in the order they are recorded.
SERIES_KINDS = {"lstm": ("h", "c", "i", "f", "g", "o"), "gru": ("h", "r", "z", "n"), "rnn": ("h",)}
# Gate names in PyTorch's weight layout order (rows of weight_ih / weight_hh).
GATE_ORDER = {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n"), "rnn": ("h",)}


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int  # characters, the unknown character included
    cell: str = "lstm"  # lstm | gru | rnn
    num_layers: int = 2  # stacked recurrent layers
    hidden_size: int = 256  # units per layer
    embed_dim: int = 64  # input embedding width
    dropout: float = 0.0  # between recurrent layers and before the decoder, training only

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"Unknown cell type {self.cell!r}; choose one of {', '.join(CELLS)}.")
        if self.num_layers < 1 or self.hidden_size < 1 or self.embed_dim < 1 or self.vocab_size < 2:
            raise ValueError("Layers, hidden size, embedding width must be positive and vocab >= 2.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("Dropout must be in [0, 1).")

    def to_json(self) -> dict:
        return asdict(self)

    @property
    def series_kinds(self) -> tuple[str, ...]:
        return SERIES_KINDS[self.cell]


class LayerHooks(nn.Module):
    """The hook points of one layer: ``hook_h``, ``hook_c``, ``hook_i``... each [batch, time, hidden]."""

    def __init__(self, kinds: tuple[str, ...]):
        super().__init__()
        for kind in kinds:
            self.add_module(f"hook_{kind}", HookPoint())


_FUSED = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}

# A recurrent state: (h, c) for LSTM, h for GRU/RNN; each [layers, batch, hidden].
State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


class CharRNN(nn.Module):
    """Character model. ``forward`` runs the fused module; ``instrument.py`` adds the hooked
    path that exposes every per-character state of every layer."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embed_dim)
        self.rnn = _FUSED[config.cell](
            config.embed_dim,
            config.hidden_size,
            num_layers=config.num_layers,
            batch_first=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(config.dropout)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)
        # Hook points only; no parameters, so the state dict keeps the fused layout.
        self.layers = nn.ModuleList(LayerHooks(config.series_kinds) for _ in range(config.num_layers))

    def initial_state(self, batch: int, device: torch.device | str = "cpu") -> State:
        shape = (self.config.num_layers, batch, self.config.hidden_size)
        zeros = torch.zeros(shape, device=device)
        return (zeros, zeros.clone()) if self.config.cell == "lstm" else zeros

    def forward(self, ids: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """``ids`` [batch, time] -> logits [batch, time, vocab] and the final state."""
        x = self.embedding(ids)  # [batch, time, embed]
        out, state = self.rnn(x, state)  # [batch, time, hidden]
        return self.decoder(self.drop(out)), state

    @torch.no_grad()
    def forward_instrumented(self, ids: torch.Tensor, state: State | None = None, keep: torch.Tensor | None = None):
        """The same function as ``forward``, through every hook point (``instrument.py``).
        Inference only: it writes into preallocated buffers, so it keeps no gradients."""
        from .instrument import instrumented_forward

        return instrumented_forward(self, ids, state, keep)

    def hook_names(self) -> list[str]:
        return [f"layers.{layer}.hook_{kind}" for layer in range(self.config.num_layers) for kind in self.config.series_kinds]

    def hooks(self, fwd_hooks: dict[str, HookFn] | list[tuple[str, HookFn]]):
        """``with model.hooks({"layers.1.hook_c": fn}): ...``: hooks that read or replace a value
        (``fn(tensor, name) -> tensor | None``), always removed when the block exits. A value
        replaced in layer L changes layer L+1 and the predictions, not layer L's own recurrence."""
        return hooks(self, fwd_hooks)

    def run_with_cache(self, ids: torch.Tensor, names_filter=None, state: State | None = None):
        """Run the instrumented forward on ``ids`` [batch, time] and return
        ``((logits, state), {hook name: [batch, time, hidden]})`` for the selected names."""
        return run_with_cache(self, lambda: self.forward_instrumented(ids, state), names_filter)


def detach_state(state: State) -> State:
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def mask_state(state: State, keep: torch.Tensor) -> State:
    """Zero the state of batch rows where ``keep`` [batch] is 0 (a new document starts)."""
    keep = keep.view(1, -1, 1)
    return tuple(s * keep for s in state) if isinstance(state, tuple) else state * keep
