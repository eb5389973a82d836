"""The offline explainer, on a store whose units have planted meanings: each is named in
words, scored on documents the fit never saw, beside a shuffled baseline near zero."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from lstmviz.analysis.explain.explainer import explain
from lstmviz.analysis.explain.scoring import Halves, split_halves
from lstmviz.cli import main
from lstmviz.core.errors import LstmvizError
from lstmviz.store.writer import write_store

NAMES = ["alpha", "beta", "gamma", "delta", "total", "count", "value", "item"]


def _document(rng: np.random.Generator, k: int) -> str:
    """A small made-up Python module: assignments of numbers, calls, comments."""
    lines = [f"def handler_{k}(value):"]
    for _ in range(int(rng.integers(25, 45))):
        name, other = rng.choice(NAMES, 2)
        indent = "    " * int(rng.integers(1, 3))
        pick = rng.integers(5)
        if pick == 0:
            lines.append(f"{indent}{name} = {int(rng.integers(0, 10 ** int(rng.integers(1, 6))))}")
        elif pick == 1:
            lines.append(f"{indent}# {other} holds the {name} of the {other}")
        elif pick == 2:
            lines.append(f"{indent}{name} = {other}({int(rng.integers(100))}, {name})  # keep {other}")
        elif pick == 3:
            lines.append(f"{indent}return {name} + {other}")
        else:
            lines.append(f"{indent}{name}.{other}({other})")
    return "\n".join(lines) + "\n"


def _planted(text: str, rng: np.random.Generator) -> np.ndarray:
    """Four units, each computed here by a plain loop over the characters: a digit unit, a
    unit on from `#` until the newline, a column counter, and noise."""
    digit, comment, column = (np.zeros(len(text)) for _ in range(3))
    in_comment, col = False, 0
    for t, ch in enumerate(text):
        digit[t] = ch.isdigit()
        in_comment = (in_comment or ch == "#") and ch != "\n"
        comment[t] = in_comment
        column[t] = col
        col = 0 if ch == "\n" else col + 1
    noise = rng.normal(size=(4, len(text))) * 0.05
    units = np.stack([0.9 * digit - 0.4, 0.8 * comment, np.tanh(column / 30), rng.normal(size=len(text))])
    return units + noise * np.array([1, 1, 1, 0])[:, None]


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    rng = np.random.default_rng(7)
    docs, text = [], ""
    for k in range(16):
        body = _document(rng, k)
        docs.append((f"module_{k}.py", len(text), len(text) + len(body)))
        text += body
    out = tmp_path_factory.mktemp("explain") / "planted.store"
    return write_store(out, text, docs, {(1, "h"): _planted(text, rng).astype(np.float32)})


def test_each_planted_unit_is_named_in_words_and_scores_at_least_0_9(planted):
    found = explain(planted)
    digit, comment, column, noise = found.units
    assert "digit" in digit.explanation and digit.score >= 0.9
    assert any(w in comment.explanation for w in ("comment", "after `#` until the newline")) and comment.score >= 0.9
    assert any(w in column.explanation for w in ("column", "since the newline")) and column.score >= 0.9
    assert noise.score < 0.1 and not noise.explained and noise.explanation.startswith("unexplained")


def test_the_shuffled_text_baseline_is_near_zero(planted):
    for unit in explain(planted).units:
        assert abs(unit.baseline_score) < 0.05


def test_a_binary_explanation_has_precision_and_recall(planted):
    digit = explain(planted, "L1.h.0").units[0]
    assert digit.precision > 0.95 and digit.recall > 0.95


def test_the_fit_never_sees_the_held_out_documents(planted, tmp_path):
    """The same store with the held-out half's activations replaced by noise: the same
    explanations and maps are chosen, only the scores change."""
    text = planted.text()
    docs = [(d.name, d.start, d.stop) for d in planted.documents]
    held = Halves.positions(split_halves(text, docs).held_out)
    values = planted.window(["L1.h.0", "L1.h.1", "L1.h.2", "L1.h.3"])
    values[:, held] = np.random.default_rng(1).normal(size=(4, len(held)))
    other = write_store(tmp_path / "other.store", text, docs, {(1, "h"): values})
    for a, b in zip(explain(planted).units, explain(other).units, strict=True):
        assert (a.best.form, a.best.map, a.best.fit_score) == (b.best.form, b.best.map, b.best.fit_score)
    assert all(u.score < 0.1 for u in explain(other).units)


def test_scores_are_the_correlation_on_held_out_characters(planted):
    """The score, recomputed here from the unit's form map and the held-out values."""
    from lstmviz.analysis.explain.context import TextContext
    from lstmviz.analysis.explain.grammar import from_structure, values

    text = planted.text()
    docs = [(d.name, d.start, d.stop) for d in planted.documents]
    held = Halves.positions(split_halves(text, docs).held_out)
    for unit in explain(planted).units:
        form = from_structure(unit.best.form)
        levels = np.searchsorted(unit.best.map["edges"], values(form, TextContext(text, docs)), side="right")
        simulated = np.asarray(unit.best.map["levels"])[levels]
        actual = planted.neuron(unit.neuron)
        assert unit.score == pytest.approx(np.corrcoef(simulated[held], actual[held])[0, 1], abs=1e-3)


