"""How a sparse dictionary is trained and measured: the options a user gives, their ranges and
the one sentence a bad one gets (no torch here: the command line checks them as it parses)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..core.errors import ConfigError
from ..core.options import Bounded

SPLICE_CHARS = 20_000  # characters of the text the spliced bits per character are measured on

STEPS = Bounded("--steps", low=1, high=1_000_000)
K = Bounded("--k", low=1)
BATCH = Bounded("--batch", low=16, high=65_536)
SIZE_FACTOR = Bounded("--size (as a multiple of the units)", low=1, high=64)


@dataclass(frozen=True)
class DictionaryOptions:
    """How a dictionary is trained. ``size``: features, as ``"8x"`` (times the series'
    units) or a number; ``k``: features active per character."""

    size: str | int = "8x"
    k: int = 32
    steps: int = 1500  # 6 minutes for 8 x 384 features on 2 cores (bench dictionary)
    batch: int = 4096  # characters per step
    lr: float = 5e-4  # Adam's, on inputs of mean norm sqrt(units); decayed linearly over the last fifth
    seed: int = 0

    def features(self, units: int) -> int:
        """The number of features for a series of ``units``; a bad size or k is one sentence."""
        text = str(self.size).strip().lower()
        match = re.fullmatch(r"(\d+(?:\.\d+)?)x|(\d+)", text)
        if not match:
            raise ConfigError(f"--size takes a multiple of the units such as 8x, or a number of features, not {self.size!r}.")
        features = round(float(match.group(1)) * units) if match.group(1) else int(match.group(2))
        SIZE_FACTOR.check(features / units)
        if not 1 <= self.k < features:
            raise ConfigError(
                f"--k must be between 1 and {features - 1:,} (the dictionary has {features:,} features), not {self.k}."
            )
        STEPS.check(self.steps)
        BATCH.check(self.batch)
        return features
