"""An LSTM layer in one compiled pass over the time steps, computing every gate once.

The fast path (``instrument.py``) takes h from PyTorch's fused module and then computes
the gates a second time to hand them out. Here, on the CPU, one numba-compiled loop over
the steps does it all: the input projection is one matrix product for the chunk (torch),
then per step the recurrent product ``h W_hh^T`` is added in place by MKL's ``sgemm``
(the BLAS torch itself ships and calls for ``addmm``, with torch's thread count; numpy's
and scipy's OpenBLAS measured 5x slower at these shapes) and the gates, c and h follow in
vectorized loops, written straight into the output arrays. ``sgemm_`` is no public torch
API (it is bound from torch's library with ctypes, its integer size assumed), so the first
use checks it against ``torch.addmm`` (:func:`checked_sgemm`); where it disagrees, or torch
has no MKL, recording takes the fused module's path.

numba compiles ``exp`` and ``tanh`` to scalar library calls, which alone cost more than
the fused module's whole step, so sigmoid and tanh are written here as branch-free float32
arithmetic the compiler vectorizes: Cephes' ``expf`` (range reduction by ln 2, a degree-5
polynomial, the power of two built from its bits; about 1 ulp) and Cephes' ``tanhf``
(an odd polynomial below 0.625, ``1 - 2 / (exp(2|x|) + 1)`` above). They agree with
torch's to a few float32 ulp (test_step_kernel.py).
"""

from __future__ import annotations

import ctypes
import functools
import os
import warnings

import numpy as np
import torch
from numba import njit

F = np.float32
_EXP_LO, _EXP_HI = F(-87.0), F(88.0)  # exp() of this range is a normal float32 (2^k below builds no denormal)
_LOG2E, _HALF, _ONE, _TWO = F(1.4426950408889634), F(0.5), F(1.0), F(2.0)
_LN2_HI, _LN2_LO = F(0.693359375), F(-2.12194440e-4)  # Cephes' ln 2 split: k * _LN2_HI is exact
_EXP_POLY = (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1)
_E0, _E1, _E2, _E3, _E4, _E5 = (F(v) for v in _EXP_POLY)
_TANH_POLY = (-5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2, 1.33314422036e-1, -3.33332819422e-1)
_T0, _T1, _T2, _T3, _T4 = (F(v) for v in _TANH_POLY)
_TANH_SMALL = F(0.625)


@njit(inline="always", error_model="numpy")
def _exp(x):
    """exp(x) for float32 x, vectorizable (Cephes expf); x is clamped to [-87, 88]."""
    x = min(max(x, _EXP_LO), _EXP_HI)
    k = np.floor(x * _LOG2E + _HALF)
    r = x - k * _LN2_HI - k * _LN2_LO
    p = (((((_E0 * r + _E1) * r + _E2) * r + _E3) * r + _E4) * r + _E5) * (r * r) + r + _ONE
    return p * np.int32((np.int32(k) + 127) << 23).view(np.float32)


@njit(inline="always", error_model="numpy")
def _sigmoid(x):
    return _ONE / (_ONE + _exp(-x))


@njit(inline="always", error_model="numpy")
def _tanh(x):
    """tanh(x) for float32 x, vectorizable (Cephes tanhf, both branches computed, one kept)."""
    a = abs(x)
    z = x * x
    small = ((((_T0 * z + _T1) * z + _T2) * z + _T3) * z + _T4) * z * x + x
    big = _ONE - _TWO / (_exp(a + a) + _ONE)
    big = big if x >= 0 else -big
    return small if a < _TANH_SMALL else big


@njit(cache=True, error_model="numpy")
def math_check(x, out_sigmoid, out_tanh):
    """The kernel's sigmoid and tanh over an array (for the tests)."""
    for j in range(x.shape[0]):
        out_sigmoid[j] = _sigmoid(x[j])
        out_tanh[j] = _tanh(x[j])


@njit(inline="always", error_model="numpy")
def _cell(row, c, h, c_out, h_out):
    """One row's step: ``row`` [4H] holds the pre-activations i, f, g, o and becomes the
    gates; c and h [H] become the new state, also written to c_out and h_out. Each loop
    runs from 0 over a view (a loop from 2H is not vectorized: its index might be negative)."""
    H = c.shape[0]
    i, f, g, o = row[:H], row[H : 2 * H], row[2 * H : 3 * H], row[3 * H :]
    for j in range(2 * H):  # i and f
        row[j] = _sigmoid(row[j])
    for j in range(H):
        g[j] = _tanh(g[j])
    for j in range(H):
        o[j] = _sigmoid(o[j])
    for j in range(H):
        cj = f[j] * c[j] + i[j] * g[j]
        c[j] = cj
        c_out[j] = cj
    for j in range(H):
        hj = o[j] * _tanh(c[j])
        h[j] = hj
        h_out[j] = hj


