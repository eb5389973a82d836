"""The instrumented forward pass: every per-character state of every layer, from the same
weights as the fused ``nn.LSTM``/``nn.GRU``/``nn.RNN`` and equal to it at float32 rounding.

PyTorch's fused modules return only the top layer's h (pytorch issue 8938). Here each
layer runs as its own one-layer fused module (the same weights, through
``torch.func.functional_call``), which gives that layer's h at every step at the fused
speed. Everything else is a function of h one step earlier and the layer's input, so it
is computed for the whole chunk at once: the gate pre-activations as two large matrix
products (``x W_ih^T + h_{t-1} W_hh^T``), the gates as one pass of pointwise kernels, and
the LSTM cell state ``c_t = f_t c_{t-1} + i_t g_t`` by a blocked linear scan (a handful of
large kernels instead of one small step per character). Only the series a reader asked for
are derived; the model's forward (``model.py``) calls this layer by layer. An LSTM whose
gates or c are wanted runs on the CPU as one compiled pass instead (``step_kernel.py``):
every gate computed once, about twice as fast as the fused h plus the recomputation.

This path reads; it cannot honour a value replaced at step t, since every step here is
computed before any hook runs. Replacing hooks take the exact step path, ``stepwise.py``.

Equations (PyTorch's documentation of nn.LSTM / nn.GRU / nn.RNN):
  LSTM: i,f,o = sigmoid(.), g = tanh(.), c' = f*c + i*g, h' = o*tanh(c')
  GRU:  r,z = sigmoid(.), n = tanh(W_in x + b_in + r*(W_hn h + b_hn)), h' = (1-z)*n + z*h
  RNN:  h' = tanh(W_ih x + b_ih + W_hh h + b_hh)
"""

from __future__ import annotations

from functools import cache

import torch
from torch import nn
from torch.func import functional_call

FUSED_MODULES = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}  # the cells PyTorch has a fused module for
SCAN_BLOCK = 16  # the blocked scan runs ~2 * sqrt(time) kernels per chunk; 16 suits 256 steps


@cache
def _one_layer(cell: str, inputs: int, hidden: int) -> nn.Module:
    """A one-layer fused module whose own weights are never used: each call passes the
    model's weights of one layer through ``functional_call``."""
    return FUSED_MODULES[cell](inputs, hidden, batch_first=True)


def _reset_steps(keep: torch.Tensor | None) -> list[int]:
    """The steps where some row starts a new document (one sync per chunk, not per step)."""
    return [] if keep is None else (keep < 1).any(0).nonzero().flatten().tolist()


def fused_layer(cell: str, x: torch.Tensor, weights: dict[str, torch.Tensor], state, keep):
    """One layer of the fused module over x [batch, time, in] from ``state`` (h, or (h, c)
    for LSTM, each [batch, hidden]), zeroing a row's state before each step where ``keep``
    is 0. Returns (h at every step [batch, time, hidden], final state)."""
    module = _one_layer(cell, x.shape[-1], weights["weight_hh_l0"].shape[-1])
    cuts = [t for t in _reset_steps(keep) if t > 0]
    starts, outs = [0, *cuts], []
    for a, b in zip(starts, [*cuts, x.shape[1]], strict=True):
        if keep is not None:
            m = keep[:, a : a + 1]  # [batch, 1]
            state = tuple(s * m for s in state) if isinstance(state, tuple) else state * m
        packed = tuple(s.unsqueeze(0) for s in state) if isinstance(state, tuple) else state.unsqueeze(0)
        out, packed = functional_call(module, weights, (x[:, a:b], packed))
        state = tuple(s[0] for s in packed) if isinstance(packed, tuple) else packed[0]
        outs.append(out)
    return (outs[0] if len(outs) == 1 else torch.cat(outs, 1)), state


