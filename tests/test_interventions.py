"""Replacing a value at any hook point acts as if the cell had computed it. Every cell type,
every hook kind, first and last layer, run whole or in chunks of 1 and 7 steps, against an
independent step-by-step reference: PyTorch's nn.LSTMCell / nn.GRUCell / nn.RNNCell, with
the replacement done by hand (gates computed by hand where a gate is replaced)."""

import pytest
import torch
from torch import nn

from lstmviz import interventions as iv
from lstmviz.core.errors import LstmvizError
from lstmviz.model.rnn import CELLS, FUSED_CELLS, SERIES_KINDS, CharRNN, ModelConfig

HIDDEN, VOCAB, STEPS = 16, 30, 23
POSITIONS = (0, 3, 4, 10, 11, 12, 20)  # where the replacement holds (absolute steps)
UNITS = (2, 9)
# A value each kind can take (gates in (0, 1), g and n and h in (-1, 1), c anything).
VALUES = {"i": 0.9, "f": 0.05, "g": -0.7, "o": 0.95, "c": 2.5, "h": -0.6, "r": 0.1, "z": 0.8, "n": 0.4}


def _model(cell, layers=2, seed=0):
    torch.manual_seed(seed)
    return CharRNN(ModelConfig(vocab_size=VOCAB, cell=cell, num_layers=layers, hidden_size=HIDDEN, embed_dim=12)).eval()


def _random_state(model, batch):
    state = model.initial_state(batch)
    return tuple(torch.randn_like(s) for s in state) if isinstance(state, tuple) else torch.randn_like(state)


