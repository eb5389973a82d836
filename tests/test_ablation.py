"""Ablation effects: the numbers equal an independent step-by-step computation, the unablated
bpc equals `evaluate`'s, controls are drawn like the target, and bad input is one sentence."""

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from test_interventions import reference_logits

from lstmviz.analysis.ablation import ablate, control_sets
from lstmviz.cli.main import main
from lstmviz.core.neurons import NeuronId
from lstmviz.model.checkpoint import load_checkpoint
from lstmviz.text.corpus import Document

TEXTS = [
    'def f(x):\n    """Say x."""\n    return "x" + x  # done\n',
    "import os\nprint('a', os.sep)\n",
    "x = [1, 2, 3]\n",
]


def _reference_logp(ckpt, docs, replace):
    """log p(next char) at every position, each document run alone from a zero state by
    PyTorch's cell modules with the replacement done by hand."""
    out = []
    for d in docs:
        ids = torch.tensor([ckpt.vocab.encode(d.text)])
        state = ckpt.model.initial_state(1)
        with torch.no_grad():
            logp = torch.log_softmax(reference_logits(ckpt.model, ids, state, replace)[0], -1)
        out.append(logp[torch.arange(len(d.text) - 1), ids[0, 1:]].numpy())
        out.append([np.nan])  # the document's last character predicts nothing
    return np.concatenate(out)


def _set(unit, value):
    def fn(t, v):
        v = v.clone()
        v[:, unit] = value
        return v

    return fn


def test_ablated_log_probabilities_equal_a_step_by_step_reference(tiny_checkpoint):
    ckpt = load_checkpoint(tiny_checkpoint)
    docs = [Document(f"d{i}.py", t) for i, t in enumerate(TEXTS)]
    result = ablate(ckpt, docs, "L1.c.3,L1.c.7", "clamp=1.5", controls=2, seed=1, lanes=2, chunk_len=5)
    assert result.ablated_logp.shape == (3, sum(len(t) for t in TEXTS))
    plain = _reference_logp(ckpt, docs, {})
    np.testing.assert_allclose(result.base_logp, plain, atol=1e-5)
    for row, neurons in enumerate([result.neurons, *result.control_sets]):
        units = [n.index for n in neurons]
        expected = _reference_logp(ckpt, docs, {(0, "c"): _set(units, 1.5)})
        np.testing.assert_allclose(result.ablated_logp[row], expected, atol=2e-5)
    data = result.to_json()
    assert data["chars"] == sum(len(t) - 1 for t in TEXTS)
    assert data["bits_lost"] == pytest.approx(np.nanmean(plain - result.ablated_logp[0]) / math.log(2), abs=1e-5)
    assert set(data["by_feature"]) == {"in_string", "in_docstring", "in_comment", "newline", "before_newline"}
    assert data["by_feature"]["in_string"]["chars_inside"] > 0


def test_bits_lost_on_newlines_and_on_the_characters_before_them(tiny_checkpoint):
    ckpt = load_checkpoint(tiny_checkpoint)
    docs = [Document(f"d{i}.py", t) for i, t in enumerate(TEXTS)]
    result = ablate(ckpt, docs, "L1.c.3", "zero", controls=4, seed=2)
    lost = (result.base_logp - result.ablated_logp) / math.log(2)  # [sets, position predicting the next character]
    # Independently: walk each document's lines, marking the newline and the ten characters before it.
    on_newline, before, offset = [], [], 0
    for doc in TEXTS:
        line_start = 0
        for k, ch in enumerate(doc):
            if ch == "\n":
                on_newline.append(offset + k)
                before += [offset + j for j in range(max(line_start, k - 10), k)]
                line_start = k + 1
        offset += len(doc)
    by_feature = result.to_json()["by_feature"]
    for name, positions in (("newline", on_newline), ("before_newline", before)):
        scored = [p - 1 for p in positions if p > 0 and np.isfinite(result.base_logp[p - 1])]  # p - 1 predicts p
        row = by_feature[name]
        assert row["chars_inside"] == len(scored)
        assert row["inside_bits"] == pytest.approx(lost[0, scored].mean(), abs=1e-4)
        assert row["control_inside_mean"] == pytest.approx(lost[1:, scored].mean(axis=1).mean(), abs=1e-4)
        assert row["control_inside_as_large"] == int((lost[1:, scored].mean(axis=1) >= lost[0, scored].mean()).sum())