def test_explanations_are_cached_in_the_store(planted):
    explain(planted)
    assert (planted.path / "explanations-v1-h.json").is_file()
    assert json.loads((planted.path / "explanations-v1-h.json").read_text())[0]["neuron"] == "L1.h.0"


def test_the_search_finds_units_by_the_words_of_their_explanations(planted):
    found = explain(planted)
    assert [u.neuron for u in found.search("digit")] == ["L1.h.0"]
    assert found.search("")[0].score == max(u.score for u in found.units)


def test_explain_json_from_the_command_line(planted):
    result = CliRunner().invoke(main, ["explain", str(planted.path), "--json"])
    assert result.exit_code == 0, result.output
    units = json.loads(result.output)["units"]
    assert [u["neuron"] for u in units] == ["L1.h.0", "L1.h.1", "L1.h.2", "L1.h.3"]
    assert {"neuron", "explanation", "score", "baseline_score", "candidates"} <= set(units[0])
    assert {"explanation", "score"} <= set(units[0]["candidates"][0])


@pytest.mark.parametrize(
    "args, says",
    [
        (["--neurons", "L1.h.9"], "No neuron L1.h.9"),
        (["--neurons", "L3.h.0"], "No neuron L3.h.0"),
        (["--kinds", "c"], "no series of kind c"),
        (["--neurons", "bogus"], "is not a neuron id"),
    ],
)
def test_bad_input_is_one_sentence_and_exit_2(planted, args, says):
    result = CliRunner().invoke(main, ["explain", str(planted.path), *args])
    assert result.exit_code == 2 and says in result.output and "Traceback" not in result.output


def test_an_empty_store_is_one_sentence(tmp_path):
    empty = write_store(tmp_path / "empty.store", "", [], {(1, "h"): np.zeros((2, 0), np.float32)})
    with pytest.raises(LstmvizError, match="empty"):
        explain(empty)
    result = CliRunner().invoke(main, ["explain", str(empty.path)])
    assert result.exit_code == 2 and "empty" in result.output


def test_the_api_takes_a_path_and_answers_a_search(planted):
    import lstmviz

    found = lstmviz.explain(str(planted.path), "L1.h.2")
    assert [u.neuron for u in found.units] == ["L1.h.2"] and found.search("column")[0].neuron == "L1.h.2"


def test_find_cells_json_gains_each_units_cached_explanation(planted):
    explain(planted)
    result = CliRunner().invoke(main, ["find-cells", str(planted.path), "--json", "--top", "1"])
    assert result.exit_code == 0, result.output
    best = json.loads(result.output)["features"]["in_comment"][0]
    assert best["neuron"] == "L1.h.1"
    assert best["explanation"] == explain(planted, "L1.h.1").units[0].explanation
    assert best["explanation_score"] == pytest.approx(explain(planted, "L1.h.1").units[0].score, abs=1e-4)


def test_the_neuron_page_shows_the_cached_explanation_and_says_when_there_is_none(planted, tmp_path):
    from lstmviz.app.pages.neuron import explanation_line

    fresh = write_store(
        tmp_path / "fresh.store",
        planted.text(),
        [(d.name, d.start, d.stop) for d in planted.documents],
        {(1, "h"): planted.window(["L1.h.0"])},
    )
    assert "Not explained yet: run “lstmviz explain" in str(explanation_line(fresh, "L1.h.0"))
    unit = explain(planted, "L1.h.0").units[0]
    shown = str(explanation_line(planted, "L1.h.0"))
    assert unit.explanation in shown and f"held-out score {unit.score:.2f}" in shown
