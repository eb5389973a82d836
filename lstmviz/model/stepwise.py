"""The exact step path: one layer, one character at a time, so that a value a hook replaces
at step t is what the cell computes with from then on.

A replaced gate gives c_t and h_t from it; a replaced c_t gives h_t = o_t tanh(c_t); a
replaced h_t (or c_t) is the state step t+1 starts from, and what the layer above reads.
The input projection ``x W_ih^T + b`` does not depend on the recurrence, so it is one large
matrix product for the whole chunk, hoisted out of the loop; each step is one small product
``h W_hh^T`` (the weight prepacked for it, see :func:`packed`) and a few in-place pointwise
kernels (LSTM gates reordered to i, f, o, g once, so the three sigmoids are one kernel). The same step functions drive sampling
(``sampling.py``), one character through every layer at a time.

Equations as in ``instrument.py`` (PyTorch's nn.LSTM / nn.GRU / nn.RNN), and for the LSTM
variants without a fused kernel (``variants.py``), whose every path (training, recording,
interventions, sampling) is these step functions:
  peephole (Gers & Schmidhuber 2000): i = sigmoid(. + w_ci c_{t-1}), f = sigmoid(. + w_cf c_{t-1}),
    c' = f*c + i*g, o = sigmoid(. + w_co c'), h' = o*tanh(c')  (w_c* diagonal: one weight per unit)
  cifg (coupled input and forget gates, Greff et al. 2017): f = sigmoid(.), i = 1 - f, then as LSTM
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .hooks import HookCall, HookFn, apply_hooks

PEEPHOLES = ("weight_ci", "weight_cf", "weight_co")  # a peephole layer's diagonal weights [hidden]: i, f, o


def _reorder(weight: torch.Tensor) -> torch.Tensor:
    return torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous(), 16)


def _packed_product(x: torch.Tensor, weight_packed: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, weight_packed, bias, "none", [], "")


def _public_product(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return torch.addmm(bias, x, weight.t()) if bias is not None else torch.mm(x, weight.t())


@functools.cache
def packing_agrees() -> bool:
    """Whether oneDNN's packed product (two private ops, ``torch.ops.mkldnn``) is here and
    gives the public product's values (``torch.addmm``) to float32 rounding, on one row and
    on several, with a bias and without, at sizes that are no multiple of its blocks. Asked
    once, at the first packing; where it disagrees a warning says so and the public product
    is used."""
    g = torch.Generator().manual_seed(0)
    weight, bias = torch.randn(37, 21, generator=g), torch.randn(37, generator=g)
    try:
        with torch.no_grad():
            weight_packed = _reorder(weight)
            pairs = [
                (_packed_product(x, weight_packed, b), _public_product(x, weight, b))
                for x in (torch.randn(1, 21, generator=g), torch.randn(7, 21, generator=g))
                for b in (bias, None)
            ]
    except (AttributeError, RuntimeError):  # not in this build of torch
        return False
    if all(a.shape == b.shape and torch.allclose(a, b, rtol=1e-5, atol=1e-5) for a, b in pairs):
        return True
    warnings.warn("oneDNN's packed product gave other values than torch.addmm here; the step path uses addmm.", stacklevel=3)
    return False


def packed(weight: torch.Tensor) -> torch.Tensor | None:
    """``weight`` [out, in] reordered once into oneDNN's blocked layout, when this build has
    it (CPU) and it computes what the public product does (:func:`packing_agrees`): a
    product with a few rows then costs a third of MKL's addmm here (2.9 MFLOP, the shipped
    model's recurrent product for 5 rows: 46 us against 140 us; ``bench intervene``), since
    the weight is read in cache-sized blocks. Same float32 arithmetic, another summation
    order. None where the layout is not available."""
    if weight.device.type != "cpu" or not torch.backends.mkldnn.is_available() or not packing_agrees():
        return None
    try:
        return _reorder(weight)
    except (AttributeError, RuntimeError):
        return None


def linear(x: torch.Tensor, weight: torch.Tensor, weight_packed: torch.Tensor | None, bias: torch.Tensor | None):
    """x W^T (+ bias), x [rows, in]."""
    if weight_packed is not None:
        return _packed_product(x, weight_packed, bias)
    return _public_product(x, weight, bias)


@dataclass(frozen=True)
class StepWeights:
    """One layer's weights, laid out for stepping (see :meth:`of`)."""

    cell: str
    units: int
    w_ih: torch.Tensor  # [gates, in]
    bias_x: torch.Tensor  # [gates]: b_ih, plus b_hh where it is simply added
    w_hh: torch.Tensor  # [gates, hidden]
    b_hh: torch.Tensor | None  # GRU only: b_hn sits inside r * (W_hn h + b_hn)
    w_ih_packed: torch.Tensor | None
    w_hh_packed: torch.Tensor | None
    peephole: torch.Tensor | None = None  # peephole only: [3, hidden], rows i, f, o

    @classmethod
    def of(cls, cell: str, weights: dict[str, torch.Tensor], grad: bool = False) -> StepWeights:
        """``weights`` named as a one-layer module's (``weight_ih_l0``, ...). With ``grad``
        (training), the weights are used as they are, so gradients reach them."""
        w_ih, w_hh, b_ih, b_hh = (weights[f"{p}_l0"] for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        if not grad:
            w_ih, w_hh, b_ih, b_hh = (w.detach() for w in (w_ih, w_hh, b_ih, b_hh))
        H = w_hh.shape[1]
        peephole = None
        if cell in ("lstm", "peephole", "cifg"):
            # rows i, f, g, o -> i, f, o, g (cifg: f, g, o -> f, o, g): one sigmoid kernel for the sigmoid gates
            g = (1 if cell == "cifg" else 2) * H  # where g starts; o follows it
            order = torch.cat([torch.arange(0, g), torch.arange(g + H, g + 2 * H), torch.arange(g, g + H)]).to(w_ih.device)
            w_ih, w_hh, bias_x, b_hh = w_ih[order], w_hh[order], (b_ih + b_hh)[order], None
            if cell == "peephole":
                peephole = torch.stack([weights[f"{p}_l0"] for p in PEEPHOLES])
                peephole = peephole if grad else peephole.detach()
        elif cell == "gru":
            bias_x = b_ih
        else:
            bias_x, b_hh = b_ih + b_hh, None
        if grad:
            return cls(cell, H, w_ih, bias_x, w_hh, b_hh, None, None, peephole)
        return cls(cell, H, w_ih, bias_x, w_hh, b_hh, packed(w_ih), packed(w_hh), peephole)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., in] -> [..., gates]: the input's share of every gate."""
        flat = x.reshape(-1, x.shape[-1])
        return linear(flat, self.w_ih, self.w_ih_packed, self.bias_x).view(*x.shape[:-1], -1)

    def recurrent(self, h: torch.Tensor) -> torch.Tensor:
        """h [batch, hidden] -> h W_hh^T (+ b_hh for GRU) [batch, gates]."""
        return linear(h, self.w_hh, self.w_hh_packed, self.b_hh)


