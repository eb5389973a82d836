"""The LSTM variants without a fused kernel, peephole and cifg, against an independent
step-by-step implementation written here from the equations (Gers & Schmidhuber 2000;
Greff et al. 2017): every gate and state recorded, the state carried across chunks, two
layers, every hook kind replaced exactly; then a tiny train -> record -> find-cells run per
cell type, and a peephole checkpoint without its peephole weights."""

import json

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file, save_file

from lstmviz import interventions as iv
from lstmviz.cli.main import main
from lstmviz.core.errors import CheckpointError
from lstmviz.model.checkpoint import load_checkpoint
from lstmviz.model.rnn import CharRNN, ModelConfig

VARIANTS = ("peephole", "cifg")
KINDS = ("h", "c", "i", "f", "g", "o")
HIDDEN, VOCAB, STEPS = 16, 30, 23
POSITIONS = (0, 3, 4, 10, 11, 12, 20)
UNITS = (2, 9)
VALUES = {"i": 0.9, "f": 0.05, "g": -0.7, "o": 0.95, "c": 2.5, "h": -0.6}


def _model(cell, layers=2, seed=0):
    torch.manual_seed(seed)
    model = CharRNN(ModelConfig(vocab_size=VOCAB, cell=cell, num_layers=layers, hidden_size=HIDDEN, embed_dim=12)).eval()
    if cell == "peephole":  # larger peepholes than the initialisation's, so a mistake in them shows
        with torch.no_grad():
            for name, p in model.rnn.named_parameters():
                if name.startswith(("weight_ci", "weight_cf", "weight_co")):
                    p.normal_(0, 1.0)
    return model


def _random_state(model, batch):
    return tuple(torch.randn_like(s) for s in model.initial_state(batch))


