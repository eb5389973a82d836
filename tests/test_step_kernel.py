"""The compiled LSTM step kernel equals the fast path it replaces (the fused module's h, the
gates and c recomputed from it), and recording an LSTM on the CPU goes through it."""

import ctypes

import numpy as np
import pytest
import torch

from lstmviz.model import step_kernel
from lstmviz.model.instrument import fused_layer, lstm_series
from lstmviz.model.rnn import CharRNN, ModelConfig

pytestmark = pytest.mark.skipif(step_kernel.checked_sgemm() is None, reason="torch has no MKL here: the kernel is not used")


def _weights(inputs, hidden, seed=0):
    g = torch.Generator().manual_seed(seed)
    shapes = {"weight_ih_l0": (4 * hidden, inputs), "weight_hh_l0": (4 * hidden, hidden), "bias_ih_l0": (4 * hidden,)}
    shapes["bias_hh_l0"] = (4 * hidden,)
    return {name: torch.randn(shape, generator=g) * 0.3 for name, shape in shapes.items()}


@pytest.mark.parametrize("rows", [1, 5])
@pytest.mark.parametrize("resets", [False, True])
def test_kernel_equals_the_fast_path(rows, resets):
    torch.manual_seed(rows)
    weights = _weights(12, 24)
    x = torch.randn(rows, 40, 12)
    state = (torch.randn(rows, 24), torch.randn(rows, 24))
    keep = None
    if resets:  # documents start at step 0 in row 0 and mid-chunk elsewhere
        keep = torch.ones(rows, 40)
        keep[0, 0] = 0
        keep[-1, 17] = 0
    with torch.inference_mode():
        series, (h, c) = step_kernel.lstm_layer(x, weights, state, keep)
        hs, (h_ref, c_ref) = fused_layer("lstm", x, weights, state, keep)
        expected = {"h": hs, **lstm_series(x, weights, state[0], state[1], hs, keep)}
    assert set(series) == set(expected)
    for kind, value in expected.items():
        torch.testing.assert_close(series[kind], value, atol=1e-5, rtol=0, msg=kind)
    torch.testing.assert_close(h, h_ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(c, c_ref, atol=1e-5, rtol=0)


def test_sigmoid_and_tanh_to_float32_rounding():
    x = np.concatenate([np.linspace(-120, 120, 200_001), [0.0, -0.0, 1e-30, -1e-8, 0.625, -0.625]]).astype(np.float32)
    sigmoid, tanh = np.empty_like(x), np.empty_like(x)
    step_kernel.math_check(x, sigmoid, tanh)
    exact = x.astype(np.float64)
    np.testing.assert_allclose(sigmoid, 1 / (1 + np.exp(-exact)), atol=2e-7, rtol=5e-7)
    np.testing.assert_allclose(tanh, np.tanh(exact), atol=1e-7, rtol=5e-7)


def test_recording_an_lstm_goes_through_the_kernel(monkeypatch):
    calls = []
    kernel = step_kernel.lstm_layer
    monkeypatch.setattr(step_kernel, "lstm_layer", lambda *a: calls.append(1) or kernel(*a))
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab_size=30, cell="lstm", num_layers=2, hidden_size=20, embed_dim=12)).eval()
    ids = torch.randint(0, 30, (3, 25))
    (logits, state), cache = model.run_with_cache(ids)
    assert len(calls) == 2 and len(cache) == 12
    with torch.no_grad():
        fused_logits, fused_state = model(ids)
    torch.testing.assert_close(logits, fused_logits, atol=1e-5, rtol=0)
    for a, b in zip(state, fused_state, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def _floats(address: int, count: int, stride: int, width: int) -> np.ndarray:
    """``count`` columns of ``width`` float32 each, ``stride`` apart, at ``address`` (a
    column-major matrix as a row-major [count, width] view)."""
    flat = np.ctypeslib.as_array(ctypes.cast(address, ctypes.POINTER(ctypes.c_float)), shape=((count - 1) * stride + width,))
    return np.lib.stride_tricks.as_strided(flat, shape=(count, width), strides=(4 * stride, 4))


def _ilp64_sgemm(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """sgemm_ ('T', 'N') as an ILP64 library does it: every size a 64-bit integer, and, as
    MKL does, nothing computed when a size is negative."""
    m, n, k, lda, ldb, ldc = (ctypes.c_int64.from_address(p).value for p in (m, n, k, lda, ldb, ldc))
    if min(m, n, k, lda, ldb, ldc) < 0 or max(m, n, k, lda, ldb, ldc) > 1 << 20:
        return
    alpha, beta = (ctypes.c_float.from_address(p).value for p in (alpha, beta))
    a_t, b_t, c_t = _floats(a, m, lda, k), _floats(b, n, ldb, k), _floats(c, n, ldc, m)
    c_t[:] = alpha * (b_t @ a_t.T) + beta * c_t


SGEMM_TYPE = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 13)
ILP64_SGEMM = SGEMM_TYPE(_ilp64_sgemm)


@pytest.fixture
def fresh_sgemm_check():
    """sgemm_'s check asked again in this test, and again after it."""
    step_kernel.checked_sgemm.cache_clear()
    yield
    step_kernel.checked_sgemm.cache_clear()


def test_an_sgemm_with_64_bit_sizes_is_caught_and_recording_keeps_its_values(fresh_sgemm_check, monkeypatch):
    """An ILP64 sgemm_ would read the kernel's 32-bit sizes wrong: the check at first use
    refuses it with a warning, and recording takes the fused path, with the same values."""
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab_size=30, cell="lstm", num_layers=2, hidden_size=20, embed_dim=12)).eval()
    ids = torch.randint(0, 30, (3, 25))
    (kernel_logits, _), kernel_cache = model.run_with_cache(ids)
    calls = []
    kernel = step_kernel.lstm_layer
    monkeypatch.setattr(step_kernel, "lstm_layer", lambda *a: calls.append(1) or kernel(*a))
    monkeypatch.setattr(step_kernel, "_bind_sgemm", lambda: ILP64_SGEMM)
    step_kernel.checked_sgemm.cache_clear()
    with pytest.warns(UserWarning, match="sgemm_.*torch.addmm"):
        assert not step_kernel.usable(ids.float())
    (logits, _), cache = model.run_with_cache(ids)
    assert calls == []  # the kernel was not used
    torch.testing.assert_close(logits, kernel_logits, atol=1e-5, rtol=0)
    assert cache.keys() == kernel_cache.keys()
    for name in cache:
        torch.testing.assert_close(cache[name], kernel_cache[name], atol=1e-5, rtol=0, msg=name)


def test_the_emulated_ilp64_sgemm_computes_when_given_64_bit_sizes():
    """The stand-in above is a real sgemm_ for 64-bit sizes (so the refusal is the check's doing)."""
    w, h, c = np.random.default_rng(0).standard_normal((3, 4, 4)).astype(np.float32)
    expected = c + h @ w.T  # C (column-major: c^T) += W^T-applied, as the kernel asks
    sizes = np.array([4, 4, 4, 4, 4, 4], np.int64)
    ops, scale = np.array([ord("T"), ord("N")], np.uint8), np.ones(2, np.float32)
    size = [sizes.ctypes.data + 8 * j for j in range(6)]
    ILP64_SGEMM(
        ops.ctypes.data, ops.ctypes.data + 1, size[0], size[1], size[2], scale.ctypes.data, w.ctypes.data, size[3],
        h.ctypes.data, size[4], scale.ctypes.data + 4, c.ctypes.data, size[5],
    )  # fmt: skip
    np.testing.assert_allclose(c, expected, rtol=1e-5, atol=1e-5)
