"""The LSTM variants that have no fused PyTorch kernel, as a stacked module with
``nn.LSTM``'s interface and weight layout (``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``,
``bias_hh_l0`` per layer), so ``CharRNN`` trains and loads them like the fused cells:

- ``peephole`` (Gers & Schmidhuber 2000, "Recurrent nets that time and count"): the gates
  also see the cell state through diagonal weights, one per unit: i and f see c_{t-1}, o sees
  c_t (``weight_ci_l0``, ``weight_cf_l0``, ``weight_co_l0``, each [hidden]).
- ``cifg`` (coupled input and forget gate; Greff et al. 2017, "LSTM: A Search Space
  Odyssey"): i = 1 - f, so there is no input-gate weight; rows of ``weight_ih`` are f, g, o.

Every path runs the same step functions (``stepwise.py``): training here, recording and
exact interventions in ``model.run_layers``, sampling in ``sampling.py``. The input
projection is one matrix product per layer for the whole chunk; the recurrence is a loop
over steps (what these cells cost: see ``lstmviz bench train --cells``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .stepwise import PEEPHOLES, STEP, StepWeights, Untouched

VARIANTS = ("peephole", "cifg")
_GATES = {"peephole": 4, "cifg": 3}
_UNTOUCHED = Untouched()


def layer_params(cell: str) -> tuple[str, ...]:
    """The parameter names of one layer, without the ``_l{k}`` suffix."""
    return ("weight_ih", "weight_hh", "bias_ih", "bias_hh", *(PEEPHOLES if cell == "peephole" else ()))


class VariantLSTM(nn.Module):
    """A stack of ``cell`` layers over batch-first input; ``forward(x, (h0, c0))`` returns
    (the top layer's h [batch, time, hidden], (h_n, c_n) each [layers, batch, hidden])."""

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0):
        super().__init__()
        self.cell, self.hidden_size, self.num_layers, self.dropout = cell, hidden_size, num_layers, dropout
        gates = _GATES[cell] * hidden_size
        bound = 1 / math.sqrt(hidden_size)  # nn.LSTM's initialisation, peepholes included
        for k in range(num_layers):
            shapes = {
                "weight_ih": (gates, input_size if k == 0 else hidden_size),
                "weight_hh": (gates, hidden_size),
                "bias_ih": (gates,),
                "bias_hh": (gates,),
            }
            shapes |= {p: (hidden_size,) for p in layer_params(cell)[4:]}
            for name, shape in shapes.items():
                self.register_parameter(f"{name}_l{k}", nn.Parameter(torch.empty(shape).uniform_(-bound, bound)))

    def layer_weights(self, layer: int) -> dict[str, torch.Tensor]:
        """Layer ``layer`` (from 0), named as a one-layer module's (``weight_ih_l0``, ...)."""
        return {f"{p}_l0": getattr(self, f"{p}_l{layer}") for p in layer_params(self.cell)}

    def forward(self, x: torch.Tensor, state=None):
        B, T, _ = x.shape
        if state is None:
            zeros = x.new_zeros(self.num_layers, B, self.hidden_size)
            state = (zeros, zeros)
        step, finals = STEP[self.cell], []
        for k in range(self.num_layers):
            w = StepWeights.of(self.cell, self.layer_weights(k), grad=True)
            gx = w.project(x).unbind(1)  # per step [batch, gates]: one product for the chunk
            s, hs = (state[0][k], state[1][k]), []
            for t in range(T):
                s = step(gx[t], s, w, _UNTOUCHED, t)
                hs.append(s[0])
            finals.append(s)
            x = torch.stack(hs, 1)
            if self.training and self.dropout and k < self.num_layers - 1:
                x = nn.functional.dropout(x, self.dropout, training=True)
        return x, (torch.stack([f[0] for f in finals]), torch.stack([f[1] for f in finals]))
