"""Checkpoints as plain data: a directory with ``config.json`` and ``model.safetensors``
(plus ``history.json``, and ``snapshots/`` of the same form). Never pickled.

``config.json`` holds the format version, the model hyper-parameters, the vocabulary, the
corpus description with its split, and the training arguments. Loading validates every
piece and turns any problem into one :class:`CheckpointError` sentence.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..core.atomic import move_into_place
from ..core.errors import CheckpointError
from ..text.corpus import Vocab
from .rnn import CharRNN, ModelConfig

FORMAT_VERSION = 1
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "checkpoints"  # package data: in a wheel too
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
HISTORY_FILE = "history.json"
SNAPSHOT_DIR = "snapshots"
# Optimizer and carried state for --resume; not needed to use the model.
TRAIN_STATE_FILE = "train_state.safetensors"


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model (in eval mode), its vocabulary and its metadata."""

    path: Path
    model: CharRNN
    vocab: Vocab
    config: dict  # the whole config.json
    history: dict = field(default_factory=dict)

    @property
    def model_config(self) -> ModelConfig:
        return self.model.config

    @property
    def name(self) -> str:
        return self.path.name

    @cached_property
    def content_hash(self) -> str:
        """sha256 of the weights file: a store recorded from these weights carries it."""
        return file_sha256(self.path / WEIGHTS_FILE)

    @property
    def id(self) -> str:
        return f"{self.name}@{self.content_hash[:12]}"

    def describe(self) -> str:
        """What it is, in a phrase: ``a 2x256 LSTM with 98 characters``."""
        cfg = self.model_config
        kind = f"bidirectional {cfg.cell.upper()} tagger ({cfg.num_labels} classes)" if cfg.bidirectional else cfg.cell.upper()
        return f"a {cfg.num_layers}x{cfg.hidden_size} {kind} with {len(self.vocab)} characters"

    def snapshots(self) -> list[Path]:
        """Snapshot checkpoint directories, earliest first."""
        root = self.path / SNAPSHOT_DIR
        return sorted(p for p in root.iterdir() if (p / CONFIG_FILE).is_file()) if root.is_dir() else []


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # a file system without hard links
        shutil.copy2(src, dst)


