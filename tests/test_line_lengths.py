"""How long the lines are that a model writes: the lines of one text, the mean over seeds
with a neuron held and with nothing held, and ``lstmviz sample --line-lengths``."""

import json
import re
import statistics

import pytest
from click.testing import CliRunner

from lstmviz.analysis.line_lengths import line_lengths, written_lines
from lstmviz.cli.main import main
from lstmviz.core.errors import ConfigError
from lstmviz.model.checkpoint import load_checkpoint
from lstmviz.model.sampling import sample


def test_a_text_s_finished_lines_are_measured_and_blank_ones_counted_apart():
    written = written_lines("Return the\nvalue.\n\n  \nIt is\nunfinish")
    assert written.lengths == [10, 6, 5] and written.blank == 2
    assert written.mean == 7.0


def test_a_line_begun_by_the_prime_is_not_the_model_s():
    assert written_lines(" the rest\nnext\n", prime="Half of").lengths == [4]
    assert written_lines("a whole line\nnext\n", prime="A prime.\n").lengths == [12, 4]
    assert written_lines("no newline at all").lengths == [] and written_lines("no newline at all").mean is None


def test_the_mean_over_seeds_is_each_seed_s_mean_line(tiny_checkpoint):
    ckpt = load_checkpoint(tiny_checkpoint)
    result = line_lengths(ckpt, [4, 5, 6], clamp={"L1.c.2": 3.0}, length=400)
    by_hand = []
    for seed in (4, 5, 6):  # the same samples, their lines found by a regular expression
        text = sample(ckpt, length=400, seed=seed, clamp={"L1.c.2": 3.0}).generated
        by_hand.append(statistics.fmean(len(line) for line in re.findall(r"([^\n]*)\n", text) if line.strip()))
    assert result.setting == "L1.c.2=3" and result.seeds == [4, 5, 6]
    assert result.seed_means == pytest.approx(by_hand)
    assert result.mean == pytest.approx(statistics.fmean(by_hand))
    assert result.sd == pytest.approx(statistics.stdev(by_hand))


def test_sample_line_lengths_reports_nothing_held_beside_the_hold(tiny_checkpoint):
    args = ["sample", str(tiny_checkpoint), "--length", "300", "--seed", "2", "--line-lengths", "2"]
    data = json.loads(CliRunner().invoke(main, [*args, "--clamp", "L1.c.2=3", "--json"]).output)
    assert [s["setting"] for s in data["settings"]] == ["free", "L1.c.2=3"]
    free = line_lengths(load_checkpoint(tiny_checkpoint), [2, 3], length=300)
    assert data["settings"][0] == free.to_json()
    table = CliRunner().invoke(main, args).output
    assert table.startswith("mean line length over 2 seeds (2-3), 300 characters each\n")
    assert "\n  free " in table and "L1.c.2" not in table


def test_one_seed_gives_no_spread_and_is_refused(tiny_checkpoint):
    result = CliRunner().invoke(main, ["sample", str(tiny_checkpoint), "--line-lengths", "1"])
    assert result.exit_code == 2 and result.output == "lstmviz: --line-lengths must be between 2 and 1,000, not 1.\n"
    with pytest.raises(ConfigError):
        line_lengths(load_checkpoint(tiny_checkpoint), [0])
