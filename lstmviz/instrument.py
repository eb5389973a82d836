"""The instrumented forward pass: every per-character state of every layer, from the same
weights as the fused ``nn.LSTM``/``nn.GRU``/``nn.RNN`` and equal to it at float32 rounding.

PyTorch's fused modules return only the top layer's h (pytorch issue 8938). Here each layer
runs its recurrence with the input projection of the whole chunk done as one matrix product,
and each step writing its gates, c and h straight into preallocated ``[time, batch, units]``
buffers with in-place kernels: recording costs no extra pass over the data. Hooks then see
each series once per layer per chunk as a whole ``[batch, time, units]`` tensor.

Equations (PyTorch's documentation of nn.LSTM / nn.GRU / nn.RNN):
  LSTM: i,f,o = sigmoid(.), g = tanh(.), c' = f*c + i*g, h' = o*tanh(c')
  GRU:  r,z = sigmoid(.), n = tanh(W_in x + b_in + r*(W_hn h + b_hn)), h' = (1-z)*n + z*h
  RNN:  h' = tanh(W_ih x + b_ih + W_hh h + b_hh)
"""

from __future__ import annotations

import torch

from .model import CharRNN, State


def _time_major(x: torch.Tensor) -> torch.Tensor:
    """[batch, time, in] -> contiguous [time * batch, in], so each step's input projection
    is a contiguous [batch, gates] block (a strided one made every step's addmm slower)."""
    return x.transpose(0, 1).reshape(-1, x.shape[-1])


def _reset_masks(keep: torch.Tensor | None) -> dict[int, torch.Tensor]:
    """{step: [batch, 1] multiplier} for the steps where some row starts a new document."""
    if keep is None:
        return {}
    steps = (keep < 1).any(0).nonzero().flatten().tolist()  # one sync per chunk, not per step
    return {t: keep[:, t : t + 1] for t in steps}


def lstm_layer(x, w_ih, w_hh, b_ih, b_hh, h, c, keep=None) -> dict[str, torch.Tensor]:
    """x [batch, time, in] -> {"i","f","g","o","c","h"} each [time, batch, hidden].

    tanh(a) = 2 sigmoid(2a) - 1: with the g-gate rows of the weights doubled once per call,
    each step takes one sigmoid over all four gates instead of three kernels on slices."""
    B, T, _ = x.shape
    H = h.shape[-1]
    scale = torch.ones(4 * H, 1, dtype=x.dtype, device=x.device)
    scale[2 * H : 3 * H] = 2.0
    xw = torch.addmm((b_ih + b_hh) * scale[:, 0], _time_major(x), (w_ih * scale).t()).view(T, B, 4 * H)
    w_hh_t = (w_hh * scale).t().contiguous()  # a contiguous [in, out] weight: the small per-step product is ~30% faster
    gates = torch.empty(T, B, 4 * H, dtype=x.dtype, device=x.device)
    cs = torch.empty(T, B, H, dtype=x.dtype, device=x.device)
    hs = torch.empty(T, B, H, dtype=x.dtype, device=x.device)
    masks = _reset_masks(keep)
    for t in range(T):
        m = masks.get(t)
        if m is not None:
            h, c = h * m, c * m
        g = gates[t]
        torch.addmm(xw[t], h, w_hh_t, out=g).sigmoid_()
        gg = g[:, 2 * H : 3 * H].mul_(2.0).sub_(1.0)  # = tanh of the g pre-activation
        torch.mul(g[:, H : 2 * H], c, out=cs[t])
        cs[t].addcmul_(g[:, :H], gg)
        torch.tanh(cs[t], out=hs[t]).mul_(g[:, 3 * H :])
        h, c = hs[t], cs[t]
    i, f, gg, o = gates.view(T, B, 4, H).unbind(2)
    return {"h": hs, "c": cs, "i": i, "f": f, "g": gg, "o": o}


