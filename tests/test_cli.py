"""The command line: it starts fast, says its version, refuses each bad value with one
sentence (the same from every command that takes it, and from the library), and prints
results as they read."""

import importlib.metadata
import json
import re
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.metrics import roc_auc_score

import lstmviz
from lstmviz.cli.main import main
from lstmviz.core.errors import ConfigError
from lstmviz.store.writer import write_store
from lstmviz.text.features import compute_features

HELP_WITHOUT_TORCH = """
import sys
from lstmviz.cli.main import main

for args in (["--help"], ["train", "--help"], ["record", "--help"], ["vs-ngram", "--help"], ["bench", "record", "--help"]):
    try:
        main(args, prog_name="lstmviz")
    except SystemExit as done:
        assert done.code == 0, (args, done.code)
print("torch" in sys.modules)
"""


def test_help_does_not_import_torch():
    done = subprocess.run([sys.executable, "-c", HELP_WITHOUT_TORCH], capture_output=True, text=True, check=True)
    assert "Usage: lstmviz" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "False"


def test_the_package_loads_torch_only_when_a_model_is_asked_for():
    code = "import sys, lstmviz; before = 'torch' in sys.modules; lstmviz.load_checkpoint; print(before, 'torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True"]


def test_version_is_the_installed_package_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"lstmviz {importlib.metadata.version('lstmviz')}\n"


def _commands_taking(option: str, ckpt: str, store: str, text: str) -> list[list[str]]:
    """Every command that takes ``option``, each with real arguments."""
    ablate = ["ablate", ckpt, text, "--neurons", "L1.c.1"]
    report = ["report", store, "--out", f"{text}-report"]
    record = ["record", ckpt, text, "--out", f"{text}.store"]
    takers = {
        "--top": [["find-cells", store], ["vs-ngram", store], ["compare", store, store], ablate, report],
        "--max-chars": [record, ablate, ["compare", ckpt, store], ["emergence", ckpt, text]],
        "--max-order": [["evaluate", ckpt, text], ["vs-ngram", store]],
    }
    return takers[option]


@pytest.mark.parametrize(
    "option,value,sentence",
    [
        ("--top", "0", "--top must be at least 1, not 0."),
        ("--top", "-3", "--top must be at least 1, not -3."),
        ("--max-chars", "-5", "--max-chars must be at least 1, not -5."),
        ("--max-chars", "0", "--max-chars must be at least 1, not 0."),
        ("--max-order", "0", "--max-order must be between 1 and 20, not 0."),
        ("--max-order", "21", "--max-order must be between 1 and 20, not 21."),
    ],
)
def test_a_bad_value_gets_one_sentence_from_every_command_that_takes_it(
    option, value, sentence, tiny_checkpoint, tiny_store, tmp_path
):
    text = tmp_path / "text.py"
    text.write_text("def f(x):\n    return 'x'  # a comment\n" * 20)
    for args in _commands_taking(option, str(tiny_checkpoint), str(tiny_store.path), str(text)):
        result = CliRunner().invoke(main, [*args, option, value])
        assert result.exit_code == 2, (args, result.output)
        assert result.output == f"lstmviz: {sentence}\n", args
    assert list(tmp_path.iterdir()) == [text]  # refused before anything was written


@pytest.mark.parametrize(
    "args,sentence",
    [
        (["ablate", "{ckpt}", "--neurons", "L1.c.1", "--controls", "-1"], "--controls must be between 0 and 200, not -1."),
        (["ablate", "{ckpt}", "--neurons", "L1.c.1", "--controls", "201"], "--controls must be between 0 and 200, not 201."),
        (["record", "{ckpt}", "--out", "{tmp}/x.store", "--lanes", "0"], "--lanes must be at least 1, not 0."),
        (["record", "{ckpt}", "--out", "{tmp}/x.store", "--ray", "--shards", "0"], "--shards must be at least 1, not 0."),
        (["cache", "clear", "--older-than", "-1"], "--older-than must be 0 or more, not -1."),
        (["train", "--out", "{tmp}/m"], "Give the length of training: --steps N or --epochs E."),
    ],
)
def test_other_bad_values_are_one_sentence(args, sentence, tiny_checkpoint, tmp_path):
    args = [a.format(ckpt=tiny_checkpoint, tmp=tmp_path) for a in args]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and result.output == f"lstmviz: {sentence}\n"


def test_the_library_refuses_a_bad_value_with_the_same_sentence(tiny_checkpoint, tiny_store):
    with pytest.raises(ConfigError) as refused:
        lstmviz.ablate(tiny_checkpoint, "L1.c.1", max_chars=-5)
    assert str(refused.value) == "--max-chars must be at least 1, not -5."
    with pytest.raises(ConfigError) as refused:
        lstmviz.ablate(tiny_checkpoint, "L1.c.1", max_chars=2000, controls=-1)
    assert str(refused.value) == "--controls must be between 0 and 200, not -1."
    from lstmviz.analysis.rankings import store_rankings
    from lstmviz.render.report import write_report

    store_rankings(tiny_store)
    with pytest.raises(ConfigError) as refused:
        write_report(tiny_store, tiny_store.path.parent / "never-written", top=0)
    assert str(refused.value) == "--top must be at least 1, not 0."


