"""Attribution through time: how much each of the characters before a position (a window
of them, back at most to the document's start) made a unit what it is there, or made the
model give the next character its log-probability.

    attribute("stdlib-lstm", "L2.c.90", pos=1234)                 # the test split, position 1234
    attribute(store, "L1.c.52", pos=88, method="occlusion")       # the store's text
    attribute(ckpt, logit="'", pos=40, text="x = 'a string' ")    # log p("'") after position 40

The baseline a character is compared with is the zero embedding (no character at all; for
an imported one-hot model, the zero vector), or, with ``baseline="x"``, the character x.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...core.characters import name_of
from ...core.errors import LstmvizError
from ...core.options import IG_STEPS, WINDOW
from ...model.checkpoint import Checkpoint, load_checkpoint, recorded_path
from ...model.rnn import CharRNN
from ...recording.one_text import evaluation_documents
from ...recording.sources import open_source
from ...store.reader import ActivationStore
from ...text.corpus import Document, Vocab
from .forward import Target, TargetFunction
from .methods import METHODS, gradient_x_input, integrated_gradients, occlusion
from .result import Attribution

DEFAULT_WINDOW = 200
# Integrated gradients' path points (methods.integrated_gradients): a median completeness
# error of 4.9% over 1,000 string positions of the shipped model (bench attribute --quality),
# in about 1.35 s (bench attribute).
DEFAULT_STEPS = 64


@dataclass(frozen=True)
class Located:
    """A position in its document: the document's text as ids, its start in the text, and
    the position inside it."""

    ids: torch.Tensor  # [document characters] int64
    text: str
    doc_start: int
    pos: int  # inside the document


def locate(docs: list[Document], pos: int, vocab: Vocab) -> Located:
    """The document of the concatenated ``docs`` that holds position ``pos``."""
    total = sum(len(d.text) for d in docs)
    if not 0 <= pos < total:
        raise LstmvizError(f"Position {pos} is outside the text (0 to {total - 1}).")
    start = 0
    for d in docs:
        if pos < start + len(d.text):
            return Located(torch.from_numpy(vocab.encode_array(d.text)), d.text, start, pos - start)
        start += len(d.text)
    raise AssertionError("unreachable: pos < total")


def target_of(model: CharRNN, vocab: Vocab, neuron=None, logit: str | None = None) -> Target:
    """The target named by exactly one of ``neuron`` (a unit id) and ``logit`` (a character)."""
    if (neuron is None) == (logit is None):
        raise LstmvizError("Give either a unit (--neuron, e.g. L2.c.90) or a next character (--logit), not both or neither.")
    if neuron is not None:
        return Target(unit=model.check_neuron(neuron))
    model.require_next_character("give a next-character log-probability (--logit)")
    return Target(char=character_id(vocab, logit))


def character_id(vocab: Vocab, char: str) -> int:
    """The vocabulary id of one character; anything else is one clear error."""
    if not isinstance(char, str) or len(char) != 1 or (vocab.encode(char)[0] == 0 and char != vocab.chars[0]):
        raise LstmvizError(f"{char!r} is not a character of the model's vocabulary.")
    return vocab.encode(char)[0]


def state_before(model: CharRNN, ids: torch.Tensor, state=None):
    """The state of a unidirectional model after reading ``ids`` from ``state`` (default: a
    document's start; None for an empty prefix there: the zero state)."""
    if len(ids) == 0:
        return state
    with torch.no_grad():
        _, state = model.run_layers(model.embedding(ids.unsqueeze(0)), state if state is not None else model.initial_state(1))
    return state


def attribute_located(
    model: CharRNN,
    vocab: Vocab,
    at: Located,
    target: Target,
    method: str = "ig",
    window: int = DEFAULT_WINDOW,
    steps: int | None = None,
    baseline: str | None = None,
    state=None,
) -> Attribution:
    """The attribution of ``target`` at ``at``. ``state``: the state before the window, if
    the caller has it (else it is computed from the document's start)."""
    if method not in METHODS:
        raise LstmvizError(f"Unknown method {method!r}; choose one of {', '.join(METHODS)}.")
    WINDOW.check(window)
    steps = IG_STEPS.check(steps) or DEFAULT_STEPS
    p = at.pos
    first = max(0, p - window + 1)
    if model.config.bidirectional:  # the backward direction reads what follows, too
        f = TargetFunction(model, target, at.ids, first, min(len(at.ids), p + window), p)
    else:
        state = state if state is not None or first == 0 else state_before(model, at.ids[:first])
        f = TargetFunction(model, target, at.ids[first : p + 1], 0, p + 1 - first, p - first, state)
    base = torch.zeros_like(f.inputs)
    if baseline is not None:
        with torch.no_grad():
            base = model.embedding(torch.tensor([character_id(vocab, baseline)])).expand_as(f.inputs).clone()
    if method == "ig":
        contributions, value, base_value = integrated_gradients(f, base, steps)
    elif method == "grad":
        contributions, value, base_value = gradient_x_input(f, base)
    else:
        contributions, value, base_value = occlusion(f, base)
    start = at.doc_start + first
    text = at.text[first : first + len(contributions)]
    return Attribution(
        target=str(target.unit) if target.unit is not None else f"log p('{name_of(vocab.chars[target.char])}')",
        pos=at.doc_start + p,
        method=method,
        start=start,
        text=text,
        contributions=np.asarray(contributions),
        value=value,
        baseline_value=base_value,
        baseline="zero embedding" if baseline is None else f"'{name_of(baseline)}'",
        steps=steps if method == "ig" else None,
        neuron=str(target.unit) if target.unit is not None else None,
        logit=vocab.chars[target.char] if target.char is not None else None,
    )


def model_and_documents(source, text: str | None = None) -> tuple[Checkpoint, list[Document]]:
    """The checkpoint of ``source`` (a checkpoint, or the one a store was recorded by) and the
    text positions count in: ``text``, else the store's text, else the test split."""
    opened = source if isinstance(source, Checkpoint | ActivationStore) else open_source(source)
    if isinstance(opened, ActivationStore):
        if not opened.checkpoint.get("path"):
            raise LstmvizError(f"The store {opened.name} names no checkpoint, and attribution needs the model.")
        ckpt = load_checkpoint(recorded_path(opened.checkpoint))
    else:
        ckpt = opened
    if text is not None:
        return ckpt, [Document("text", text)]
    if isinstance(opened, ActivationStore):
        return ckpt, [Document(d.name, opened.text(d.start, d.stop)) for d in opened.documents]
    docs = evaluation_documents(ckpt)
    if not docs:
        raise LstmvizError(f"{ckpt.name} has no test split; give the text to attribute in (--text).")
    return ckpt, docs


def attribute(
    source,
    neuron=None,
    *,
    pos: int,
    logit: str | None = None,
    text: str | None = None,
    method: str = "ig",
    window: int = DEFAULT_WINDOW,
    steps: int | None = None,
    baseline: str | None = None,
) -> Attribution:
    """The contribution of each character of the ``window`` before ``pos`` (inclusive) to
    ``neuron`` there, or to the log-probability of the next character ``logit``. ``source``:
    a checkpoint or a store (path or opened); positions count in ``text``, else the store's
    text, else the checkpoint's test split. ``method``: ig (integrated gradients, ``steps``
    adaptively placed path points, default 64), grad (gradient x input) or occlusion (exact)."""
    WINDOW.check(window)
    IG_STEPS.check(steps)
    ckpt, docs = model_and_documents(source, text)
    target = target_of(ckpt.model, ckpt.vocab, neuron, logit)
    if baseline is not None:
        character_id(ckpt.vocab, baseline)
    at = locate(docs, pos, ckpt.vocab)
    return attribute_located(ckpt.model, ckpt.vocab, at, target, method, window, steps, baseline)
