"""Training, in the manner of char-rnn's ``train.lua``: truncated backpropagation through
time with the state carried across consecutive chunks, gradient clipping, periodic
validation bits-per-character, snapshots, and resumable checkpoints.

Documents start from a zero state, as when they are recorded, and run through the same lanes
(``lanes.LaidText``, ``LaidText.run``): each batch row ("lane") is a sequence of whole
documents, shuffled each epoch and each padded to a multiple of the chunk length (padding is
not scored), so a row's state is zeroed only where a chunk starts a new document and the
fused module runs every chunk unbroken.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..core.errors import CheckpointError, ConfigError, CorpusError, LstmvizError
from ..text.corpus import Corpus, Document, Vocab
from ..text.lanes import Chunk, LaidText, bits_per_character, limit_chars
from .checkpoint import load_checkpoint, load_train_state, save_checkpoint
from .rnn import CharRNN, ModelConfig, State, detach_state, mask_state

IGNORE = -1  # the target of padding and of a document's last character (as ``lanes.next_characters``): not scored


@dataclass(frozen=True)
class TrainConfig:
    cell: str = "lstm"  # lstm | gru | rnn | peephole | cifg
    num_layers: int = 2
    hidden_size: int = 256
    embed_dim: int = 64
    dropout: float = 0.0
    seq_len: int = 128  # characters per chunk (truncated BPTT length)
    batch_size: int = 64  # parallel lanes of documents
    lr: float = 2e-3  # Adam peak learning rate, cosine-decayed to lr_min_ratio * lr
    lr_min_ratio: float = 0.1
    warmup_steps: int = 50
    steps: int | None = None  # total optimizer steps; or give epochs
    epochs: float | None = None
    grad_clip: float = 5.0  # max global gradient norm
    eval_every: int = 250  # steps between validation runs
    val_chars: int = 200_000  # validation characters per run (a fixed prefix of the split)
    snapshots: int = 0  # evenly spaced snapshot checkpoints under snapshots/
    save_every_s: float = 300.0  # periodic resumable save
    min_char_count: int = 1  # rarer training characters map to the unknown id
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        at_least_one = {"--seq-len": self.seq_len, "--batch-size": self.batch_size, "--eval-every": self.eval_every}
        at_least_one |= {"--min-char-count": self.min_char_count, "--steps": 1 if self.steps is None else self.steps}
        for option, value in at_least_one.items():
            if value < 1:
                raise ConfigError(f"{option} must be at least 1, not {value}.")
        positive = {"--lr": self.lr, "--grad-clip": self.grad_clip, "--epochs": 1.0 if self.epochs is None else self.epochs}
        positive["--save-every"] = self.save_every_s
        for option, value in positive.items():
            if not value > 0:
                raise ConfigError(f"{option} must be a positive number, not {value}.")
        if self.snapshots < 0:
            raise ConfigError(f"--snapshots must be 0 or more, not {self.snapshots}.")
        ModelConfig(
            vocab_size=2,
            cell=self.cell,
            num_layers=self.num_layers,
            hidden_size=self.hidden_size,
            embed_dim=self.embed_dim,
            dropout=self.dropout,
        )  # its own checks, before any text is read

    def check_length(self) -> None:
        """Refuse a run of no length (neither steps nor epochs given), before any text is read."""
        if self.steps is None and self.epochs is None:
            raise ConfigError("Give the length of training: --steps N or --epochs E.")

    def model_config(self, vocab_size: int) -> ModelConfig:
        return ModelConfig(
            vocab_size=vocab_size,
            cell=self.cell,
            num_layers=self.num_layers,
            hidden_size=self.hidden_size,
            embed_dim=self.embed_dim,
            dropout=self.dropout,
        )


def split_long(docs: list[np.ndarray], batch_size: int, seq_len: int) -> list[np.ndarray]:
    """Cut documents longer than an eighth of a lane into pieces (each then starts from a
    zero state, like a document), so that no lane runs on alone after the others finish:
    a few huge files (the stdlib's pydoc_data/topics.py is 0.75 MB) would otherwise leave
    most of an epoch training on one file."""
    total_chunks = sum(max(1, -(-len(d) // seq_len)) for d in docs)
    piece = max(1, total_chunks // (8 * batch_size)) * seq_len
    return [d[a : a + piece] for d in docs for a in range(0, max(len(d), 1), piece)]


def build_lanes(docs: list[np.ndarray], batch_size: int, seq_len: int, order: np.ndarray | None = None) -> LaidText:
    """Lay documents (encoded id arrays) into ``batch_size`` lanes for training: shuffled by
    ``order``, huge ones cut into pieces (:func:`split_long`), each padded to whole chunks
    (``LaidText.in_whole_chunks``: a state is zeroed only between chunks, and the fused
    multi-layer module with its dropout runs unbroken), in lanes of about equal length cut
    as recording cuts them (contiguous runs of whole documents)."""
    order = np.arange(len(docs)) if order is None else order
    return LaidText.in_whole_chunks(split_long([docs[i] for i in order], batch_size, seq_len), batch_size, seq_len)


def resolve_device(name: str) -> torch.device:
    if name != "auto" and not (name == "cpu" or name == "cuda" or name.startswith("cuda:")):
        raise ConfigError(f"--device takes auto, cpu or cuda (cuda:N), not {name!r}.")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise LstmvizError("CUDA was asked for but no GPU is available; use --device cpu.")
    return torch.device(name)


def _lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return cfg.lr * (cfg.lr_min_ratio + (1 - cfg.lr_min_ratio) * cosine)


def _flatten_optimizer(opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    out = {}
    for idx, st in opt.state_dict()["state"].items():
        for key, value in st.items():
            out[f"opt.{idx}.{key}"] = torch.as_tensor(value)
    return out


def _restore_optimizer(opt: torch.optim.Optimizer, flat: dict[str, torch.Tensor]) -> None:
    sd = opt.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in flat.items():
        if name.startswith("opt."):
            _, idx, key = name.split(".", 2)
            state.setdefault(int(idx), {})[key] = value
    sd["state"] = state
    opt.load_state_dict(sd)


def _state_tensors(state: State) -> dict[str, torch.Tensor]:
    parts = state if isinstance(state, tuple) else (state,)
    return {f"carry.{i}": s for i, s in enumerate(parts)}


def _state_from_tensors(flat: dict[str, torch.Tensor], device: torch.device) -> State:
    parts = [flat[k].to(device) for k in sorted(k for k in flat if k.startswith("carry."))]
    return tuple(parts) if len(parts) > 1 else parts[0]


@dataclass
class _Start:
    """What a run starts from: a new model, or the state saved in ``out`` (``--resume``)."""

    cfg: TrainConfig
    vocab: Vocab
    model: CharRNN
    saved: dict  # the resumable tensors (optimizer, recurrent state, step); empty for a new run
    step: int
    history: dict


def _start(out: Path, cfg: TrainConfig, train_docs: list[Document], resume: bool) -> _Start:
    if resume:
        ckpt = load_checkpoint(out)
        saved = {k: v for k, v in ckpt.config["training"].items() if k in TrainConfig.__dataclass_fields__}
        cfg = TrainConfig(**{**saved, "steps": cfg.steps, "epochs": cfg.epochs, "device": cfg.device})
        flat = load_train_state(out)
        return _Start(cfg, ckpt.vocab, ckpt.model, flat, int(flat["step"]), ckpt.history)
    if (out / "config.json").exists():
        raise CheckpointError(f"{out} already holds a checkpoint; use --resume to continue it or choose another --out.")
    vocab = Vocab.build((d.text for d in train_docs), min_count=cfg.min_char_count)
    history = {"step": [], "train_bpc": [], "val_step": [], "val_bpc": [], "lr": []}
    return _Start(cfg, vocab, CharRNN(cfg.model_config(len(vocab))), {}, 0, history)


class _EpochLanes:
    """The training text laid into lanes, shuffled afresh (and reproducibly) each epoch."""

    def __init__(self, encoded: list[np.ndarray], cfg: TrainConfig):
        self.encoded, self.cfg, self.cached = encoded, cfg, {}
        self.steps_per_epoch = self.of(0).chunk_count(cfg.seq_len)

    def of(self, epoch: int) -> LaidText:
        if epoch not in self.cached:
            self.cached.clear()
            order = np.random.default_rng([self.cfg.seed, epoch]).permutation(len(self.encoded))
            self.cached[epoch] = build_lanes(self.encoded, self.cfg.batch_size, self.cfg.seq_len, order)
        return self.cached[epoch]

    def run(self, step: int, train_step: _Trainer, state: State, device) -> Iterator[tuple[Chunk, tuple[float, float], State]]:
        """``train_step`` on every chunk from step ``step`` on, epoch after epoch, every lane in
        every chunk and each lane's state carried on (``LaidText.run``): (chunk, result, state).
        A reshuffled epoch can lay out a few chunks fewer than the first (documents are whole
        in a lane): its first chunks, which start every lane afresh, fill the gap, so a step
        names the same chunk however the run was resumed."""
        while True:
            epoch, first = divmod(step, self.steps_per_epoch)
            laid = self.of(epoch)
            first %= laid.chunk_count(self.cfg.seq_len)
            left = self.steps_per_epoch * (epoch + 1) - step
            chunks = islice(laid.chunks(self.cfg.seq_len, device, start=first, every_lane=True), left)
            for chunk, result, carried in laid.run(chunks, train_step, state):
                step, state = step + 1, carried
                yield chunk, result, carried


def _schedule(cfg: TrainConfig, steps_per_epoch: int) -> tuple[int, set[int]]:
    """The run's length in steps, and the steps after which a snapshot is kept."""
    cfg.check_length()
    total = cfg.steps if cfg.steps is not None else max(1, round(cfg.epochs * steps_per_epoch))
    return total, {round(k * total / (cfg.snapshots + 1)) for k in range(1, cfg.snapshots + 1)}


class _Trainer:
    """Truncated BPTT as a step of ``LaidText.run``: one optimizer step per chunk, from the
    state given (zeroed in the lanes where the chunk starts a document), at the learning rate
    of the steps done so far."""

    def __init__(self, model: CharRNN, opt: torch.optim.Optimizer, cfg: TrainConfig, total: int, done: int):
        self.model, self.opt, self.cfg, self.total, self.done = model, opt, cfg, total, done

    def __call__(self, chunk: Chunk, state: State) -> tuple[tuple[float, float], State]:
        """((the summed loss, for logging; the learning rate), the new state)."""
        lr = _lr_at(self.done, self.total, self.cfg)
        for group in self.opt.param_groups:
            group["lr"] = lr
        logits, state = self.model(chunk.ids, mask_state(detach_state(state), chunk.keep[:, 0]))
        y = chunk.targets.reshape(-1)
        loss_sum = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y, ignore_index=IGNORE, reduction="sum")
        # Normalised by the batch's capacity, not its scored count: a chunk that is mostly
        # padding moves the weights proportionally less.
        loss = loss_sum / y.numel()
        self.opt.zero_grad(set_to_none=True)
        if torch.isfinite(loss):
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
            self.opt.step()
        self.done += 1
        return (loss_sum.item(), lr), state


