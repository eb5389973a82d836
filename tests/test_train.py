"""A tiny end-to-end run: train, snapshots, resume, evaluate, through the CLI as a user types it."""

import json

import numpy as np
from click.testing import CliRunner

from lstmviz.cli.main import main
from lstmviz.model.checkpoint import load_checkpoint
from lstmviz.model.train import IGNORE, build_lanes


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_lanes_pad_documents_to_whole_chunks_and_reset_at_their_start():
    docs = [np.arange(1, 3), np.arange(10, 13)] + [np.arange(20, 24)] * 14  # all short: none is cut
    laid = build_lanes(docs, batch_size=2, seq_len=4)
    chunks = list(laid.chunks(4, every_lane=True))  # as training runs them: every lane in every chunk
    assert [c.ids[0].tolist() for c in chunks[:3]] == [[1, 2, 0, 0], [10, 11, 12, 0], [20, 21, 22, 23]]  # contiguous, in order
    assert [c.targets[0].tolist() for c in chunks[:2]] == [
        [2, IGNORE, IGNORE, IGNORE],
        [11, 12, IGNORE, IGNORE],
    ]  # within the document
    assert chunks[0].ids[1].tolist() == [20, 21, 22, 23]
    assert all((c.keep[c.valid[:, 0], 0] == 0).all() for c in chunks)  # every chunk with text starts a document here
    scored = [sum(bool((c.targets[lane] != IGNORE).any()) for c in chunks) for lane in range(2)]
    assert abs(scored[0] - scored[1]) <= 1


def test_a_huge_document_does_not_leave_the_other_lanes_idle():
    docs = [np.ones(100_000, dtype=np.int32)] + [np.ones(1000, dtype=np.int32)] * 200
    laid = build_lanes(docs, batch_size=16, seq_len=50)
    chunks = list(laid.chunks(50, every_lane=True))
    active = np.array([int((c.targets != IGNORE).any(1).sum()) for c in chunks])
    assert (active >= 14).mean() > 0.85  # without cutting, one lane would run alone for most steps
    # The pieces of a cut document continue each other: concatenated they are the document.
    assert sum(int((c.ids == 1).sum()) for c in chunks) == 100_000 + 200 * 1000


def test_an_epoch_laid_out_shorter_than_the_first_repeats_its_first_chunks():
    from itertools import islice

    from lstmviz.model.train import TrainConfig, _EpochLanes

    rng = np.random.default_rng(0)
    docs = [np.full(int(n), k + 1, dtype=np.int32) for k, n in enumerate(rng.integers(5, 60, 40))]
    epochs = _EpochLanes(docs, TrainConfig(batch_size=4, seq_len=8, steps=1, seed=1))
    first = epochs.steps_per_epoch
    shorter = next(e for e in range(1, 50) if epochs.of(e).chunk_count(8) < first)  # whole documents per lane: lengths vary
    laid = epochs.of(shorter)
    own = [c.ids.tolist() for c in laid.chunks(8, every_lane=True)]
    start = shorter * first
    run = epochs.run(start, lambda chunk, state: (None, state), None, "cpu")
    ran = [c for c, _, _ in islice(run, first + 1)]  # every step of that epoch has a chunk (it used to run off the end)
    for k, chunk in enumerate(ran[:first]):
        assert chunk.ids.tolist() == own[k if k < len(own) else k - len(own)]
    assert not ran[len(own)].keep[:, 0].any()  # the repeated first chunk starts every lane from a zero state
    assert ran[first].ids.tolist() == next(epochs.of(shorter + 1).chunks(8, every_lane=True)).ids.tolist()  # then the next epoch


def test_evaluation_keeps_every_document_whole_in_one_lane():
    from lstmviz.text.corpus import Document, Vocab
    from lstmviz.text.lanes import LaidText

    docs = [Document("big", "a" * 5000)] + [Document(f"d{k}", "b" * 100) for k in range(50)]
    laid = LaidText.of(docs, Vocab.build(["ab"]), 16)
    assert laid.lane_start[0] == 0 and laid.lane_len[0] == 5000  # the big document alone, whole
    assert laid.lane_len.sum() == 10_000 and (laid.next_ids == -1).sum() == 51  # each document's last character


