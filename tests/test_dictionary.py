"""Sparse dictionaries: a hand-built dictionary's features, reconstruction, variance explained
and spliced bits per character equal an independent computation (numpy's top-k, PyTorch's
cell modules stepped by hand); the hand-written gradients equal autograd's; feature edits
through the hooks equal an independent step loop; a saved dictionary reloads (and in SAELens
where it is installed); bad input is one sentence and exit status 2."""

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from test_ablation import _reference_logp
from test_interventions import _model, _random_state, reference_logits

from lstmviz import interventions as iv
from lstmviz.analysis.dictionary import dictionary as train_and_report
from lstmviz.analysis.dictionary_evaluation import dead_and_dense, spliced_bits, variance_explained
from lstmviz.analysis.dictionary_features import feature_codes, feature_values
from lstmviz.analysis.dictionary_training import AUX_COEFFICIENT, _Weights, held_out, loss_and_grads
from lstmviz.cli.main import main
from lstmviz.core.errors import LstmvizError, StoreError
from lstmviz.model.checkpoint import load_checkpoint
from lstmviz.model.sparse_dictionary import SparseDictionary
from lstmviz.recording.sources import store_documents
from lstmviz.store.dictionary_format import load_dictionary, save_dictionary
from lstmviz.text.lanes import limit_chars


def _random_dictionary(units, size, k, series="L1.c", seed=0) -> SparseDictionary:
    g = torch.Generator().manual_seed(seed)
    W_dec = torch.randn(size, units, generator=g)
    return SparseDictionary(
        torch.randn(units, size, generator=g),
        torch.randn(size, generator=g) * 0.1,
        W_dec,
        torch.randn(units, generator=g),
        k,
        series,
    )


def _exact_dictionary(units, series="L1.c") -> SparseDictionary:
    """2 x units features, +e_u and -e_u: with k = units, ReLU(x) - ReLU(-x) rebuilds x exactly."""
    eye = torch.eye(units)
    return SparseDictionary(
        torch.cat([eye, -eye], 1), torch.zeros(2 * units), torch.cat([eye, -eye]), torch.zeros(units), units, series
    )


def numpy_features(d: SparseDictionary, x: np.ndarray) -> np.ndarray:
    """f(x) by hand in float64: the k largest pre-activations of each row, through ReLU."""
    pre = (x - d.b_dec.double().numpy()) @ d.W_enc.double().numpy() + d.b_enc.double().numpy()
    out = np.zeros_like(pre)
    top = np.argsort(-pre, axis=-1)[..., : d.k]
    np.put_along_axis(out, top, np.maximum(np.take_along_axis(pre, top, -1), 0), -1)
    return out


def numpy_reconstruction(d: SparseDictionary, x: np.ndarray) -> np.ndarray:
    return numpy_features(d, x) @ d.W_dec.double().numpy() + d.b_dec.double().numpy()


def test_features_and_reconstruction_equal_a_computation_by_hand():
    d = _random_dictionary(units=10, size=40, k=5)
    x = np.random.default_rng(1).normal(size=(7, 3, 10))
    f = d.encode(torch.from_numpy(x).float())
    np.testing.assert_allclose(f.numpy(), numpy_features(d, x), atol=1e-4)
    assert ((f > 0).sum(-1) <= 5).all()
    expected = numpy_reconstruction(d, x)
    np.testing.assert_allclose(d.decode(f).numpy(), expected, atol=1e-4)
    np.testing.assert_allclose(d.reconstruct(torch.from_numpy(x).float()).numpy(), expected, atol=1e-4)


