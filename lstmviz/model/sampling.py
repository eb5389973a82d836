"""Sampling text, as char-rnn's ``sample.lua`` does, with neurons held for the whole
generation: clamped to a value or ablated (set to 0) at every step, the prime included.

One character at a time through every layer, with the step functions of the exact step
path (``stepwise.py``), so a held neuron acts exactly as in ``forward_instrumented``; the
model's weights are laid out once, and the random draws come from a generator seeded by
``seed``, so a seed gives the same text every time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..core.errors import LstmvizError
from ..core.neurons import NeuronId, hook_name
from ..model.guesses import TOP_K
from .checkpoint import Checkpoint, load_checkpoint
from .hooks import Hooks, active_hooks
from .interventions import clamp as clamp_hooks
from .interventions import zero as zero_hooks
from .stepwise import STEP, StepHooks

MAX_LENGTH = 100_000
START = "\n"  # read first when there is no prime: the start of a line


@dataclass
class Sample:
    """A generated text (the prime, then what the model wrote) and, per character, the value
    of ``neuron`` after reading it and the model's top guesses for the character after it."""

    text: str
    prime: str
    neuron: str | None
    values: np.ndarray | None  # [len(text)] float32
    top_ids: np.ndarray  # [len(text), TOP_K]
    top_probs: np.ndarray  # [len(text), TOP_K] (temperature 1: the model's own probabilities)
    vocab: list[str]
    settings: dict = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)  # prime characters read as the unknown id

    @property
    def generated(self) -> str:
        return self.text[len(self.prime) :]

    def to_json(self) -> dict:
        return {
            "text": self.text,
            "prime": self.prime,
            "generated": self.generated,
            "neuron": self.neuron,
            "values": None if self.values is None else [round(float(v), 4) for v in self.values],
            **self.settings,
            "unknown_prime_chars": self.unknown,
        }


def _checked_settings(length: int, temperature: float, top_k: int | None) -> None:
    if not 1 <= length <= MAX_LENGTH:
        raise LstmvizError(f"The length must be between 1 and {MAX_LENGTH:,} characters, not {length}.")
    if not (temperature > 0 and math.isfinite(temperature)):
        raise LstmvizError(f"The temperature must be a positive number, not {temperature}.")
    if top_k is not None and top_k < 1:
        raise LstmvizError(f"--top-k must be at least 1, not {top_k}.")


def held_neurons(model, clamp: dict | None = None, ablate=None) -> list[tuple[str, object]]:
    """The hooks that hold ``clamp`` ({neuron: value}) and zero ``ablate`` (neurons) at every step."""
    pairs = []
    for neuron, value in (clamp or {}).items():
        pairs += clamp_hooks(model.check_neuron(neuron), value)
    for neuron in ablate or []:
        pairs += zero_hooks(model.check_neuron(neuron))
    return pairs


def sample(
    ckpt: Checkpoint | str,
    prime: str = "",
    length: int = 200,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
    clamp: dict | None = None,
    ablate=None,
    color: str | NeuronId | None = None,
    hooks: Hooks | None = None,
) -> Sample:
    """Generate ``length`` characters after ``prime``. ``clamp`` {neuron: value} and
    ``ablate`` [neurons] hold neurons for the whole run; ``hooks`` adds any other hook (each
    sees one step, ``[1, 1, units]``). ``color`` names the neuron whose value is kept per
    character (default: the first held one)."""
    ckpt = ckpt if isinstance(ckpt, Checkpoint) else load_checkpoint(ckpt)
    with torch.inference_mode():
        return _generate(ckpt, prime, length, temperature, top_k, seed, clamp, ablate, color, hooks)


