"""The thread policy, decided here and nowhere else: how many cores lstmviz uses, how many
threads torch's kernels run in each thread, and where a server's model work runs.

Every thread that runs PyTorch's CPU kernels gets an OpenMP team of its own, and the teams'
idle workers compete for the cores: measured on 2 cores, the fused ``nn.LSTM`` over 256
characters takes 5 ms on the main thread, but 19-21 ms on a second thread, and on the main
thread too once a second thread has made a team. Hence:

- Model work a server's requests ask for runs on the process's main thread
  (:class:`MainThread`): ``lstmviz serve`` runs the web server on other threads and keeps
  the main thread for the model (a request hands it a function and waits). Recording 2,000
  typed characters then takes 165-205 ms, not 380-470.
- Every other thread that runs kernels runs them on one thread (:func:`one_thread_here`, a
  setting of that thread only), so it makes no second team.
- Work cut into parts (rankings, neuron summaries) spreads over every core from the main
  thread (a command, a notebook cell, a server's start-up), and stays on the calling thread
  anywhere else (a server's requests and jobs already run side by side): :func:`fan_out`.
- Nothing changes a process-wide thread setting, except in a process of its own, such as a
  Ray worker (:func:`use_torch_threads`).

Torch is imported only by the functions that need it, so reading a store loads none.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def cores() -> int:
    """The cores this process may run on (its CPU affinity: what a container or ``taskset``
    allows, not all the machine has)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # no affinity on this system (macOS)
        return os.cpu_count() or 1


def fan_out() -> int:
    """How many threads work cut into parts may use from the calling thread: every core
    from the main thread, one (the caller itself) from any other."""
    return cores() if threading.current_thread() is threading.main_thread() else 1


def map_threads(fn: Callable[[T], R], items: Iterable[T], threads: int | None = None) -> Iterator[R]:
    """``fn`` of each item, in order, on ``threads`` threads (default: :func:`fan_out`),
    each running torch's kernels on one thread: the threads are the parallelism, and torch's
    own threads inside each would oversubscribe the cores (ranking 1M characters x 1,536
    neurons: 11.6 s with them, 8.5 s without). One thread: the calling one, as it is."""
    threads = threads or fan_out()
    if threads == 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(threads, thread_name_prefix="lstmviz-part", initializer=one_thread_here) as pool:
        yield from pool.map(fn, items)


def _symbol(libraries: list, name: str):
    """``name`` from the first of ``libraries`` (paths) that loads and has it, or None."""
    for library in filter(None, libraries):
        try:
            return getattr(ctypes.CDLL(str(library)), name)
        except (OSError, AttributeError):
            continue
    return None


@cache
def _thread_count_setters() -> tuple[Callable[[int], object], ...]:
    """The calls that set the calling thread's own thread count: in the OpenMP runtime torch
    uses (its own copy of libgomp, else the system's) and in the MKL torch links, if any."""
    import torch

    lib = Path(torch.__file__).parent / "lib"
    found = (
        _symbol([*sorted(lib.glob("libgomp*")), ctypes.util.find_library("gomp")], "omp_set_num_threads"),
        # MKL's C call (its lower-case alias in libtorch takes a pointer, as Fortran calls it)
        _symbol(sorted(lib.glob("libtorch_cpu*")), "MKL_Set_Num_Threads_Local"),
    )
    return tuple(f for f in found if f is not None)


def one_thread_here() -> None:
    """The calling thread runs torch's kernels on one thread (its own setting, not the
    process's), so it makes no OpenMP team to compete with the main thread's."""
    import torch

    # Torch sets a thread's count from the process's the first time the thread asks for it;
    # asking first keeps this setting from being overwritten then.
    torch.get_num_threads()
    for set_count in _thread_count_setters():
        set_count(1)


def use_torch_threads(threads: int) -> None:
    """Torch runs ``threads`` threads in every thread of this process: only for a process
    of its own (a Ray worker); in a server it would change the count under other work."""
    import torch

    torch.set_num_threads(threads)


class MainThread:
    """Runs functions on the main thread while :meth:`serve` loops there; until then (tests,
    notebooks, the Python API), a function runs on the thread that asks."""

    def __init__(self) -> None:
        self._work: queue.Queue[tuple[Callable, Future]] = queue.Queue()
        self._serving = False

    @property
    def serving(self) -> bool:
        """Whether :meth:`serve` is looping on the main thread now."""
        return self._serving

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