def test_trained_checkpoint_has_history_and_snapshots(tiny_checkpoint):
    ckpt = load_checkpoint(tiny_checkpoint)
    assert [p.name for p in ckpt.snapshots()] == ["step-000010", "step-000020"]
    assert ckpt.history["val_step"] == [15, 30]
    assert ckpt.config["training"]["trained_steps"] == 30
    assert set(ckpt.config["corpus"]["splits"]) == {"train", "val", "test"}
    assert load_checkpoint(ckpt.snapshots()[0]).config["training"]["trained_steps"] == 10


def test_train_resume_and_evaluate(corpus_dir, tmp_path):
    out = tmp_path / "model"
    common = ["--hidden", 16, "--embed", 8, "--seq-len", 32, "--batch-size", 4, "--eval-every", 5]
    assert run("train", corpus_dir, "--out", out, "--steps", 10, *common).exit_code == 0
    again = run("train", corpus_dir, "--out", out, "--steps", 10, *common)
    assert again.exit_code == 2 and "--resume" in again.output
    assert run("train", corpus_dir, "--out", out, "--steps", 15, "--resume").exit_code == 0
    ckpt = load_checkpoint(out)
    assert ckpt.config["training"]["trained_steps"] == 15
    assert ckpt.history["step"][-1] == 15
    result = run("evaluate", out, "--json", "--max-order", 4)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["chars"] > 0 and data["bpc"] > 0
    assert data["baseline"]["order"] in range(1, 5) and data["baseline"]["bpc"] > 0


def test_training_errors_are_one_sentence(corpus_dir, tmp_path):
    result = run("train", corpus_dir, "--out", tmp_path / "m")
    assert result.exit_code == 2 and "--steps" in result.output
    result = run("train", tmp_path / "missing", "--out", tmp_path / "m", "--steps", 1)
    assert result.exit_code == 2 and "No file, folder or glob" in result.output
    result = run("train", corpus_dir, "--out", tmp_path / "fresh", "--steps", 1, "--resume")
    assert result.exit_code == 2 and "No checkpoint" in result.output
    result = run("evaluate", tmp_path / "nope")
    assert result.exit_code == 2 and "does not exist" in result.output
    result = run("train", "--corpus", "war-and-peace", "--out", tmp_path / "m", "--steps", 1)
    assert result.exit_code == 2
    assert result.output == "lstmviz: Unknown corpus 'war-and-peace'; the named corpora are python-stdlib, stdlib-prose.\n"
    assert not (tmp_path / "m").exists()
    result = run("train", corpus_dir, "--corpus", "stdlib-prose", "--out", tmp_path / "m", "--steps", 1)
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "not both" in result.output


def test_kill_stops_training_as_ctrl_c_does(corpus_dir, tmp_path):
    """SIGTERM saves a resumable checkpoint and exits with the same one-sentence message."""
    import re
    import signal
    import subprocess
    import sys
    import time

    out, log = tmp_path / "model", tmp_path / "stderr.txt"
    args = ["train", corpus_dir, "--out", out, "--steps", 10**6, "--hidden", 16, "--embed", 8, "--seq-len", 32]
    with open(log, "w") as err:
        child = subprocess.Popen(
            [sys.executable, "-m", "lstmviz.cli", *map(str, args), "--batch-size", "4", "--eval-every", "100000"],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        deadline = time.monotonic() + 120
        while not re.search(r"\b[1-9]\d*/1000000\b", log.read_text()) and time.monotonic() < deadline:
            assert child.poll() is None, log.read_text()
            time.sleep(0.2)
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=60) != 0
    assert "Interrupted at step" in log.read_text() and "--resume" in log.read_text()
    assert load_checkpoint(out).config["training"]["trained_steps"] > 0
