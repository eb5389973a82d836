"""The thread policy (lstmviz.core.runtime): how many threads work uses, and where."""

import os
import re
import subprocess
import sys
import threading
import time

import pytest
import torch

from lstmviz.core.runtime import MainThread, cores, fan_out, map_threads, one_thread_here


def _in_a_thread(fn):
    """``fn()`` on a new thread; its result (or its exception, raised here)."""
    out = {}

    def body():
        try:
            out["result"] = fn()
        except BaseException as exc:  # shown by the test that asked
            out["error"] = exc

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["result"]


def _mkl_threads() -> int | None:
    """What MKL reports for the calling thread (torch's own report), or None without MKL."""
    found = re.search(r"mkl_get_max_threads\(\) : (\d+)", torch.__config__.parallel_info())
    return int(found.group(1)) if found else None


@pytest.fixture
def two_torch_threads():
    """The process's torch thread count set to 2, as a user's script may, then put back."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_the_policy_loads_no_torch():
    code = "import sys, lstmviz.core.runtime as r; r.cores(); r.fan_out(); print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False"]


def test_cores_are_those_this_process_may_run_on():
    assert cores() == len(os.sched_getaffinity(0))


def test_work_fans_out_from_the_main_thread_only():
    assert fan_out() == cores()
    assert _in_a_thread(fan_out) == 1


def test_one_thread_here_holds_for_the_calling_thread_only(two_torch_threads):
    def counts():
        one_thread_here()
        return torch.get_num_threads(), _mkl_threads()

    # The first torch call in a new thread takes the process's count (2): set before it, a
    # count of 1 would be overwritten; one_thread_here must survive it.
    omp, mkl = _in_a_thread(counts)
    assert omp == 1
    assert mkl in (1, None)
    assert torch.get_num_threads() == 2  # the main thread's count is its own


def test_map_threads_keeps_order_and_runs_each_part_on_one_torch_thread(two_torch_threads):
    def where(i):
        return i, threading.current_thread().name, torch.get_num_threads()

    seen = list(map_threads(where, range(40), threads=2))
    assert [i for i, _, _ in seen] == list(range(40))
    assert {name for _, name, _ in seen} <= {f"lstmviz-part_{k}" for k in range(2)}
    assert {threads for _, _, threads in seen} == {1}
    assert torch.get_num_threads() == 2  # no process-wide setting changed


def test_map_threads_off_the_main_thread_stays_on_the_calling_thread():
    def run():
        caller = threading.current_thread().name
        return caller, {name for name in map_threads(lambda _: threading.current_thread().name, range(5))}

    caller, names = _in_a_thread(run)
    assert names == {caller}


def test_a_ranking_leaves_torch_threads_as_they_were(tiny_store, two_torch_threads):
    from lstmviz.analysis.rankings import rank_neurons
    from lstmviz.text.features import store_features

    features = store_features(tiny_store)
    here = rank_neurons(tiny_store, features, ("h", "c"))
    assert torch.get_num_threads() == 2
    elsewhere = _in_a_thread(lambda: rank_neurons(tiny_store, features, ("h", "c")))
    for name, ranking in here.items():
        assert ranking.table.equals(elsewhere[name].table)


def test_model_work_handed_to_the_serving_main_thread_runs_there():
    main = MainThread()
    stop = threading.Event()
    answers = []

    def request():
        while not main.serving:
            time.sleep(0.01)
        answers.append(main.run(lambda: threading.current_thread() is threading.main_thread()))
        try:
            main.run(lambda: 1 / 0)
        except ZeroDivisionError:
            answers.append("raised in the request")
        stop.set()

    asker = threading.Thread(target=request)
    asker.start()
    main.serve(stop)
    asker.join()
    assert answers == [True, "raised in the request"]
    assert _in_a_thread(lambda: main.run(lambda: threading.current_thread() is threading.main_thread())) is False


def test_the_dashboard_runs_one_job_per_core():
    from lstmviz.app.jobs import Jobs

    assert Jobs().workers == cores()