def _generate(ckpt: Checkpoint, prime, length, temperature, top_k, seed, clamp, ablate, color, hooks) -> Sample:
    model, vocab = ckpt.model, ckpt.vocab
    model.require_next_character("generate text")
    _checked_settings(length, temperature, top_k)
    held = held_neurons(model, clamp, ablate)
    shown = color if color is not None else next(iter([*(clamp or {}), *(ablate or [])]), None)
    shown = None if shown is None else model.check_neuron(shown)
    feed = vocab.encode(prime) if prime else vocab.encode(START)
    steps = len(feed) + length
    at = _step_hooks(model, active_hooks(model, [*held, *(hooks or [])]), shown, steps)
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(int(seed))
    ids, logits = _run_steps(model, feed, steps, at, lambda logits: _draw(logits, temperature, top_k, generator))

    probs = torch.softmax(logits, -1)
    top_probs, top_ids = probs.topk(min(TOP_K, len(vocab)), dim=-1)
    values = None if shown is None else at[shown.layer - 1].buffers[shown.kind][:, 0, shown.index].cpu().numpy()
    cut = 0 if prime else 1  # the start character read without a prime is not part of the text
    return Sample(
        text=prime + vocab.decode(ids[len(feed) :].tolist()),
        prime=prime,
        neuron=None if shown is None else str(shown),
        values=None if values is None else values[cut:].astype(np.float32),
        top_ids=top_ids[cut:].cpu().numpy(),
        top_probs=top_probs[cut:].cpu().numpy(),
        vocab=vocab.chars,
        settings={
            "length": length,
            "temperature": temperature,
            "top_k": top_k,
            "seed": seed,
            "clamp": {str(NeuronId.parse(n)): float(v) for n, v in (clamp or {}).items()},
            "ablate": [str(NeuronId.parse(n)) for n in ablate or []],
        },
        unknown=vocab.unknown_chars(prime),
    )


def _step_hooks(model, hooks: dict, shown: NeuronId | None, steps: int) -> list[StepHooks]:
    """Per layer, the active ``hooks`` of its series, and a buffer of ``steps`` values for the
    series of the ``shown`` neuron."""
    cfg = model.config
    like = torch.zeros(1, cfg.hidden_size, device=next(model.parameters()).device)
    at = []
    for layer in range(cfg.num_layers):
        names = {kind: hook_name(layer, kind) for kind in cfg.series_kinds}
        kept = {shown.kind} if shown is not None and shown.layer == layer + 1 else set()
        layer_hooks = {kind: hooks[name] for kind, name in names.items() if name in hooks}
        at.append(StepHooks(layer_hooks, names, kept, steps, like))
    return at


def _run_steps(model, feed: list[int], steps: int, at: list[StepHooks], draw) -> tuple[torch.Tensor, torch.Tensor]:
    """Read ``feed``, then each character ``draw(logits)`` picks, one step at a time through
    every layer, for ``steps`` steps: the ids read [steps] and the logits after each [steps, vocab]."""
    cfg = model.config
    device = next(model.parameters()).device
    weights = [model.step_weights(layer) for layer in range(cfg.num_layers)]
    like = torch.zeros(1, cfg.hidden_size, device=device)
    state = [(like.clone(), like.clone()) if cfg.has_c else like.clone() for _ in range(cfg.num_layers)]
    ids = torch.zeros(steps, dtype=torch.long, device=device)
    ids[: len(feed)] = torch.tensor(feed, device=device)
    logits = torch.empty(steps, cfg.vocab_size, device=device)
    step, embedding, decoder = STEP[cfg.cell], model.embedding.weight, model.decoder
    for t in range(steps):
        x = embedding[ids[t : t + 1]]  # [1, embed]
        for layer, w in enumerate(weights):
            state[layer] = step(w.project(x), state[layer], w, at[layer], t)
            x = state[layer][0] if cfg.has_c else state[layer]
        torch.addmm(decoder.bias, x, decoder.weight.t(), out=logits[t : t + 1])
        if len(feed) - 1 <= t < steps - 1:
            ids[t + 1] = draw(logits[t])
    return ids, logits


def _draw(logits: torch.Tensor, temperature: float, top_k: int | None, generator: torch.Generator) -> torch.Tensor:
    """The next character id, drawn from softmax(logits / temperature), among the ``top_k``
    most likely if given."""
    scaled = logits / temperature
    if top_k is not None and top_k < len(scaled):
        kept, index = scaled.topk(top_k)
        return index[torch.multinomial(torch.softmax(kept, -1), 1, generator=generator)][0]
    return torch.multinomial(torch.softmax(scaled, -1), 1, generator=generator)[0]
