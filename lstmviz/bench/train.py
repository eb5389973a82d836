"""``lstmviz bench train``: training characters/s of our loop beside a plain nn.LSTM loop."""

from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path

from ..core.errors import LstmvizError
from ..model.train import TrainConfig
from ..text.corpus import Corpus, described_corpus
from .fixtures import default_checkpoint, model_shape
from .harness import at_least, result
from .references import WARM_UP_STEPS, plain_training_loop


def training_speed(corpus: Corpus, cfg: TrainConfig) -> float:
    """Characters/s of ``lstmviz train`` with ``cfg``, in steady state: from its first logged
    step (``WARM_UP_STEPS``) to its last, start-up left out."""
    from ..model.train import train

    with tempfile.TemporaryDirectory() as tmp:
        hist = json.loads((train(corpus, Path(tmp) / "m", cfg, progress=False) / "history.json").read_text())
    (s0, t0), (s1, t1) = (hist["step"][0], hist["seconds"][0]), (hist["step"][-1], hist["seconds"][-1])
    return (s1 - s0) * cfg.batch_size * cfg.seq_len / (t1 - t0)


def _config_of(training: dict, steps: int) -> TrainConfig:
    """A checkpoint's training settings, run for ``steps`` steps on the CPU with no
    evaluation, snapshots or saves in between (the validation after the last step, which is
    not timed, on one batch)."""
    kept = {
        k: v for k, v in training.items() if k in TrainConfig.__dataclass_fields__ and k not in ("steps", "epochs", "snapshots")
    }
    one_batch = kept.get("batch_size", TrainConfig.batch_size) * kept.get("seq_len", TrainConfig.seq_len)
    quiet = {"eval_every": 10**9, "val_chars": one_batch, "snapshots": 0, "save_every_s": 1e9, "device": "cpu"}
    return TrainConfig(**{**kept, "steps": steps, **quiet})


def bench_train(checkpoint: str | None = None, steps: int = 12, repeats: int = 3) -> dict:
    """Characters/s of ``lstmviz train`` (the real loop: lanes, state resets, clipping,
    progress bar, history) against a plain hand-written nn.LSTM loop, same model and batch."""
    if steps < WARM_UP_STEPS + 2:
        raise LstmvizError(f"bench train needs at least {WARM_UP_STEPS + 2} steps (the first {WARM_UP_STEPS} are warm-up).")
    ckpt = default_checkpoint(checkpoint)
    cfg = _config_of(ckpt.config["training"], steps)
    corpus = described_corpus(ckpt.config["corpus"])
    ids = ckpt.vocab.encode_array("".join(d.text for d in corpus.split("train")[:200]))
    ours_runs, plain_runs = [], []
    for _ in range(repeats):
        plain_runs.append(plain_training_loop(cfg, len(ckpt.vocab), ids))
        ours_runs.append(training_speed(corpus, cfg))
    a, b = statistics.median(ours_runs), statistics.median(plain_runs)
    figures = {
        "model": f"{model_shape(cfg)}, batch {cfg.batch_size} x {cfg.seq_len}",
        "steps": steps,
        "chars_per_s": round(a),
        "plain_chars_per_s": round(b),
        "ratio": round(a / b, 3),
        "runs": {"ours": [round(x) for x in ours_runs], "plain": [round(x) for x in plain_runs]},
    }
    measures = "our training loop (lanes, state resets, clipping, history) beside a plain nn.LSTM loop: characters/s"
    return result("train", measures, figures, {"ratio": at_least(0.95)})
