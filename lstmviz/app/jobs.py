"""Long work started from a page (recording a checkpoint, fitting the n-gram baseline,
comparing models, measuring an effect, exporting a figure) waits in one bounded queue and
runs on a fixed number of worker threads; the page polls its progress, or its place in the
queue, with a ``dcc.Interval``.

A job is keyed by what it computes, so a second request for the same thing (another tab, a
reload) joins the queued or running job instead of starting it again. Finished jobs are kept
for the pages to read, the oldest dropped beyond ``keep``; what they computed is cached on
disk where it is worth keeping, so a dropped job is cheap to ask for again."""

from __future__ import annotations

import threading
import traceback
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from ..core.errors import LstmvizError
from ..core.runtime import cores, one_thread_here

MAX_QUEUED = 32  # jobs waiting; more are refused with a message
KEEP = 32  # finished jobs kept


@dataclass
class Job:
    key: str
    work: Callable[[Job], object] | None = None
    state: str = "queued"  # queued | running | done | failed
    fraction: float = 0.0
    message: str = "waiting"
    result: object = None
    error: str | None = None
    position: int = 0  # jobs ahead of this one while queued

    def report(self, fraction: float, message: str) -> None:
        self.fraction, self.message = max(0.0, min(1.0, fraction)), message


class Jobs:
    """The queue and its workers (started on first use): by default one per core, each
    running torch on one thread."""

    def __init__(self, workers: int | None = None, max_queued: int = MAX_QUEUED, keep: int = KEEP):
        self.workers, self.max_queued, self.keep = workers or cores(), max_queued, keep
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._queue: deque[Job] = deque()
        self._ready = threading.Condition()
        self._threads: list[threading.Thread] = []

    def start(self, key: str, work: Callable[[Job], object]) -> Job:
        """Queue ``work(job)`` unless a job with this key is queued, running or done; a failed
        one is queued again. A full queue is an error the page shows."""
        with self._ready:
            job = self._jobs.get(key)
            if job is not None and job.state != "failed":
                self._jobs.move_to_end(key)
                return job
            if len(self._queue) >= self.max_queued:
                raise LstmvizError(f"The server has {len(self._queue)} jobs waiting already; try again in a minute.")
            job = self._jobs[key] = Job(key, work)
            self._queue.append(job)
            self._positions()
            self._evict()
            while len(self._threads) < self.workers:
                thread = threading.Thread(target=self._serve, name=f"lstmviz-worker-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
            self._ready.notify()
            return job

    def run(self, key: str, work: Callable[[Job], object], timeout: float = 120.0):
        """Queue ``work`` and wait for its result (for work a request must answer, such as an
        export): it still takes its turn in the bounded queue."""
        job = self.wait(self.start(key, work), timeout)
        if job.state == "failed":
            raise LstmvizError(job.error or "The job failed.")
        if job.state != "done":
            raise LstmvizError(f"The server is busy ({job.position} jobs ahead); try again in a minute.")
        return job.result

    def wait(self, job: Job, timeout: float) -> Job:
        """``job``, once it is done or failed or ``timeout`` seconds have passed (then it is
        still queued or running: a page shows its progress instead of waiting longer)."""
        with self._ready:
            self._ready.wait_for(lambda: job.state in ("done", "failed"), timeout)
        return job

    def get(self, key: str) -> Job | None:
        return self._jobs.get(key)

    def unfinished(self) -> list[Job]:
        """The jobs queued or running now."""
        with self._ready:
            return [j for j in self._jobs.values() if j.state in ("queued", "running")]

    def _positions(self) -> None:
        for ahead, job in enumerate(self._queue):
            job.position = ahead

    def _evict(self) -> None:
        finished = [k for k, j in self._jobs.items() if j.state in ("done", "failed")]
        for key in finished[: max(0, len(finished) - self.keep)]:
            del self._jobs[key]

    def _serve(self) -> None:
        one_thread_here()  # no OpenMP team of its own to slow the main thread's (core/runtime.py)
        while True:
            with self._ready:
                self._ready.wait_for(lambda: self._queue)
                job = self._queue.popleft()
                self._positions()
                job.state, job.message = "running", "starting"
            try:
                result, error, state = job.work(job), None, "done"
            except LstmvizError as exc:
                result, error, state = None, str(exc), "failed"
            except Exception as exc:  # shown in the page as one line; the trace goes to the terminal
                traceback.print_exc()
                result, error, state = None, f"{type(exc).__name__}: {exc}", "failed"
            with self._ready:
                job.result, job.error, job.work = result, error, None
                job.fraction = 1.0 if state == "done" else job.fraction
                job.state = state
                self._evict()
                self._ready.notify_all()


def progress_bar(job: Job):
    """A job's progress, or its place in the queue, as the pages show it."""
    from dash import html

    if job.state == "queued":
        return html.Div(f"Waiting in the queue: {job.position} job(s) ahead.", className="hint")
    return html.Div([html.Progress(value=f"{job.fraction:.2f}", max="1"), html.Span(f"  {job.message}")], className="hint")
