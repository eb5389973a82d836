"""How the benchmarks measure and report: timing, child processes (a real module run with
``python -m``, as a user runs it, for its own time and peak memory), a dashboard served in
a child process, and the result every benchmark returns: its figures beside their targets,
with the machine and the time it was measured (``docs/bench-result.schema.json``).

    python -m lstmviz.bench.harness MODULE [ARGS...]

runs ``python -m MODULE ARGS`` and prints the process's peak memory to stderr at exit."""

from __future__ import annotations

import atexit
import math
import os
import platform
import runpy
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from ..core.errors import LstmvizError
from ..core.runtime import cores

PEAK_MARK = "lstmviz-peak-mb"  # the line on a child's stderr that gives its peak memory


def timed(fn: Callable[[], object]) -> float:
    """Seconds ``fn()`` takes."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def peak_mb() -> float:
    """This process's own peak resident memory (VmHWM; ru_maxrss would include the parent's at fork)."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:"))


# -- the result every benchmark returns --------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def machine() -> dict:
    """The facts that make a time comparable: CPU model and cores, memory, torch and its threads."""
    import torch

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "cpu": _cpu_model(),
        "cores": cores(),
        "memory_gb": round(memory / 2**30, 1),
        "system": f"{platform.system()} {platform.machine()}",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def at_least(value: float, note: str | None = None) -> dict:
    """A target the figure must reach."""
    return {"at_least": value, **({"note": note} if note else {})}


def at_most(value: float, note: str | None = None) -> dict:
    """A target the figure must not pass."""
    return {"at_most": value, **({"note": note} if note else {})}


def result(benchmark: str, measures: str, figures: dict, targets: dict[str, dict] | None = None) -> dict:
    """A benchmark's result as ``--json`` prints it: what it is (``benchmark``, the words after
    ``lstmviz bench``), what it measures beside what, its figures, their targets (made by
    :func:`at_least` and :func:`at_most`), the machine and when."""
    unknown = sorted(set(targets or {}) - set(figures))
    if unknown:
        raise ValueError(f"targets for figures the result lacks: {unknown}")
    return {
        "benchmark": benchmark,
        "measures": measures,
        **figures,
        "targets": targets or {},
        "machine": machine(),
        "recorded": datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def target_text(target: dict) -> str:
    """A target as people write it: ``>= 0.95``, ``<= 10``, with its note."""
    text = f">= {target['at_least']:,}" if "at_least" in target else f"<= {target['at_most']:,}"
    return f"{text} ({target['note']})" if target.get("note") else text


def target_met(value, target: dict) -> bool | None:
    """Whether ``value`` meets ``target``; None where nothing was measured."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return None
    return value >= target["at_least"] if "at_least" in target else value <= target["at_most"]


def machine_text(facts: dict) -> str:
    """The machine in one line: CPU model, cores, memory, torch and its threads."""
    torch = f"torch {facts['torch']} with {facts['torch_threads']} threads"
    return f"{facts['cpu']}, {facts['cores']} cores, {facts['memory_gb']} GB, {torch}"


def format_table(result: dict) -> str:
    """A result as aligned ``key  value`` lines, for the terminal."""
    width = max(len(k) for k in result)
    lines = []
    for k, v in result.items():
        if k == "cells":  # one row per cell type
            lines += [f"{'':<{width}}  " + "  ".join(f"{name} {value}" for name, value in row.items()) for row in v]
            continue
        if k == "targets":
            v = ", ".join(f"{name} {target_text(t)}" for name, t in v.items()) or "none"
        elif k == "machine":
            v = machine_text(v)
        elif v is None or (isinstance(v, float) and not math.isfinite(v)):
            v = "n/a"
        lines.append(f"{k:<{width}}  {v}")
    return "\n".join(lines)


# -- child processes ---------------------------------------------------------------------------


def run_module(module: str, *args: str, failure: str) -> tuple[str, float]:
    """``python -m MODULE ARGS`` in its own process: its standard output and its peak
    resident memory (MB). If it fails, raises ``failure`` with the end of its errors."""
    child = subprocess.run([sys.executable, "-m", "lstmviz.bench.harness", module, *args], capture_output=True, text=True)
    if child.returncode:
        raise LstmvizError(f"{failure}: {child.stderr.strip()[-500:]}")
    peak = next(float(line.split()[1]) for line in child.stderr.splitlines() if line.startswith(PEAK_MARK))
    return child.stdout, peak


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_served(child: subprocess.Popen, log, base: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            log.seek(0)
            raise LstmvizError(f"The dashboard did not start: {log.read().decode(errors='replace').strip()}")
        try:
            urllib.request.urlopen(base + "/_dash-layout", timeout=2).read()
            return
        except OSError:
            time.sleep(0.3)
    raise LstmvizError(f"The dashboard did not answer within {timeout:.0f} s.")


@contextmanager
def served(store_path: Path, timeout: float = 300.0) -> Iterator[str]:
    """``lstmviz serve STORE`` in a child process (its own interpreter, as users run it), on
    a free loopback port: its URL once it answers; stopped on leaving."""
    base = f"http://127.0.0.1:{(port := _free_port())}"
    with tempfile.TemporaryFile() as log:  # never a pipe: a full pipe would stall the server's logging
        command = [sys.executable, "-m", "lstmviz.cli", "serve", str(store_path), "--port", str(port)]
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        try:
            _wait_until_served(child, log, base, timeout)
            yield base
        finally:
            child.terminate()
            child.wait()


def main(argv: list[str]) -> None:
    """Run module ``argv[0]`` as ``python -m`` does, with the arguments after it; at exit,
    print this process's peak memory to stderr."""
    atexit.register(lambda: print(PEAK_MARK, peak_mb(), file=sys.stderr))
    sys.argv = list(argv)
    runpy.run_module(argv[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
