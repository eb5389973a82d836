"""Import a plain PyTorch character model (embedding or one-hot input, ``nn.LSTM`` /
``nn.GRU`` / ``nn.RNN``, linear decoder) from its state dict, as an lstmviz checkpoint.

A bidirectional ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` is imported as a tagger: its linear head
reads both directions ([labels, 2 * hidden]) and gives one class per character; it is not a
next-character model.

The state dict is read with ``torch.load(..., weights_only=True)``: tensors only, no code.
Layers are recognised by their shapes; anything that cannot be placed is named in the error.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from ..core.errors import CheckpointError
from ..text.corpus import Vocab
from .checkpoint import save_checkpoint
from .rnn import CharRNN, ModelConfig

_GATES = {4: "lstm", 3: "gru", 1: "rnn"}
_RNN_KEY = re.compile(r"^(.*?)(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)(_reverse)?$")
_ABSENT_LOGIT = -30.0  # the unknown character, when the imported model has none: probability ~1e-13


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"No state dict at {path}.")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad or unsafe files
        raise CheckpointError(f"{path} cannot be read as a PyTorch state dict with weights_only=True ({exc}).") from None
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} does not hold a state dict (a mapping of names to tensors).")
    return obj


def _read_vocab(path: Path) -> list[str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"Cannot read the vocabulary {path}: {exc}.") from None
    if isinstance(data, dict):  # {char: id}
        chars = [None] * len(data)
        for ch, i in data.items():
            if not isinstance(i, int) or not 0 <= i < len(data) or chars[i] is not None:
                raise CheckpointError(f"The vocabulary {path} must map each character to a distinct id 0..{len(data) - 1}.")
            chars[i] = ch
        data = chars
    if not isinstance(data, list) or not all(isinstance(c, str) and len(c) == 1 for c in data) or len(set(data)) != len(data):
        raise CheckpointError(
            f"The vocabulary {path} must be a JSON list of distinct single characters (index = id) or a {{char: id}} map."
        )
    return data


def _recurrent_weights(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The one recurrent module's tensors, named as in it (``weight_ih_l0``, ``weight_hh_l1_reverse``...)."""
    rnn, prefixes = {}, set()
    for key, tensor in state.items():
        m = _RNN_KEY.match(key)
        if m:
            prefixes.add(m.group(1))
            rnn[f"{m.group(2)}_l{m.group(3)}{m.group(4) or ''}"] = tensor
    if len(prefixes) != 1 or "weight_ih_l0" not in rnn:
        raise CheckpointError(
            "No single nn.LSTM / nn.GRU / nn.RNN found (keys like 'rnn.weight_ih_l0'); found: " + ", ".join(state)
        )
    return rnn


def import_torch(state_dict_path: str | Path, vocab_path: str | Path, out: str | Path) -> Path:
    """Write an lstmviz checkpoint equivalent to a plain PyTorch character model."""
    if Path(out).exists():
        raise CheckpointError(f"{out} already exists; choose another --out.")
    state = _read_state_dict(Path(state_dict_path))
    their_chars = _read_vocab(Path(vocab_path))
    v = len(their_chars)
    rnn = _recurrent_weights(state)
    bidirectional = any(k.endswith("_reverse") for k in rnn)
    layers = 1 + max(int(k.split("_l")[-1].removesuffix("_reverse")) for k in rnn)
    hidden = rnn["weight_hh_l0"].shape[1]
    gates = rnn["weight_ih_l0"].shape[0] // hidden
    if gates not in _GATES:
        raise CheckpointError("Only nn.LSTM, nn.GRU and nn.RNN layers can be imported.")
    cell = _GATES[gates]
    input_size = rnn["weight_ih_l0"].shape[1]
    rest = {k: t for k, t in state.items() if not _RNN_KEY.match(k)}
    embedding = [k for k, t in rest.items() if t.ndim == 2 and t.shape == (v, input_size) and k.endswith("weight")]
    if bidirectional:  # a tagger: its head reads both directions
        decoder_w = [k for k, t in rest.items() if t.ndim == 2 and t.shape[1] == 2 * hidden and k not in embedding]
    else:
        decoder_w = [k for k, t in rest.items() if t.ndim == 2 and t.shape == (v, hidden) and k not in embedding]
    if input_size == v and not embedding:
        embed = torch.eye(v)  # one-hot input
    elif len(embedding) == 1:
        embed = rest[embedding[0]]
    else:
        raise CheckpointError(
            f"Cannot place the input layer: expected one [{v}, {input_size}] embedding or one-hot input of width {v}."
        )
    if len(decoder_w) != 1:
        shape = f"[labels, {2 * hidden}] (a per-character head on both directions)" if bidirectional else f"[{v}, {hidden}]"
        raise CheckpointError(f"Cannot place the decoder: expected one linear layer of shape {shape}.")
    dec_prefix = decoder_w[0][: -len("weight")]
    head = rest[decoder_w[0]]
    dec_b = rest.get(dec_prefix + "bias", torch.zeros(head.shape[0]))
    placed = set(embedding) | {decoder_w[0], dec_prefix + "bias"}
    unplaced = [k for k in rest if k not in placed]
    if unplaced:
        raise CheckpointError(f"Cannot place these tensors of {state_dict_path}: {', '.join(unplaced)}.")

    vocab = Vocab(their_chars)
    sizes = {"num_layers": layers, "hidden_size": hidden, "embed_dim": embed.shape[1]}
    tagger = {"bidirectional": True, "num_labels": head.shape[0]} if bidirectional else {}
    model = CharRNN(ModelConfig(vocab_size=len(vocab), cell=cell, **sizes, **tagger))
    _copy_weights(model, vocab.encode("".join(their_chars)), embed, head, dec_b, rnn, state_dict_path)
    source = str(Path(state_dict_path).resolve())
    corpus = {"sources": [], "splits": {"train": [], "val": [], "test": []}, "chars": {}, "replaced_chars": 0}
    return save_checkpoint(out, model, vocab, corpus=corpus, training={"imported_from": source})


def _copy_weights(model: CharRNN, ours: list[int], embed, head, dec_b, rnn: dict, source) -> None:
    """Their weights into ``model``; ``ours`` is our id for each of their characters. Id 0
    (unknown) gets a zero embedding and a negligible logit unless their vocabulary has U+FFFD
    itself; a tagger's head rows are its labels, kept as they are."""
    cfg = model.config
    with torch.no_grad():
        model.embedding.weight.zero_()
        for j, k in enumerate(ours):
            model.embedding.weight[k] = embed[j]
        if cfg.bidirectional:
            model.decoder.weight.copy_(head)
            model.decoder.bias.copy_(dec_b)
        else:
            model.decoder.weight.zero_()
            model.decoder.bias.fill_(_ABSENT_LOGIT)
            for j, k in enumerate(ours):
                model.decoder.weight[k] = head[j]
                model.decoder.bias[k] = dec_b[j]
        for layer in range(cfg.num_layers):
            for suffix in ("", "_reverse") if cfg.bidirectional else ("",):
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    key = f"{name}_l{layer}{suffix}"
                    target = getattr(model.rnn, key)
                    weights = rnn.get(key, torch.zeros_like(target) if name.startswith("bias") else None)
                    if weights is None or weights.shape != target.shape:
                        raise CheckpointError(f"Layer {layer}{suffix} of {source} has a missing or unexpected {name}.")
                    target.copy_(weights)
