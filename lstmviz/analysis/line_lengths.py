"""How long the lines are that a model writes, with neurons held and with nothing held, over
several seeds: the test of a line-length cell that sampling gives (Karpathy et al., 2015,
sec. 5: a cell that counts the characters into a line should, held low, make the model write
longer lines, and held high, shorter ones).

A line is the text between two newlines the model wrote; the unfinished last one is left
out, and so is the first when the prime stops inside a line (its start was not written).
Blank lines (paragraph breaks) are counted apart, not as lines of length 0.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from ..core.options import LINE_LENGTH_SEEDS
from ..model.checkpoint import Checkpoint
from ..model.sampling import sample


@dataclass
class WrittenLines:
    """The lines of one generated text."""

    lengths: list[int]  # characters of each line that holds more than blanks
    blank: int  # lines of nothing but blanks

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.lengths) if self.lengths else None


def written_lines(generated: str, prime: str = "") -> WrittenLines:
    """The finished lines of ``generated``, the text a model wrote after ``prime``."""
    lines = generated.split("\n")[:-1]
    if prime and not prime.endswith("\n"):
        lines = lines[1:]
    return WrittenLines([len(line) for line in lines if line.strip()], sum(1 for line in lines if not line.strip()))


@dataclass
class LineLengths:
    """The mean line length of each seed's text under one setting (free, or neurons held)."""

    setting: str  # "free", or the held neurons as "L2.c.48=-3"
    seeds: list[int]
    seed_means: list[float | None]  # None: that seed wrote no finished line
    lines: int
    blank_lines: int

    @property
    def mean(self) -> float | None:
        means = [m for m in self.seed_means if m is not None]
        return statistics.fmean(means) if means else None

    @property
    def sd(self) -> float | None:
        """The standard deviation of the seeds' means: how much the figure moves with the seed."""
        means = [m for m in self.seed_means if m is not None]
        return statistics.stdev(means) if len(means) > 1 else None

    def to_json(self) -> dict:
        return {
            "setting": self.setting,
            "mean_line_length": _rounded(self.mean),
            "sd_across_seeds": _rounded(self.sd),
            "seed_means": [_rounded(m) for m in self.seed_means],
            "seeds": self.seeds,
            "lines": self.lines,
            "blank_lines": self.blank_lines,
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def held_setting(clamp: dict | None = None, ablate=None) -> str:
    """The name of a setting: the held neurons as typed on the command line, or "free"."""
    held = [f"{n}={v:g}" for n, v in (clamp or {}).items()] + [f"{n}=0" for n in ablate or []]
    return ", ".join(held) or "free"


def line_lengths(
    ckpt: Checkpoint,
    seeds: list[int],
    clamp: dict | None = None,
    ablate=None,
    prime: str = "",
    length: int = 2000,
    temperature: float = 1.0,
    top_k: int | None = None,
) -> LineLengths:
    """Sample ``length`` characters once per seed with ``clamp`` and ``ablate`` held (as
    :func:`~lstmviz.model.sampling.sample`) and measure the lines written."""
    LINE_LENGTH_SEEDS.check(len(seeds))
    means, lines, blank = [], 0, 0
    for seed in seeds:
        text = sample(ckpt, prime, length, temperature, top_k, seed, clamp, ablate).generated
        written = written_lines(text, prime)
        means.append(written.mean)
        lines, blank = lines + len(written.lengths), blank + written.blank
    return LineLengths(held_setting(clamp, ablate), list(seeds), means, lines, blank)


def line_lengths_text(rows: list[LineLengths], length: int) -> str:
    """The rows as a small table: the mean line length per setting, with its spread over the seeds."""

    def shown(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    seeds = rows[0].seeds
    lines = [
        f"mean line length over {len(seeds)} seeds ({seeds[0]}-{seeds[-1]}), {length:,} characters each",
        f"  {'setting':<24}{'mean':>8}{'sd':>7}{'lines':>7}{'blank':>7}  seed means",
    ]
    for r in rows:
        per_seed = " ".join(shown(m) for m in r.seed_means)
        lines.append(f"  {r.setting:<24}{shown(r.mean):>8}{shown(r.sd):>7}{r.lines:>7}{r.blank_lines:>7}  {per_seed}")
    return "\n".join(lines)