class _Log:
    """Training bpc and speed over the last 10 steps, into the history and the progress bar."""

    def __init__(self, history: dict, bar):
        self.history, self.bar = history, bar
        self.loss, self.count, self.chars, self.t0 = 0.0, 0, 0, time.perf_counter()
        self.run_t0 = self.t0
        history.setdefault("seconds", [])

    def add(self, loss_sum: float, y: torch.Tensor, chars: int) -> None:
        self.loss += loss_sum
        self.count += int((y != IGNORE).sum())
        self.chars += chars

    def write(self, step: int, lr: float) -> None:
        elapsed = time.perf_counter() - self.t0
        train_bpc = self.loss / max(self.count, 1) / math.log(2)
        self.history["step"].append(step)
        self.history["train_bpc"].append(round(train_bpc, 5))
        self.history["lr"].append(lr)
        self.history["seconds"].append(round(time.perf_counter() - self.run_t0, 3))  # since this run (re)started
        rate = f"{self.chars / elapsed:,.0f}"
        self.bar.set_postfix(loss=f"{train_bpc * math.log(2):.3f}", bpc=f"{train_bpc:.3f}", chars_s=rate, refresh=False)
        self.loss, self.count, self.chars, self.t0 = 0.0, 0, 0, time.perf_counter()