@njit(cache=True, nogil=True, error_model="numpy")  # nogil: the server answers requests while a job records
def _steps(sgemm, gates, w_hh, h, c, keep, hs, cs):
    """Every step of an LSTM layer. On entry ``gates`` [B, T, 4H] holds x W_ih^T + b_ih +
    b_hh; each step adds h W_hh^T in place (``sgemm``, column-major: gates[:, t]^T +=
    W_hh h^T) and turns it into the gates. h, c [B, H] are the state before step 0 and leave
    as the final state; a row's state is zeroed before each step where ``keep`` [B, T] is 0.
    hs, cs [B, T, H] receive h and c of every step."""
    B, T, G = gates.shape
    dims = np.array([G, B, G // 4, G // 4, G // 4, T * G], np.int32)  # m, n, k, lda, ldb, ldc
    ops = np.array([ord("T"), ord("N")], np.uint8)
    scale = np.ones(2, np.float32)  # alpha, beta: add the product to what gates holds
    for t in range(T):
        for b in range(B):
            if keep[b, t] == 0:
                h[b, :] = 0
                c[b, :] = 0
        sgemm(
            ops.ctypes.data, ops[1:].ctypes.data, dims.ctypes.data, dims[1:].ctypes.data, dims[2:].ctypes.data,
            scale.ctypes.data, w_hh.ctypes.data, dims[3:].ctypes.data, h.ctypes.data, dims[4:].ctypes.data,
            scale[1:].ctypes.data, gates[0, t].ctypes.data, dims[5:].ctypes.data,
        )  # fmt: skip
        for b in range(B):
            _cell(gates[b, t], c[b], h[b], cs[b, t], hs[b, t])


def _bind_sgemm():
    """MKL's Fortran ``sgemm_`` from torch's own library, or None where torch has no MKL."""
    if not torch.backends.mkl.is_available():
        return None
    folder = os.path.join(os.path.dirname(torch.__file__), "lib")
    for name in ("libtorch_cpu.so", "torch_cpu.dll", "libtorch_cpu.dylib"):
        try:
            lib = ctypes.CDLL(os.path.join(folder, name))
            return ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 13)(("sgemm_", lib))
        except (OSError, AttributeError):
            continue
    return None


def _sgemm_agrees(sgemm) -> bool:
    """Whether ``sgemm`` does what :func:`_steps` asks of it, checked against ``torch.addmm``:
    add h W_hh^T into one step's column of a [batch, time, gates] block (column-major
    'T', 'N', beta 1, the block's stride). Each size is a 32-bit integer (the LP64
    interface ``_steps`` assumes) in a 64-bit slot whose upper half is all ones, so an
    ILP64 library reads every size as negative and computes nothing (MKL refuses
    negative sizes), instead of reading past our arrays."""
    g = torch.Generator().manual_seed(0)
    B, T, H, t = 3, 2, 5, 1
    w_hh, h = torch.randn(4 * H, H, generator=g), torch.randn(B, H, generator=g)
    gates = torch.randn(B, T, 4 * H, generator=g)
    expected = gates.clone()
    expected[:, t] = torch.addmm(gates[:, t], h, w_hh.t())
    sizes = np.array([4 * H, B, H, H, H, T * 4 * H], np.int64) | np.int64(-(1 << 32))  # m, n, k, lda, ldb, ldc
    ops, scale = np.array([ord("T"), ord("N")], np.uint8), np.ones(2, np.float32)
    size = [sizes.ctypes.data + 8 * j for j in range(6)]
    sgemm(
        ops.ctypes.data, ops.ctypes.data + 1, size[0], size[1], size[2], scale.ctypes.data, w_hh.data_ptr(), size[3],
        h.data_ptr(), size[4], scale.ctypes.data + 4, gates[0, t].data_ptr(), size[5],
    )  # fmt: skip
    return torch.allclose(gates, expected, rtol=1e-5, atol=1e-5)


@functools.cache
def checked_sgemm():
    """``sgemm_`` once it has computed what ``torch.addmm`` does here (:func:`_sgemm_agrees`,
    asked at the first use); None where it is missing or disagrees (a warning says so),
    and recording then takes the fused module's path."""
    sgemm = _bind_sgemm()
    if sgemm is None or _sgemm_agrees(sgemm):
        return sgemm
    warnings.warn("MKL's sgemm_ gave other values than torch.addmm here; recording uses the fused path.", stacklevel=3)
    return None


def usable(x: torch.Tensor) -> bool:
    """Whether the kernel can run this layer: float32 on the CPU, with MKL's sgemm_ checked."""
    return x.device.type == "cpu" and x.dtype == torch.float32 and checked_sgemm() is not None


def lstm_layer(x: torch.Tensor, weights: dict[str, torch.Tensor], state, keep=None):
    """One LSTM layer over x [batch, time, in] from ``state`` (h, c) [batch, hidden], zeroing
    a row's state before each step where ``keep`` [batch, time] is 0. Returns ({"h","c","i",
    "f","g","o"} each [batch, time, hidden], the final (h, c))."""
    w_ih, w_hh, b_ih, b_hh = (w.detach() for w in weights.values())
    B, T, _ = x.shape
    H = w_hh.shape[1]
    with torch.no_grad():
        gates = torch.addmm(b_ih + b_hh, x.detach().reshape(B * T, -1), w_ih.t()).view(B, T, 4 * H)
        h, c = (s.detach().to(torch.float32, copy=True).contiguous() for s in state)
        hs, cs = x.new_empty(B, T, H), x.new_empty(B, T, H)
        k = torch.ones(B, T) if keep is None else keep.detach().to(torch.float32).contiguous()
        _steps(checked_sgemm(), gates.numpy(), w_hh.contiguous().numpy(), h.numpy(), c.numpy(), k.numpy(), hs.numpy(), cs.numpy())
    i, f, g, o = gates.split(H, dim=-1)
    return {"h": hs, "c": cs, "i": i, "f": f, "g": g, "o": o}, (h, c)