def test_ablate_prints_its_tables_first_with_no_line_of_spaces(tiny_checkpoint, tmp_path):
    """Where stderr and stdout meet (a notebook, a log), the progress bar leaves no blank
    line of spaces: the bar stays as its own line and the tables follow it."""
    (tmp_path / "t.py").write_text("def f(x):\n    s = 'abc'  # note\n    return s\n" * 30)
    result = CliRunner().invoke(main, ["ablate", str(tiny_checkpoint), str(tmp_path), "--neurons", "L1.c.1", "--controls", "2"])
    assert result.exit_code == 0, result.output
    assert "ablating" in result.stderr  # the bar was drawn
    pieces = re.split("[\r\n]", result.output)  # each \r returns to the line's start, as a terminal does
    assert [p for p in pieces if p and not p.strip()] == []
    first = result.stdout.splitlines()[0]
    assert re.fullmatch(r"L1\.c\.1 set to zero, on [\d,]+ predicted characters", first), first


def test_find_cells_echoes_a_regex_as_typed(tiny_store):
    result = CliRunner().invoke(main, ["find-cells", str(tiny_store.path), "--feature", r"num=\d("])
    assert result.exit_code == 2
    assert result.output.startswith(r"lstmviz: Invalid regular expression '\d(':")


CODE = "def f(x):\n    s = 'abc'  # note\n    return s\n" * 200


def test_find_cells_shows_an_auroc_below_one_half_as_low_inside(tmp_path):
    """A cell low inside strings has an AUROC near 0: it reads "0.9xx (low inside)", the
    strength of 1 - AUROC, not "+0.0xx", which reads as weakly positive."""
    n = len(CODE)
    feats = compute_features(CODE, [("a.py", 0, n)])
    rng = np.random.default_rng(0)
    c = rng.normal(size=(3, n))
    c[0] = -2 * feats["in_string"] + rng.normal(scale=0.5, size=n)  # low inside strings
    c[1] = 2 * feats["in_comment"] + rng.normal(scale=0.5, size=n)  # high inside comments
    store = write_store(tmp_path / "p.store", CODE, [("a.py", 0, n)], {(1, "c"): c})
    auroc = {name: roc_auc_score(feats[name], c[k]) for k, name in ((0, "in_string"), (1, "in_comment"))}
    assert auroc["in_string"] < 0.1 < 0.9 < auroc["in_comment"]
    text = CliRunner().invoke(main, ["find-cells", str(store.path), "--only", "in_string", "--only", "in_comment"]).output
    assert re.search(rf"L1\.c\.0\s+{1 - auroc['in_string']:.4f} \(low inside\)", text), text
    assert re.search(rf"L1\.c\.1\s+{auroc['in_comment']:.4f} \(high inside\)", text), text
    data = json.loads(CliRunner().invoke(main, ["find-cells", str(store.path), "--only", "in_string", "--json"]).output)
    assert data["features"]["in_string"][0]["value"] == pytest.approx(auroc["in_string"], abs=1e-4)  # JSON keeps the raw AUROC


def test_comma_lists_are_read_one_way(tiny_store):
    spaced = CliRunner().invoke(main, ["find-cells", str(tiny_store.path), "--kinds", " h , c,", "--json"])
    plain = CliRunner().invoke(main, ["find-cells", str(tiny_store.path), "--kinds", "h,c", "--json"])
    assert spaced.exit_code == 0 and json.loads(spaced.output) == json.loads(plain.output)


def test_evaluate_and_vs_ngram_print_what_their_json_says(tiny_checkpoint, tiny_store):
    def run(*args):
        result = CliRunner().invoke(main, [str(a) for a in args])
        assert result.exit_code == 0, result.output
        return result.output

    data = json.loads(run("evaluate", tiny_checkpoint, "--max-order", 3, "--json"))
    text = run("evaluate", tiny_checkpoint, "--max-order", 3)
    assert f"model:     {data['bpc']:.4f} bits per character" in text
    assert f"baseline:  {data['baseline']['bpc']:.4f} ({data['baseline']['order']}-gram" in text and "orders 1-3" in text
    assert text.endswith(f"the model is {data['improvement']:.1%} below the baseline\n")
    data = json.loads(run("vs-ngram", tiny_store.path, "--max-order", 3, "--json"))
    lines = run("vs-ngram", tiny_store.path, "--max-order", 3, "--top", 2).splitlines()
    assert lines[0].endswith(f"(mean {data['mean_advantage_bits']:+.3f}); best first:")
    names = {"\n": "\\n", " ": "space", "\t": "\\t"}
    best, worst = data["by_char"][0], data["by_char"][-1]
    assert lines[2].split()[:2] == [names.get(best["char"], best["char"]), str(best["count"])]  # lines[1]: the header
    assert lines[-2].split()[:2] == [names.get(worst["char"], worst["char"]), str(worst["count"])]  # worst first
    assert len(lines) == 9  # title, header, two rows; a blank line; title, header, two rows
