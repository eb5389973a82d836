"""Directions as units, and linear probes: ids, a store's derived series, probes scored on
held-out documents, a direction spread over many units found by the probe alone."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score
from test_interventions import HIDDEN, POSITIONS, STEPS, VOCAB, _chunked, _model, _random_state, reference_logits

from lstmviz import interventions as iv
from lstmviz.analysis.ablation import ablate, direction_vectors
from lstmviz.analysis.contexts import top_contexts
from lstmviz.analysis.distribution import histogram, value_stats
from lstmviz.analysis.probes import auroc, document_halves, probe_features, spearman
from lstmviz.cli.main import main
from lstmviz.core.errors import LstmvizError, NeuronError
from lstmviz.core.neurons import DirectionId, FeatureId, NeuronId, parse_unit, parse_units
from lstmviz.model.checkpoint import load_checkpoint
from lstmviz.recording.sources import store_documents
from lstmviz.store.open import open_store
from lstmviz.store.units import direction_vector, save_direction
from lstmviz.store.writer import write_store
from lstmviz.text.features import store_features

# -- unit ids -------------------------------------------------------------------------------------

LAYERS, KINDS = st.integers(1, 99), st.sampled_from("hcifgoz")
NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
UNITS = st.one_of(
    st.builds(NeuronId, LAYERS, KINDS, st.integers(0, 9999), st.booleans()),
    st.builds(DirectionId, LAYERS, KINDS, NAMES, st.booleans()),
    st.builds(FeatureId, LAYERS, KINDS, st.integers(0, 99999), st.booleans()),
)


@settings(max_examples=300, deadline=None)
@given(UNITS)
def test_every_unit_id_reads_back_as_written(unit):
    assert parse_unit(str(unit)) == unit
    assert parse_unit(f"  {unit} ") == unit
    assert str(unit).startswith(unit.series) and unit.hook_name.endswith(f"hook_{unit.kind}")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=30), st.from_regex(r"L-?\d{0,3}r?\.[a-z]{0,2}[.~#][\w\-]{0,6}", fullmatch=True)))
def test_the_unit_parser_raises_only_our_error(text):
    try:
        parse_unit(text)
        parse_units(text)
    except LstmvizError:
        pass


def test_unit_ids_name_their_series_and_hook_point():
    d, f = parse_unit("L2r.c~in_string"), parse_unit("L1.h#17")
    assert (d.layer, d.kind, d.name, d.reverse, d.series, d.hook_name) == (
        2,
        "c",
        "in_string",
        True,
        "L2r.c",
        "layers.1.reverse.hook_c",
    )
    assert (f.feature, f.series, f.hook_name) == (17, "L1.h", "layers.0.hook_h")
    assert parse_units("L2.c.90, L2.c~in_string,L2.c.90") == [NeuronId(2, "c", 90), DirectionId(2, "c", "in_string")]
    with pytest.raises(NeuronError, match="not a unit id"):
        parse_unit("L2.c~in string")


# -- a store with a feature planted over many units ------------------------------------------------

LINES = ['x = "a quoted string here"\n', "total = count + 1\n", "value = compute(total)\n", "s = 'short'\n"]


def _documents(n_docs: int = 20, lines: int = 24, seed: int = 0) -> tuple[str, list[tuple[str, int, int]]]:
    rng = np.random.default_rng(seed)
    text, docs = "", []
    for k in range(n_docs):
        body = "".join(LINES[i] for i in rng.integers(0, len(LINES), lines))
        docs.append((f"doc{k}.py", len(text), len(text) + len(body)))
        text += body
    return text, docs


def planted_store(path, spread: int = 16, strength: float = 0.9, units: int = 24, where=None, seed: int = 1):
    """A store whose series L1.c carries in_string spread evenly over ``spread`` units, each
    with noise of sd 1 (``strength`` each: no unit alone separates strings well, their sum
    does), only in the documents ``where`` picks (default all); L1.h is noise only."""
    text, docs = _documents()
    first = write_store(path / "scratch.store", text, docs, {(1, "c"): np.zeros((1, len(text)))})
    inside = store_features(first, names=["in_string"])["in_string"].astype(np.float64)
    if where is not None:
        inside = inside * where(first)
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(units, len(text)))
    c[:spread] += strength * inside
    h = rng.normal(size=(units, len(text)))
    return write_store(path / "planted.store", text, docs, {(1, "h"): h, (1, "c"): c}, vocab=sorted(set(text)))


def test_a_direction_spread_over_many_units_is_found_by_the_probe_and_no_single_unit(tmp_path):
    store = planted_store(tmp_path)
    report = probe_features(store, ["in_string"])
    found = report.features["in_string"]
    by_series = {p.series: p for p in found.probes}
    train, held_out = document_halves(store)
    labels = store_features(store, names=["in_string"])["in_string"][held_out]
    single = [roc_auc_score(labels, store.neuron(f"L1.c.{u}")[held_out]) for u in range(24)]
    assert max(single) < 0.8 and found.best_unit[1] < 0.8  # no unit alone
    assert by_series["L1.c"].score > 0.97 and by_series["L1.h"].score < 0.6  # the probe on the planted series
    assert 8 <= by_series["L1.c"].units_for_95 <= 24  # it takes many of the planted units
    # The saved direction is a unit whose values score as the probe did, on the held-out half.
    d = str(by_series["L1.c"].direction)
    assert d == "L1.c~in_string"
    assert roc_auc_score(labels, store.neuron(d)[held_out]) == pytest.approx(by_series["L1.c"].score, abs=2e-3)
    weights = direction_vector(store, d)
    assert np.abs(weights[:16]).min() > 3 * np.abs(weights[16:]).max()  # on the planted units, about evenly


def test_probe_scores_come_from_the_held_out_documents_only(tmp_path):
    """The feature is planted only in the training half: a score read on the training
    documents would be near 1; on the held-out ones the units know nothing of strings."""

    def training_half(store):
        return document_halves(store)[0].astype(np.float64)

    store = planted_store(tmp_path, strength=3.0, where=training_half)
    train, held_out = document_halves(store)
    assert not (train & held_out).any() and train.sum() + held_out.sum() == len(store)
    probe = {p.series: p for p in probe_features(store, ["in_string"]).features["in_string"].probes}["L1.c"]
    labels = store_features(store, names=["in_string"])["in_string"]
    on_training = roc_auc_score(labels[train], store.neuron("L1.c~in_string")[train])
    assert on_training > 0.99 and abs(probe.score - 0.5) < 0.08


def test_scores_match_scikit_learn_and_scipy():
    rng = np.random.default_rng(0)
    values = np.round(rng.normal(size=5000), 1)  # many ties
    labels = (values + rng.normal(size=5000) > 0.5).astype(int)
    target = rng.integers(0, 7, 5000).astype(float) + values
    from scipy.stats import rankdata

    assert auroc(values, labels) == pytest.approx(roc_auc_score(labels, values), abs=1e-12)
    assert spearman(values, rankdata(target)) == pytest.approx(spearmanr(values, target)[0], abs=1e-12)


# -- directions are read as neurons are ------------------------------------------------------------


def test_a_saved_direction_reads_as_a_neuron_does(tmp_path):
    store = planted_store(tmp_path)
    rng = np.random.default_rng(5)
    raw = rng.normal(size=24)
    save_direction(store, "L1.c~mine", raw)
    d = raw / np.linalg.norm(raw)
    block = np.asarray(store.series_block(1, "c"), dtype=np.float64)
    expected = d @ block  # independently: the series times the unit vector
    np.testing.assert_allclose(store.neuron("L1.c~mine", 100, 400), expected[100:400], atol=1e-4)
    both = store.window(["L1.c.3", "L1.c~mine"], 10, 20)
    np.testing.assert_allclose(both[0], block[3, 10:20], atol=1e-6)
    np.testing.assert_allclose(both[1], expected[10:20], atol=1e-4)
    whole = store.unit_series("L1.c~mine")
    assert whole.dtype == np.float16 and list((tmp_path / "planted.store").glob("series-L1.c~mine-*.npz"))
    np.testing.assert_allclose(whole, expected, atol=2e-3, rtol=1e-3)
    stats = value_stats(store, "L1.c~mine")
    assert stats.median == pytest.approx(np.median(expected), abs=0.01)
    assert histogram(store, "L1.c~mine")["counts"].sum() == len(store)
    top = top_contexts(store, "L1.c~mine", k=3, width=5)["high"][0]
    assert top.value == pytest.approx(float(whole.max()), abs=1e-3)
    # Saved again with new weights: the kept series follows.
    save_direction(store, "L1.c~mine", -raw)
    np.testing.assert_allclose(store.unit_series("L1.c~mine"), -expected, atol=2e-3, rtol=1e-3)


def test_a_missing_or_misplaced_direction_is_one_sentence(tmp_path):
    store = planted_store(tmp_path)
    with pytest.raises(NeuronError, match="No direction L1.c~nothing in this store; lstmviz probe"):
        store.neuron("L1.c~nothing", 0, 10)
    with pytest.raises(NeuronError, match="no series L3.c"):
        store.neuron("L3.c~in_string", 0, 10)
    with pytest.raises(NeuronError, match="24 finite numbers"):
        save_direction(store, "L1.c~short", np.ones(3))
    with pytest.raises(NeuronError, match="No dictionary of L1.c in this store; lstmviz dictionary"):
        store.neuron("L1.c#3", 0, 10)  # a dictionary feature reads only where a dictionary is kept


# -- the command ------------------------------------------------------------------------------------


def test_the_probe_command_prints_the_table_as_json(tmp_path):
    planted_store(tmp_path)
    result = CliRunner().invoke(main, ["probe", str(tmp_path / "planted.store"), "--features", "in_string", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)["features"]["in_string"]
    assert set(data["best_unit"]) == {"neuron", "score"} and data["best_unit"]["neuron"].startswith("L1.")
    assert [(p["layer"], p["kind"]) for p in data["probes"]] == [(1, "h"), (1, "c")]
    assert {"score", "units_for_95"} <= set(data["probes"][0])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--features", "in_strings"], "Unknown feature in_strings"),
        (["--kinds", "q"], "no series of kind q"),
        (["--layers", "3"], "no layer 3"),
        (["--layers", "two"], "--layers takes layer numbers"),
        (["--feature", "bad name=x"], "--feature takes NAME=REGEX"),
    ],
)
def test_bad_probe_input_is_one_sentence_and_exit_2(tmp_path, args, message):
    planted_store(tmp_path)
    result = CliRunner().invoke(main, ["probe", str(tmp_path / "planted.store"), *args])
    assert result.exit_code == 2 and message in result.output and result.output.count("\n") == 1


# -- directions in the interventions ---------------------------------------------------------------


@pytest.mark.parametrize("how", ["zero", "clamp", "add"])
@pytest.mark.parametrize("kind", ["h", "c"])
@pytest.mark.parametrize("layer", [0, 1])
@pytest.mark.parametrize("chunk", [1, 7, STEPS])
def test_a_direction_edited_through_the_hooks_equals_a_step_loop(how, kind, layer, chunk):
    """Projecting out (zero), clamping the projection, and steering, through the exact
    hooks, against PyTorch's own cells stepped by hand with the edit done by hand."""
    model = _model("lstm", layers=2)
    ids, state = torch.randint(0, VOCAB, (3, STEPS)), _random_state(model, 3)
    d = torch.randn(HIDDEN, generator=torch.Generator().manual_seed(7))
    d = d / d.norm()
    by_hand = {
        "zero": lambda v: v - (v @ d)[:, None] * d,
        "clamp": lambda v: v + (1.5 - v @ d)[:, None] * d,
        "add": lambda v: v + 0.7 * d,
    }[how]
    hooks = {
        "zero": iv.project_out(f"L{layer + 1}.{kind}~x", d * 3, positions=POSITIONS),  # any length: made unit
        "clamp": iv.clamp_along(f"L{layer + 1}.{kind}~x", d, 1.5, positions=POSITIONS),
        "add": iv.steer(f"L{layer + 1}.{kind}~x", d, 0.7, positions=POSITIONS),
    }[how]
    with torch.no_grad():
        expected = reference_logits(model, ids, state, {(layer, kind): lambda t, v: by_hand(v) if t in POSITIONS else v})
        plain = model(ids, state)[0]
    got = _chunked(model, ids, state, hooks, chunk)
    torch.testing.assert_close(got, expected, atol=2e-5, rtol=0)
    assert not torch.allclose(got, plain, atol=1e-3)  # the edit did change the run


