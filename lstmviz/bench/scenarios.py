"""Benchmarks behind ``lstmviz bench ...``: each measures our code beside its reference in
the same run (alternating, medians of repeats) and reports ratios, since absolute times on
shared machines are noise."""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..core.errors import LstmvizError
from ..model.checkpoint import Checkpoint, load_checkpoint
from ..model.instrument import FUSED_MODULES
from ..recording.sources import DEFAULT_CHECKPOINT
from ..store.format import DEFAULT_LANES
from ..text.corpus import Document, Vocab, described_corpus, load_corpus


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads"


def default_checkpoint(path: str | None) -> Checkpoint:
    return load_checkpoint(path or DEFAULT_CHECKPOINT)


def synthetic_store(out: Path, chars: int, units: int | None = None, seed: int = 0):
    """A store over ``chars`` characters of real text (the stdlib) with synthetic h and c of
    the shipped model's shape (or ``units`` per layer): for benchmarks that need more text
    than the shipped test split. Returns the store and a description."""
    from ..store.writer import write_store

    cfg = default_checkpoint(None).model_config
    units = units or cfg.hidden_size
    documents = load_corpus().documents
    docs, total = [], 0
    for d in documents:
        if total >= chars:
            break
        docs.append((d.name, total, total + min(len(d.text), chars - total)))
        total += min(len(d.text), chars - total)
    text = "".join(d.text for d in documents)[:total]
    rng = np.random.default_rng(seed)
    series = {}
    for layer in range(1, cfg.num_layers + 1):
        series[(layer, "h")] = np.tanh(rng.standard_normal((units, total), dtype=np.float32)).astype(np.float16)
        series[(layer, "c")] = (3 * rng.standard_normal((units, total), dtype=np.float32)).astype(np.float16)
    store = write_store(out, text, docs, series, vocab=sorted(set(text)))
    return store, f"synthetic h, c of a {cfg.num_layers}x{units} model over {total:,} stdlib characters"


# -- train -------------------------------------------------------------------------------------