def _validate(model: CharRNN, val_lanes: LaidText, device, history: dict, step: int, total: int, bar, progress: bool) -> None:
    val_bpc, _ = bits_per_character(model, val_lanes)
    history["val_step"].append(step)
    history["val_bpc"].append(round(val_bpc, 5))
    if progress:
        bar.write(f"step {step}/{total}: validation bpc {val_bpc:.4f}", file=sys.stderr)


def _laid_text(vocab: Vocab, train_docs: list[Document], val_docs: list[Document], cfg: TrainConfig):
    """The training lanes (reshuffled each epoch) and the validation lanes (fixed)."""
    lanes = _EpochLanes([vocab.encode_array(d.text).astype(np.int32) for d in train_docs], cfg)
    val_text = limit_chars(val_docs or train_docs, cfg.val_chars)  # tiny corpora: validate on the training text
    return lanes, LaidText.of(val_text, vocab, cfg.batch_size)


def _optimizer_and_state(model: CharRNN, begin: _Start, device):
    """Adam and the recurrent state, new or as saved."""
    opt = torch.optim.Adam(model.parameters(), lr=begin.cfg.lr)
    if not begin.saved:
        return opt, model.initial_state(begin.cfg.batch_size, device)
    _restore_optimizer(opt, begin.saved)
    return opt, _state_from_tensors(begin.saved, device)


