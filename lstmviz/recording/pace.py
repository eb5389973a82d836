"""How long a recording has left, measured on this machine as it runs: the first block's
rate at first, then the rate since that block (the first one also pays for warm-up: memory
first touched, kernels first compiled), so the estimate follows what this machine does
rather than a constant written for another one."""

from __future__ import annotations

import time
from collections.abc import Callable


class Pace:
    """Characters done of ``total``, timed by ``clock`` (seconds) from when it is made, and
    the time left."""

    def __init__(self, total: int = 0, clock: Callable[[], float] = time.perf_counter):
        self.total, self.clock = total, clock
        self.done = 0
        self.started = self.latest = clock()
        self.first: tuple[int, float] | None = None  # (characters, time) when the first block ended

    def reached(self, done: int, total: int | None = None) -> None:
        """``done`` characters are done (of ``total``, when it is first known here)."""
        self.done, self.latest = done, self.clock()
        self.total = self.total if total is None else total
        if self.first is None:
            self.first = (done, self.latest)

    def rate(self) -> float | None:
        """Characters a second: the first block's until another one is done, then the rate
        since the first block ended; None before a block is done, or when no time passed."""
        if self.first is None:
            return None
        chars, ended = self.first
        if self.done > chars:
            since, seconds = self.done - chars, self.latest - ended
        else:
            since, seconds = chars, ended - self.started
        return since / seconds if seconds > 0 else None

    def seconds_left(self) -> float | None:
        """The time the characters left take at :meth:`rate`, or None before it is measured."""
        rate = self.rate()
        return None if rate is None else (self.total - self.done) / rate

    def left_text(self) -> str:
        """The time left, as the progress bars say it."""
        left = self.seconds_left()
        if left is None:
            return "timing the first block"
        return f"about {max(round(left), 1)} s left" if left < 90 else f"about {left / 60:.0f} min left"


def paced(
    report: Callable[[float, str], None], note: str, clock: Callable[[], float] = time.perf_counter
) -> Callable[[int, int], None]:
    """An ``on_progress(done, total)`` for a recording starting now, that tells ``report``
    the fraction done and ``note`` with the time left."""
    pace = Pace(clock=clock)

    def on_progress(done: int, total: int) -> None:
        pace.reached(done, total)
        report(done / max(total, 1), f"{note}; {pace.left_text()}")

    return on_progress
