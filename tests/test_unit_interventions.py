"""Dictionary features ablated and held, teacher-forced (``lstmviz ablate --neurons L1.c#17``) and
while the model writes (``lstmviz sample --ablate L1.c#17`` / ``--clamp L1.c#17=V``), through
``interventions.edit_features``: checked against PyTorch's cell modules stepped by hand, and
against the neuron a hand-built dictionary's two features of one unit add up to. And the
random directions beside a probe direction: their projections vary over the store as much
as the direction's."""

import json
import math
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from test_ablation import _reference_logp
from test_dictionary import _by_hand, _exact_dictionary, _random_dictionary, numpy_features

from lstmviz.analysis.ablation import ablate
from lstmviz.cli.main import main
from lstmviz.core.errors import LstmvizError
from lstmviz.model.checkpoint import load_checkpoint
from lstmviz.model.sparse_dictionary import SparseDictionary
from lstmviz.recording.sources import store_documents
from lstmviz.store.dictionary_format import dictionary_path, save_dictionary
from lstmviz.store.open import open_store
from lstmviz.text.lanes import limit_chars

UNIT = 5  # of 24: the exact dictionary's features 5 (+e_5) and 29 (-e_5) add up to L1.c.5


def _bounded_dictionary() -> SparseDictionary:
    d = _random_dictionary(units=24, size=72, k=8, seed=4)
    return SparseDictionary(d.W_enc * 0.3, d.b_enc, d.W_dec * 0.1, d.b_dec * 0.1, d.k, d.series)  # the state stays bounded


def _removed(d: SparseDictionary, features):
    """x - sum_k f_k(x) W_dec[k], in numpy, for the reference step loop."""
    W_dec = d.W_dec.double().numpy()
    return lambda x: x - numpy_features(d, x)[:, features] @ W_dec[features]


@pytest.fixture
def kept(tiny_store, tmp_path):
    """A copy of the tiny store keeping a dictionary of L1.c (saved as lstmviz dictionary saves one)."""

    def keep(d: SparseDictionary):
        store = open_store(shutil.copytree(tiny_store.path, tmp_path / "tiny.store", dirs_exist_ok=True))
        save_dictionary(d, dictionary_path(store, d.series, d.size, d.k), store)
        return store

    return keep


def test_ablated_features_lose_what_a_step_loop_with_them_removed_loses(tiny_checkpoint, tiny_store):
    ckpt = load_checkpoint(tiny_checkpoint)
    d = _bounded_dictionary()
    docs = limit_chars(store_documents(tiny_store), 700)
    c = np.asarray(tiny_store.series_block(1, "c"), dtype=np.float64).T
    busiest = [int(k) for k in np.argsort(-(numpy_features(d, c) > 0).sum(0))[:2]]
    result = ablate(ckpt, docs, [f"L1.c#{k}" for k in busiest], "zero", controls=2, seed=1, lanes=2, chunk_len=7, dictionary=d)
    np.testing.assert_allclose(result.base_logp, _reference_logp(ckpt, docs, {}), atol=1e-5)
    for row, features in enumerate([result.neurons, *result.control_sets]):
        chosen = [f.feature for f in features]
        expected = _reference_logp(ckpt, docs, {(0, "c"): _by_hand(d, _removed(d, chosen))})
        np.testing.assert_allclose(result.ablated_logp[row], expected, atol=5e-5)
    data = result.to_json()
    assert data["neurons"] == [f"L1.c#{k}" for k in busiest]
    assert all(len(s) == 2 and s[0].startswith("L1.c#") for s in data["control"]["neurons"])
    assert data["bits_lost"] == pytest.approx(np.nanmean(result.bits_lost()[0]), abs=1e-5)
    assert abs(data["bits_lost"]) > 1e-4  # removing the busiest features changed the predictions


def test_a_feature_held_at_a_value_equals_a_step_loop(tiny_checkpoint, tiny_store):
    ckpt = load_checkpoint(tiny_checkpoint)
    d = _bounded_dictionary()
    docs = limit_chars(store_documents(tiny_store), 400)
    result = ablate(ckpt, docs, "L1.c#3", "clamp=1.5", controls=1, lanes=3, dictionary=d)
    W_dec = d.W_dec.double().numpy()

    def held(x):  # x + (1.5 - f_3(x)) W_dec[3]
        return x + (1.5 - numpy_features(d, x)[:, [3]]) * W_dec[3]

    expected = _reference_logp(ckpt, docs, {(0, "c"): _by_hand(d, held)})
    np.testing.assert_allclose(result.ablated_logp[0], expected, atol=5e-5)


