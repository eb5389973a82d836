"""Why the model predicted a character: the next-character logit at a position shared among
units. The top layer's units feed the decoder directly, so their shares are exact:
h_j W_dec[char, j], which with the decoder's bias sum to the logit. A lower layer's units act
through the layers above; their shares are gradient x activation (the logit's gradient with
respect to that unit's h at the position, times its h there: a first-order estimate, not a
sum to the logit)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ...core.characters import name_of
from ...core.neurons import NeuronId
from ...model.rnn import CharRNN
from ...text.corpus import Vocab
from .attribute import DEFAULT_WINDOW, Located, character_id, locate, model_and_documents, state_before
from .forward import Target, TargetFunction

LISTED = 10  # units listed by to_text and to_json
GUESSES = 5  # the likeliest next characters a result names (the ones a page offers to explain)


@dataclass(frozen=True)
class PredictionReasons:
    pos: int
    char: str  # the predicted character explained
    logit: float
    log_probability: float
    bias: float  # the decoder's bias for char
    direct: list[tuple[str, float]]  # top-layer units, h_j W_dec[char, j], largest |share| first
    lower: list[tuple[str, float]]  # lower layers' h units by gradient x activation, largest first
    guesses: list[tuple[str, float]] = field(default_factory=list)  # the GUESSES likeliest next characters, probability

    def to_json(self, k: int = LISTED) -> dict:
        return {
            "pos": self.pos,
            "char": self.char,
            "logit": self.logit,
            "log_probability": self.log_probability,
            "bias": self.bias,
            "direct": [{"unit": u, "contribution": round(c, 6)} for u, c in self.direct[:k]],
            "lower": [{"unit": u, "contribution": round(c, 6)} for u, c in self.lower[:k]],
        }

    def to_text(self, k: int = LISTED) -> str:
        lines = [
            f"next character '{name_of(self.char)}' after position {self.pos}: logit {self.logit:+.3f} "
            f"(log p {self.log_probability:+.3f}) = decoder bias {self.bias:+.3f} + the top layer's units:"
        ]
        lines += [f"  {u:<12} {c:+.4f}" for u, c in self.direct[:k]]
        if self.lower:
            lines.append("lower layers' units (gradient x activation):")
            lines += [f"  {u:<12} {c:+.4f}" for u, c in self.lower[:k]]
        return "\n".join(lines)


def _ranked(layer: int, shares: torch.Tensor) -> list[tuple[str, float]]:
    order = torch.argsort(-shares.abs()).tolist()
    return [(str(NeuronId(layer + 1, "h", j)), float(shares[j])) for j in order]


def explain_prediction(
    model: CharRNN, vocab: Vocab, at: Located, char: int | None = None, window: int = DEFAULT_WINDOW
) -> PredictionReasons:
    """The shares of the units in the logit of ``char`` (a vocabulary id; default: the
    model's likeliest next character) after position ``at``; the text before the window is
    read as the state it leaves."""
    model.require_next_character("explain a next-character prediction")
    first = max(0, at.pos - window + 1)
    state = state_before(model, at.ids[:first])
    f = TargetFunction(model, Target(char=0), at.ids[first : at.pos + 1], 0, at.pos + 1 - first, at.pos - first, state)
    top = model.config.num_layers - 1
    x, leaves = f.inputs.unsqueeze(0).requires_grad_(True), []
    for layer in range(top):
        x, _, _ = f.run_layer(layer, x)
        leaves.append(x)
    hs, _, _ = f.run_layer(top, x)
    h = hs[0, -1]
    logits = model.decoder(h)
    char = int(logits.argmax()) if char is None else char
    with torch.no_grad():
        direct = h * model.decoder.weight[char]
    lower = []
    if leaves:
        grads = torch.autograd.grad(logits[char], leaves)
        for layer, (leaf, grad) in enumerate(zip(leaves, grads, strict=True)):
            lower += _ranked(layer, (leaf[0, -1] * grad[0, -1]).detach())
    lower.sort(key=lambda item: -abs(item[1]))
    return PredictionReasons(
        pos=at.doc_start + at.pos,
        char=vocab.chars[char],
        logit=float(logits[char].detach()),
        log_probability=float(torch.log_softmax(logits.detach(), -1)[char]),
        bias=float(model.decoder.bias[char].detach()),
        direct=_ranked(top, direct),
        lower=lower,
        guesses=_likeliest(vocab, logits.detach()),
    )


def _likeliest(vocab: Vocab, logits: torch.Tensor) -> list[tuple[str, float]]:
    probs = torch.softmax(logits, -1)
    top = torch.topk(probs, min(GUESSES, len(probs)))
    return [(vocab.chars[i], float(p)) for p, i in zip(top.values, top.indices.tolist(), strict=True)]


def why_prediction(source, pos: int, char: str | None = None, text: str | None = None) -> PredictionReasons:
    """:func:`explain_prediction` at ``pos`` of ``text``, else of the store's text, else of
    the checkpoint's test split (``source``: a checkpoint or a store); ``char``: the
    character to explain (default: the model's likeliest)."""
    ckpt, docs = model_and_documents(source, text)
    ckpt.model.require_next_character("explain a next-character prediction")
    char_id = None if char is None else character_id(ckpt.vocab, char)
    return explain_prediction(ckpt.model, ckpt.vocab, locate(docs, pos, ckpt.vocab), char_id)
