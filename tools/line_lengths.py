"""How long the lines are that a model writes, free and with one neuron clamped low or high:
what `lstmviz sample CHECKPOINT --clamp NEURON=VALUE --seed S` generates, over several seeds.

A line is the text between two newlines the model wrote (the unfinished last one is left
out); blank lines (paragraph breaks) are counted apart. Prints one row per setting: the mean
line length of each seed's text, their mean and standard deviation across seeds.

usage: python3 tools/line_lengths.py CHECKPOINT NEURON LOW HIGH [SEEDS [LENGTH]]
   e.g. python3 tools/line_lengths.py stdlib-prose L1.c.10 -1.5 1.5 10 2000"""

import json
import statistics
import sys

from lstmviz.model.checkpoint import load_checkpoint
from lstmviz.model.sampling import sample


def line_lengths(text: str) -> tuple[list[int], int]:
    """Lengths of the written lines that hold a character, and how many were blank."""
    lines = text.split("\n")[:-1]
    return [len(line) for line in lines if line.strip()], sum(1 for line in lines if not line.strip())


def main(checkpoint: str, neuron: str, low: float, high: float, seeds: int = 10, length: int = 2000) -> None:
    ckpt = load_checkpoint(checkpoint)
    rows = []
    for label, clamp in (("free", {}), (f"{neuron}={low:g}", {neuron: low}), (f"{neuron}={high:g}", {neuron: high})):
        means, lines, blank = [], 0, 0
        for seed in range(seeds):
            lengths, blanks = line_lengths(sample(ckpt, length=length, seed=seed, clamp=clamp).generated)
            means.append(statistics.fmean(lengths) if lengths else 0.0)
            lines, blank = lines + len(lengths), blank + blanks
        rows.append(
            {
                "setting": label,
                "mean_line_length": round(statistics.fmean(means), 2),
                "sd_across_seeds": round(statistics.stdev(means), 2) if seeds > 1 else None,
                "seed_means": [round(m, 1) for m in means],
                "lines": lines,
                "blank_lines": blank,
            }
        )
    print(f"{ckpt.name}: {seeds} seeds x {length:,} characters each")
    print(f"{'setting':<20}{'mean line':>10}{'sd':>7}{'lines':>7}{'blank':>7}")
    for r in rows:
        print(f"{r['setting']:<20}{r['mean_line_length']:>10.1f}{r['sd_across_seeds']:>7.1f}{r['lines']:>7}{r['blank_lines']:>7}")
    print(json.dumps(rows))


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0], args[1], float(args[2]), float(args[3]), *(int(a) for a in args[4:]))
