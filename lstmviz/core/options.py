"""The numbers and lists a user gives by name (a command-line option, a call's argument):
each number's range and the one sentence a bad value gets live here, so every command that
takes ``--top`` or ``--max-chars`` refuses a bad one with the same words; and a comma list
is split one way."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError


@dataclass(frozen=True)
class Bounded:
    """A number that must lie in [low, high] (either end open when None)."""

    name: str  # as the user writes it, e.g. "--top"
    low: float | None = None
    high: float | None = None

    def check(self, value):
        """``value`` if it is in range (None, for "not given", passes); else the one sentence."""
        if value is None:
            return value
        shown = f"{value:g}" if isinstance(value, float) else value  # -1, as typed, not -1.0
        if (self.low is None or value >= self.low) and (self.high is None or value <= self.high):
            return value
        if self.low is not None and self.high is not None:
            raise ConfigError(f"{self.name} must be between {self.low:,} and {self.high:,}, not {shown}.")
        if self.low == 0:
            raise ConfigError(f"{self.name} must be 0 or more, not {shown}.")
        if self.low is not None:
            raise ConfigError(f"{self.name} must be at least {self.low:,}, not {shown}.")
        raise ConfigError(f"{self.name} must be at most {self.high:,}, not {shown}.")


TOP = Bounded("--top", low=1)  # rows listed: cells per feature, characters, neuron pairs
MAX_CHARS = Bounded("--max-chars", low=1)  # characters of a text to run on
MAX_ORDER = Bounded("--max-order", low=1, high=20)  # the n-gram baseline's highest order
LANES = Bounded("--lanes", low=1)  # documents run side by side
CONTROLS = Bounded("--controls", low=0, high=200)  # random neuron sets beside an ablation
SHARDS = Bounded("--shards", low=1)
LINE_LENGTH_SEEDS = Bounded("--line-lengths", low=2, high=1000)  # seeds per setting: two at least, for a spread
OLDER_THAN = Bounded("--older-than", low=0)  # days since a cached recording was used
WINDOW = Bounded("--window", low=1, high=5000)  # characters an attribution shares a value among
IG_STEPS = Bounded("--steps", low=2, high=1024)  # integrated gradients' interpolation steps


def comma_list(text: str | None) -> tuple[str, ...] | None:
    """``"h, c,"`` -> ``("h", "c")``: the items of a comma-separated list, stripped, empty
    ones dropped; None stays None (nothing given)."""
    if text is None:
        return None
    return tuple(item.strip() for item in str(text).split(",") if item.strip())
