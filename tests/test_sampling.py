"""Sampling: deterministic per seed, a held neuron changes the text and is held exactly as the
exact step path holds it, and bad settings are one sentence."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import lstmviz
from lstmviz import interventions as iv
from lstmviz.cli.main import main
from lstmviz.core.errors import LstmvizError
from lstmviz.model.checkpoint import load_checkpoint
from lstmviz.model.sampling import sample
from lstmviz.render.figures import ansi_coloured


def test_the_same_seed_gives_the_same_text_and_a_clamp_changes_it(tiny_checkpoint):
    ckpt = load_checkpoint(tiny_checkpoint)
    a = sample(ckpt, prime="def ", length=120, seed=5)
    assert a.text == sample(ckpt, prime="def ", length=120, seed=5).text
    assert a.text.startswith("def ") and len(a.generated) == 120
    assert a.text != sample(ckpt, prime="def ", length=120, seed=6).text
    held = sample(ckpt, prime="def ", length=120, seed=5, clamp={"L1.c.2": 4.0})
    assert held.text != a.text
    assert held.neuron == "L1.c.2" and np.all(held.values == 4.0) and len(held.values) == len(held.text)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_sampling_holds_a_neuron_as_the_exact_path_does(tiny_checkpoint, cell, tmp_path, corpus_dir):
    if cell == "lstm":
        ckpt = load_checkpoint(tiny_checkpoint)
        neuron, value = "L2.f.3", 0.02
    else:
        from lstmviz.model.train import TrainConfig, train
        from lstmviz.text.corpus import load_corpus

        train(load_corpus([str(corpus_dir)]), tmp_path / "gru", TrainConfig(cell="gru", hidden_size=16, steps=3), progress=False)
        ckpt = load_checkpoint(tmp_path / "gru")
        neuron, value = "L1.z.3", 0.9
    held = {"ablate": ["L1.h.0"], "clamp": {neuron: value}}
    s = sample(ckpt, prime="if x", length=60, seed=2, temperature=0.7, top_k=5, color="L2.h.1", **held)
    ids = torch.tensor([ckpt.vocab.encode(s.text)])
    hooks = iv.zero("L1.h.0") + iv.clamp(neuron, value)
    (logits, _), cache = ckpt.model.run_with_cache(ids, names_filter=["layers.1.hook_h"], hooks=hooks)
    probs = torch.softmax(logits[0], -1)
    top_probs, top_ids = probs.topk(5, -1)
    np.testing.assert_allclose(s.top_probs, top_probs.numpy(), atol=1e-5)
    np.testing.assert_allclose(s.values, cache["layers.1.hook_h"][0, :, 1].numpy(), atol=1e-5)
    assert (s.top_ids[:, 0] == top_ids[:, 0].numpy()).mean() > 0.95  # ties aside


def test_without_a_prime_the_text_is_only_what_was_generated(tiny_checkpoint):
    s = lstmviz.sample(tiny_checkpoint, length=30, seed=1, color="L1.c.0")
    assert s.prime == "" and len(s.text) == 30 and len(s.values) == 30 and s.top_ids.shape == (30, 5)


def test_prime_characters_outside_the_vocabulary_are_reported(tiny_checkpoint):
    s = sample(tiny_checkpoint, prime="a = 'ψ☃'", length=5)
    assert s.unknown == ["ψ", "☃"] and s.text.startswith("a = 'ψ☃'")
    result = CliRunner().invoke(main, ["sample", str(tiny_checkpoint), "--prime", "ψ", "--length", "5"])
    assert result.exit_code == 0 and "not in the model's vocabulary" in result.output


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"temperature": 0}, "temperature must be a positive"),
        ({"temperature": -1.0}, "temperature must be a positive"),
        ({"length": 0}, "between 1 and 100,000"),
        ({"length": 100_001}, "between 1 and 100,000"),
        ({"top_k": 0}, "--top-k"),
        ({"clamp": {"L7.c.1": 1.0}}, "No neuron L7.c.1"),
        ({"ablate": ["L1.q.1"]}, "No neuron L1.q.1"),
        ({"color": "nope"}, "not a neuron id"),
    ],
)
def test_bad_settings_are_clear_errors(tiny_checkpoint, kwargs, message):
    with pytest.raises(LstmvizError, match=message):
        sample(tiny_checkpoint, **kwargs)


def test_sample_cli(tiny_checkpoint):
    run = CliRunner().invoke
    result = run(main, ["sample", str(tiny_checkpoint), "--prime", "def", "--length", "40", "--clamp", "L2.c.1=3", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["text"].startswith("def") and len(data["values"]) == len(data["text"]) and data["clamp"] == {"L2.c.1": 3.0}
    plain = run(main, ["sample", str(tiny_checkpoint), "--prime", "def", "--length", "40", "--seed", "4"])
    assert plain.exit_code == 0 and plain.output.startswith("def") and "\x1b[" not in plain.output  # not a terminal
    for args, message in [
        (["--clamp", "L2.c.1"], "ID=VALUE"),
        (["--clamp", "L2.c.1=x"], "must be a number"),
        (["--temperature", "0"], "temperature"),
        (["--length", "-3"], "between 1 and"),
    ]:
        bad = run(main, ["sample", str(tiny_checkpoint), *args])
        assert bad.exit_code == 2 and message in bad.output and "Traceback" not in bad.output


def test_ansi_colours_follow_the_scale():
    from lstmviz.render.colours import symmetric

    out = ansi_coloured("ab\n", np.array([-1.0, 1.0, 0.0]), symmetric(1.0))
    assert "48;2;5;48;97m" in out and "48;2;103;0;31m" in out  # the ends of the diverging scale
    assert out.count("\n") == 1
