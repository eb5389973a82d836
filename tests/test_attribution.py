"""Attribution through time and why a prediction was made, each number checked against an
independent computation: a planted RNN worked by hand (numpy), and the model's own
instrumented forward run once per changed text."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from lstmviz.analysis.attribution.attribute import Located, attribute_located, locate, model_and_documents, target_of
from lstmviz.analysis.attribution.prediction import explain_prediction
from lstmviz.cli.main import main
from lstmviz.model.checkpoint import save_checkpoint
from lstmviz.model.rnn import CELLS, CharRNN, ModelConfig
from lstmviz.text.corpus import Document, Vocab

VOCAB = Vocab("abcd '\n")
TEXT = "ab'cd a'bc\nda 'b"


def _located(text: str = TEXT) -> Located:
    return locate([Document("t", text)], len(text) - 1, VOCAB)


# -- a planted RNN: h0_t = tanh(e_t[0]); h1_t = tanh(e_t[1] + 0.5 h1_{t-1}) ----------------------
def _planted() -> tuple[CharRNN, np.ndarray]:
    model = CharRNN(ModelConfig(vocab_size=len(VOCAB), cell="rnn", num_layers=1, hidden_size=2, embed_dim=2)).eval()
    embed = np.random.default_rng(0).uniform(-1.5, 1.5, (len(VOCAB), 2)).astype(np.float32)
    with torch.no_grad():
        model.embedding.weight.copy_(torch.from_numpy(embed))
        model.rnn.weight_ih_l0.copy_(torch.eye(2))
        model.rnn.weight_hh_l0.copy_(torch.tensor([[0.0, 0.0], [0.0, 0.5]]))
        model.rnn.bias_ih_l0.zero_()
        model.rnn.bias_hh_l0.zero_()
    return model, embed


def _unit1(e: np.ndarray) -> float:
    """h1 at the last step of inputs e [time, 2], by hand."""
    h = 0.0
    for x in e[:, 1]:
        h = np.tanh(x + 0.5 * h)
    return float(h)


def _attribute(model, target: str, method: str, at=None, **options):
    vocab = VOCAB
    return attribute_located(model, vocab, at or _located(), target_of(model, vocab, target), method, **options)


def test_a_unit_of_the_current_character_only_is_all_that_character():
    model, embed = _planted()
    x = embed[VOCAB.encode(TEXT)[-1], 0]
    expected_last = {"ig": np.tanh(x), "grad": x * (1 - np.tanh(x) ** 2), "occlusion": np.tanh(x)}
    for method, last in expected_last.items():
        result = _attribute(model, "L1.h.0", method)
        tolerance = 1e-4 if method == "ig" else 1e-5  # ig: the quadrature's error, 1e-5 here
        assert result.contributions[-1] == pytest.approx(last, abs=tolerance), method
        assert np.abs(result.contributions[:-1]).max() < 1e-6, method
        assert result.value == pytest.approx(np.tanh(x), abs=1e-6)
        assert result.baseline_value == pytest.approx(0.0, abs=1e-7)


def test_a_recurrent_unit_matches_the_hand_computed_contributions():
    model, embed = _planted()
    e = embed[VOCAB.encode(TEXT)]
    # occlusion: the true change when character s reads as the zero embedding
    occluded = []
    for s in range(len(e)):
        changed = e.copy()
        changed[s] = 0
        occluded.append(_unit1(e) - _unit1(changed))
    # integrated gradients: the path integral by a fine midpoint rule, gradients by central differences
    alphas, eps = (np.arange(4000) + 0.5) / 4000, 1e-4
    ig = np.zeros(len(e))
    for s in range(len(e)):
        for a in alphas[::8]:  # 500 points suffice for this smooth path
            up, down = a * e.astype(np.float64), a * e.astype(np.float64)
            up[s, 1] += eps
            down[s, 1] -= eps
            ig[s] += e[s, 1] * (_unit1(up) - _unit1(down)) / (2 * eps) / 500
    grad = []
    for s in range(len(e)):
        up, down = e.astype(np.float64), e.astype(np.float64)
        up[s, 1] += eps
        down[s, 1] -= eps
        grad.append(e[s, 1] * (_unit1(up) - _unit1(down)) / (2 * eps))
    np.testing.assert_allclose(_attribute(model, "L1.h.1", "occlusion").contributions, occluded, atol=1e-5)
    np.testing.assert_allclose(_attribute(model, "L1.h.1", "grad").contributions, grad, atol=1e-4)
    result = _attribute(model, "L1.h.1", "ig")
    np.testing.assert_allclose(result.contributions, ig, atol=2e-3)
    assert result.completeness_error < 0.01


def test_the_window_starts_from_the_state_the_text_before_it_left():
    model, embed = _planted()
    whole = _attribute(model, "L1.h.1", "occlusion")
    windowed = _attribute(model, "L1.h.1", "occlusion", window=5)
    assert windowed.start == len(TEXT) - 5 and windowed.text == TEXT[-5:]
    assert windowed.value == pytest.approx(_unit1(embed[VOCAB.encode(TEXT)]), abs=1e-6)
    np.testing.assert_allclose(windowed.contributions, whole.contributions[-5:], atol=1e-6)


# -- every cell type against the instrumented forward -----------------------------------------------
def _random_model(cell: str, **extra) -> CharRNN:
    torch.manual_seed(5)
    config = ModelConfig(vocab_size=len(VOCAB), cell=cell, num_layers=2, hidden_size=6, embed_dim=4, **extra)
    model = CharRNN(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3)  # strong weights: gates away from one half, so a mistake shows
    return model


def _recorded(model: CharRNN, text: str, unit: str, pos: int) -> float:
    """The unit's value at ``pos`` from the model's own instrumented forward (the step path
    for the variants, the fast path for the fused cells)."""
    n = model.check_neuron(unit)
    _, cache = model.run_with_cache(torch.tensor([VOCAB.encode(text)]), names_filter=[n.hook_name])
    return float(cache[n.hook_name][0, pos, n.index])


@pytest.mark.parametrize("cell", CELLS)
def test_every_cell_type_and_series_gives_the_recorded_value_and_the_true_occlusion(cell):
    model = _random_model(cell)
    at = _located()
    for kind in model.config.series_kinds:
        unit = f"L2.{kind}.3"
        result = _attribute(model, unit, "occlusion", at=at, window=9)  # the state before the window matters
        assert result.value == pytest.approx(_recorded(model, TEXT, unit, len(TEXT) - 1), abs=1e-5), unit
    baseline = "d"
    result = _attribute(
        model, "L2.c.3" if "c" in model.config.series_kinds else "L2.h.3", "occlusion", window=9, baseline=baseline
    )
    for s in range(result.start, len(TEXT)):
        changed = TEXT[:s] + baseline + TEXT[s + 1 :]
        true_change = result.value - _recorded(model, changed, result.neuron, len(TEXT) - 1)
        assert result.contributions[s - result.start] == pytest.approx(true_change, abs=1e-5), (cell, s)
    ig = _attribute(model, result.neuron, "ig", steps=96)
    assert ig.completeness_error < 0.01, cell


@pytest.mark.parametrize("cell", CELLS)
def test_occlusion_over_a_window_of_several_batches_is_the_true_change(cell):
    """Occluded characters run in batches that start where their first character is, from
    the state the window before it left: every batch, the last one short, matches a rerun
    of the whole changed text."""
    from lstmviz.analysis.attribution.methods import OCCLUSION_BATCH

    model = _random_model(cell)
    with torch.no_grad():
        model.embedding.weight[0].zero_()  # the unknown character: the zero embedding, as the baseline
    text = (TEXT * 6)[: 2 * OCCLUSION_BATCH + 11]
    unit = "L2.c.3" if "c" in model.config.series_kinds else "L2.h.3"
    result = _attribute(model, unit, "occlusion", at=_located(text), window=2 * OCCLUSION_BATCH + 5)
    assert result.start == 6
    rounding = 1e-5 * max(1.0, abs(result.value))  # float32 rounding, by two paths through the text
    for s in range(result.start, len(text)):
        changed = text[:s] + "\ufffd" + text[s + 1 :]
        true_change = result.value - _recorded(model, changed, unit, len(text) - 1)
        assert result.contributions[s - result.start] == pytest.approx(true_change, abs=rounding), (cell, s)


def _tagger() -> CharRNN:
    return _random_model("lstm", bidirectional=True, num_labels=3)


def test_a_bidirectional_tagger_shares_a_unit_among_the_characters_on_both_sides():
    model = _tagger()
    with torch.no_grad():
        model.embedding.weight[0].zero_()  # the unknown character: the zero embedding, as the baseline
    at = locate([Document("t", TEXT)], 6, VOCAB)
    for unit in ("L1r.c.2", "L2.h.1", "L2r.i.0", "L1.f.4"):
        result = _attribute(model, unit, "occlusion", at=at, window=4)
        assert result.start == 3 and result.text == TEXT[3:10]
        assert result.value == pytest.approx(_recorded(model, TEXT, unit, 6), abs=1e-5), unit
        for s in range(3, 10):
            changed = TEXT[:s] + "\ufffd" + TEXT[s + 1 :]
            expected = result.value - _recorded(model, changed, unit, 6)
            assert result.contributions[s - 3] == pytest.approx(expected, abs=1e-5), (unit, s)
    reverse_first_layer = _attribute(model, "L1r.h.2", "grad", at=at, window=4)
    assert np.all(reverse_first_layer.contributions[:3] == 0)  # the backward direction reads only what follows


# -- why this prediction ----------------------------------------------------------------------------
def test_the_top_layer_shares_and_the_bias_sum_to_the_logit():
    model = _random_model("lstm")
    at = _located()
    reasons = explain_prediction(model, VOCAB, at, window=8)
    with torch.no_grad():
        logits, _ = model(torch.tensor([VOCAB.encode(TEXT)]))
    char = int(logits[0, -1].argmax())
    assert reasons.char == VOCAB.chars[char]
    assert reasons.logit == pytest.approx(float(logits[0, -1, char]), abs=1e-5)
    assert sum(c for _, c in reasons.direct) + reasons.bias == pytest.approx(reasons.logit, abs=1e-5)
    assert {u for u, _ in reasons.direct} == {f"L2.h.{j}" for j in range(6)}
    # gradient x activation of a first-layer unit: against a finite difference of that unit
    unit, share = reasons.lower[0]
    j = int(unit.split(".")[-1])
    h1 = model.run_with_cache(torch.tensor([VOCAB.encode(TEXT)]), names_filter=["layers.0.hook_h"])[1]["layers.0.hook_h"]
    value = float(h1[0, -1, j])
    nudged = {}
    for sign in (1, -1):

        def nudge(x, hook, sign=sign):
            last = len(TEXT) - 1
            if last not in hook.positions:
                return None
            x = x.clone()
            x[0, last - hook.positions.start, j] += sign * 1e-3
            return x

        with torch.no_grad():
            out, _ = model.forward_instrumented(torch.tensor([VOCAB.encode(TEXT)]), hooks=[("layers.0.hook_h", nudge)])
        nudged[sign] = float(out[0, -1, char])
    assert share == pytest.approx(value * (nudged[1] - nudged[-1]) / 2e-3, rel=1e-2, abs=1e-4)


# -- the shipped model ------------------------------------------------------------------------------
def test_integrated_gradients_is_complete_to_five_percent_inside_strings_of_the_shipped_model():
    ckpt, docs = model_and_documents("stdlib-lstm")
    text = docs[0].text
    positions = [m.start() + 13 for m in re.finditer(r"'[^'\n]{14,}'", text)][:5]
    target = target_of(ckpt.model, ckpt.vocab, "L2.c.90")
    errors = [
        attribute_located(ckpt.model, ckpt.vocab, locate(docs, p, ckpt.vocab), target, "ig").completeness_error for p in positions
    ]
    assert len(errors) == 5 and np.median(errors) < 0.05, errors


# -- the command and its bad input ------------------------------------------------------------------
@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("attribution")
    corpus = {"sources": [], "splits": {"train": [], "val": [], "test": []}, "chars": {}, "replaced_chars": 0}
    model_dir = save_checkpoint(root / "lm", _random_model("gru"), VOCAB, corpus=corpus, training={})
    tagger_dir = save_checkpoint(root / "tagger", _tagger(), VOCAB, corpus=corpus, training={})
    return str(model_dir), str(tagger_dir)


def test_the_command_prints_json_with_one_contribution_per_character(checkpoints):
    lm, _ = checkpoints
    args = ["attribute", lm, "--neuron", "L1.z.2", "--pos", "9", "--text", TEXT, "--method", "grad", "--json"]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["start"] == 0 and data["text"] == TEXT[:10] and len(data["contributions"]) == 10
    assert {"neuron", "pos", "method", "value", "baseline_value", "completeness_error"} <= set(data)
    out = CliRunner().invoke(main, ["attribute", lm, "--logit", "'", "--pos", "9", "--text", TEXT, "--window", "4"])
    assert out.exit_code == 0, out.output
    assert "log p(''')" in out.output and "decoder bias" in out.output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--neuron", "L1.h.0", "--pos", "99"], "outside the text"),
        (["--neuron", "L1.h.0", "--pos", "3", "--window", "0"], "--window must be between 1 and 5,000"),
        (["--neuron", "L1.h.0", "--pos", "3", "--window", "5001"], "--window must be between 1 and 5,000"),
        (["--neuron", "L3.h.0", "--pos", "3"], "No neuron L3.h.0"),
        (["--neuron", "L1.c.0", "--pos", "3"], "No neuron L1.c.0"),
        (["--logit", "Z", "--pos", "3"], "not a character of the model's vocabulary"),
        (["--pos", "3"], "Give either a unit"),
    ],
)
def test_bad_input_is_one_sentence_and_exit_status_2(checkpoints, args, words):
    lm, _ = checkpoints
    out = CliRunner().invoke(main, ["attribute", lm, "--text", TEXT, *args])
    assert out.exit_code == 2 and words in out.output and out.output.count("\n") == 1, out.output


def test_a_tagger_has_no_next_character_to_explain(checkpoints):
    _, tagger = checkpoints
    out = CliRunner().invoke(main, ["attribute", tagger, "--text", TEXT, "--logit", "a", "--pos", "3"])
    assert out.exit_code == 2 and "tagger" in out.output and out.output.count("\n") == 1, out.output
