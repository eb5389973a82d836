"""The differentiable path from a window's input embeddings to one value: a unit (any
series of any layer: h, c or a gate) or a next-character log-probability at one position.

Autograd runs through the recurrent layers as training does: each layer of ``nn.LSTM`` /
``nn.GRU`` / ``nn.RNN`` as its own one-layer fused module (``model/instrument.py``'s
``fused_layer``, whose CPU backward PyTorch provides), the LSTM variants through the step
functions (``model/stepwise.py``). The target layer is run only as far as the target
position, so its h and c there are the fused module's final state; a gate there is derived
from the layer's input at that step and its h one step earlier, by the equations
``instrument.py`` cites. The numba step kernel has no autograd, so it is not used here.

A unidirectional model runs the window only, from the state the text before the window
left (computed once, without gradients: those characters are not attributed). A
bidirectional model runs the whole document; characters outside the window keep their
embedding.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from ...core.neurons import NeuronId
from ...model.instrument import fused_layer
from ...model.rnn import FUSED_CELLS, CharRNN
from ...model.stepwise import STEP, StepWeights


@dataclass(frozen=True)
class Target:
    """What is attributed: ``unit``'s value, or (``char`` set) the log-probability the model
    gives the vocabulary id ``char`` as the next character."""

    unit: NeuronId | None = None
    char: int | None = None


class _KeepLastStep:
    """``at`` for the step functions: keeps every value of the last step (the target's)."""

    gates = True
    pre = False  # no pre-activation is asked for (``model/stepwise.py``)

    def __init__(self, last: int):
        self.last, self.values = last, {}

    def __call__(self, kind: str, value: torch.Tensor, t: int) -> torch.Tensor:
        if t == self.last:
            self.values[kind] = value
        return value


def _step_run(cell: str, weights: dict, x: torch.Tensor, state):
    """A variant layer over x [batch, time, in] by the step functions, with autograd: (h at
    every step, final state, the last step's values by kind)."""
    w = StepWeights.of(cell, weights, grad=True)
    gx = w.project(x).unbind(1)
    at, hs = _KeepLastStep(x.shape[1] - 1), []
    for t, g in enumerate(gx):
        state = STEP[cell](g, state, w, at, t)
        hs.append(state[0])
    return torch.stack(hs, 1), state, at.values


def _fused_gates(cell: str, weights: dict, x_last: torch.Tensor, h_prev: torch.Tensor) -> dict[str, torch.Tensor]:
    """The gates of one step of a fused cell from its input and h one step earlier
    (PyTorch's equations for nn.LSTM and nn.GRU), each [batch, hidden]."""
    w_ih, w_hh, b_ih, b_hh = weights.values()
    gx = x_last @ w_ih.t() + b_ih
    gh = h_prev @ w_hh.t() + b_hh
    H = h_prev.shape[-1]
    if cell == "lstm":
        i, f, g, o = (gx + gh).split(H, dim=-1)
        return {"i": i.sigmoid(), "f": f.sigmoid(), "g": g.tanh(), "o": o.sigmoid()}
    r, z = (gx[:, : 2 * H] + gh[:, : 2 * H]).sigmoid().split(H, dim=-1)
    return {"r": r, "z": z, "n": (gx[:, 2 * H :] + r * gh[:, 2 * H :]).tanh()}


class TargetFunction:
    """``f(window embeddings [batch, window, embed]) -> [batch]``: the target's value at
    position ``pos`` of ``ids`` when the characters ``ids[first:stop]`` are read as the given
    embeddings. ``state``: the model's state before ``ids[0]`` (unidirectional models)."""

    def __init__(self, model: CharRNN, target: Target, ids: torch.Tensor, first: int, stop: int, pos: int, state=None):
        self.model, self.target, self.first, self.stop, self.pos = model, target, first, stop, pos
        self.cell = model.config.cell
        with torch.no_grad():
            self.embedded = model.embedding(ids).detach()  # [time, embed]
        self.state = state
        top = model.config.num_layers - 1
        self.layer = target.unit.layer - 1 if target.unit is not None else top
        self.weights = {
            (layer, reverse): {k: v.detach() for k, v in model.layer_weights(layer, reverse).items()}
            for layer in range(self.layer + 1)
            for reverse in ((False, True) if model.config.bidirectional else (False,))
        }

    @property
    def causal(self) -> bool:
        """Whether the target depends only on the characters up to it (a unidirectional model)."""
        return not self.model.config.bidirectional

    def after(self, count: int) -> TargetFunction:
        """The same target read from window character ``count`` on, from the state the
        window's first ``count`` characters leave (a causal target's window only)."""
        if count == 0:
            return self
        read = self.first + count
        shifted = copy.copy(self)
        with torch.no_grad():
            state = self.state if self.state is not None else self.model.initial_state(1)
            _, shifted.state = self.model.run_layers(self.embedded[:read].unsqueeze(0), state)
        shifted.embedded, shifted.first = self.embedded[read:], 0
        shifted.stop, shifted.pos = self.stop - read, self.pos - read
        return shifted

    @property
    def inputs(self) -> torch.Tensor:
        """The window's own embeddings [window, embed]."""
        return self.embedded[self.first : self.stop]

    def __call__(self, window: torch.Tensor) -> torch.Tensor:
        B = window.shape[0]
        x = torch.cat([self.embedded[: self.first].expand(B, -1, -1), window, self.embedded[self.stop :].expand(B, -1, -1)], 1)
        for layer in range(self.layer):
            x = self._layer_output(layer, x)
        reverse = self.target.unit is not None and self.target.unit.reverse
        series = self._series_at(self.layer, x, reverse)
        if self.target.unit is not None:
            return series[self.target.unit.kind][:, self.target.unit.index]
        logits = self.model.decoder(series["h"])
        return torch.log_softmax(logits, -1)[:, self.target.char]

    def _initial(self, layer: int, batch: int):
        """Layer ``layer``'s state before ``ids[0]``, for ``batch`` rows."""
        H = self.model.config.hidden_size
        if self.state is None:
            zero = self.embedded.new_zeros(batch, H)
            return (zero, zero) if self.model.config.has_c else zero
        if isinstance(self.state, tuple):
            return tuple(s[layer].expand(batch, H) for s in self.state)
        return self.state[layer].expand(batch, H)

    def run_layer(self, layer: int, x: torch.Tensor, reverse: bool = False):
        """One direction of a layer over x (already in its reading order): (h at every
        step, final state, the last step's values by kind; None for a fused cell)."""
        weights = self.weights[(layer, reverse)]
        state = self._initial(layer, x.shape[0])
        if self.cell in FUSED_CELLS:
            hs, final = fused_layer(self.cell, x, weights, state, None)
            return hs, final, None
        return _step_run(self.cell, weights, x, state)

    def _layer_output(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        hs, _, _ = self.run_layer(layer, x, False)
        if not self.model.config.bidirectional:
            return hs
        back, _, _ = self.run_layer(layer, x.flip(1), True)
        return torch.cat([hs, back.flip(1)], -1)

    def _series_at(self, layer: int, x: torch.Tensor, reverse: bool) -> dict[str, torch.Tensor]:
        """Every series of one direction of ``layer`` at ``pos``, each [batch, hidden]: the
        direction is run from its start to ``pos`` only."""
        seq = x.flip(1)[:, : x.shape[1] - self.pos] if reverse else x[:, : self.pos + 1]
        hs, final, last = self.run_layer(layer, seq, reverse)
        if last is not None:
            return last
        if not self.model.config.has_c:
            series = {"h": final}
        else:
            series = {"h": final[0], "c": final[1]}
        if self.cell != "rnn":
            initial = self._initial(layer, x.shape[0])
            h_prev = hs[:, -2] if seq.shape[1] > 1 else (initial[0] if isinstance(initial, tuple) else initial)
            series |= _fused_gates(self.cell, self.weights[(layer, reverse)], seq[:, -1], h_prev)
        return series
