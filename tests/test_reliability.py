"""Nothing lost, nobody in, no hang. Parsers fed arbitrary input raise only our own error;
damaged files are one clear error; killed writers leave a complete result or nothing that is
reused; racing writers end with one valid store; the server's work is bounded; a wheel
installed outside the tree carries the model and the painter; off loopback a token is asked."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lstmviz
from lstmviz.app.catalog import Catalog
from lstmviz.app.jobs import Jobs
from lstmviz.app.pages import heatmap as heatmap_page
from lstmviz.app.pages.discover import marked_characters
from lstmviz.app.view_state import parse_query
from lstmviz.cli.main import main
from lstmviz.core.errors import LstmvizError
from lstmviz.core.neurons import NeuronId, parse_neurons
from lstmviz.model.checkpoint import load_checkpoint
from lstmviz.model.interventions import Mode, parse_assignments
from lstmviz.recording.recorder import record_activations
from lstmviz.recording.sources import cache_entries, clear_cache, recorded
from lstmviz.render.figures import parse_range
from lstmviz.store.format import FILES
from lstmviz.store.open import open_store
from lstmviz.text.corpus import Document
from lstmviz.text.features import parse_feature_option, regex_feature

LIKELY = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"L-?\d{0,3}\.[a-z]{0,2}\.-?\d{0,4}", fullmatch=True),
    st.from_regex(r"-?\d{0,6}:-?\d{0,6}", fullmatch=True),
    st.from_regex(r"(L\d\.[a-z]\.\d+[=:][-+.e\d]{0,6},?){0,3}", fullmatch=True),
)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _only_our_error(fn, *args) -> None:
    try:
        fn(*args)
    except LstmvizError:
        pass


@FAST
@given(LIKELY)
def test_text_parsers_raise_only_our_error(text):
    _only_our_error(NeuronId.parse, text)
    _only_our_error(parse_neurons, text)
    _only_our_error(parse_range, text, 1000)
    _only_our_error(parse_assignments, [text])
    _only_our_error(Mode.parse, text)
    _only_our_error(parse_feature_option, text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_any_regex_is_matched_or_refused_in_time(pattern):
    text = "def f(x):\n    return 'a' * 30 + \"b\"  # done\n" * 20
    started = time.perf_counter()
    try:
        regex_feature(pattern, timeout=0.2)(text)
    except LstmvizError:
        pass
    assert time.perf_counter() - started < 5


def test_a_catastrophic_regex_is_stopped_with_a_message():
    with pytest.raises(LstmvizError, match="ran for more than 0.5 s"):
        regex_feature(r"(a+)+$", timeout=0.5)("a" * 5000 + "!")


@FAST
@given(st.dictionaries(st.sampled_from(["store", "neurons", "range", "regex", "pos"]), LIKELY, max_size=4))
def test_url_parameters_raise_only_our_error(tiny_store, query):
    catalog = Catalog.of([tiny_store])
    search = "?" + urlencode(query)
    assert isinstance(parse_query(search), dict)
    _only_our_error(heatmap_page._view, catalog, search)
    if query.get("range") or query.get("regex"):  # the page asks only then
        _only_our_error(marked_characters, tiny_store, query.get("range"), None if query.get("range") else query["regex"])


# -- damaged files --------------------------------------------------------------------------------


def _damage(path: Path, rng: random.Random) -> str:
    data = bytearray(path.read_bytes())
    if rng.random() < 0.5 or not data:
        cut = rng.randrange(len(data)) if data else 0  # strictly shorter
        path.write_bytes(bytes(data[:cut]))
        return "truncated"
    for _ in range(rng.randint(1, 4)):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))
    return "flipped"


def test_damaged_checkpoints_are_one_clear_error_or_still_load(tiny_checkpoint, tmp_path):
    import shutil

    rng, outcomes = random.Random(0), {"error": 0, "loads": 0}
    for trial in range(40):
        copy = tmp_path / f"c{trial}"
        shutil.copytree(tiny_checkpoint, copy, ignore=shutil.ignore_patterns("snapshots"))
        how = _damage(copy / rng.choice(["config.json", "model.safetensors", "history.json"]), rng)
        try:
            ckpt = load_checkpoint(copy)
            ckpt.model(torch.zeros(1, 3, dtype=torch.long))
            outcomes["loads"] += 1
            assert how == "flipped"  # a cut file never loads
        except LstmvizError as exc:
            assert "\n" not in str(exc)
            outcomes["error"] += 1
    assert outcomes["error"] > 10


def test_damaged_stores_are_one_clear_error_or_still_read(tiny_store, tmp_path):
    import shutil

    rng, errors = random.Random(1), 0
    for trial in range(40):
        copy = tmp_path / f"s{trial}"
        shutil.copytree(tiny_store.path, copy, ignore=shutil.ignore_patterns("*-v1*"))
        how = _damage(copy / rng.choice(["meta.json", *FILES]), rng)
        try:
            store = open_store(copy, verify_checkpoint=False)
            store.text(0, len(store))
            store.neuron(store.neuron_ids()[-1], 0, len(store))
            store.predictions(0, len(store))
            assert how == "flipped"
        except LstmvizError as exc:
            assert "\n" not in str(exc)
            errors += 1
    assert errors > 10


# -- killed writers ---------------------------------------------------------------------------------


def _cli(*args) -> list[str]:
    return [sys.executable, "-m", "lstmviz.cli", *map(str, args)]


def _kill_at_random(args, rng, cwd, longest: float = 4.0) -> None:
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd)
    time.sleep(rng.uniform(0.3, longest))
    process.send_signal(signal.SIGKILL)
    process.wait()


def test_killed_recordings_leave_a_complete_store_or_nothing(tiny_checkpoint, corpus_dir, tmp_path):
    rng = random.Random(2)
    reference = record_activations(
        load_checkpoint(tiny_checkpoint),
        lstmviz.load_corpus([str(corpus_dir)]).documents,
        tmp_path / "reference",
        lanes=4,
        progress=False,
    )
    out, complete = tmp_path / "killed.store", 0
    record = _cli("record", tiny_checkpoint, corpus_dir, "--out", out, "--overwrite", "--lanes", 4)
    started = time.perf_counter()
    subprocess.run(record, check=True, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    whole = time.perf_counter() - started  # kills fall before, during and after the writing, however busy the machine
    shutil.rmtree(out)
    for _ in range(12):
        _kill_at_random(record, rng, tmp_path, longest=1.4 * whole)
        if out.exists():  # a store there is whole, and right
            store = open_store(out)
            # The same values up to float16 rounding: the subprocess's BLAS may pick its threads
            # by load, which can move a value by one float16 step; a half-written store is far off.
            np.testing.assert_allclose(np.asarray(store.activations), np.asarray(reference.activations), rtol=2e-3, atol=1e-3)
            complete += 1
    subprocess.run(
        _cli("record", tiny_checkpoint, corpus_dir, "--out", out, "--overwrite", "--lanes", 4), check=True, cwd=tmp_path
    )
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".killed")] == []  # leftovers removed
    assert complete > 0


def test_killed_training_leaves_a_loadable_checkpoint_that_resumes(corpus_dir, tmp_path):
    rng = random.Random(3)
    out = tmp_path / "run"
    args = ["train", corpus_dir, "--out", out, "--hidden", 16, "--embed", 8, "--seq-len", 32, "--batch-size", 4]
    args += ["--steps", 600, "--eval-every", 100, "--save-every", 0.3]
    started = time.perf_counter()  # a one-step run: how long until a run can first save, however busy the machine
    subprocess.run(_cli(*args[:3], tmp_path / "one-step", *args[4:], "--steps", 1), check=True, cwd=tmp_path, capture_output=True)
    first_save = time.perf_counter() - started
    saved = 0
    for _ in range(12):
        _kill_at_random(_cli(*args, "--resume") if out.exists() else _cli(*args), rng, tmp_path, longest=2.5 * first_save)
        if out.exists():
            saved += 1
            load_checkpoint(out)  # never half-written
    steps = load_checkpoint(out).config["training"]["trained_steps"] if out.exists() else 0
    if steps < 600:
        done = subprocess.run(
            _cli(*args, "--resume") if out.exists() else _cli(*args), capture_output=True, text=True, cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr
    assert saved > 0 and load_checkpoint(out).config["training"]["trained_steps"] == 600


# -- racing writers ---------------------------------------------------------------------------------


def test_racing_writers_of_one_cached_store_end_with_one_valid_store(tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("LSTMVIZ_CACHE", str(tmp_path / "cache"))
    ckpt = load_checkpoint(tiny_checkpoint)
    docs = [Document(f"d{i}.py", f"def f(x):\n    return x + {i}\n" * 40) for i in range(30)]
    code = (
        "import sys; from lstmviz.model.checkpoint import load_checkpoint; from lstmviz.text.corpus import Document; "
        "from lstmviz.recording.sources import recorded; "
        "docs = [Document(f'd{i}.py', f'def f(x):\\n    return x + {i}\\n' * 40) for i in range(30)]; "
        f"recorded(load_checkpoint({str(tiny_checkpoint)!r}), docs, progress=False)"
    )
    env = {**os.environ, "LSTMVIZ_CACHE": str(tmp_path / "cache")}
    processes = [subprocess.Popen([sys.executable, "-c", code], env=env) for _ in range(2)]
    results = []
    threads = [threading.Thread(target=lambda: results.append(recorded(ckpt, docs, progress=False))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [p.wait() for p in processes] == [0, 0]
    reference = record_activations(ckpt, docs, tmp_path / "reference", progress=False)
    stores = cache_entries()
    assert len(stores) == 1
    final = open_store(stores[0].path)
    np.testing.assert_array_equal(np.asarray(final.activations), np.asarray(reference.activations))
    for store in results:
        np.testing.assert_array_equal(np.asarray(store.activations), np.asarray(reference.activations))
    assert [p.name for p in (tmp_path / "cache").iterdir() if "writing" in p.name] == []


# -- disk and cache -------------------------------------------------------------------------------


def test_only_h_and_c_recorded_take_a_third_and_the_disk_is_checked_first(tiny_checkpoint, corpus_dir, tmp_path, monkeypatch):
    result = CliRunner().invoke(
        main, ["record", str(tiny_checkpoint), str(corpus_dir), "--out", str(tmp_path / "hc"), "--series", "h,c"]
    )
    assert result.exit_code == 0, result.output
    store = open_store(tmp_path / "hc")
    assert [s.kind for s in store.series] == ["h", "c", "h", "c"]
    bad = CliRunner().invoke(main, ["record", str(tiny_checkpoint), "--out", str(tmp_path / "x"), "--series", "h,q"])
    assert bad.exit_code == 2 and "not q" in bad.output
    huge = tmp_path / "huge.txt"  # 10 GB, sparse: refused before a byte of it is read
    with open(huge, "wb") as f:
        f.truncate(10 * 2**30)
    refused = CliRunner().invoke(main, ["record", str(tiny_checkpoint), str(huge), "--out", str(tmp_path / "huge.store")])
    assert refused.exit_code == 2 and "needs about" in refused.output
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    full = CliRunner().invoke(main, ["record", str(tiny_checkpoint), str(corpus_dir), "--out", str(tmp_path / "full")])
    assert full.exit_code == 2 and "needs about" in full.output and "GB free" in full.output
    assert not (tmp_path / "full").exists()


def test_cache_list_and_clear(tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("LSTMVIZ_CACHE", str(tmp_path / "cache"))
    ckpt = load_checkpoint(tiny_checkpoint)
    recorded(ckpt, [Document("a.py", "x = 1\n" * 30)], progress=False)
    recorded(ckpt, [Document("b.py", "y = 2\n" * 30)], kinds=("h", "c"), progress=False)
    listing = CliRunner().invoke(main, ["cache", "list", "--json"])
    entries = json.loads(listing.output)["entries"]
    assert len(entries) == 2 and any(e["name"].endswith("-hc.store") for e in entries)
    assert CliRunner().invoke(main, ["cache", "clear", "--older-than", "1"]).output.startswith("removed 0 entries")
    assert clear_cache()[0] == 2 and cache_entries() == []
    assert CliRunner().invoke(main, ["cache", "clear", "--older-than", "-1"]).exit_code == 2


# -- the server's work ----------------------------------------------------------------------------


def _until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_jobs_wait_in_one_bounded_queue():
    jobs = Jobs(workers=1, max_queued=2, keep=2)
    gate = threading.Event()
    first = jobs.start("a", lambda job: gate.wait(10) and "a")
    _until(lambda: first.state == "running")  # the worker has taken it
    second = jobs.start("b", lambda job: "b")
    third = jobs.start("c", lambda job: "c")
    time.sleep(0.2)
    assert first.state == "running" and (second.state, second.position) == ("queued", 0) and third.position == 1
    with pytest.raises(LstmvizError, match="jobs waiting"):
        jobs.start("d", lambda job: "d")
    assert jobs.start("b", lambda job: "other") is second  # the same work joins the queued job
    gate.set()
    _until(lambda: third.state == "done")  # the queue has drained
    assert jobs.run("e", lambda job: "e") == "e"
    assert (first.result, second.result, third.result) == ("a", "b", "c")
    assert len([k for k in ("a", "b", "c", "e") if jobs.get(k) is not None]) == 2  # finished jobs evicted
    with pytest.raises(LstmvizError, match="boom"):
        jobs.run("f", lambda job: (_ for _ in ()).throw(LstmvizError("boom")))


def test_heatmaps_are_capped(tiny_store):
    from lstmviz.render.figures import MAX_HEATMAP_NEURONS, heatmap_figure

    neurons = [str(n) for n in tiny_store.neuron_ids()][: MAX_HEATMAP_NEURONS + 1]
    with pytest.raises(LstmvizError, match=f"at most {MAX_HEATMAP_NEURONS} neurons"):
        heatmap_figure(tiny_store, neurons, 0, 10)


# -- serving off loopback -----------------------------------------------------------------------------


def test_off_loopback_every_request_needs_the_token(tiny_store):
    from lstmviz.app import create_app, require_token

    app = create_app([tiny_store])
    require_token(app, "s3cret")
    client = app.server.test_client()
    assert client.get("/").status_code == 403
    assert client.get("/_dash-layout").status_code == 403
    assert client.get("/?token=wrong").status_code == 403
    page = client.get("/?token=s3cret")
    assert page.status_code == 200 and "lstmviz_token" in page.headers.get("Set-Cookie", "")
    assert client.get("/_dash-layout").status_code == 200  # the cookie carries it from then on
    assert app.server.test_client().get("/assets/painter.js", headers={"Authorization": "token s3cret"}).status_code == 200


def test_serve_refuses_a_bad_or_busy_port_before_any_work(tiny_store):
    import socket

    result = CliRunner().invoke(main, ["serve", str(tiny_store.path), "--port", "99999"])
    assert result.exit_code == 2 and "between 1 and 65535" in result.output
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["serve", str(tiny_store.path), "--port", str(port)])
    assert result.exit_code == 2 and f"Cannot serve on 127.0.0.1:{port}" in result.output


# -- a wheel, installed outside the tree --------------------------------------------------------------


def venv_that_sees_this_one(where: Path) -> Path:
    """A new venv that sees every package the running interpreter sees, system Python or venv.

    `venv --system-site-packages` from inside a venv sees only the base interpreter's packages,
    so the running interpreter's own site-packages go on a .pth (processed like a site dir,
    after the new venv's own, so a wheel installed there comes first).
    """
    import site
    import sysconfig

    subprocess.run([sys._base_executable, "-m", "venv", "--system-site-packages", where], check=True)
    python = where / "bin" / "python"
    inner = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], capture_output=True, text=True, check=True
    )
    outer = dict.fromkeys([*site.getsitepackages(), sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    lines = [f"import site; site.addsitedir({str(path)!r})" for path in outer if Path(path).is_dir()]
    (Path(inner.stdout.strip()) / "outer-site-packages.pth").write_text("\n".join(lines) + "\n")
    return python


def test_a_wheel_carries_the_model_and_the_painter(tmp_path):
    root = Path(__file__).resolve().parents[1]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path / "dist", root],
        check=True,
        capture_output=True,
    )
    wheel = next((tmp_path / "dist").glob("lstmviz-*.whl"))
    python = venv_that_sees_this_one(tmp_path / "venv")
    alone = {**os.environ, "PYTHONPATH": ""}  # the tree's own egg-info must not pass for an installed lstmviz
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel], check=True, capture_output=True, env=alone
    )
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    code = (
        "import lstmviz, sys; from lstmviz.app import create_app; from lstmviz.recording.sources import DEFAULT_CHECKPOINT; "
        "assert 'venv' in lstmviz.__file__, lstmviz.__file__; "
        "ckpt = lstmviz.load_checkpoint('stdlib-lstm'); assert DEFAULT_CHECKPOINT.is_dir(); "
        "store = lstmviz.record(ckpt, out='s.store', max_chars=500, progress=False); "
        "client = create_app([store]).server.test_client(); "
        "js = client.get('/assets/painter.js'); assert js.status_code == 200 and b'paintText' in js.data; "
        "assert client.get('/').status_code == 200; print(len(store))"
    )
    run = subprocess.run([python, "-c", code], cwd=outside, capture_output=True, text=True, env=alone)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "500"
