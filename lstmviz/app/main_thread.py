"""Model work asked for by a request runs on the process's main thread.

Every thread that runs PyTorch's CPU kernels gets an OpenMP team of its own, and on 2 cores
the teams' idle workers compete: measured here, the fused ``nn.LSTM`` over 256 characters
takes 5 ms on the main thread, but 19-21 ms on a second thread, and on the main thread too
once a second thread has made a team. So ``lstmviz serve`` runs the web server on other
threads and keeps the main thread for the model (a request hands it a function and waits),
and every other thread runs its own kernels on one thread (:func:`one_thread_here`), so no
second team is made: recording 2,000 typed characters then takes 165-205 ms, not 380-470.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from functools import cache
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


@cache
def _openmp():
    """The OpenMP runtime PyTorch uses (its own copy of libgomp, else the system's), or None."""
    import torch

    for candidate in [*sorted((Path(torch.__file__).parent / "lib").glob("libgomp*")), ctypes.util.find_library("gomp")]:
        if candidate:
            try:
                return ctypes.CDLL(str(candidate))
            except OSError:
                continue
    return None


def one_thread_here() -> None:
    """OpenMP's thread count for the calling thread only (its own setting, not the process's):
    kernels run here use this thread alone and make no team to compete with the main one's."""
    runtime = _openmp()
    if runtime is not None:
        runtime.omp_set_num_threads(1)


class MainThread:
    """Runs functions on the main thread while :meth:`serve` loops there; until then (tests,
    notebooks, the Python API), a function runs on the thread that asks."""

    def __init__(self) -> None:
        self._work: queue.Queue[tuple[Callable, Future]] = queue.Queue()
        self._serving = False

    def run(self, fn: Callable[[], T]) -> T:
        if not self._serving or threading.current_thread() is threading.main_thread():
            return fn()
        done: Future = Future()
        self._work.put((fn, done))
        return done.result()

    def serve(self, stop: threading.Event) -> None:
        """On the main thread: run what requests hand over until ``stop`` is set (Ctrl-C
        arrives here, as a KeyboardInterrupt)."""
        self._serving = True
        try:
            while not stop.is_set():
                try:
                    fn, done = self._work.get(timeout=0.5)
                except queue.Empty:
                    continue
                if done.set_running_or_notify_cancel():
                    try:
                        done.set_result(fn())
                    except BaseException as exc:  # the request that asked shows it
                        done.set_exception(exc)
        finally:
            self._serving = False