def test_hand_written_gradients_equal_autograd():
    torch.manual_seed(0)
    batch, units, size, k = 50, 12, 40, 4
    w = _Weights(torch.randn(units, size), torch.randn(size) * 0.1, torch.randn(size, units), torch.randn(units) * 0.1)
    x = torch.randn(batch, units)
    dead = torch.zeros(size, dtype=torch.bool)
    dead[::3] = True
    mse, aux, _ = loss_and_grads(w, x, k, dead)

    W_enc, b_enc, W_dec, b_dec = (t.clone().requires_grad_() for t in w.tensors())
    pre = (x - b_dec) @ W_enc + b_enc
    values, indices = pre.topk(k, -1)
    recon = torch.zeros(batch, size).scatter(1, indices, values.relu()) @ W_dec + b_dec
    loss = ((recon - x) ** 2).sum(-1).mean()
    k_aux = min(units // 2, int(dead.sum()))
    aux_values, aux_indices = pre.masked_fill(~dead, -math.inf).topk(k_aux, -1)
    aux_recon = torch.zeros(batch, size).scatter(1, aux_indices, aux_values) @ W_dec
    scale = AUX_COEFFICIENT * min(int(dead.sum()) / (units // 2), 1)
    aux_loss = scale * ((aux_recon - (x - recon).detach()) ** 2).sum(-1).mean()
    (loss + aux_loss).backward()
    assert mse == pytest.approx(loss.item(), rel=1e-5) and aux == pytest.approx(aux_loss.item(), rel=1e-5)
    for mine, theirs in zip(w.tensors(), (W_enc, b_enc, W_dec, b_dec), strict=True):
        torch.testing.assert_close(mine.grad, theirs.grad, atol=1e-4 * float(theirs.grad.abs().max()), rtol=0)


def _series(store, layer=1, kind="c") -> np.ndarray:
    return np.asarray(store.series_block(layer, kind), dtype=np.float64).T  # [chars, units]


def test_an_exact_dictionary_explains_everything_and_changes_no_prediction(tiny_store, tiny_checkpoint):
    d = _exact_dictionary(24)
    assert variance_explained(tiny_store, d) == pytest.approx(1.0, abs=1e-6)
    bits = spliced_bits(load_checkpoint(tiny_checkpoint), tiny_store, d, max_chars=800)
    assert bits["spliced_bpc"] == pytest.approx(bits["clean_bpc"], abs=1e-5)
    assert bits["zero_ablated_bpc"] > bits["clean_bpc"] + 0.05


def test_variance_explained_dead_and_dense_equal_numpy(tiny_store):
    d = _random_dictionary(units=24, size=60, k=6)
    x = _series(tiny_store)[held_out(len(tiny_store))]
    error = ((numpy_reconstruction(d, x) - x) ** 2).sum()
    assert variance_explained(tiny_store, d) == pytest.approx(1 - error / ((x - x.mean(0)) ** 2).sum(), rel=1e-5)
    share = (numpy_features(d, x) > 0).mean(0)
    assert dead_and_dense(feature_codes(tiny_store, d)) == ((share == 0).sum(), (share > 0.1).sum())


def test_feature_values_read_like_a_neuron(tiny_store):
    d = _random_dictionary(units=24, size=60, k=6)
    codes = feature_codes(tiny_store, d)
    expected = numpy_features(d, _series(tiny_store)[100:400])
    for feature in (int(np.argmax(expected.sum(0))), 59):
        np.testing.assert_allclose(feature_values(tiny_store, d, feature, 100, 400), expected[:, feature], atol=2e-4)
        np.testing.assert_allclose(codes.dense(feature, feature + 1)[0, 100:400], expected[:, feature], atol=2e-2, rtol=2e-3)
    with pytest.raises(LstmvizError, match="No feature 60"):
        feature_values(tiny_store, d, 60)


def _by_hand(d: SparseDictionary, edit):
    """``replace`` for reference_logits: c rebuilt (or edited) in numpy from the c the cell computed."""

    def fn(t, value):
        return torch.from_numpy(edit(value.double().numpy())).float()

    return fn


def test_spliced_bits_equal_a_step_by_step_reference(tiny_store, tiny_checkpoint):
    ckpt = load_checkpoint(tiny_checkpoint)
    d = _random_dictionary(units=24, size=96, k=12, seed=3)
    d = SparseDictionary(d.W_enc * 0.3, d.b_enc, d.W_dec * 0.1, d.b_dec * 0.1, d.k, d.series)  # keeps the state bounded
    docs = limit_chars(store_documents(tiny_store), 900)
    logp = _reference_logp(ckpt, docs, {(0, "c"): _by_hand(d, lambda c: numpy_reconstruction(d, c))})
    expected = -np.nanmean(logp) / math.log(2)
    assert spliced_bits(ckpt, tiny_store, d, max_chars=900)["spliced_bpc"] == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_feature_edits_through_the_hooks_equal_an_independent_step_loop(cell):
    model = _model(cell, layers=2)
    kind = "c" if cell == "lstm" else "h"
    d = _random_dictionary(units=16, size=48, k=6, series=f"L2.{kind}", seed=5)
    d = SparseDictionary(d.W_enc, d.b_enc, d.W_dec * 0.2, d.b_dec, d.k, d.series)  # edits that keep the state bounded
    ids = torch.randint(0, 30, (3, 23))
    state = _random_state(model, 3)
    W_dec = d.W_dec.double().numpy()
    (_, _), cache = model.run_with_cache(ids, [f"layers.1.hook_{kind}"], state=state)
    a, b = np.argsort(-numpy_features(d, cache[f"layers.1.hook_{kind}"].double().numpy()).sum((0, 1)))[:2]  # the most active

    def ablated(x):  # x - f_a(x) W_dec[a] - f_b(x) W_dec[b]
        f = numpy_features(d, x)
        return x - f[:, [a]] * W_dec[a] - f[:, [b]] * W_dec[b]

    def held(x):  # feature a set to 2.5: x + (2.5 - f_a(x)) W_dec[a]
        return x + (2.5 - numpy_features(d, x)[:, [a]]) * W_dec[a]

    for hooks, edit in ((iv.ablate_features(d, [a, b]), ablated), (iv.edit_features(d, {int(a): 2.5}), held)):
        with torch.no_grad():
            expected = reference_logits(model, ids, state, {(1, kind): _by_hand(d, edit)})
            got = model.forward_instrumented(ids, state, hooks=hooks)[0]
            plain = model(ids, state)[0]
        torch.testing.assert_close(got, expected, atol=2e-4, rtol=1e-4)  # a held feature can grow a GRU's h far past 1
        assert not torch.allclose(got, plain, atol=1e-3), "the edit changed nothing"


def test_a_saved_dictionary_reloads_and_belongs_to_its_store(tiny_store, tmp_path):
    d = _random_dictionary(units=24, size=60, k=6)
    path = save_dictionary(d, tmp_path / "d", tiny_store, {"steps": 3})
    again = load_dictionary(path, tiny_store)
    for name in ("W_enc", "b_enc", "W_dec", "b_dec"):
        assert torch.equal(getattr(again, name), getattr(d, name))
    assert (again.k, again.series) == (6, "L1.c")
    cfg = json.loads((path / "cfg.json").read_text())
    assert (cfg["architecture"], cfg["d_in"], cfg["d_sae"], cfg["metadata"]["hook_name"]) == ("topk", 24, 60, "layers.0.hook_c")

    other = dict(cfg, metadata={**cfg["metadata"], "lstmviz_checkpoint_hash": "0" * 64})
    (path / "cfg.json").write_text(json.dumps(other))
    with pytest.raises(StoreError, match="another model"):
        load_dictionary(path, tiny_store)


def test_a_saved_dictionary_loads_in_sae_lens(tiny_store, tmp_path):
    sae_lens = pytest.importorskip("sae_lens")
    d = _random_dictionary(units=24, size=60, k=6)
    path = save_dictionary(d, tmp_path / "d", tiny_store)
    sae = sae_lens.SAE.load_from_disk(str(path))
    assert type(sae).__name__ == "TopKSAE"
    x = torch.randn(9, 24)
    with torch.no_grad():
        torch.testing.assert_close(sae.encode(x), d.encode(x), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(sae(x), d.reconstruct(x), atol=1e-5, rtol=1e-5)


def test_the_command_trains_saves_and_reports(tiny_store, tmp_path):
    out = tmp_path / "dict"
    args = ["dictionary", str(tiny_store.path), "--layer", "1", "--kind", "c", "--size", "2x", "--k", "4"]
    result = CliRunner().invoke(
        main, [*args, "--steps", "40", "--batch", "256", "--max-chars", "600", "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    assert (report["layer"], report["kind"], report["size"]) == (1, "c", 48)
    assert 0.3 < report["variance_explained"] <= 1 and 0 <= report["dead"] <= 48
    assert report["clean_bpc"] < report["zero_ablated_bpc"]
    best = report["best_by_feature"]["in_string"]
    assert best["feature"].startswith("L1.c#") and 0.5 <= best["score"] <= 1 and best["best_neuron"].startswith("L1.c.")
    assert load_dictionary(out, tiny_store).size == 48


def test_the_api_saves_beside_the_store(tiny_store):
    report = train_and_report(tiny_store, 2, "h", size=30, k=3, steps=5, batch=64, splice_chars=300, progress=False)
    assert report.path.endswith("dictionaries/L2.h-30-k3") and load_dictionary(report.path, tiny_store).size == 30


@pytest.mark.parametrize(
    "options, message",
    [
        (["--layer", "3", "--kind", "c"], "No series L3.c in this store"),
        (["--layer", "0", "--kind", "c"], "--layer counts from 1"),
        (["--layer", "1", "--kind", "c", "--size", "100x"], "--size (as a multiple of the units) must be between 1 and 64"),
        (["--layer", "1", "--kind", "c", "--size", "eight"], "--size takes a multiple of the units"),
        (["--layer", "1", "--kind", "c", "--k", "48", "--size", "2x"], "--k must be between 1 and 47"),
        (["--layer", "1", "--kind", "c", "--k", "0"], "--k must be at least 1"),
        (["--layer", "1", "--kind", "c", "--steps", "0"], "--steps must be between 1"),
    ],
)
def test_bad_input_is_one_sentence(tiny_store, options, message):
    result = CliRunner().invoke(main, ["dictionary", str(tiny_store.path), *options])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_a_feature_of_a_dictionary_kept_in_the_store_is_a_unit(tiny_store):
    """``L1.c#5`` reads as a neuron reads (a window, the whole series), its values f_5(x) of
    each character's c as numpy computes them; a feature the dictionary lacks, or a series
    with no dictionary, is one sentence."""
    import shutil

    from lstmviz.core.errors import NeuronError
    from lstmviz.store.dictionary_format import dictionary_path
    from lstmviz.store.units import drop_derived

    d = _random_dictionary(units=24, size=60, k=6)
    path = save_dictionary(d, dictionary_path(tiny_store, "L1.c", 60, 6), tiny_store)
    try:
        c = np.asarray(tiny_store.series_block(1, "c"), dtype=np.float64)  # [units, chars]
        expected = numpy_features(d, c.T)[:, 5]
        np.testing.assert_allclose(tiny_store.neuron("L1.c#5", 10, 50), expected[10:50], atol=1e-4)
        np.testing.assert_allclose(tiny_store.unit_series("L1.c#5").astype(np.float64), expected, rtol=2e-3, atol=2e-3)
        with pytest.raises(NeuronError, match="features 0-59"):
            tiny_store.neuron("L1.c#60", 0, 5)
        with pytest.raises(NeuronError, match="No dictionary of L1.h"):
            tiny_store.neuron("L1.h#1", 0, 5)
    finally:
        shutil.rmtree(path.parent)
        drop_derived(tiny_store, "L1.c#5")