def reference(model, ids, state, replace=None):
    """Step by step from the equations; ``replace[(layer, kind)](t, value) -> value`` where a
    value is replaced. Returns ({hook name: [batch, time, hidden]}, logits)."""
    cfg, H, replace = model.config, model.config.hidden_size, replace or {}
    x, out = model.embedding(ids), {}
    for layer in range(cfg.num_layers):
        p = {n: getattr(model.rnn, f"{n}_l{layer}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
        h, c = state[0][layer], state[1][layer]
        series = {k: [] for k in KINDS}

        def rep(kind, t, value, layer=layer, series=series):
            fn = replace.get((layer, kind))
            value = value if fn is None else fn(t, value)
            series[kind].append(value)
            return value

        for t in range(ids.shape[1]):
            pre = x[:, t] @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]
            if cfg.cell == "peephole":
                w_ci, w_cf, w_co = (getattr(model.rnn, f"weight_{n}_l{layer}") for n in ("ci", "cf", "co"))
                pre_i, pre_f, pre_g, pre_o = pre[:, :H], pre[:, H : 2 * H], pre[:, 2 * H : 3 * H], pre[:, 3 * H :]
                i = rep("i", t, torch.sigmoid(pre_i + w_ci * c))
                f = rep("f", t, torch.sigmoid(pre_f + w_cf * c))
                g = rep("g", t, torch.tanh(pre_g))
                c = rep("c", t, f * c + i * g)
                o = rep("o", t, torch.sigmoid(pre_o + w_co * c))  # the new c
            else:  # cifg: rows f, g, o
                pre_f, pre_g, pre_o = pre[:, :H], pre[:, H : 2 * H], pre[:, 2 * H :]
                f = rep("f", t, torch.sigmoid(pre_f))
                i = rep("i", t, 1 - f)
                g = rep("g", t, torch.tanh(pre_g))
                o = rep("o", t, torch.sigmoid(pre_o))
                c = rep("c", t, f * c + i * g)
            h = rep("h", t, o * torch.tanh(c))
        for kind, steps in series.items():
            out[f"layers.{layer}.hook_{kind}"] = torch.stack(steps, 1)
        x = out[f"layers.{layer}.hook_h"]
    return out, model.decoder(x)


@pytest.mark.parametrize("cell", VARIANTS)
@pytest.mark.parametrize("chunk", [1, 7, STEPS])
def test_recorded_states_equal_the_equations_across_chunks(cell, chunk):
    model = _model(cell)
    ids = torch.randint(0, VOCAB, (3, STEPS))
    state = _random_state(model, 3)
    with torch.no_grad():
        expected, expected_logits = reference(model, ids, state)
    got, logits, carried = {}, [], state
    for start in range(0, STEPS, chunk):
        (out, carried), cache = model.run_with_cache(ids[:, start : start + chunk], state=carried)
        logits.append(out)
        for name, value in cache.items():
            got.setdefault(name, []).append(value)
    assert set(got) == set(expected) == set(model.hook_names())
    for name, value in expected.items():
        torch.testing.assert_close(torch.cat(got[name], 1), value, atol=1e-5, rtol=0, msg=name)
    torch.testing.assert_close(torch.cat(logits, 1), expected_logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(carried[0][-1], expected["layers.1.hook_h"][:, -1], atol=1e-5, rtol=0)
    torch.testing.assert_close(carried[1][0], expected["layers.0.hook_c"][:, -1], atol=1e-5, rtol=0)


@pytest.mark.parametrize("cell", VARIANTS)
def test_training_forward_equals_the_recording_and_learns(cell):
    model = _model(cell).train()
    ids = torch.randint(0, VOCAB, (4, 12))
    with torch.no_grad():
        trained_path = model(ids)[0]
    torch.testing.assert_close(model.forward_instrumented(ids)[0], trained_path, atol=1e-6, rtol=0)
    loss = torch.nn.functional.cross_entropy(model(ids[:, :-1])[0].reshape(-1, VOCAB), ids[:, 1:].reshape(-1))
    loss.backward()
    grads = {n: p.grad for n, p in model.rnn.named_parameters()}
    assert all(g is not None and g.abs().sum() > 0 for g in grads.values()), [n for n, g in grads.items() if g is None]
    if cell == "cifg":
        assert model.rnn.weight_ih_l0.shape == (3 * HIDDEN, 12)  # no input-gate rows


def _set_units(value):
    def fn(t, v):
        if t not in POSITIONS:
            return v
        v = v.clone()
        v[:, list(UNITS)] = value
        return v

    return fn


@pytest.mark.parametrize("cell", VARIANTS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("layer", [0, 1])
@pytest.mark.parametrize("chunk", [1, 7, STEPS])
def test_replaced_value_equals_the_equations(cell, kind, layer, chunk):
    model = _model(cell)
    ids = torch.randint(0, VOCAB, (3, STEPS))
    state = _random_state(model, 3)
    hooks = iv.clamp([f"L{layer + 1}.{kind}.{u}" for u in UNITS], VALUES[kind], positions=POSITIONS)
    with torch.no_grad():
        expected_series, expected = reference(model, ids, state, {(layer, kind): _set_units(VALUES[kind])})
        plain = model(ids, state)[0]
    got, carried = [], state
    for start in range(0, STEPS, chunk):
        out, carried = model.forward_instrumented(ids[:, start : start + chunk], carried, hooks=hooks, offset=start)
        got.append(out)
    got = torch.cat(got, 1)
    torch.testing.assert_close(got, expected, atol=2e-5, rtol=0)
    assert not torch.allclose(got, plain, atol=1e-4), "the replacement changed nothing"


def test_cifg_replaced_forget_gate_moves_the_input_gate_with_it():
    model = _model("cifg")
    ids = torch.randint(0, VOCAB, (2, 9))
    _, cache = model.run_with_cache(ids, names_filter=["layers.0.hook_i", "layers.0.hook_f"], hooks=iv.clamp("L1.f.3", 0.25))
    assert torch.all(cache["layers.0.hook_f"][..., 3] == 0.25)
    torch.testing.assert_close(cache["layers.0.hook_i"], 1 - cache["layers.0.hook_f"])


@pytest.mark.parametrize("cell", VARIANTS)
def test_tiny_train_record_find_cells(cell, corpus_dir, tmp_path):
    def run(*args):
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)

    ck, store = tmp_path / cell, tmp_path / f"{cell}.store"
    result = run("train", corpus_dir, "--out", ck, "--cell", cell, "--hidden", 12, "--embed", 8, "--layers", 2,
                 "--seq-len", 24, "--batch-size", 4, "--steps", 8, "--eval-every", 8)  # fmt: skip
    assert result.exit_code == 0, result.output
    ckpt = load_checkpoint(ck)
    assert ckpt.model_config.cell == cell and ckpt.history["val_bpc"] and ckpt.history["val_bpc"][-1] < 6
    result = run("record", ck, "--out", store, "--max-chars", 3000, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["series"] == 2 * len(KINDS)
    result = run("find-cells", store, "--json", "--top", 3, "--kinds", ",".join(KINDS))
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["neurons"] == 2 * len(KINDS) * 12 and data["features"]
    assert all(len(rows) == 3 for rows in data["features"].values())
    assert {row["neuron"].split(".")[1] for rows in data["features"].values() for row in rows} <= set(KINDS)
    result = run("sample", ck, "--length", 40, "--clamp", "L1.c.0=2.0", "--json")  # the step functions, one character at a time
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)["generated"]) == 40


def test_peephole_checkpoint_without_its_peephole_weights_is_one_clear_error(tmp_path, corpus_dir):
    from lstmviz.model.train import TrainConfig, train
    from lstmviz.text.corpus import load_corpus

    out = tmp_path / "peep"
    train(load_corpus([str(corpus_dir)]), out, TrainConfig(cell="peephole", hidden_size=6, embed_dim=4, seq_len=8,
                                                             batch_size=2, steps=1, eval_every=1), progress=False)  # fmt: skip
    weights = load_file(str(out / "model.safetensors"))
    save_file({k: v for k, v in weights.items() if ".weight_c" not in k}, str(out / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"peephole checkpoint .* lacks its peephole weights \(rnn\.weight_cf_l0"):
        load_checkpoint(out)
    result = CliRunner().invoke(main, ["record", str(out), "--out", str(tmp_path / "s")])
    assert result.exit_code == 2 and "lacks its peephole weights" in result.output and "Traceback" not in result.output
