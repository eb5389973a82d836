"""One result for every attribution method, as Captum's ``attribute(...)`` gives one shape
for all: the contribution of each character of the window, the target's value on the text
and on the baseline, and the completeness error (how far the contributions' sum is from
``value - baseline_value``; exact occlusion makes no claim to sum to it, so for occlusion it
only says how far from additive the unit is)."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

import numpy as np

from ...core.characters import name_of

TOP_LISTED = 5  # characters listed by to_text and under the HTML view


@dataclass(frozen=True)
class Attribution:
    target: str  # "L2.c.90", or "log p('x')" for a next-character log-probability
    pos: int  # the target's position in the text
    method: str  # ig | grad | occlusion
    start: int  # the position of the first character of the window
    text: str  # the window's characters, from start
    contributions: np.ndarray  # [len(text)] float: each character's share of value - baseline_value
    value: float  # the target on the text
    baseline_value: float  # the target with every character of the window replaced by the baseline
    baseline: str  # "zero embedding", or the character every one is replaced by, e.g. "' '"
    steps: int | None = None  # integrated gradients' interpolation steps
    neuron: str | None = None  # the unit attributed (None for a log-probability)
    logit: str | None = None  # the next character whose log-probability is attributed

    @property
    def delta(self) -> float:
        """Sum of the contributions minus (value - baseline_value): Captum's convergence delta."""
        return float(np.sum(self.contributions, dtype=np.float64)) - (self.value - self.baseline_value)

    @property
    def completeness_error(self) -> float:
        """|delta| relative to |value - baseline_value| (0 when both are 0)."""
        change = abs(self.value - self.baseline_value)
        return abs(self.delta) / change if change > 0 else (0.0 if self.delta == 0 else float("inf"))

    def top(self, k: int = TOP_LISTED) -> list[tuple[int, str, float]]:
        """The ``k`` characters of largest |contribution|: (position, character, contribution)."""
        order = np.argsort(-np.abs(self.contributions), kind="stable")[:k]
        return [(self.start + int(i), self.text[i], float(self.contributions[i])) for i in order]

    def to_json(self) -> dict:
        return {
            "neuron": self.neuron,
            "logit": self.logit,
            "pos": self.pos,
            "method": self.method,
            "start": self.start,
            "text": self.text,
            "contributions": [round(float(c), 6) for c in self.contributions],
            "value": self.value,
            "baseline_value": self.baseline_value,
            "baseline": self.baseline,
            "steps": self.steps,
            "completeness_error": _finite(self.completeness_error),
            "delta": self.delta,
        }

    def to_text(self, k: int = TOP_LISTED) -> str:
        method = f"{self.method} ({self.steps} steps)" if self.steps else self.method
        lines = [
            f"{self.target} at position {self.pos} = {self.value:+.4f}; with the window ({self.start}:"
            f"{self.start + len(self.text)}) all {self.baseline}: {self.baseline_value:+.4f}",
            f"method {method}: contributions sum to {float(np.sum(self.contributions)):+.4f}, "
            f"completeness error {100 * self.completeness_error:.1f}%",
            f"the {k} characters that count most:",
        ]
        for position, ch, c in self.top(k):
            context = self.text[max(0, position - self.start - 12) : position - self.start + 1]
            lines.append(f"  {position:>8}  '{name_of(ch)}'  {c:+.4f}   ...{context!r}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """The window shaded by contribution (red raises the target, blue lowers it; the
        strongest full colour), inline styles only, the top characters listed below."""
        scale = float(np.max(np.abs(self.contributions))) or 1.0
        spans = []
        for i, (ch, c) in enumerate(zip(self.text, self.contributions, strict=True)):
            alpha = min(1.0, abs(float(c)) / scale)
            rgb = "178,24,43" if c > 0 else "33,102,172"
            title = f"position {self.start + i}  '{name_of(ch)}'  {float(c):+.4f}"
            shown = "⏎\n" if ch == "\n" else ch
            style = f"background:rgba({rgb},{alpha:.3f})"
            spans.append(f'<span style="{style}" title="{escape(title)}">{escape(shown)}</span>')
        listed = ", ".join(f"'{escape(name_of(ch))}' at {p} {c:+.3f}" for p, ch, c in self.top())
        head = (
            f"{escape(self.target)} at {self.pos} = {self.value:+.3f} ({escape(self.method)}; baseline "
            f"{escape(self.baseline)}: {self.baseline_value:+.3f}; completeness error {100 * self.completeness_error:.1f}%)"
        )
        return (
            f'<div class="lstmviz-attribution"><div style="font:12px sans-serif;color:#555;margin:2px 0">{head}</div>'
            '<pre style="white-space:pre-wrap;font:13px/1.45 ui-monospace,monospace;margin:0;padding:6px;'
            f'background:#fff;border:1px solid #ddd">{"".join(spans)}</pre>'
            f'<div style="font:12px sans-serif;color:#555;margin:2px 0">most: {listed}</div></div>'
        )


def _finite(x: float) -> float | None:
    return x if np.isfinite(x) else None