def train(
    corpus: Corpus,
    out: str | Path,
    cfg: TrainConfig,
    *,
    resume: bool = False,
    progress: bool = True,
) -> Path:
    """Train a character model on ``corpus`` and write a checkpoint to ``out``.

    With ``resume`` the run continues from the resumable state saved in ``out`` (by Ctrl-C,
    a periodic save, or a finished run given more steps)."""
    out, device = Path(out), resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    train_docs, val_docs = corpus.split("train"), corpus.split("val")
    if not train_docs:
        raise CorpusError("The training split is empty: give more files (documents are split by a hash of their path).")
    begin = _start(out, cfg, train_docs, resume)
    cfg, vocab, model, step, history = begin.cfg, begin.vocab, begin.model, begin.step, begin.history
    model.to(device).train()
    lanes, val_lanes = _laid_text(vocab, train_docs, val_docs, cfg)
    total, snapshot_steps = _schedule(cfg, lanes.steps_per_epoch)
    if resume and step >= total:
        raise LstmvizError(f"{out} has already trained {step} steps; give a larger --steps to continue.")
    opt, state = _optimizer_and_state(model, begin, device)
    training, corpus_desc = {**asdict(cfg), "steps": total, "chars_per_step": cfg.batch_size * cfg.seq_len}, corpus.describe()

    def save(step: int, path: Path = out, resumable: bool = True) -> None:
        ts = {"step": torch.tensor(step), **_flatten_optimizer(opt), **_state_tensors(state)} if resumable else None
        done = {**training, "trained_steps": step}
        save_checkpoint(path, model, vocab, corpus=corpus_desc, training=done, history=history, train_state=ts)

    bar = tqdm(total=total, initial=step, disable=not progress, unit="step", dynamic_ncols=True)
    log, last_save = _Log(history, bar), time.monotonic()
    steps = islice(lanes.run(step, _Trainer(model, opt, cfg, total, step), state, device), total - step)
    try:
        for chunk, (loss_sum, lr), carried in steps:
            step, state = step + 1, carried  # as save() keeps them
            log.add(loss_sum, chunk.targets, chunk.ids.numel())
            if step % 10 == 0 or step == total:
                log.write(step, lr)
            if step % cfg.eval_every == 0 or step == total:
                _validate(model, val_lanes, device, history, step, total, bar, progress)
            if step in snapshot_steps:
                save(step, out / "snapshots" / f"step-{step:06d}", resumable=False)
            if time.monotonic() - last_save > cfg.save_every_s and step < total:
                save(step)
                last_save = time.monotonic()
            bar.update(1)
    except KeyboardInterrupt:
        save(step)
        raise LstmvizError(
            f"Interrupted at step {step}/{total}; saved {out}. Continue with the same command and --resume."
        ) from None
    finally:
        bar.close()
    save(step)
    return out
