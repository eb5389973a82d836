"""Colour scales: which colour a value of a series is painted, chosen per kind of series and
per neuron, so that a cell reads at a glance.

One palette everywhere (the paper's diverging RdBu: blue below the centre, white at it, red
above). A scale maps a value to a position in [0, 1] on it (0.5 at the centre) in one of
these ways, named in the dashboard and its URLs:

- ``fixed``: the series' own bounds: h, g and a GRU's n are in (-1, 1) (tanh); gates are
  in (0, 1) (sigmoid) and run sequentially from white at 0 to red at 1; a cell state c is
  unbounded, so ``fixed`` paints tanh(c) on -1..1, as Karpathy et al. (2015) do.
- ``split``: each side of zero its own range (the 1st and 99th percentiles of the
  neuron's whole series), so a cell that runs from -27 to +6 is as vivid on both sides.
- ``centred``: centred on the neuron's median, +-99th percentile of the distance from it.
- ``symmetric``: +-99th percentile of |value| around zero (the scale before per-neuron
  scales; one large side washes the other out).

The default was chosen by measuring (``lstmviz bench contrast``, figures in docs/results.md)
which scale makes the best cells of each binary feature most distinct between inside and
outside the feature: ``fixed`` for every kind (tanh(c) for c), except a c whose 1st to 99th
percentiles all lie where tanh is flat (say -149 to -5): tanh paints it one colour, so it
gets ``centred``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ..analysis.distribution import ValueStats, value_stats
from ..core.errors import ConfigError
from ..core.neurons import NeuronId, UnitId, parse_unit

COLOUR_STOPS = [  # plotly's RdBu, reversed: (position in [0, 1], (r, g, b))
    (0.0, (5, 48, 97)),
    (0.1, (33, 102, 172)),
    (0.2, (67, 147, 195)),
    (0.3, (146, 197, 222)),
    (0.4, (209, 229, 240)),
    (0.5, (247, 247, 247)),
    (0.6, (253, 219, 199)),
    (0.7, (244, 165, 130)),
    (0.8, (214, 96, 77)),
    (0.9, (178, 24, 43)),
    (1.0, (103, 0, 31)),
]
COLOUR_LEVELS = 255  # steps of the palette: a value is painted as one of 256 levels (a byte)
SCALES = ("fixed", "split", "centred", "symmetric")
MIN_TANH_SPREAD = 0.5  # tanh(q99) - tanh(q01) below this: tanh(c) is one colour, so centre instead
GATE_KINDS = frozenset("ifozr")  # sigmoid gates (LSTM i f o; GRU r z)
SCALE_HELP = {
    "fixed": "the series' own bounds (gates 0..1, h -1..1, tanh(c) -1..1)",
    "split": "each side of zero its own range (1st and 99th percentiles)",
    "centred": "centred on the median, ±99th percentile of the distance from it",
    "symmetric": "±99th percentile of |value| around zero",
}


@dataclass(frozen=True)
class ColourScale:
    """Values to positions on the palette: ``centre`` at 0.5, ``low`` at 0 and ``high`` at 1
    (linear on each side, clipped), after ``tanh`` when set. ``label`` says what is shown."""

    low: float
    centre: float
    high: float
    tanh: bool = False
    label: str = ""

    def positions(self, values) -> np.ndarray:
        v = np.asarray(values, dtype=np.float64)
        v = np.tanh(v) if self.tanh else v
        above = 0.5 + 0.5 * (v - self.centre) / _width(self.high - self.centre)
        below = 0.5 - 0.5 * (self.centre - v) / _width(self.centre - self.low)
        t = np.where(v >= self.centre, above, below)
        return np.clip(np.nan_to_num(t, nan=0.5), 0.0, 1.0)

    def levels(self, values) -> np.ndarray:
        """The palette level (0..255) of each value: what the painter colours by."""
        return np.floor(self.positions(values) * COLOUR_LEVELS + 0.5).astype(np.uint8)

    def colours(self, values) -> np.ndarray:
        """[n, 3] RGB of each value."""
        return LEVEL_RGB[self.levels(values)]

    def ends(self) -> tuple[str, str]:
        """The legend's two ends, in the units shown (a gate scale starts at its centre)."""
        low = self.centre if self.low >= self.centre else self.low
        return f"{low:+.2f}", f"{self.high:+.2f}"

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> ColourScale:
        return cls(**data)


def _width(w):
    return w if w > 0 else math.inf  # an empty side: every value on it sits at the centre


def default_scale(neuron: str, stats: ValueStats) -> str:
    """``fixed``, or ``centred`` for a cell state that tanh would paint in one colour."""
    flat = math.tanh(stats.q99) - math.tanh(stats.q01) < MIN_TANH_SPREAD
    unit = parse_unit(neuron)
    if not isinstance(unit, NeuronId):
        return "centred"  # a direction or dictionary feature has no fixed range
    return "centred" if unit.kind == "c" and flat else "fixed"


