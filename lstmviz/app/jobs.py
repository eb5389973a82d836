"""Long work started from a page (recording a checkpoint, training the n-gram baseline) runs
in a background thread; the page polls its progress with a ``dcc.Interval``.

A job is keyed by what it computes, so a second request for the same thing (another tab, a
reload) joins the running job instead of starting it again."""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import LstmvizError


@dataclass
class Job:
    key: str
    state: str = "running"  # running | done | failed
    fraction: float = 0.0
    message: str = "starting"
    result: object = None
    error: str | None = None

    def report(self, fraction: float, message: str) -> None:
        self.fraction, self.message = max(0.0, min(1.0, fraction)), message


@dataclass
class Jobs:
    _jobs: dict[str, Job] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, key: str, work: Callable[[Job], object]) -> Job:
        """Run ``work(job)`` in a thread unless a job with this key is running or done; a
        failed job is started again."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.state != "failed":
                return job
            job = self._jobs[key] = Job(key)

        def run() -> None:
            try:
                job.result = work(job)
                job.fraction, job.state = 1.0, "done"
            except LstmvizError as exc:
                job.error, job.state = str(exc), "failed"
            except Exception as exc:  # shown in the page as one line; the trace goes to the terminal
                traceback.print_exc()
                job.error, job.state = f"{type(exc).__name__}: {exc}", "failed"

        threading.Thread(target=run, name=f"lstmviz-job-{key}", daemon=True).start()
        return job

    def get(self, key: str) -> Job | None:
        return self._jobs.get(key)


def progress_bar(job: Job):
    """A job's progress as the pages show it."""
    from dash import html

    return html.Div([html.Progress(value=f"{job.fraction:.2f}", max="1"), html.Span(f"  {job.message}")], className="hint")