def _weights(model, layer):
    return [getattr(model.rnn, f"{p}_l{layer}") for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


def reference_logits(model, ids, state, replace):
    """Step by step, layer by layer; ``replace[(layer, kind)](t, value) -> value``."""
    cfg, H = model.config, model.config.hidden_size
    x = model.embedding(ids)
    for layer in range(cfg.num_layers):
        w_ih, w_hh, b_ih, b_hh = _weights(model, layer)
        module = {"lstm": nn.LSTMCell, "gru": nn.GRUCell, "rnn": nn.RNNCell}[cfg.cell](x.shape[-1], H)
        module.load_state_dict({"weight_ih": w_ih, "weight_hh": w_hh, "bias_ih": b_ih, "bias_hh": b_hh})
        h = state[0][layer] if cfg.cell == "lstm" else state[layer]
        c = state[1][layer] if cfg.cell == "lstm" else None

        def rep(kind, t, value, layer=layer):
            fn = replace.get((layer, kind))
            return value if fn is None else fn(t, value)

        outs = []
        for t in range(ids.shape[1]):
            xt = x[:, t]
            if cfg.cell == "lstm":
                pre_i, pre_f, pre_g, pre_o = (xt @ w_ih.T + b_ih + h @ w_hh.T + b_hh).chunk(4, dim=1)
                if any((layer, k) in replace for k in "ifg"):
                    i = rep("i", t, torch.sigmoid(pre_i))
                    f = rep("f", t, torch.sigmoid(pre_f))
                    g = rep("g", t, torch.tanh(pre_g))
                    c = f * c + i * g
                else:
                    _, c = module(xt, (h, c))
                o = rep("o", t, torch.sigmoid(pre_o))
                c = rep("c", t, c)
                h = rep("h", t, o * torch.tanh(c))
            elif cfg.cell == "gru":
                gi, gh = xt @ w_ih.T + b_ih, h @ w_hh.T + b_hh
                if any((layer, k) in replace for k in "rzn"):
                    r = rep("r", t, torch.sigmoid(gi[:, :H] + gh[:, :H]))
                    z = rep("z", t, torch.sigmoid(gi[:, H : 2 * H] + gh[:, H : 2 * H]))
                    n = rep("n", t, torch.tanh(gi[:, 2 * H :] + r * gh[:, 2 * H :]))
                    h = (1 - z) * n + z * h
                else:
                    h = module(xt, h)
                h = rep("h", t, h)
            else:
                h = rep("h", t, module(xt, h))
            outs.append(h)
        x = torch.stack(outs, 1)
    return model.decoder(x)


def _set_units(value):
    def fn(t, v):
        if t not in POSITIONS:
            return v
        v = v.clone()
        v[:, list(UNITS)] = value
        return v

    return fn


def _chunked(model, ids, state, hooks, chunk):
    """The model run over ids in chunks of ``chunk`` steps, the state carried across."""
    logits = []
    for start in range(0, ids.shape[1], chunk):
        out, state = model.forward_instrumented(ids[:, start : start + chunk], state, hooks=hooks, offset=start)
        logits.append(out)
    return torch.cat(logits, 1)


# The reference steps PyTorch's own cells; the LSTM variants have theirs in test_variants.py.
CASES = [(cell, kind) for cell in FUSED_CELLS for kind in SERIES_KINDS[cell]]
ALL_CASES = [(cell, kind) for cell in CELLS for kind in SERIES_KINDS[cell]]


@pytest.mark.parametrize("cell,kind", CASES)
@pytest.mark.parametrize("layer", [0, 2])
@pytest.mark.parametrize("chunk", [1, 7, STEPS])
def test_replaced_value_equals_step_by_step_reference(cell, kind, layer, chunk):
    model = _model(cell, layers=3)
    ids = torch.randint(0, VOCAB, (3, STEPS))
    state = _random_state(model, 3)
    neurons = [f"L{layer + 1}.{kind}.{u}" for u in UNITS]
    hooks = iv.clamp(neurons, VALUES[kind], positions=POSITIONS)
    with torch.no_grad():
        expected = reference_logits(model, ids, state, {(layer, kind): _set_units(VALUES[kind])})
        plain = model(ids, state)[0]
    got = _chunked(model, ids, state, hooks, chunk)
    torch.testing.assert_close(got, expected, atol=2e-5, rtol=0)
    assert not torch.allclose(got, plain, atol=1e-4), "the replacement changed nothing"


@pytest.mark.parametrize("cell", FUSED_CELLS)
def test_replacements_in_two_layers_and_a_scale(cell):
    model = _model(cell, layers=2)
    ids = torch.randint(0, VOCAB, (2, STEPS))
    state = _random_state(model, 2)
    low, high = SERIES_KINDS[cell][-1], SERIES_KINDS[cell][0]  # h below, the first gate (or h) above

    def scaled(t, v):
        v = v.clone()
        v[:, 5] = v[:, 5] * 3.0
        return v

    hooks = iv.clamp(f"L1.{low}.2", -0.5) + iv.scale(f"L2.{high}.5", 3.0)
    with torch.no_grad():
        expected = reference_logits(model, ids, state, {(0, low): _set_all(2, -0.5), (1, high): scaled})
    torch.testing.assert_close(_chunked(model, ids, state, hooks, 5), expected, atol=2e-5, rtol=0)


def _set_all(unit, value):
    def fn(t, v):
        v = v.clone()
        v[:, unit] = value
        return v

    return fn


@pytest.mark.parametrize("cell", CELLS)
def test_identity_hooks_leave_the_output_bitwise_unchanged(cell):
    model = _model(cell)
    ids = torch.randint(0, VOCAB, (2, 19))
    base, base_state = model.forward_instrumented(ids)
    identity = [(name, lambda x, hook: x) for name in model.hook_names()]
    identity += [(name, lambda x, hook: None) for name in model.hook_names()]
    same, same_state = model.forward_instrumented(ids, hooks=identity)
    assert torch.equal(same, base)
    for a, b in zip(
        same_state if isinstance(same_state, tuple) else (same_state,),
        base_state if isinstance(base_state, tuple) else (base_state,),
        strict=True,
    ):
        assert torch.equal(a, b)


@pytest.mark.parametrize("cell,kind", ALL_CASES)
@pytest.mark.parametrize("layer", [0, 1])
def test_zeroing_each_kind_changes_the_output(cell, kind, layer):
    model = _model(cell)
    ids = torch.randint(0, VOCAB, (2, 19))
    base, _ = model.forward_instrumented(ids)
    changed, _ = model.forward_instrumented(ids, hooks=iv.zero([f"L{layer + 1}.{kind}.{u}" for u in range(HIDDEN)]))
    assert (changed - base).abs().max() > 1e-3


def test_a_hook_that_changes_its_value_in_place_counts_as_a_replacement():
    model = _model("lstm")
    ids = torch.randint(0, VOCAB, (1, 12))

    def in_place(x, hook):
        x[..., 3] = 1.0  # returns None, as TransformerLens hooks often do

    with model.hooks({"layers.0.hook_c": in_place}):
        changed = model(ids)[0]
    expected = model.forward_instrumented(ids, hooks=iv.clamp("L1.c.3", 1.0))[0]
    torch.testing.assert_close(changed, expected, atol=0, rtol=0)


def test_plain_forward_honours_hooks_and_the_cache_shows_replaced_values():
    model = _model("lstm")
    ids = torch.randint(0, VOCAB, (2, 15))
    with model.hooks(iv.clamp("L1.c.4", 3.0)):
        hooked = model(ids)[0]
        (_, _), cache = model.run_with_cache(ids, names_filter=["layers.0.hook_c", "layers.0.hook_h"])
    assert not torch.allclose(hooked, model(ids)[0])
    assert torch.all(cache["layers.0.hook_c"][..., 4] == 3.0)
    o = cache["layers.0.hook_h"][..., 4] / torch.tanh(torch.tensor(3.0))  # h = o tanh(c) with c held at 3
    assert torch.all((o > 0) & (o < 1))


def test_patching_a_run_into_another_reproduces_it():
    """Patch every unit of layer 1's h and c from run B into run A: A then computes B's
    predictions (the top layer sees B's input)."""
    model = _model("lstm")
    a, b = torch.randint(0, VOCAB, (2, 1, 17))
    (logits_b, _), cache_b = model.run_with_cache(b, names_filter=["layers.0.hook_h", "layers.0.hook_c"])
    neurons = [f"L1.{k}.{u}" for k in "hc" for u in range(HIDDEN)]
    patched, _ = model.forward_instrumented(a, hooks=iv.patch(neurons, cache_b))
    torch.testing.assert_close(patched, logits_b, atol=1e-5, rtol=0)


def test_mean_uses_the_store(tiny_store, tiny_checkpoint):
    from lstmviz.model.checkpoint import load_checkpoint

    ckpt = load_checkpoint(tiny_checkpoint)
    means = iv.store_means(tiny_store, "L1.c.0,L1.c.3")
    ids = torch.tensor([ckpt.vocab.encode("def f(x):\n    return x\n")])
    (_, _), cache = ckpt.model.run_with_cache(ids, names_filter=["layers.0.hook_c"], hooks=iv.mean("L1.c.0,L1.c.3", tiny_store))
    for n, value in means.items():
        assert torch.allclose(cache["layers.0.hook_c"][..., n.index], torch.tensor(value, dtype=torch.float32))


def test_bad_interventions_are_clear_errors():
    with pytest.raises(LstmvizError, match="not a neuron id"):
        iv.zero("L1.x")
    with pytest.raises(LstmvizError, match="must be a number"):
        iv.clamp("L1.c.1", "lots")
    with pytest.raises(LstmvizError, match="finite"):
        iv.scale("L1.c.1", float("nan"))
    with pytest.raises(LstmvizError, match="--mode takes"):
        iv.Mode.parse("clamp")
    assert iv.Mode.parse("clamp=-2.5") == iv.Mode("clamp", -2.5)
    assert iv.parse_assignments(["L2.c.90=20", "L1.h.3:-1.5"]) == {
        iv.NeuronId(2, "c", 90): 20.0,
        iv.NeuronId(1, "h", 3): -1.5,
    }
    with pytest.raises(LstmvizError, match="ID=VALUE"):
        iv.parse_assignments(["L2.c.90"])
    model = _model("gru")
    with pytest.raises(LstmvizError, match="outside this series"):
        model.forward_instrumented(torch.zeros(1, 3, dtype=torch.long), hooks=iv.zero(f"L1.h.{HIDDEN}"))
    with pytest.raises(KeyError, match="No hook point"):
        model.forward_instrumented(torch.zeros(1, 3, dtype=torch.long), hooks=iv.zero("L1.c.0"))


def test_readers_see_whole_series_once_per_layer_and_may_not_replace():
    from lstmviz.model.hooks import reader

    model = _model("lstm")
    ids = torch.randint(0, VOCAB, (2, 11))
    seen = []

    @reader
    def look(x, hook):
        seen.append((hook.name, tuple(x.shape), hook.positions))

    model.forward_instrumented(ids, hooks=[("layers.0.hook_f", look)] + iv.clamp("L1.c.0", 1.0), offset=100)
    assert seen == [("layers.0.hook_f", (2, 11, HIDDEN), range(100, 111))]  # once, whole, after the step path
    with pytest.raises(LstmvizError, match="marked as a reader returned a value"):
        model.forward_instrumented(ids, hooks=[("layers.1.hook_h", reader(lambda x, hook: x))])


@pytest.fixture
def fresh_packing_check():
    """The packed product's check asked again in this test, and again after it."""
    from lstmviz.model import stepwise

    stepwise.packing_agrees.cache_clear()
    yield stepwise
    stepwise.packing_agrees.cache_clear()


def test_a_packed_product_that_disagrees_is_not_used_and_the_values_stay(fresh_packing_check, monkeypatch):
    """The step path's private oneDNN product is held to torch.addmm at its first use; one
    that computes otherwise is refused with a warning and addmm gives the same replaced run."""
    stepwise = fresh_packing_check
    if not stepwise.packing_agrees():
        pytest.skip("this build of torch has no oneDNN packed product")
    model = _model("lstm")
    ids = torch.randint(0, VOCAB, (3, STEPS))
    hooks = iv.clamp("L1.c.2", 1.5, positions=POSITIONS)
    with torch.no_grad():
        packed_run = model.forward_instrumented(ids, hooks=hooks)[0]
    assert model.step_weights(0).w_hh_packed is not None
    real = stepwise._packed_product
    monkeypatch.setattr(stepwise, "_packed_product", lambda x, w, b: real(x, w, b) * 1.001)
    stepwise.packing_agrees.cache_clear()
    with pytest.warns(UserWarning, match="torch.addmm"):
        assert stepwise.packed(torch.randn(8, 4)) is None
    again = _model("lstm")  # the same weights, laid out for stepping anew
    with torch.no_grad():
        public_run = again.forward_instrumented(ids, hooks=hooks)[0]
        plain = again(ids)[0]
    assert again.step_weights(0).w_hh_packed is None
    torch.testing.assert_close(public_run, packed_run, atol=1e-5, rtol=0)
    assert not torch.allclose(public_run, plain, atol=1e-4)  # the clamp still acts


def test_a_missing_packed_product_falls_back_quietly(fresh_packing_check, monkeypatch, recwarn):
    stepwise = fresh_packing_check

    def missing(weight):
        raise RuntimeError("mkldnn::_reorder_linear_weight: no kernel for this build")

    monkeypatch.setattr(stepwise, "_reorder", missing)
    assert stepwise.packed(torch.randn(8, 4)) is None
    assert not [w for w in recwarn if "addmm" in str(w.message)]
    x, w, b = torch.randn(5, 4), torch.randn(8, 4), torch.randn(8)
    torch.testing.assert_close(stepwise.linear(x, w, None, b), x @ w.T + b)
