"""The instrumented forward equals the fused modules, and its recorded states equal an
independent step-by-step reference built on nn.LSTMCell / nn.GRUCell / nn.RNNCell."""

import pytest
import torch
from torch import nn

from lstmviz.model.hooks import run_with_cache
from lstmviz.model.instrument import linear_scan
from lstmviz.model.rnn import CELLS, FUSED_CELLS, CharRNN, ModelConfig


def _model(cell, layers=3, hidden=20, vocab=30, seed=0):
    torch.manual_seed(seed)
    return CharRNN(ModelConfig(vocab_size=vocab, cell=cell, num_layers=layers, hidden_size=hidden, embed_dim=12)).eval()


def _random_state(model, batch):
    state = model.initial_state(batch)
    return tuple(torch.randn_like(s) for s in state) if isinstance(state, tuple) else torch.randn_like(state)


def _as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("carried", [False, True])
def test_instrumented_equals_fused(cell, carried):
    model = _model(cell)
    ids = torch.randint(0, 30, (4, 37))
    state = _random_state(model, 4) if carried else None
    with torch.no_grad():
        fused_logits, fused_state = model(ids, state)
    logits, inst_state = model.forward_instrumented(ids, state)
    torch.testing.assert_close(logits, fused_logits, atol=1e-5, rtol=0)
    for a, b in zip(_as_tuple(inst_state), _as_tuple(fused_state), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def _reference(model, ids, state):
    """Step one character at a time with PyTorch's cell modules, computing gates by hand."""
    cfg = model.config
    x = model.embedding(ids)
    out = {}
    for layer in range(cfg.num_layers):
        w_ih, w_hh, b_ih, b_hh = (getattr(model.rnn, f"{p}_l{layer}") for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        cell = {"lstm": nn.LSTMCell, "gru": nn.GRUCell, "rnn": nn.RNNCell}[cfg.cell](x.shape[-1], cfg.hidden_size)
        cell.load_state_dict({"weight_ih": w_ih, "weight_hh": w_hh, "bias_ih": b_ih, "bias_hh": b_hh})
        h = state[0][layer] if cfg.cell == "lstm" else state[layer]
        c = state[1][layer] if cfg.cell == "lstm" else None
        series = {k: [] for k in cfg.series_kinds}
        for t in range(ids.shape[1]):
            xt = x[:, t]
            if cfg.cell == "lstm":
                pre = xt @ w_ih.T + b_ih + h @ w_hh.T + b_hh
                i, f, g, o = pre.chunk(4, dim=1)
                series["i"].append(torch.sigmoid(i))
                series["f"].append(torch.sigmoid(f))
                series["g"].append(torch.tanh(g))
                series["o"].append(torch.sigmoid(o))
                h, c = cell(xt, (h, c))
                series["c"].append(c)
            elif cfg.cell == "gru":
                gi, gh = xt @ w_ih.T + b_ih, h @ w_hh.T + b_hh
                r = torch.sigmoid(gi[:, : cfg.hidden_size] + gh[:, : cfg.hidden_size])
                z = torch.sigmoid(gi[:, cfg.hidden_size : 2 * cfg.hidden_size] + gh[:, cfg.hidden_size : 2 * cfg.hidden_size])
                n = torch.tanh(gi[:, 2 * cfg.hidden_size :] + r * gh[:, 2 * cfg.hidden_size :])
                series["r"].append(r)
                series["z"].append(z)
                series["n"].append(n)
                h = cell(xt, h)
            else:
                h = cell(xt, h)
            series["h"].append(h)
        for kind, steps in series.items():
            out[f"layers.{layer}.hook_{kind}"] = torch.stack(steps, 1)
        x = out[f"layers.{layer}.hook_h"]
    return out


@pytest.mark.parametrize("cell", FUSED_CELLS)  # the LSTM variants: test_variants.py
def test_recorded_states_equal_step_by_step_reference(cell):
    model = _model(cell, layers=2)
    ids = torch.randint(0, 30, (3, 25))
    state = _random_state(model, 3)
    _, cache = model.run_with_cache(ids, state=state)
    with torch.no_grad():
        reference = _reference(model, ids, state)
    assert set(cache) == set(reference) == set(model.hook_names())
    for name, expected in reference.items():
        assert cache[name].shape == (3, 25, 20)
        torch.testing.assert_close(cache[name], expected, atol=1e-5, rtol=0, msg=name)


def test_names_filter_keeps_only_what_was_asked():
    model = _model("lstm", layers=2)
    _, cache = model.run_with_cache(torch.randint(0, 30, (1, 5)), names_filter=r"layers\.1\.hook_[ch]")
    assert sorted(cache) == ["layers.1.hook_c", "layers.1.hook_h"]
    _, cache = model.run_with_cache(torch.randint(0, 30, (1, 5)), names_filter=lambda n: n.endswith("hook_f"))
    assert sorted(cache) == ["layers.0.hook_f", "layers.1.hook_f"]


def test_hooks_are_removed_even_after_an_error():
    model = _model("lstm", layers=2)
    calls = []
    with pytest.raises(RuntimeError, match="boom"), model.hooks({"layers.0.hook_c": lambda x, hook: calls.append(hook.name)}):
        raise RuntimeError("boom")
    model.forward_instrumented(torch.randint(0, 30, (1, 5)))
    assert calls == []
    assert all(not p.fns for p in model.modules() if hasattr(p, "fns"))


def test_unknown_hook_name_is_an_error():
    with pytest.raises(KeyError, match="No hook point named"), _model("gru").hooks({"layers.0.hook_c": lambda x, hook: None}):
        pass


@pytest.mark.parametrize("cell", CELLS)
def test_keep_mask_starts_documents_from_zero_state(cell):
    """Two rows, each with a document starting mid-chunk at a different step: every series
    after the start equals the document run alone from a zero state."""
    model = _model(cell, layers=2)
    a, b = torch.randint(0, 30, (2, 45)), torch.randint(0, 30, (2, 40))
    ids = torch.cat([a, b], 1)  # [2, 85]
    keep = torch.ones(2, 85)
    keep[0, 45] = 0
    keep[1, 30] = 0  # row 1's second document is ids[1, 30:]
    state = _random_state(model, 2)
    (joined, _), cache = run_with_cache(model, lambda: model.forward_instrumented(ids, state, keep))
    for row, start in ((0, 45), (1, 30)):
        (alone, _), alone_cache = model.run_with_cache(ids[row : row + 1, start:])
        torch.testing.assert_close(joined[row : row + 1, start:], alone, atol=1e-5, rtol=0)
        for name, series in alone_cache.items():
            torch.testing.assert_close(cache[name][row : row + 1, start:], series, atol=1e-5, rtol=0, msg=name)


@pytest.mark.parametrize("steps", [1, 15, 16, 17, 250])
def test_linear_scan_equals_the_step_loop(steps):
    torch.manual_seed(steps)
    a, u, c0 = torch.rand(3, steps, 8), torch.randn(3, steps, 8), torch.randn(3, 8)
    expected, c = [], c0
    for t in range(steps):
        c = a[:, t] * c + u[:, t]
        expected.append(c)
    torch.testing.assert_close(linear_scan(a, u, c0), torch.stack(expected, 1), atol=1e-5, rtol=1e-5)