def checked_scale(name: str | None) -> str | None:
    """``name`` if it is a scale (None for the default), else one clear error."""
    if name in (None, "", "default"):
        return None
    if name not in SCALES:
        raise ConfigError(f"{name!r} is not a colour scale; choose one of {', '.join(SCALES)}.")
    return name


def scale_for(neuron: str, stats: ValueStats, name: str | None = None) -> ColourScale:
    """The colour scale ``name`` (default: the kind's) for ``neuron`` with ``stats``."""
    name = checked_scale(name) or default_scale(neuron, stats)
    kind = _neuron_kind(neuron)
    if name == "fixed":
        if kind in GATE_KINDS:
            return ColourScale(0.0, 0.0, 1.0, label=f"{neuron} (0..1)")
        return ColourScale(-1.0, 0.0, 1.0, tanh=kind == "c", label=f"tanh({neuron})" if kind == "c" else f"{neuron} (-1..1)")
    if name == "split":
        return ColourScale(min(stats.q01, 0.0), 0.0, max(stats.q99, 0.0), label=f"{neuron} (each side its own range)")
    if name == "centred":
        around = f"{neuron} (around its median)"
        return ColourScale(stats.median - stats.dev99, stats.median, stats.median + stats.dev99, label=around)
    return symmetric(stats.abs99, f"{neuron} (±99th percentile)")


def _neuron_kind(unit: str) -> str:
    """A neuron's kind, whose range the fixed scale knows; "" for other units."""
    parsed = parse_unit(unit)
    return parsed.kind if isinstance(parsed, NeuronId) else ""


def symmetric(limit: float, label: str = "") -> ColourScale:
    limit = limit if limit > 0 and math.isfinite(limit) else 1.0
    return ColourScale(-limit, 0.0, limit, label=label)


def symmetric_of(values, label: str = "") -> ColourScale:
    """+-99th percentile of |value| of ``values`` themselves: for a series with no stored
    statistics (generated text, bits saved over the n-gram)."""
    finite = np.abs(np.asarray(values, dtype=np.float64))
    finite = finite[np.isfinite(finite)]
    return symmetric(float(np.percentile(finite, 99)) if finite.size else 1.0, label)


def _palette(t: float) -> tuple[int, int, int]:
    for (t0, c0), (t1, c1) in zip(COLOUR_STOPS, COLOUR_STOPS[1:], strict=False):
        if t <= t1:
            f = (t - t0) / (t1 - t0)
            return tuple(round(a + (b - a) * f) for a, b in zip(c0, c1, strict=True))
    return COLOUR_STOPS[-1][1]


LEVEL_RGB = np.array([_palette(k / COLOUR_LEVELS) for k in range(COLOUR_LEVELS + 1)], dtype=np.uint8)


def _luminance(rgb: np.ndarray) -> np.ndarray:
    c = rgb / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return lin @ np.array([0.2126, 0.7152, 0.0722])


LEVEL_DARK = _luminance(LEVEL_RGB.astype(np.float64)) < 0.18  # white letters read better on these


def level_table() -> list[list]:
    """Each level's colour and whether its letters are white: the painter's classes."""
    return [[*map(int, rgb), bool(dark)] for rgb, dark in zip(LEVEL_RGB, LEVEL_DARK, strict=True)]


def lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (0..255) to CIELAB (D65)."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = lin @ np.array([[0.4124, 0.2126, 0.0193], [0.3576, 0.7152, 0.1192], [0.1805, 0.0722, 0.9505]])
    xyz /= np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def contrast(scale: ColourScale, values, inside: np.ndarray) -> float:
    """How distinct a feature looks as painted: the CIELAB distance (Delta E 1976) between
    the average colour of the characters inside it and of those outside (0: the same; about
    2: just noticeable; over 50: e.g. white against mid red)."""
    levels = scale.levels(values)
    counts_in = np.bincount(levels[inside], minlength=COLOUR_LEVELS + 1)
    counts_out = np.bincount(levels[~inside], minlength=COLOUR_LEVELS + 1)
    colours = lab(LEVEL_RGB)
    mean_in = counts_in @ colours / max(counts_in.sum(), 1)
    mean_out = counts_out @ colours / max(counts_out.sum(), 1)
    return float(np.linalg.norm(mean_in - mean_out))


def neuron_scale(store, neuron: str | UnitId, name: str | None = None) -> ColourScale:
    """The colour scale ``name`` (default: chosen for the unit) of ``neuron`` over ``store``."""
    return scale_for(str(parse_unit(neuron)), value_stats(store, neuron), name)


def neuron_scales(store, neurons, name: str | None = None) -> list[ColourScale]:
    return [neuron_scale(store, n, name) for n in neurons]