def gru_layer(x, w_ih, w_hh, b_ih, b_hh, h, keep=None) -> dict[str, torch.Tensor]:
    """x [batch, time, in] -> {"r","z","n","h"} each [time, batch, hidden]."""
    B, T, _ = x.shape
    H = h.shape[-1]
    xw = torch.addmm(b_ih, _time_major(x), w_ih.t()).view(T, B, 3 * H)
    gates = torch.empty(T, B, 3 * H, dtype=x.dtype, device=x.device)
    hs = torch.empty(T, B, H, dtype=x.dtype, device=x.device)
    hw = torch.empty(B, 3 * H, dtype=x.dtype, device=x.device)
    w_hh_t = w_hh.t().contiguous()
    masks = _reset_masks(keep)
    for t in range(T):
        m = masks.get(t)
        if m is not None:
            h = h * m
        g = gates[t]
        torch.addmm(b_hh, h, w_hh_t, out=hw)
        torch.add(xw[t, :, : 2 * H], hw[:, : 2 * H], out=g[:, : 2 * H]).sigmoid_()
        n = g[:, 2 * H :]
        torch.addcmul(xw[t, :, 2 * H :], g[:, :H], hw[:, 2 * H :], out=n).tanh_()
        # h' = n + z * (h - n)
        torch.sub(h, n, out=hs[t]).mul_(g[:, H : 2 * H]).add_(n)
        h = hs[t]
    r, z, n = gates.view(T, B, 3, H).unbind(2)
    return {"h": hs, "r": r, "z": z, "n": n}


def rnn_layer(x, w_ih, w_hh, b_ih, b_hh, h, keep=None) -> dict[str, torch.Tensor]:
    """x [batch, time, in] -> {"h"} [time, batch, hidden] (tanh nonlinearity)."""
    B, T, _ = x.shape
    H = h.shape[-1]
    xw = torch.addmm(b_ih + b_hh, _time_major(x), w_ih.t()).view(T, B, H)
    hs = torch.empty(T, B, H, dtype=x.dtype, device=x.device)
    w_hh_t = w_hh.t().contiguous()
    masks = _reset_masks(keep)
    for t in range(T):
        m = masks.get(t)
        if m is not None:
            h = h * m
        torch.addmm(xw[t], h, w_hh_t, out=hs[t]).tanh_()
        h = hs[t]
    return {"h": hs}


def instrumented_forward(
    model: CharRNN, ids: torch.Tensor, state: State | None = None, keep: torch.Tensor | None = None
) -> tuple[torch.Tensor, State]:
    """Like ``model(ids, state)`` but through every hook point. ``keep`` [batch, time] (0 or 1)
    zeroes a row's state before the steps where a new document starts."""
    cfg = model.config
    B = ids.shape[0]
    if state is None:
        state = model.initial_state(B, ids.device)
    x = model.embedding(ids)  # [batch, time, embed]
    if keep is not None:
        keep = keep.to(x.dtype)
    new_h, new_c = [], []
    for layer, points in enumerate(model.layers):
        w = [getattr(model.rnn, f"{p}_l{layer}") for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        if cfg.cell == "lstm":
            h0, c0 = state[0][layer], state[1][layer]
            series = lstm_layer(x, *w, h0, c0, keep)
        elif cfg.cell == "gru":
            series = gru_layer(x, *w, state[layer], keep)
        else:
            series = rnn_layer(x, *w, state[layer], keep)
        out = {}
        for kind in cfg.series_kinds:
            out[kind] = getattr(points, f"hook_{kind}")(series[kind].transpose(0, 1))  # [batch, time, hidden]
        new_h.append(out["h"][:, -1])
        if cfg.cell == "lstm":
            new_c.append(out["c"][:, -1])
        x = out["h"]
        if model.training and cfg.dropout and layer < cfg.num_layers - 1:
            x = torch.nn.functional.dropout(x, cfg.dropout)
    logits = model.decoder(model.drop(x))
    h_n = torch.stack(new_h)
    return logits, ((h_n, torch.stack(new_c)) if cfg.cell == "lstm" else h_n)