# ``at(kind, value [batch, units], step) -> value``: the hooks of that kind run on the value
# (a pre-activation's, ``pre_i``..., also given its inputs; ``at.pre``: whether any is hooked).
At = Callable[[str, torch.Tensor, int], torch.Tensor]


def _pre_activations(at: At, gates: torch.Tensor, order: tuple[str, ...], t: int, inputs: dict) -> None:
    """Each gate's pre-activation in ``gates`` [batch, gates * units] (laid out in ``order``)
    through its hooks, in place."""
    H = gates.shape[1] // len(order)
    for k, gate in enumerate(order):
        part = gates[:, k * H : (k + 1) * H]
        new = at(f"pre_{gate}", part, t, inputs)
        if new is not part:
            part.copy_(new)


def lstm_step(gx: torch.Tensor, state, w: StepWeights, at: At, t: int):
    h, c = state
    H = w.units
    gates = w.recurrent(h).add_(gx)  # [batch, 4H]: i, f, o, g
    if at.pre:
        _pre_activations(at, gates, ("i", "f", "o", "g"), t, {"h": h})
    gates[:, : 3 * H].sigmoid_()
    gates[:, 3 * H :].tanh_()
    i, f, o, g = gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H : 3 * H], gates[:, 3 * H :]
    if at.gates:  # only when a gate is hooked or kept: four calls saved per step otherwise
        i, f, g, o = at("i", i, t), at("f", f, t), at("g", g, t), at("o", o, t)
    c = at("c", torch.mul(f, c).addcmul_(i, g), t)
    h = at("h", torch.tanh(c).mul_(o), t)
    return h, c