def save_checkpoint(
    path: str | Path,
    model: CharRNN,
    vocab: Vocab,
    *,
    corpus: dict,
    training: dict,
    history: dict | None = None,
    train_state: dict[str, torch.Tensor] | None = None,
    keep: tuple[str, ...] = (SNAPSHOT_DIR,),
) -> Path:
    """Write a checkpoint directory atomically: a reader sees the old one or the new one,
    never a half-written mix. Entries named in ``keep`` (snapshots) carry over."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; a checkpoint is an ordinary folder
    try:
        config = {
            "format": "lstmviz-checkpoint",
            "format_version": FORMAT_VERSION,
            "model": model.config.to_json(),
            "vocab": vocab.to_json(),
            "corpus": corpus,
            "training": training,
        }
        state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS_FILE))
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=1, ensure_ascii=False))
        (tmp / HISTORY_FILE).write_text(json.dumps(history or {}, indent=1))
        if train_state is not None:
            save_file({k: v.detach().cpu().contiguous() for k, v in train_state.items()}, str(tmp / TRAIN_STATE_FILE))
        for name in keep:  # hard links: the old checkpoint keeps them until the new one is in place
            if (path / name).is_dir():
                shutil.copytree(path / name, tmp / name, copy_function=_link_or_copy)
        move_into_place(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def _read_config(path: Path) -> dict:
    if not path.exists():
        raise CheckpointError(f"No checkpoint at {path}: the directory does not exist.")
    if not path.is_dir():
        raise CheckpointError(f"{path} is not a checkpoint directory (expected {CONFIG_FILE} and {WEIGHTS_FILE}).")
    cfg_path = path / CONFIG_FILE
    if not cfg_path.is_file():
        raise CheckpointError(f"{path} is not a checkpoint: it has no {CONFIG_FILE}.")
    try:
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CheckpointError(f"The checkpoint at {path} is corrupt: {CONFIG_FILE} is not valid JSON.") from None
    if not isinstance(config, dict) or config.get("format") != "lstmviz-checkpoint":
        raise CheckpointError(f"{cfg_path} is not an lstmviz checkpoint config.")
    if config.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"The checkpoint at {path} has format version {config.get('format_version')}; "
            f"this lstmviz reads version {FORMAT_VERSION}."
        )
    for key in ("model", "vocab", "corpus", "training"):
        if key not in config:
            raise CheckpointError(f"The checkpoint at {path} is corrupt: {CONFIG_FILE} lacks '{key}'.")
    return config


def shipped_path(path: str | Path) -> Path:
    """``path`` as given, or, if nothing is there, the shipped checkpoint of that name
    (``stdlib-lstm``): it is package data, found wherever lstmviz is installed."""
    path = Path(path)
    if not path.exists() and len(path.parts) == 1 and (SHIPPED_DIR / path / CONFIG_FILE).is_file():
        return SHIPPED_DIR / path
    return path


def recorded_path(recorded: dict) -> Path:
    """Where the checkpoint a store was recorded from is (``recorded``: the store's
    ``checkpoint`` entry): the directory it names, or, when nothing is there any more (the
    clone that recorded it moved or is gone), the shipped checkpoint of that name whose
    weights are the same. An empty path stays empty (a store written without a model)."""
    path = Path(recorded.get("path") or "")
    if not recorded.get("path") or (path / CONFIG_FILE).is_file():
        return path
    for config in SHIPPED_DIR.rglob(CONFIG_FILE):
        weights = config.parent / WEIGHTS_FILE
        if (
            config.parent.name == recorded.get("name")
            and weights.is_file()
            and _sha256_of(weights) == recorded.get("content_hash")
        ):
            return config.parent
    return path


@lru_cache(maxsize=64)
def _sha256_of(weights: Path) -> str:
    return file_sha256(weights)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Load and validate a checkpoint directory (or a shipped one by name, ``stdlib-lstm``);
    the model is returned in eval mode."""
    path = shipped_path(path)
    config = _read_config(path)
    try:
        vocab = Vocab.from_json(config["vocab"])
        model_config = ModelConfig(**config["model"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"The checkpoint at {path} has an invalid model config: {exc}") from None
    if model_config.vocab_size != len(vocab):
        raise CheckpointError(
            f"The checkpoint at {path} is inconsistent: the model expects {model_config.vocab_size} "
            f"characters but the vocabulary has {len(vocab)}."
        )
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"The checkpoint at {path} has no {WEIGHTS_FILE}.")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"The checkpoint at {path} is corrupt or truncated: {WEIGHTS_FILE} cannot be read ({exc})."
        ) from None
    model = CharRNN(model_config)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state.items()}
    if expected != found:
        missing = sorted(set(expected) - set(found))
        peepholes = [k for k in missing if k.startswith(("rnn.weight_ci", "rnn.weight_cf", "rnn.weight_co"))]
        if peepholes:
            raise CheckpointError(
                f"The peephole checkpoint at {path} lacks its peephole weights ({', '.join(peepholes)}); it cannot be used."
            )
        extra = sorted(set(found) - set(expected))
        wrong = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
        detail = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing)}" if missing else "",
                f"unexpected {', '.join(extra)}" if extra else "",
                f"wrong shape for {', '.join(wrong)}" if wrong else "",
            )
            if part
        )
        raise CheckpointError(f"The weights in {path} do not match its config: {detail}.")
    model.load_state_dict(state)
    model.to(device).eval()
    history = {}
    if (path / HISTORY_FILE).is_file():
        try:
            history = json.loads((path / HISTORY_FILE).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise CheckpointError(f"The checkpoint at {path} is corrupt: {HISTORY_FILE} is not valid JSON.") from None
    return Checkpoint(path=path, model=model, vocab=vocab, config=config, history=history)


def load_train_state(path: str | Path) -> dict[str, torch.Tensor]:
    file = Path(path) / TRAIN_STATE_FILE
    if not file.is_file():
        raise CheckpointError(
            f"Cannot resume: {Path(path)} has no {TRAIN_STATE_FILE} (it was not saved by an unfinished training run)."
        )
    try:
        return load_file(str(file))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"Cannot resume: {file} is corrupt ({exc}).") from None