def _probed_copy(tiny_store, tmp_path):
    """A copy of the tiny store (one document: too few to probe) with a direction saved in
    it, as lstmviz probe saves one (kept in the copy, not the shared store)."""
    copy = tmp_path / "tiny.store"
    shutil.copytree(tiny_store.path, copy)
    store = open_store(copy)
    save_direction(store, "L1.c~in_string", np.random.default_rng(3).normal(size=24))
    return store


def test_ablating_a_direction_loses_what_a_run_with_it_projected_out_loses(tiny_checkpoint, tiny_store, tmp_path):
    ckpt = load_checkpoint(tiny_checkpoint)
    store = _probed_copy(tiny_store, tmp_path)
    vectors = direction_vectors(store, ckpt, [DirectionId(1, "c", "in_string")])
    docs = store_documents(store)[:3]
    result = ablate(ckpt, docs, "L1.c~in_string", "zero", controls=3, lanes=2, vectors=vectors)
    # Independently: each document alone from a zero state, the direction projected out by hand-made hooks.
    expected = []
    for doc in docs:
        ids = torch.tensor([ckpt.vocab.encode(doc.text)])
        with torch.no_grad():
            logits, _ = ckpt.model.forward_instrumented(
                ids, hooks=iv.project_out("L1.c~in_string", vectors[DirectionId(1, "c", "in_string")])
            )
        logp = torch.log_softmax(logits[0, :-1], -1).gather(1, ids[0, 1:, None])[:, 0].numpy()
        expected.append(np.concatenate([logp, [np.nan]]))
    np.testing.assert_allclose(result.ablated_logp[0], np.concatenate(expected), atol=1e-4)
    data = result.to_json()
    assert data["neurons"] == ["L1.c~in_string"] and data["control"]["neurons"][2] == ["L1.c~random3"]
    assert data["control"]["sets"] == 3 and "in_string" in data["by_feature"]