def test_lstmviz_ablate_takes_a_feature_from_the_store_that_keeps_it(tiny_checkpoint, kept, tmp_path):
    """With the exact dictionary, removing features 5 and 29 removes L1.c.5: the same bits as
    zeroing that neuron."""
    store = kept(_exact_dictionary(24))
    text = tmp_path / "text"
    text.mkdir()
    (text / "a.py").write_text('x = "a string"  # and a comment\ny = 2\n' * 20)
    args = ["ablate", str(tiny_checkpoint), str(text), "--controls", "2", "--json"]
    result = CliRunner().invoke(main, [*args, "--neurons", f"L1.c#{UNIT},L1.c#{UNIT + 24}", "--store", str(store.path)])
    assert result.exit_code == 0, result.output
    features = json.loads(result.output)
    neuron = json.loads(CliRunner().invoke(main, [*args, "--neurons", f"L1.c.{UNIT}"]).output)
    assert features["neurons"] == [f"L1.c#{UNIT}", f"L1.c#{UNIT + 24}"]
    assert features["ablated_bpc"] == pytest.approx(neuron["ablated_bpc"], abs=2e-5)
    assert features["by_feature"]["in_string"]["inside_bits"] == pytest.approx(
        neuron["by_feature"]["in_string"]["inside_bits"], abs=2e-5
    )


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--neurons", "L1.c#5"], "L1.c#5 is a dictionary feature: give --store"),
        (["--neurons", "L1.c#5", "--store", "STORE", "--mode", "mean"], "with --mode zero (removed) or clamp=VALUE"),
        (["--neurons", "L1.c#48", "--store", "STORE"], "No feature L1.c#48: the dictionary of L1.c has features 0-47"),
        (["--neurons", "L2.c#1", "--store", "STORE"], "No dictionary of L2.c in this store"),
        (["--neurons", "L1.c#1,L1.c.2", "--store", "STORE"], "not a mix"),
        (["--neurons", "L1.c#1,L2.c#2", "--store", "STORE"], "one series' dictionary at a time"),
    ],
)
def test_a_bad_feature_ablation_is_one_sentence_and_exit_2(tiny_checkpoint, kept, extra, message):
    store = kept(_exact_dictionary(24))
    args = [str(store.path) if a == "STORE" else a for a in extra]
    result = CliRunner().invoke(main, ["ablate", str(tiny_checkpoint), "--max-chars", "300", "--controls", "1", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_lstmviz_sample_removes_and_holds_features_as_the_neuron_they_add_up_to(tiny_checkpoint, kept):
    """Removing both features of unit 5 is ablating L1.c.5; holding +e_5 at 2 and -e_5 at 0
    is clamping L1.c.5 at 2: the same text from the same seed."""
    store = kept(_exact_dictionary(24))
    args = ["sample", str(tiny_checkpoint), "--prime", "name = ", "--length", "60", "--seed", "3", "--json"]
    pairs = [
        (["--ablate", f"L1.c#{UNIT},L1.c#{UNIT + 24}"], ["--ablate", f"L1.c.{UNIT}"]),
        (["--clamp", f"L1.c#{UNIT}=2", "--clamp", f"L1.c#{UNIT + 24}=0"], ["--clamp", f"L1.c.{UNIT}=2"]),
    ]
    plain = json.loads(CliRunner().invoke(main, args).output)
    for features, neuron in pairs:
        got = CliRunner().invoke(main, [*args, *features, "--store", str(store.path)])
        assert got.exit_code == 0, got.output
        by_features, by_neuron = json.loads(got.output), json.loads(CliRunner().invoke(main, [*args, *neuron]).output)
        assert by_features["text"] == by_neuron["text"]
    assert by_features["text"] != plain["text"]  # clamping the cell changed what was written
    refused = CliRunner().invoke(main, [*args, "--ablate", "L1.c#5"])
    assert refused.exit_code == 2 and "give --store" in refused.output
    counted = CliRunner().invoke(main, [*args, "--ablate", "L1.c#5", "--line-lengths", "2", "--store", str(store.path)])
    assert counted.exit_code == 2 and "--line-lengths holds neurons only" in counted.output


def test_lstmviz_sample_steers_a_feature_by_its_decoder_row(tiny_checkpoint, kept):
    """Steering +e_5 by 2 adds 2 e_5 to L1.c, as steering the direction e_5 by 2 does; -e_5
    by 2 as the direction by -2 (the same text from the same seed). A bad strength, or
    --project-out of a feature, is one sentence."""
    from lstmviz.store.units import save_direction

    store = kept(_exact_dictionary(24))
    axis = np.zeros(24)
    axis[UNIT] = 1.0
    save_direction(store, "L1.c~axis", axis)
    args = ["sample", str(tiny_checkpoint), "--prime", "name = ", "--length", "60", "--seed", "3", "--json"]

    def text(*steers) -> str:
        done = CliRunner().invoke(main, [*args, *[a for s in steers for a in ("--steer", s)], "--store", str(store.path)])
        assert done.exit_code == 0, done.output
        return json.loads(done.output)["text"]

    assert text(f"L1.c#{UNIT}=2") == text("L1.c~axis=2") != text("L1.c~axis=0")
    assert text(f"L1.c#{UNIT + 24}=2") == text("L1.c~axis=-2")
    for extra, message in [
        (["--steer", f"L1.c#{UNIT}=lots"], "must be a number"),
        (["--steer", "L1.c#48=1"], "No feature L1.c#48: the dictionary of L1.c has features 0-47"),
        (["--project-out", f"L1.c#{UNIT}"], "--steer takes directions"),
    ]:
        refused = CliRunner().invoke(main, [*args, *extra, "--store", str(store.path)])
        assert refused.exit_code == 2 and message in refused.output, refused.output


def test_edits_of_several_groups_of_rows_each_follow_their_own(tiny_checkpoint):
    """A batch of two groups (an ablation's set and its control side by side): each group's
    rows equal the same edit run alone."""
    from lstmviz import interventions as iv

    model = load_checkpoint(tiny_checkpoint).model
    d = _bounded_dictionary()
    ids = torch.randint(0, 20, (2, 30))
    with torch.no_grad():
        both = model.forward_instrumented(ids.repeat(2, 1), hooks=iv.edit_features(d, [{1: 0.0, 4: 0.0}, {7: 2.0, 9: 0.0}]))[0]
        first = model.forward_instrumented(ids, hooks=iv.edit_features(d, {1: 0.0, 4: 0.0}))[0]
        second = model.forward_instrumented(ids, hooks=iv.edit_features(d, {7: 2.0, 9: 0.0}))[0]
    torch.testing.assert_close(both[:2], first, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(both[2:], second, atol=1e-5, rtol=1e-5)
    with pytest.raises(LstmvizError, match="as many features"):
        iv.edit_features(d, [{1: 0.0}, {2: 0.0, 3: 0.0}])
    assert math.isfinite(float(both.sum()))


def test_random_directions_vary_over_the_store_as_much_as_the_direction(tiny_store, tmp_path):
    """Each control's projection has the variance of the direction's over the store, computed
    here with numpy from the store's series; plain random unit vectors do not."""
    from lstmviz.analysis.ablation import control_directions, series_covariance
    from lstmviz.core.neurons import DirectionId

    store = open_store(shutil.copytree(tiny_store.path, tmp_path / "tiny.store"))
    c = np.asarray(store.series_block(1, "c"), dtype=np.float64)  # [units, chars]
    np.testing.assert_allclose(series_covariance(store, DirectionId(1, "c", "x")), np.cov(c, bias=True), atol=1e-5, rtol=1e-4)
    quiet = np.argsort(c.var(1))[:3]
    d = DirectionId(1, "c", "quiet")
    v = np.zeros(24)
    v[quiet] = [1.0, -1.0, 0.5]  # along three of the quietest cells, as a probe's direction leans
    v /= np.linalg.norm(v)
    covariances = {"L1.c": series_covariance(store, d)}
    sets, vectors, drawn = control_directions(24, [d], 5, seed=2, vectors={d: v}, covariances=covariances)
    wanted = np.var(v @ c)
    for (control,) in sets:
        u = vectors[control].astype(np.float64)
        assert np.linalg.norm(u) == pytest.approx(1, abs=1e-5)
        assert np.var(u @ c) == pytest.approx(wanted, rel=1e-3)
        assert abs(u @ v) < 0.95  # a direction of its own, not the probe's again
    assert len({tuple(np.round(vectors[s[0]], 4)) for s in sets}) == 5
    assert "same variance over the store" in drawn
    plain_sets, plain, plain_drawn = control_directions(24, [d], 5, seed=2)
    unmatched = [np.var(plain[s[0]].astype(np.float64) @ c) for s in plain_sets]
    assert not any(v == pytest.approx(wanted, rel=1e-2) for v in unmatched)  # uniform draws do not hit it by chance
    assert "not matched in variance" in plain_drawn


def test_lstmviz_ablate_says_how_the_random_directions_were_drawn(tiny_checkpoint, tiny_store, tmp_path):
    from lstmviz.store.units import save_direction

    store = open_store(shutil.copytree(tiny_store.path, tmp_path / "tiny.store"))
    save_direction(store, "L1.c~in_string", np.random.default_rng(3).normal(size=24))
    args = ["ablate", str(tiny_checkpoint), "--neurons", "L1.c~in_string", "--store", str(store.path), "--controls", "2"]
    shown = CliRunner().invoke(main, [*args, "--max-chars", "400"])
    assert shown.exit_code == 0, shown.output
    assert "controls: random directions of the same series, each drawn so its projection has the same variance" in shown.output
    data = json.loads(CliRunner().invoke(main, [*args, "--max-chars", "400", "--json"]).output)
    assert "same variance over the store" in data["control"]["drawn"]
