"""The compiled LSTM step kernel equals the fast path it replaces (the fused module's h, the
gates and c recomputed from it), and recording an LSTM on the CPU goes through it."""

import numpy as np
import pytest
import torch

from lstmviz.model import step_kernel
from lstmviz.model.instrument import fused_layer, lstm_series
from lstmviz.model.rnn import CharRNN, ModelConfig

pytestmark = pytest.mark.skipif(step_kernel._SGEMM is None, reason="torch has no MKL here: the kernel is not used")


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