def test_lstmviz_ablate_takes_a_direction_from_a_store(tiny_checkpoint, tiny_store, tmp_path):
    store = _probed_copy(tiny_store, tmp_path)
    text = tmp_path / "text"
    text.mkdir()
    (text / "a.py").write_text('x = "a string"\ny = 2\n' * 20)
    args = ["ablate", str(tiny_checkpoint), str(text), "--neurons", "L1.c~in_string", "--controls", "2", "--json"]
    result = CliRunner().invoke(main, [*args, "--store", str(store.path)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["neurons"] == ["L1.c~in_string"] and data["by_feature"]["in_string"]["chars_inside"] > 0
    for extra, message in [
        ([], "L1.c~in_string is a direction: give --store"),
        (["--store", str(tmp_path / "nowhere")], "No activation store"),
    ]:
        refused = CliRunner().invoke(main, [*args, *extra])
        assert refused.exit_code == 2 and message in refused.output
    mixed = CliRunner().invoke(main, ["ablate", str(tiny_checkpoint), "--neurons", "L1.c.1,L1.c~in_string"])
    assert mixed.exit_code == 2 and "not a mix" in mixed.output


def test_a_direction_is_exported_in_a_heatmap_beside_a_neuron(tmp_path):
    store = planted_store(tmp_path)
    save_direction(store, "L1.c~mine", np.ones(24))
    out = tmp_path / "rows.html"
    args = ["export", str(store.path), "--neurons", "L1.c.0,L1.c~mine", "--range", "0:120", "--out", str(out)]
    assert CliRunner().invoke(main, args).exit_code == 0 and "L1.c~mine" in out.read_text()
    refused = CliRunner().invoke(main, [*args[:3], "L1.c~other", *args[4:]])
    assert refused.exit_code == 2 and "No direction L1.c~other in this store" in refused.output


def test_a_direction_is_shown_in_a_notebook_as_a_neuron_is(tmp_path):
    import lstmviz

    store = planted_store(tmp_path)
    save_direction(store, "L1.c~mine", np.arange(24.0))
    shown = lstmviz.show(store.path, "L1.c~mine", range="10:60")
    np.testing.assert_allclose(shown.values, store.neuron("L1.c~mine", 10, 60))
    assert shown.text == store.text(10, 60)


def test_sampling_with_a_direction_goes_through_the_exact_hooks(tiny_checkpoint):
    """Projecting out a unit's own axis is zero-ablating that unit: the same text, the same
    probabilities; steering by 0 changes nothing."""
    from lstmviz.model.sampling import sample

    ckpt = load_checkpoint(tiny_checkpoint)
    axis = np.zeros(24)
    axis[5] = 1.0
    removed = sample(ckpt, "x = ", 80, seed=3, hooks=iv.project_out("L1.c~axis5", axis))
    zeroed = sample(ckpt, "x = ", 80, seed=3, ablate=["L1.c.5"])
    assert removed.text == zeroed.text
    np.testing.assert_allclose(removed.top_probs, zeroed.top_probs, atol=1e-6)
    plain, unmoved = sample(ckpt, "x = ", 80, seed=3), sample(ckpt, "x = ", 80, seed=3, hooks=iv.steer("L1.c~axis5", axis, 0))
    assert unmoved.text == plain.text


def test_lstmviz_sample_steers_a_direction_from_a_store(tiny_checkpoint, tiny_store, tmp_path):
    store = _probed_copy(tiny_store, tmp_path)
    args = ["sample", str(tiny_checkpoint), "--length", "30", "--json"]
    steered = CliRunner().invoke(main, [*args, "--steer", "L1.c~in_string=4", "--store", str(store.path)])
    assert steered.exit_code == 0, steered.output
    assert len(json.loads(steered.output)["text"]) == 30
    for extra, message in [
        (["--steer", "L1.c~in_string=4"], "give --store"),
        (["--project-out", "L1.c.3", "--store", str(store.path)], "--steer takes directions"),
        (["--steer", "L1.c~in_string=much", "--store", str(store.path)], "must be a number"),
    ]:
        refused = CliRunner().invoke(main, [*args, *extra])
        assert refused.exit_code == 2 and message in refused.output, refused.output