def peephole_step(gx: torch.Tensor, state, w: StepWeights, at: At, t: int):
    h, c = state
    H, p = w.units, w.peephole
    gates = w.recurrent(h).add_(gx)  # [batch, 4H]: i, f, o, g
    pre_i, pre_f, pre_g = torch.addcmul(gates[:, :H], p[0], c), torch.addcmul(gates[:, H : 2 * H], p[1], c), gates[:, 3 * H :]
    if at.pre:
        inputs = {"h": h, "c": c}
        pre_i, pre_f, pre_g = (at(f"pre_{k}", v, t, inputs) for k, v in (("i", pre_i), ("f", pre_f), ("g", pre_g)))
    i, f, g = torch.sigmoid(pre_i), torch.sigmoid(pre_f), torch.tanh(pre_g)
    if at.gates:
        i, f, g = at("i", i, t), at("f", f, t), at("g", g, t)
    c = at("c", torch.mul(f, c).addcmul_(i, g), t)
    pre_o = torch.addcmul(gates[:, 2 * H : 3 * H], p[2], c)
    if at.pre:
        pre_o = at("pre_o", pre_o, t, {"h": h, "c": c})  # o sees the new c
    o = torch.sigmoid(pre_o)
    if at.gates:
        o = at("o", o, t)
    h = at("h", o * torch.tanh(c), t)  # out of place: training differentiates through tanh(c)
    return h, c


def cifg_step(gx: torch.Tensor, state, w: StepWeights, at: At, t: int):
    h, c = state
    H = w.units
    gates = w.recurrent(h).add_(gx)  # [batch, 3H]: f, o, g
    if at.pre:
        _pre_activations(at, gates, ("f", "o", "g"), t, {"h": h})
    fo = torch.sigmoid(gates[:, : 2 * H])
    f, o, g = fo[:, :H], fo[:, H:], torch.tanh(gates[:, 2 * H :])
    if at.gates:
        f = at("f", f, t)
    i = 1 - f  # the coupling: a replaced f moves i with it
    if at.gates:
        i, g, o = at("i", i, t), at("g", g, t), at("o", o, t)
    c = at("c", torch.mul(f, c).addcmul_(i, g), t)
    h = at("h", o * torch.tanh(c), t)  # out of place: training differentiates through tanh(c)
    return h, c


def gru_step(gx: torch.Tensor, h: torch.Tensor, w: StepWeights, at: At, t: int):
    H = w.units
    gh = w.recurrent(h)  # [batch, 3H]: r, z, n
    rz = gh[:, : 2 * H].add_(gx[:, : 2 * H])
    if at.pre:
        _pre_activations(at, rz, ("r", "z"), t, {"h": h})
    rz.sigmoid_()
    r, z = rz[:, :H], rz[:, H:]
    if at.gates:
        r, z = at("r", r, t), at("z", z, t)
    pre_n = torch.addcmul(gx[:, 2 * H :], r, gh[:, 2 * H :])
    if at.pre:
        pre_n = at("pre_n", pre_n, t, {"h": h, "r": r})
    n = at("n", pre_n.tanh_(), t)
    return at("h", torch.sub(h, n).mul_(z).add_(n), t)  # (1 - z) n + z h, as PyTorch writes it


def rnn_step(gx: torch.Tensor, h: torch.Tensor, w: StepWeights, at: At, t: int):
    pre = w.recurrent(h).add_(gx)
    if at.pre:
        pre = at("pre_h", pre, t, {"h": h})
    return at("h", pre.tanh_(), t)