def bench_train(checkpoint: str | None = None, steps: int = 12, repeats: int = 3) -> dict:
    """Characters/s of ``lstmviz train`` (the real loop: lanes, state resets, clipping,
    progress bar, history) against a plain hand-written nn.LSTM loop, same model and batch."""
    from ..model.train import TrainConfig, train

    ckpt = default_checkpoint(checkpoint)
    t = ckpt.config["training"]
    cfg = TrainConfig(
        **{k: v for k, v in t.items() if k in TrainConfig.__dataclass_fields__ and k not in ("steps", "epochs", "snapshots")},
    )
    cfg = TrainConfig(
        **{**cfg.__dict__, "steps": steps, "eval_every": 10**9, "snapshots": 0, "save_every_s": 1e9, "device": "cpu"}
    )
    corpus = described_corpus(ckpt.config["corpus"])
    chars_per_step = cfg.batch_size * cfg.seq_len
    ids = ckpt.vocab.encode_array("".join(d.text for d in corpus.split("train")[:200]))

    def ours() -> float:
        with tempfile.TemporaryDirectory() as tmp:
            out = train(corpus, Path(tmp) / "m", cfg, progress=False)
            hist = json.loads((out / "history.json").read_text())
        # Steady state: from the first logged step (10) to the last, excluding start-up.
        (s0, t0), (s1, t1) = (hist["step"][0], hist["seconds"][0]), (hist["step"][-1], hist["seconds"][-1])
        return (s1 - s0) * chars_per_step / (t1 - t0)

    def plain() -> float:
        torch.manual_seed(0)
        model_cfg = cfg.model_config(len(ckpt.vocab))
        emb = torch.nn.Embedding(model_cfg.vocab_size, model_cfg.embed_dim)
        rnn = FUSED_MODULES[model_cfg.cell](model_cfg.embed_dim, model_cfg.hidden_size, model_cfg.num_layers, batch_first=True)
        dec = torch.nn.Linear(model_cfg.hidden_size, model_cfg.vocab_size)
        params = [*emb.parameters(), *rnn.parameters(), *dec.parameters()]
        opt = torch.optim.Adam(params, lr=cfg.lr)
        stream = torch.from_numpy(ids[: (len(ids) // cfg.batch_size) * cfg.batch_size]).view(cfg.batch_size, -1)
        state, t_start = None, None
        for step in range(steps):
            if step == 10 % steps:  # same warm-up as ours
                t_start = time.perf_counter()
            a = (step * cfg.seq_len) % (stream.shape[1] - cfg.seq_len - 1)
            x, y = stream[:, a : a + cfg.seq_len], stream[:, a + 1 : a + cfg.seq_len + 1]
            out, state = rnn(emb(x), state)
            state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
            loss = F.cross_entropy(dec(out).reshape(-1, model_cfg.vocab_size), y.reshape(-1))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            loss.item()
        return (steps - 10 % steps) * chars_per_step / (time.perf_counter() - t_start)

    if steps < 12:
        raise LstmvizError("bench train needs at least 12 steps (the first 10 are warm-up).")
    ours_runs, plain_runs = [], []
    for _ in range(repeats):
        plain_runs.append(plain())
        ours_runs.append(ours())
    a, b = statistics.median(ours_runs), statistics.median(plain_runs)
    return {
        "benchmark": "train",
        "model": f"{cfg.num_layers}x{cfg.hidden_size} {cfg.cell}, batch {cfg.batch_size} x {cfg.seq_len}",
        "chars_per_s": round(a),
        "plain_chars_per_s": round(b),
        "ratio": round(a / b, 3),
        "target_ratio": 0.95,
        "runs": {"ours": [round(x) for x in ours_runs], "plain": [round(x) for x in plain_runs]},
        "machine": machine(),
    }


# -- cell types --------------------------------------------------------------------------------

CELL_BENCH = {"hidden_size": 64, "num_layers": 2, "embed_dim": 32, "seq_len": 64, "batch_size": 16}


def _cell_rows(cells: list[str], measure) -> list[dict]:
    """``measure(cell) -> chars/s`` for each cell, each beside the LSTM's (measured too)."""
    from ..model.rnn import CELLS

    unknown = [c for c in cells if c not in CELLS]
    if unknown or not cells:
        raise LstmvizError(f"--cells takes cell types among {', '.join(CELLS)}, not {', '.join(unknown) or 'none'}.")
    speeds = {cell: measure(cell) for cell in dict.fromkeys(["lstm", *cells])}
    return [{"cell": c, "chars_per_s": round(v), "ratio_vs_lstm": round(v / speeds["lstm"], 3)} for c, v in speeds.items()]


def bench_cells(stage: str, cells: list[str], steps: int = 20, chars: int = 20_000, repeats: int = 1) -> dict:
    """Characters/s of ``lstmviz train`` (``stage="train"``) or ``lstmviz record`` (``"record"``)
    for each cell type on the same small model (``CELL_BENCH``) and text, beside the LSTM,
    which runs PyTorch's fused kernel where peephole and cifg step in Python (best of ``repeats``)."""
    from ..model.checkpoint import save_checkpoint
    from ..model.rnn import CharRNN
    from ..model.train import TrainConfig, train
    from ..recording.recorder import record_activations

    corpus = load_corpus(None, max_chars=max(chars, 400_000))
    text = "".join(d.text for d in corpus.documents)[:chars]
    piece = -(-len(text) // DEFAULT_LANES)  # one document per lane, so every lane runs
    docs = [Document(f"piece-{k}", text[a : a + piece]) for k, a in enumerate(range(0, len(text), piece))]

    def train_speed(cell: str) -> float:
        cfg = TrainConfig(cell=cell, **CELL_BENCH, steps=steps, eval_every=10**9, save_every_s=1e9, device="cpu")
        best = 0.0
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as tmp:
                hist = json.loads((train(corpus, Path(tmp) / "m", cfg, progress=False) / "history.json").read_text())
            (s0, t0), (s1, t1) = (hist["step"][0], hist["seconds"][0]), (hist["step"][-1], hist["seconds"][-1])
            best = max(best, (s1 - s0) * cfg.batch_size * cfg.seq_len / (t1 - t0))  # from step 10: no start-up
        return best

    def record_speed(cell: str) -> float:
        cfg = TrainConfig(cell=cell, **CELL_BENCH)
        with tempfile.TemporaryDirectory() as tmp:
            vocab = Vocab.build(d.text for d in corpus.split("train"))
            torch.manual_seed(0)  # untrained weights: recording costs the same
            model = CharRNN(cfg.model_config(len(vocab)))
            path = save_checkpoint(Path(tmp) / cell, model, vocab, corpus=corpus.describe(), training={})
            ckpt = load_checkpoint(path)
            seconds = min(_timed(lambda: record_activations(ckpt, docs, None, progress=False)) for _ in range(repeats))
        return sum(len(d.text) for d in docs) / seconds

    if stage == "train" and steps < 20:
        raise LstmvizError("bench train --cells needs at least 20 steps (speed is measured from step 10 to the last).")
    rows = _cell_rows(cells, train_speed if stage == "train" else record_speed)
    size = CELL_BENCH
    model = f"{size['num_layers']}x{size['hidden_size']}, embed {size['embed_dim']}"
    model += f", batch {size['batch_size']} x {size['seq_len']}, {steps} steps" if stage == "train" else f", {chars:,} characters"
    return {"benchmark": f"{stage} by cell type", "model": model, "cells": rows, "machine": machine()}


# -- record ------------------------------------------------------------------------------------


def _lane_batches(ckpt: Checkpoint, docs: list[Document], lanes: int, chunk_len: int):
    """The chunks recording runs, in its layout (``lanes.LaidText``): a list of (rows: the
    lanes in the batch, ids [rows, time]); and the number of characters."""
    from ..text.lanes import LaidText

    laid = LaidText.of(docs, ckpt.vocab, lanes)
    return [(rows, x) for rows, _, _, x, _ in laid.chunks(chunk_len)], len(laid.text)


def _forward(ckpt: Checkpoint, batches, wanted: list[str] | None = None) -> float:
    """Seconds of the model's fused forward over the chunks, carrying each lane's state; with
    ``wanted`` (hook names), of the instrumented forward recording runs instead, computing
    those series. Nothing is written either way."""
    from ..text.lanes import select_rows, update_rows

    model = ckpt.model
    t0 = time.perf_counter()
    with torch.inference_mode():
        state = model.initial_state(len(batches[0][0]))
        for rows, x in batches:
            if wanted is None:
                _, part = model(x, select_rows(state, rows))
            else:
                (_, part), _ = model.run_with_cache(x, wanted, select_rows(state, rows))
            state = update_rows(state, rows, part)
    return time.perf_counter() - t0


def _lstm_cells(ckpt: Checkpoint) -> list[torch.nn.LSTMCell]:
    """The checkpoint's layers as nn.LSTMCell modules (the same weights)."""
    cfg = ckpt.model_config
    if cfg.cell != "lstm":
        raise LstmvizError("bench record compares against nn.LSTMCell: it needs an LSTM checkpoint.")
    cells = []
    for layer in range(cfg.num_layers):
        cell = torch.nn.LSTMCell(cfg.embed_dim if layer == 0 else cfg.hidden_size, cfg.hidden_size)
        cell.load_state_dict({k[:-3]: v for k, v in ckpt.model.layer_weights(layer).items()})
        cells.append(cell)
    return cells


def _cell_layer(cell: torch.nn.LSTMCell, inputs: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
    """One layer over a chunk [rows, time, in] as a careful user writes it with an
    nn.LSTMCell's weights: the input projection of every step as one matrix product before
    the loop, then per step one addmm for the recurrent product, one sigmoid over all four
    gates (g's tanh apart) and four more pointwise kernels. Returns h and c of every
    step [rows, time, hidden]."""
    rows, steps, _ = inputs.shape
    hidden = h.shape[1]
    projected = torch.addmm(cell.bias_ih + cell.bias_hh, inputs.reshape(rows * steps, -1), cell.weight_ih.t())
    projected = projected.view(rows, steps, 4 * hidden).transpose(0, 1)  # [time, rows, 4 hidden]
    w_hh_t, hs, cs = cell.weight_hh.t(), [], []
    for t in range(steps):
        gates = torch.addmm(projected[t], h, w_hh_t)
        i, f, _, o = gates.sigmoid().chunk(4, 1)
        c = torch.addcmul(f * c, i, gates[:, 2 * hidden : 3 * hidden].tanh())
        h = o * c.tanh()
        hs.append(h)
        cs.append(c)
    return torch.stack(hs, 1), torch.stack(cs, 1)


def hoisted_cell_loop(ckpt: Checkpoint, batches) -> tuple[float, list[tuple[torch.Tensor, torch.Tensor]]]:
    """The reference for recording: every layer by :func:`_cell_layer`, each lane's state
    carried from chunk to chunk, h and c of every layer and step kept, the decoder on the top
    layer. Returns seconds and, per chunk, (h, c) [layers, rows, time, hidden]."""
    from ..text.lanes import select_rows, update_rows

    cells, kept = _lstm_cells(ckpt), []
    t0 = time.perf_counter()
    with torch.inference_mode():
        state = ckpt.model.initial_state(len(batches[0][0]))
        for rows, x in batches:
            h0, c0 = select_rows(state, rows)
            inputs, hs, cs = ckpt.model.embedding(x), [], []
            for layer, cell in enumerate(cells):
                inputs, c = _cell_layer(cell, inputs, h0[layer], c0[layer])
                hs.append(inputs)
                cs.append(c)
            ckpt.model.decoder(inputs)
            kept.append((torch.stack(hs), torch.stack(cs)))
            state = update_rows(state, rows, (torch.stack([h[:, -1] for h in hs]), torch.stack([c[:, -1] for c in cs])))
    return time.perf_counter() - t0, kept


# Prepended to the code of benchmarked child processes: their own peak memory.
_PEAK_MB = """
def peak_mb():  # VmHWM: this program's own peak (ru_maxrss would include the parent's at fork)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
"""
_PEAK_AT_EXIT = (
    _PEAK_MB
    + """
import atexit, sys
atexit.register(lambda: print("lstmviz-peak-mb", peak_mb(), file=sys.stderr))
"""
)


def _timed(fn) -> float:
    """Seconds ``fn()`` takes."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _record_in_child(checkpoint: Path, max_chars: int, lanes: int, out: Path) -> tuple[float, float]:
    """Run ``lstmviz record`` as a user would, in its own process; return its seconds (until the store is on
    disk and in place) and peak RSS (MB)."""
    code = _PEAK_AT_EXIT + "from lstmviz.cli.main import main; main()"
    args = [sys.executable, "-c", code, "record", str(checkpoint), "--out", str(out), "--max-chars", str(max_chars)]
    result = subprocess.run([*args, "--lanes", str(lanes), "--json"], capture_output=True, text=True)
    if result.returncode:
        raise LstmvizError(f"Recording failed: {result.stderr.strip()[-300:]}")
    peak = next(float(line.split()[1]) for line in result.stderr.splitlines() if line.startswith("lstmviz-peak-mb"))
    return json.loads(result.stdout)["seconds"], peak


def bench_record(checkpoint: str | None = None, chars: int = 100_000, lanes: int = DEFAULT_LANES, repeats: int = 3) -> dict:
    from ..analysis.evaluate import evaluation_documents
    from ..store.open import open_store
    from ..store.writer import write_store
    from ..text.lanes import limit_chars

    ckpt = default_checkpoint(checkpoint)
    docs = limit_chars(evaluation_documents(ckpt), chars)
    batches, n = _lane_batches(ckpt, docs, lanes, 256)
    ours_t, fused_t, loop_t, model_t, rss = [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            fused_t.append(_forward(ckpt, batches))
            model_t.append(_forward(ckpt, batches, ckpt.model.hook_names()))
            seconds, peak = _record_in_child(ckpt.path, n, lanes, Path(tmp) / "s")
            ours_t.append(seconds)
            rss.append(peak)
            store = open_store(Path(tmp) / "s")
            bytes_per_value, n_series = store.activations.dtype.itemsize, len(store.series)
            del store
            shutil.rmtree(Path(tmp) / "s")  # its dirty pages dropped: not written back while the next ones run
            loop_t.append(hoisted_cell_loop(ckpt, batches)[0])
        # One neuron over 1M characters: a synthetic store of that length (64 neurons).
        big_n = 1_000_000
        rng = np.random.default_rng(0)
        big = write_store(
            Path(tmp) / "big", "x" * big_n, [("x", 0, big_n)], {(1, "h"): rng.normal(size=(64, big_n)).astype(np.float16)}
        )
        reads = []
        for i in range(20):
            t0 = time.perf_counter()
            big.neuron(f"L1.h.{(i * 7) % 64}", 0, big_n)
            reads.append((time.perf_counter() - t0) * 1000)
    ours, fused, loop, model = (n / statistics.median(x) for x in (ours_t, fused_t, loop_t, model_t))
    return {
        "benchmark": "record",
        "model": f"{ckpt.model_config.num_layers}x{ckpt.model_config.hidden_size} {ckpt.model_config.cell}",
        "chars": n,
        "lanes": len(batches[0][0]),
        "series": n_series,
        "chars_per_s": round(ours),
        "fused_chars_per_s": round(fused),
        "cell_loop_chars_per_s": round(loop),
        "cell_loop": "nn.LSTMCell weights, input projection hoisted (one product per layer and chunk), h and c kept",
        "ratio_vs_fused": round(ours / fused, 3),
        "ratio_vs_cell_loop": round(ours / loop, 3),
        "model_part_chars_per_s": round(model),  # recording's forward alone: every series computed, nothing written
        "model_part_ratio_vs_fused": round(model / fused, 3),
        "bytes_per_value": bytes_per_value,
        "peak_rss_mb": round(max(rss)),
        "read_ms": round(statistics.median(reads), 3),
        "targets": {
            "ratio_vs_fused": 0.7,
            "ratio_vs_cell_loop": 1.2,
            "bytes_per_value": 2,
            "peak_rss_mb_5M_chars": 2000,
            "read_ms": 10,
        },
        "machine": machine(),
    }


# -- analysis ----------------------------------------------------------------------------------


def _norms(rows: np.ndarray) -> np.ndarray:
    """Each row's norm, summed in float64; a zero row's made infinite: it correlates with nothing."""
    sd = np.sqrt(np.square(rows, dtype=np.float64).sum(1))
    sd[sd == 0] = np.inf
    return sd


REFERENCE_BLOCK = 32  # neurons ranked at once by the reference: 256 MB of float64 ranks at 1M characters


def reference_rankings(store, features, kinds: tuple[str, ...] = ("h", "c"), block_size: int = REFERENCE_BLOCK) -> dict:
    """What a careful user writes with scipy for every neuron against every feature, over all
    neurons: per block of neurons, ``scipy.stats.rankdata(block, axis=1)`` and one float32
    matrix product of [ranks; values] with [feature ranks | features], all centred. Returns
    ``{"neurons", "auroc" [n, binary], "rho" [n, numeric], "pearson" [n, numeric + binary]}``,
    features in the order of :func:`lstmviz.analysis.rankings.rank_neurons`: numeric, then binary."""
    from scipy.stats import rankdata

    names = features.names()
    binary = [k for k in names if features.is_binary(k)]
    numeric = [k for k in names if not features.is_binary(k)]
    n = len(store)
    raw = np.stack([features[k].astype(np.float64) for k in numeric + binary], 1)
    ranked = np.concatenate([rankdata(raw[:, : len(numeric)], axis=0), raw[:, len(numeric) :]], 1)
    centred = np.concatenate([ranked - ranked.mean(0), raw - raw.mean(0)], 1)
    targets = centred.astype(np.float32)  # [n, 2 features]: ranks (binary features as they are), then values
    target_sd = _norms(centred.T)
    n_pos = raw[:, len(numeric) :].sum(0)
    pairs = n_pos * (n - n_pos)
    neurons, auroc, rho, pearson = [], [], [], []
    for s in store.series:
        if s.kind not in kinds:
            continue
        for lo in range(0, s.units, block_size):
            values = np.asarray(store.activations[s.row + lo : s.row + min(lo + block_size, s.units)], dtype=np.float32)
            ranks = rankdata(values, axis=1)
            both = np.concatenate([ranks - (n + 1) / 2, values - values.mean(1, keepdims=True)]).astype(np.float32)
            product = (both @ targets).astype(np.float64)  # [2 b, 2 features]: ranks' rows, then values'
            sd = _norms(both)
            b, f = len(values), len(names)
            by_rank, by_value = product[:b, :f], product[b:, f:]
            rho.append(by_rank[:, : len(numeric)] / np.outer(sd[:b], target_sd[: len(numeric)]))
            mann_whitney = by_rank[:, len(numeric) :] + n_pos * (n + 1) / 2 - n_pos * (n_pos + 1) / 2
            auroc.append(np.where(pairs > 0, mann_whitney / np.maximum(pairs, 1), 0.5))
            pearson.append(by_value / np.outer(sd[b:], target_sd[f:]))
            neurons += [str(s.neuron(unit)) for unit in range(lo, lo + b)]
    return {"neurons": neurons, "auroc": np.concatenate(auroc), "rho": np.concatenate(rho), "pearson": np.concatenate(pearson)}


def bench_analysis(store_path: str | None = None, chars: int = 1_000_000, seed: int = 0, repeats: int = 3) -> dict:
    """Ranking h and c of every layer against all built-in features (median of ``repeats``),
    beside the vectorised scipy reference (:func:`reference_rankings`) over the same neurons,
    run once between our runs: no extrapolation."""
    from ..analysis.rankings import rank_neurons
    from ..store.open import open_store
    from ..text.features import store_features

    with tempfile.TemporaryDirectory() as tmp:
        if store_path:
            store, source = open_store(store_path), f"store {store_path}"
        else:
            store, source = synthetic_store(Path(tmp) / "bench.store", chars, seed=seed)
        t0 = time.perf_counter()
        feats = store_features(store)
        feature_s = time.perf_counter() - t0
        kinds = ("h", "c")
        ours = [_timed(lambda: rank_neurons(store, feats, kinds))]
        reference = _timed(lambda: reference_rankings(store, feats, kinds))
        ours += [_timed(lambda: rank_neurons(store, feats, kinds)) for _ in range(repeats - 1)]
        seconds = statistics.median(ours)
        return {
            "benchmark": "analysis",
            "source": source,
            "chars": len(store),
            "neurons": len(store.neuron_ids(kinds)),
            "features": len(feats.names()),
            "seconds": round(seconds, 3),
            "runs": [round(x, 3) for x in ours],
            "feature_seconds": round(feature_s, 3),
            "reference": f"scipy.stats.rankdata(block, axis=1) + one float32 product per {REFERENCE_BLOCK} neurons, all neurons",
            "reference_seconds": round(reference, 1),
            "ratio": round(reference / seconds, 2),
            "targets": {"ratio": 3, "seconds": 10},
            "machine": machine(),
        }


# -- dashboard ---------------------------------------------------------------------------------


def _serve_in_child(store_path: Path, timeout: float = 300.0):
    """``lstmviz serve STORE`` in a child process (its own interpreter, as users run it), on
    a free loopback port; returns the process and its URL once it answers. The process's
    ``log`` (its stderr, a temporary file) is the caller's to close."""
    import socket
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tempfile.TemporaryFile()  # never a pipe: a full pipe would stall the server's logging
    child = subprocess.Popen(
        [sys.executable, "-m", "lstmviz.cli", "serve", str(store_path), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    child.log = log
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            log.seek(0)
            message = log.read().decode(errors="replace").strip()
            log.close()
            raise LstmvizError(f"The dashboard did not start: {message}")
        try:
            urllib.request.urlopen(base + "/_dash-layout", timeout=2).read()
            return child, base
        except OSError:
            time.sleep(0.3)
    child.kill()
    log.close()
    raise LstmvizError(f"The dashboard did not answer within {timeout:.0f} s.")


def _browser_paint_ms(base_url: str, first: str, switches: int, pos: int) -> list[float]:
    """Paint times (ms, ``performance.now()`` around the clientside update, its layout
    included) of the Neuron page's window in headless Chromium: the page is opened on
    neuron ``first``, then ``switches`` times the user presses "next", as when browsing."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    opts = webdriver.ChromeOptions()
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"]:
        opts.add_argument(flag)
    opts.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    label = "var p = document.getElementById('text-panel'); return p && p.dataset.label"
    try:
        driver.get(f"{base_url}/?neuron={first}&pos={pos}")
        WebDriverWait(driver, 60).until(lambda d: d.execute_script(label) == first)
        times = []
        for _ in range(switches):
            before = driver.execute_script(label)
            driver.find_element(By.ID, "next-neuron").click()
            WebDriverWait(driver, 60).until(lambda d, b=before: d.execute_script(label) not in (b, None))
            times.append(float(driver.execute_script("return document.getElementById('text-panel').dataset.paintMs")))
        return times
    finally:
        driver.quit()


def bench_dashboard(
    store_path: str | None = None,
    chars: int = 1_000_000,
    switches: int = 30,
    clients: int = 20,
    per_client: int = 50,
    browser: bool = True,
    seed: int = 0,
    stress: bool = True,
) -> dict:
    """Server time of the Neuron page's switch callback (a 5,000-character window) and of
    its details callback (top contexts, histogram, scores), over HTTP as the browser calls
    them, beside the floor: reading the neuron's raw series from the store. The neuron
    summaries both read are computed first, as ``lstmviz serve`` does once per store
    (``summaries_s``). Then the paint time in headless Chromium and a load test
    (``lstmviz.bench.loadtest``); with ``stress``, the load test again on a real recording while
    a recording and a catastrophic regex run in the same server."""
    from ..app.catalog import Catalog
    from ..app.pages.neuron import WINDOW
    from ..store.open import open_store
    from .loadtest import DashClient, run_load

    with tempfile.TemporaryDirectory() as tmp:
        if store_path:
            store, source = open_store(store_path), f"store {store_path}"
        else:
            store, source = synthetic_store(Path(tmp) / "bench.store", chars, units=64, seed=seed)
        catalog = Catalog.of([store])
        catalog.rankings(store.name)
        t0 = time.perf_counter()
        catalog.prepare(store.name)  # the neuron summaries, cached in the store as `lstmviz serve` does at start
        summaries_s = time.perf_counter() - t0
        server, base = _serve_in_child(store.path)
        try:
            rng = np.random.default_rng(seed)
            ids = [str(n) for n in store.neuron_ids(("h", "c"))]
            picks = [ids[i] for i in rng.choice(len(ids), size=min(switches, len(ids)), replace=False)]
            pos = max(0, len(store) // 2 - WINDOW // 2)
            client = DashClient(base, DashClient.fetch_dependencies(base))
            client.call(client.switch_bodies(picks[0], pos, store.name)[0])  # warm up
            raw, switch, details = [], [], []
            for neuron in picks:  # each neuron once: nothing is cached between the three
                t0 = time.perf_counter()
                np.array(store.neuron(neuron))
                raw.append(1000 * (time.perf_counter() - t0))
                text_body, details_body = client.switch_bodies(neuron, pos, store.name)
                t0 = time.perf_counter()
                client.call(text_body)
                switch.append(1000 * (time.perf_counter() - t0))
                t0 = time.perf_counter()
                client.call(details_body)
                details.append(1000 * (time.perf_counter() - t0))
            client.close()
            paint = float("nan")
            if browser:
                paint = statistics.median(_browser_paint_ms(base, picks[0], 12, pos))
            load = run_load(base, store.name, ids, clients, per_client, seed)
        finally:
            server.terminate()
            server.wait()
            server.log.close()
        stressed = _stressed_load(Path(tmp), clients, per_client, seed) if stress else {}
    result = {
        "benchmark": "dashboard",
        "source": source,
        "chars": len(store),
        "window_chars": WINDOW,
        "switch_ms": round(statistics.median(switch), 2),
        "contexts_ms": round(statistics.median(details), 2),
        "raw_read_ms": round(statistics.median(raw), 2),
        "switch_vs_raw_read": round(statistics.median(switch) / statistics.median(raw), 2),
        "paint_ms": round(paint, 2),
        "summaries_s": round(summaries_s, 2),  # once per store, before the server starts
        **load,
        **stressed,
        "targets": {
            "switch_ms": 50,
            "paint_ms": 150,
            "load_p95_ms": 300,
            "load_errors": 0,
            "stressed_load_p95_ms": 300,
            "live_ms": 200,
        },
        "machine": machine(),
    }
    return result


def _stressed_load(tmp: Path, clients: int, per_client: int, seed: int, chars: int = 100_000) -> dict:
    """The load test on a store of the shipped model (its test split's first ``chars``
    characters) while the Compare page records the earliest snapshot on that text and
    Discover runs a catastrophic regex again and again (``loadtest.stress``)."""
    from ..analysis.evaluate import evaluation_documents
    from ..recording.recorder import record_activations
    from .loadtest import run_load

    ckpt = default_checkpoint(None)
    store = record_activations(ckpt, evaluation_documents(ckpt), tmp / "stress.store", max_chars=chars, progress=False)
    server, base = _serve_in_child(store.path)
    try:
        live = _live_text_ms(base, store)
        ids = [str(n) for n in store.neuron_ids(("h", "c"))]
        load = run_load(base, store.name, ids, clients, per_client, seed, stressed=True)
    finally:
        server.terminate()
        server.wait()
        server.log.close()
    stressed = {f"stressed_{k}" if k.startswith("load") else k: v for k, v in load.items()}
    return {**live, **{k: v for k, v in stressed.items() if k not in ("clients", "switches_per_client")}}


def _live_text_ms(base: str, store, chars: int = 2000, repeats: int = 9) -> dict:
    """The Text page's callback over HTTP: 2,000 typed characters recorded in memory and
    their payload made (each time another text, so nothing is reused), median ms."""
    from .loadtest import DashClient

    client = DashClient(base, DashClient.fetch_dependencies(base))
    times = []
    try:
        for k in range(repeats + 1):
            text = store.text(k * 997, k * 997 + chars)
            body = client.body("typed-data", {"typed-text.data": text, "url.search": "?neuron=L2.c.90", "url.pathname": "/text"})
            t0 = time.perf_counter()
            answer = client.call(body)["response"]
            if k:  # the first loads the checkpoint
                times.append(1000 * (time.perf_counter() - t0))
            if not answer.get("typed-data", {}).get("data"):
                raise LstmvizError(f"The Text page painted nothing: {str(answer)[:200]}")
    finally:
        client.close()
    return {"live_chars": chars, "live_ms": round(statistics.median(times), 1)}


# -- compare -----------------------------------------------------------------------------------

_COMPARE_CHILD = (
    _PEAK_MB
    + """
import json, sys, time
from lstmviz.analysis.compare import compare_stores
from lstmviz.store.open import open_store

a, b = open_store(sys.argv[1]), open_store(sys.argv[2])
before = peak_mb()
t0 = time.perf_counter()
result = compare_stores(a, b, with_features=False)
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_mb(), "start_rss_mb": before}))
"""
)


def _standardised(store) -> torch.Tensor:
    """A store's h and c series as float32 [series, chars], each with mean 0 and norm 1 (a
    constant one all zeros)."""
    from ..analysis.compare import Block

    block = Block.of(store)
    x = torch.empty(len(block.rows), len(store))
    block.widen_into(store, 0, len(store), x)
    x -= x.mean(1, keepdim=True)
    x /= torch.linalg.vector_norm(x, dim=1, keepdim=True).clamp_min(1e-30)
    return x


def reference_correlations(a, b) -> np.ndarray:
    """What a careful user writes for compare's correlations: A's and B's h and c series
    widened to float32 and standardised, then one float32 matrix product, A x B only.
    Pearson r [A series, B series]."""
    return (_standardised(a) @ _standardised(b).T).numpy()


def _compare_in_child(a, b) -> dict:
    """Our whole comparison in a child process, for its own peak memory."""
    child = subprocess.run([sys.executable, "-c", _COMPARE_CHILD, str(a.path), str(b.path)], capture_output=True, text=True)
    if child.returncode != 0:
        raise LstmvizError(f"The comparison failed: {child.stderr.strip()[-500:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def bench_compare(chars: int = 500_000, units: int = 256, repeats: int = 3) -> dict:
    """The whole comparison (correlation of every h and c series of A with every one of B,
    best matches, assignment, CKA) of two 2-layer models over ``chars`` characters, in a
    child process (for its peak memory), alternating with the reference a careful user
    writes for the correlations alone (:func:`reference_correlations`: read, standardise,
    one float32 product); and the bare product of the standardised series (numpy's and
    torch's, the faster counts). Each a median of ``repeats``."""
    with tempfile.TemporaryDirectory() as tmp:
        a, _ = synthetic_store(Path(tmp) / "a.store", chars, units=units, seed=1)
        b, source = synthetic_store(Path(tmp) / "b.store", chars, units=units, seed=2)
        runs, reference = [], []
        for _ in range(repeats):
            runs.append(_compare_in_child(a, b))
            reference.append(_timed(lambda: reference_correlations(a, b)))
        ta, tb = _standardised(a), _standardised(b)
        xa, xb = ta.numpy(), tb.numpy()
        numpy_product = statistics.median(_timed(lambda: xa @ xb.T) for _ in range(repeats))
        torch_product = statistics.median(_timed(lambda: ta @ tb.T) for _ in range(repeats))
        blocks_mb = (xa.size + xb.size) * 2 / 2**20  # as stored (float16)
    seconds, ref_seconds = statistics.median(r["seconds"] for r in runs), statistics.median(reference)
    product = min(numpy_product, torch_product)
    return {
        "benchmark": "compare",
        "source": source.replace("synthetic", "two synthetic stores of"),
        "chars": chars,
        "series_a": len(xa),
        "series_b": len(xb),
        "seconds": round(seconds, 2),
        "runs": [round(r["seconds"], 2) for r in runs],
        "reference": "h and c widened to float32, standardised, one float32 product A x B (torch)",
        "reference_seconds": round(ref_seconds, 2),
        "reference_runs": [round(x, 2) for x in reference],
        "vs_reference": round(seconds / ref_seconds, 2),
        "product_seconds": round(product, 2),
        "product_numpy_seconds": round(numpy_product, 2),
        "product_torch_seconds": round(torch_product, 2),
        "vs_product": round(seconds / product, 2),
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs)),
        "start_rss_mb": round(statistics.median(r["start_rss_mb"] for r in runs)),  # the child before comparing
        "series_blocks_mb": round(blocks_mb),
        "targets": {"vs_reference": 1.5, "seconds": 10, "peak_rss_mb": f"< 2 x series_blocks_mb = {2 * blocks_mb:.0f}"},
        "machine": machine(),
    }


# -- intervene ---------------------------------------------------------------------------------


def _clamped_loop(ckpt: Checkpoint, batches, unit: int, value: float) -> tuple[float, list[torch.Tensor]]:
    """The reference a careful user writes to clamp unit ``unit`` of layer 1's c: layer 1 one
    step at a time with its input projection hoisted out of the loop (one matrix product per
    chunk) and the recurrent product as one addmm, the layers above by the fused nn.LSTM
    (nothing there is replaced), then the decoder. Returns seconds and the logits."""
    from ..text.lanes import select_rows, update_rows

    model, cfg = ckpt.model, ckpt.model_config
    w_ih, w_hh, b_ih, b_hh = model.layer_weights(0).values()
    w_ih_t, w_hh_t, bias = w_ih.t(), w_hh.t(), b_ih + b_hh  # transposed views: MKL's faster layout here
    above = torch.nn.LSTM(cfg.hidden_size, cfg.hidden_size, num_layers=cfg.num_layers - 1, batch_first=True)
    weights = {}
    for layer in range(1, cfg.num_layers):
        weights.update({f"{k[:-1]}{layer - 1}": v for k, v in model.layer_weights(layer).items()})
    above.load_state_dict(weights)
    logits = []
    t0 = time.perf_counter()
    with torch.inference_mode():
        state = model.initial_state(len(batches[0][0]))
        for rows, x in batches:
            h_all, c_all = select_rows(state, rows)
            h, c = h_all[0], c_all[0]
            gx = torch.addmm(bias, model.embedding(x).transpose(0, 1).reshape(-1, cfg.embed_dim), w_ih_t)
            gx = gx.view(x.shape[1], x.shape[0], -1)
            hs = []
            for t in range(x.shape[1]):
                i, f, g, o = torch.addmm(gx[t], h, w_hh_t).chunk(4, 1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                c[:, unit] = value
                h = torch.sigmoid(o) * torch.tanh(c)
                hs.append(h)
            out, (h_up, c_up) = above(torch.stack(hs, 1), (h_all[1:], c_all[1:]))
            logits.append(model.decoder(out))
            state = update_rows(state, rows, (torch.cat([h[None], h_up]), torch.cat([c[None], c_up])))
    return time.perf_counter() - t0, logits


def _clamped_exact(ckpt: Checkpoint, batches, neuron: str, value: float) -> tuple[float, list[torch.Tensor]]:
    """Ours: the model's forward with a ready-made clamp hook (the exact step path)."""
    from ..model.interventions import clamp
    from ..text.lanes import select_rows, update_rows

    model, hooks, logits = ckpt.model, clamp(neuron, value), []
    t0 = time.perf_counter()
    with torch.inference_mode():
        state = model.initial_state(len(batches[0][0]))
        for rows, x in batches:
            out, part = model.forward_instrumented(x, select_rows(state, rows), hooks=hooks)
            logits.append(out)
            state = update_rows(state, rows, part)
    return time.perf_counter() - t0, logits


def bench_intervene(
    checkpoint: str | None = None, chars: int = 100_000, lanes: int = DEFAULT_LANES, repeats: int = 3, sample_chars: int = 2000
) -> dict:
    """The exact intervention pass (one c unit of layer 1 clamped throughout) against a careful
    hand-written loop doing the same, the fused forward with nothing clamped, and sampling."""
    from ..analysis.evaluate import evaluation_documents
    from ..model.sampling import sample
    from ..text.lanes import limit_chars

    ckpt = default_checkpoint(checkpoint)
    if ckpt.model_config.cell != "lstm" or ckpt.model_config.num_layers < 2:
        raise LstmvizError("bench intervene clamps an LSTM's layer-1 c: it needs an LSTM checkpoint of two or more layers.")
    unit, value = 52, 0.0
    batches, n = _lane_batches(ckpt, limit_chars(evaluation_documents(ckpt), chars), lanes, 256)
    ours_t, loop_t, fused_t, sample_t = [], [], [], []
    for _ in range(repeats):
        seconds, ours = _clamped_exact(ckpt, batches, f"L1.c.{unit}", value)
        ours_t.append(seconds)
        seconds, loop = _clamped_loop(ckpt, batches, unit, value)
        loop_t.append(seconds)
        fused_t.append(_forward(ckpt, batches))
        sample_t.append(_timed(lambda: sample(ckpt, "def ", sample_chars, seed=0, clamp={f"L1.c.{unit}": value})))
    agree = max(float((a - b).abs().max()) for a, b in zip(ours, loop, strict=True))
    exact, loop, fused = (n / statistics.median(x) for x in (ours_t, loop_t, fused_t))
    return {
        "benchmark": "intervene",
        "model": f"{ckpt.model_config.num_layers}x{ckpt.model_config.hidden_size} {ckpt.model_config.cell}",
        "intervention": f"L1.c.{unit} clamped to {value:g} at every character",
        "chars": n,
        "lanes": len(batches[0][0]),
        "exact_chars_per_s": round(exact),
        "loop_chars_per_s": round(loop),
        "ratio_vs_loop": round(exact / loop, 3),
        "fused_chars_per_s": round(fused),
        "ratio_vs_fused": round(exact / fused, 3),
        "max_logit_difference": agree,
        "sample_chars_per_s": round(sample_chars / statistics.median(sample_t)),
        "targets": {"ratio_vs_loop": 1.0, "sample_chars_per_s": 2000},
        "machine": machine(),
    }


def format_table(result: dict) -> str:
    width = max(len(k) for k in result)
    lines = []
    for k, v in result.items():
        if k == "cells":  # one row per cell type
            lines += [f"{'':<{width}}  " + "  ".join(f"{name} {value}" for name, value in row.items()) for row in v]
            continue
        if isinstance(v, float) and not math.isfinite(v):
            v = "n/a"
        lines.append(f"{k:<{width}}  {v}")
    return "\n".join(lines)


# -- scale (Ray) ---------------------------------------------------------------------------------


def _scale_run(ckpt: Checkpoint, docs: list[Document], out: Path, workers: int | None) -> tuple[float, float]:
    """Record ``docs`` and rank every h and c neuron against the built-in features, in this
    process (``workers=None``) or on that many Ray actors and tasks: (record s, find-cells s)."""
    from ..analysis.rankings import rank_neurons
    from ..recording.recorder import record_activations
    from ..scale.shard_rankings import rank_neurons_sharded
    from ..scale.sharding import record_sharded
    from ..text.features import store_features

    t0 = time.perf_counter()
    if workers is None:
        store = record_activations(ckpt, docs, out, progress=False)
    else:
        store = record_sharded(ckpt.path, docs, out, shards=workers, workers=workers)
    t1 = time.perf_counter()
    features = store_features(store)
    if workers is None:
        rank_neurons(store, features, ("h", "c"))
    else:
        rank_neurons_sharded(store, features, ("h", "c"), workers=workers)
    return t1 - t0, time.perf_counter() - t1


def bench_scale(checkpoint: str | None = None, chars: int = 475_222, repeats: int = 3) -> dict:
    """The same recording and find-cells in one process and on a local Ray cluster with one
    and two workers, alternating, medians of ``repeats``."""
    import shutil

    from ..analysis.evaluate import evaluation_documents
    from ..recording.recorder import recorded_rows, store_bytes
    from ..scale.sharding import connect
    from ..text.lanes import limit_chars

    ckpt = default_checkpoint(checkpoint)
    docs = limit_chars(evaluation_documents(ckpt), chars)
    n = sum(len(d.text) for d in docs)
    t0 = time.perf_counter()
    started = connect(None)  # a cluster is started once and kept, as on a real one
    cluster_s = time.perf_counter() - t0
    runs: dict[str, list[tuple[float, float]]] = {"single": [], "ray1": [], "ray2": []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(repeats):
                for name, workers in (("single", None), ("ray1", 1), ("ray2", 2)):
                    out = Path(tmp) / f"{name}-{r}"
                    runs[name].append(_scale_run(ckpt, docs, out, workers))
                    shutil.rmtree(out)
    finally:
        if started:
            import ray

            ray.shutdown()
    total = {k: statistics.median(a + b for a, b in v) for k, v in runs.items()}
    record_s = {k: statistics.median(a for a, _ in v) for k, v in runs.items()}
    rows = recorded_rows(ckpt.model_config)
    return {
        "benchmark": "scale",
        "model": f"{ckpt.model_config.num_layers}x{ckpt.model_config.hidden_size} {ckpt.model_config.cell}",
        "chars": n,
        "documents": len(docs),
        "single_s": round(total["single"], 2),
        "ray1_s": round(total["ray1"], 2),
        "ray2_s": round(total["ray2"], 2),
        "speedup_2": round(total["single"] / total["ray2"], 3),
        "overhead_1": round(total["ray1"] / total["single"] - 1, 3),
        "record_s": {k: round(v, 2) for k, v in record_s.items()},
        "find_cells_s": {k: round(total[k] - record_s[k], 2) for k in total},
        "cluster_start_s": round(cluster_s, 2),
        "s_per_million_chars_per_worker": round(record_s["ray1"] / n * 1e6, 1),
        "bytes_per_char": store_bytes(rows, 1),
        "targets": {"overhead_1": 0.15},
        "machine": machine(),
    }