def test_mean_ablation_uses_the_mean_over_the_text(tiny_checkpoint):
    ckpt = load_checkpoint(tiny_checkpoint)
    docs = [Document(f"d{i}.py", t) for i, t in enumerate(TEXTS)]
    means = []
    for d in docs:
        (_, _), cache = ckpt.model.run_with_cache(torch.tensor([ckpt.vocab.encode(d.text)]), names_filter=["layers.1.hook_h"])
        means.append(cache["layers.1.hook_h"][0, :, 4].double())
    mean = float(torch.cat(means).mean())
    result = ablate(ckpt, docs, "L2.h.4", "mean", controls=0)
    expected = _reference_logp(ckpt, docs, {(1, "h"): _set([4], mean)})
    np.testing.assert_allclose(result.ablated_logp[0], expected, atol=2e-5)


def test_controls_are_other_units_of_the_same_layer_and_kind(tiny_checkpoint):
    model = load_checkpoint(tiny_checkpoint).model
    target = [NeuronId(1, "c", 3), NeuronId(1, "c", 7), NeuronId(2, "h", 0)]
    sets = control_sets(model, target, 30, seed=0)
    assert len(sets) == 30
    for s in sets:
        assert sorted((n.layer, n.kind) for n in s) == sorted((n.layer, n.kind) for n in target)
        assert not set(s) & set(target)
    assert sets == control_sets(model, target, 30, seed=0)  # reproducible
    assert len({tuple(s) for s in sets}) > 1


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_ablate_cli_bpc_equals_evaluate(tiny_checkpoint, tmp_path):
    for i, t in enumerate(TEXTS):
        (tmp_path / f"t{i}.py").write_text(t * 4)
    result = _run("ablate", tiny_checkpoint, tmp_path, "--neurons", "L2.c.1", "--controls", "3", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    for key in ("neurons", "mode", "chars", "bpc", "ablated_bpc", "by_feature", "control", "top_chars"):
        assert key in data
    assert {"inside_bits", "outside_bits"} <= set(data["by_feature"]["in_string"])
    assert {"ablated_bpc_mean", "ablated_bpc_sd"} <= set(data["control"])
    evaluated = json.loads(_run("evaluate", tiny_checkpoint, tmp_path, "--json", "--max-order", "2").output)
    assert data["chars"] == evaluated["chars"]
    assert data["bpc"] == pytest.approx(evaluated["bpc"], abs=2e-4)
    table = _run("ablate", tiny_checkpoint, tmp_path, "--neurons", "L2.c.1", "--controls", "2", "--mode", "clamp=-3")
    assert table.exit_code == 0, table.output
    assert "set to clamp=-3" in table.output and "in_string" in table.output


@pytest.mark.parametrize(
    "args,message",
    [
        (["--neurons", "L9.c.1"], "No neuron L9.c.1 in this model"),
        (["--neurons", "L1.c.999"], "units 0-23"),
        (["--neurons", "cell"], "not a unit id"),
        (["--neurons", "L1.c.1", "--mode", "half"], "--mode takes"),
        (["--neurons", "L1.c.1", "--mode", "clamp=x"], "must be a number"),
        (["--neurons", "L1.c.1", "--controls", "-1"], "--controls"),
        (["--neurons", "L1.c.1", "--max-chars", "0"], "--max-chars"),
    ],
)
def test_ablate_bad_input_is_one_sentence(tiny_checkpoint, tmp_path, args, message):
    (tmp_path / "t.py").write_text(TEXTS[0])
    result = _run("ablate", tiny_checkpoint, tmp_path / "t.py", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_ablate_text_with_nothing_to_predict(tiny_checkpoint, tmp_path):
    (tmp_path / "one.txt").write_text("x")
    result = _run("ablate", tiny_checkpoint, tmp_path / "one.txt", "--neurons", "L1.c.1")
    assert result.exit_code == 2 and "no character to predict" in result.output