STEP = {"lstm": lstm_step, "peephole": peephole_step, "cifg": cifg_step, "gru": gru_step, "rnn": rnn_step}


class Untouched:
    """``at`` for a step nobody hooks (training): every value as computed."""

    gates = pre = False

    def __call__(self, kind: str, value: torch.Tensor, t: int, inputs=None) -> torch.Tensor:
        return value


class StepHooks:
    """What happens to each value a step computes: the hooks at its hook point run on it
    (as ``[batch, 1, units]``, ``hook.positions`` being that one step), and it is kept for
    the layer's series when asked for. Records whether any hook changed a value."""

    def __init__(self, hooks: dict[str, list[HookFn]], names: dict[str, str], kept, steps: int, like: torch.Tensor, offset=0):
        self.hooks, self.names, self.offset = hooks, names, offset
        self.buffers = {k: like.new_empty(steps, *like.shape) for k in kept}  # time-major
        self.changed = False
        # Hooks that set fixed values at every step (clamp, zero, mean) offer them as
        # (mask, values); alone at their hook point, they are applied as one `where`.
        self.fixed = {}
        for kind, fns in hooks.items():
            offer = getattr(fns[0], "fixed_values", None) if len(fns) == 1 else None
            fixed = offer(like) if offer is not None else None
            if fixed is not None:
                self.fixed[kind] = fixed
        self.pre = any(kind.startswith("pre_") for kind in hooks)  # a pre-activation is hooked
        self.gates = bool((set(hooks) | set(kept)) - {"c", "h", "n"} - {k for k in hooks if k.startswith("pre_")})
        self.x: torch.Tensor | None = None  # the layer's input at the step, while ``pre`` [batch, in]

    def __call__(self, kind: str, value: torch.Tensor, t: int, inputs: dict | None = None) -> torch.Tensor:
        fns = self.hooks.get(kind)
        fixed = self.fixed.get(kind)
        if fixed is not None:
            new = torch.where(fixed[0], fixed[1], value)
            if not self.changed and not torch.equal(new, value):
                self.changed = True
            value = new
        elif fns:
            x = value.unsqueeze(1)
            before = None if self.changed else x.clone()
            given = None if inputs is None else {"x": self.x, **inputs}
            x = apply_hooks(fns, x, HookCall(self.names[kind], range(self.offset + t, self.offset + t + 1), given))
            if before is not None and not torch.equal(x, before):
                self.changed = True
            value = x[:, 0]
        buffer = self.buffers.get(kind)
        if buffer is not None:
            buffer[t].copy_(value)
        return value

    def series(self) -> dict[str, torch.Tensor]:
        """The kept values, each [batch, time, units]."""
        return {k: b.transpose(0, 1) for k, b in self.buffers.items()}


def reset(state, keep: torch.Tensor):
    """Zero the state of rows where ``keep`` [batch] is 0 (a new document starts)."""
    keep = keep.unsqueeze(-1)
    return tuple(s * keep for s in state) if isinstance(state, tuple) else state * keep


def step_layer(
    w: StepWeights,
    x: torch.Tensor,
    state,
    keep: torch.Tensor | None,
    hooks: dict[str, list[HookFn]],
    names: dict[str, str],
    wanted=("h",),
    offset: int = 0,
):
    """One layer (weights ``w``) over x [batch, time, in] from ``state`` (h, or (h, c) for LSTM, each
    [batch, hidden]), one step at a time, the hooks of each kind applied where the value is
    made. Returns ({kind: [batch, time, hidden]} for h and ``wanted``, the final state,
    whether any hook changed a value)."""
    B, T, _ = x.shape
    gx = w.project(x.transpose(0, 1))  # [time, batch, gates], one product for the chunk
    like = x.new_empty(B, w.units)
    at = StepHooks(hooks, names, {"h", *wanted}, T, like, offset)
    resets = set() if keep is None else set((keep < 1).any(0).nonzero().flatten().tolist())
    step = STEP[w.cell]
    for t in range(T):
        if t in resets:
            state = reset(state, keep[:, t])
        if at.pre:
            at.x = x[:, t]
        state = step(gx[t], state, w, at, t)
    return at.series(), state, at.changed