def _previous(h0: torch.Tensor, hs: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """h one step earlier [batch, time, hidden]: h0 at step 0, zero where a document starts."""
    prev = torch.empty_like(hs)
    prev[:, 0] = h0
    prev[:, 1:] = hs[:, :-1]
    if keep is not None:
        prev.mul_(keep.unsqueeze(-1))
    return prev


def _projection(x, prev, w_ih, w_hh, b_ih, b_hh) -> tuple[torch.Tensor, torch.Tensor]:
    """(x W_ih^T + b_ih, h_{t-1} W_hh^T + b_hh), each [batch, time, gates], as two large
    matrix products over the whole chunk."""
    B, T, _ = x.shape
    gx = torch.addmm(b_ih, x.reshape(B * T, -1), w_ih.t()).view(B, T, -1)
    gh = torch.addmm(b_hh, prev.reshape(B * T, -1), w_hh.t()).view(B, T, -1)
    return gx, gh


def linear_scan(a: torch.Tensor, u: torch.Tensor, c0: torch.Tensor) -> torch.Tensor:
    """c_t = a_t * c_{t-1} + u_t for t = 0..T-1 from c_{-1} = c0; a, u [batch, time, units].

    Blocked: inside blocks of ``SCAN_BLOCK`` steps, the running product A of a and the
    recurrence started from zero (R) are computed for all blocks at once; a short loop over
    blocks then carries c from block to block, and c = A * c_start + R. The same algebra as
    the step loop, so the same values up to float32 rounding."""
    B, T, H = a.shape
    L = SCAN_BLOCK
    nb = -(-T // L)
    pad = nb * L - T
    if pad:
        a = torch.cat([a, a.new_ones(B, pad, H)], 1)
        u = torch.cat([u, u.new_zeros(B, pad, H)], 1)
    a = a.view(B, nb, L, H)
    u = u.view(B, nb, L, H)
    prod = torch.cumprod(a, dim=2)
    run = torch.empty_like(u)
    run[:, :, 0] = u[:, :, 0]
    for j in range(1, L):
        torch.addcmul(u[:, :, j], a[:, :, j], run[:, :, j - 1], out=run[:, :, j])
    start = torch.empty(B, nb, H, dtype=a.dtype, device=a.device)
    c = c0
    for k in range(nb):
        start[:, k] = c
        c = torch.addcmul(run[:, k, -1], prod[:, k, -1], c)
    out = run.addcmul_(prod, start.unsqueeze(2)).view(B, nb * L, H)
    return out[:, :T] if pad else out


def lstm_series(x, weights, h, c, hs, keep=None) -> dict[str, torch.Tensor]:
    """The gates and c of an LSTM layer whose h at every step is ``hs`` (from the fused
    module): {"i","f","g","o","c"} each [batch, time, hidden]."""
    w_ih, w_hh, b_ih, b_hh = weights.values()
    gx, gh = _projection(x, _previous(h, hs, keep), w_ih, w_hh, b_ih, b_hh)
    gates = gx.add_(gh)
    H = hs.shape[-1]
    i, f, g, o = gates.split(H, dim=-1)
    i.sigmoid_(), f.sigmoid_(), g.tanh_(), o.sigmoid_()
    decay = f if keep is None else f * keep.unsqueeze(-1)  # a document starts from c = 0
    cs = linear_scan(decay, i * g, c)
    return {"c": cs, "i": i, "f": f, "g": g, "o": o}


def gru_series(x, weights, h, hs, keep=None) -> dict[str, torch.Tensor]:
    """The gates of a GRU layer whose h at every step is ``hs``: {"r","z","n"}."""
    gx, gh = _projection(x, _previous(h, hs, keep), *weights.values())
    H = hs.shape[-1]
    rz = gx[..., : 2 * H].add_(gh[..., : 2 * H]).sigmoid_()
    r, z = rz.split(H, dim=-1)
    n = torch.addcmul(gx[..., 2 * H :], r, gh[..., 2 * H :]).tanh_()
    return {"r": r, "z": z, "n": n}


def fast_layer(cell: str, x, weights, state, keep=None, wanted=("h",)) -> tuple[dict[str, torch.Tensor], object]:
    """One layer on the fast path: h from the fused module, and the other series in
    ``wanted`` derived from it for the whole chunk at once. ``state`` is h, or (h, c) for
    LSTM, each [batch, hidden]; returns ({kind: [batch, time, hidden]}, the final state).
    An LSTM's gates or c on the CPU come from the compiled step kernel instead, which
    computes every gate once (``step_kernel.py``)."""
    if cell == "lstm" and set(wanted) - {"h"}:
        from . import step_kernel  # numba compiles on first use (cached on disk after)

        if step_kernel.usable(x):
            return step_kernel.lstm_layer(x, weights, state, keep)
    hs, final = fused_layer(cell, x, weights, state, keep)
    series = {"h": hs}
    if set(wanted) - {"h"}:
        if cell == "lstm":
            series.update(lstm_series(x, weights, state[0], state[1], hs, keep))
        elif cell == "gru":
            series.update(gru_series(x, weights, state, hs, keep))
    return series, final
