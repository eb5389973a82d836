"""The one name a neuron has everywhere: ``L{layer}.{kind}.{index}``, the layer counted from 1
as in the paper (``L2.c.117``), and the hook point it lives at (``layers.1.hook_c``, the
layer counted from 0 as PyTorch counts).

In a bidirectional model the backward direction (which reads each document from its end)
has an ``r`` after the layer, as PyTorch's ``_reverse`` weights do: ``L1r.h.12``, at hook
point ``layers.0.reverse.hook_h``; ``L1.h.12`` is the forward direction."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import NeuronError
from .options import comma_list

_NEURON_RE = re.compile(r"^L(\d+)(r?)\.([a-z])\.(\d+)$")


@dataclass(frozen=True, order=True)
class NeuronId:
    layer: int  # from 1
    kind: str  # h, c, i, f, g, o (LSTM); h, r, z, n (GRU); h (RNN)
    index: int  # unit within the layer, from 0
    reverse: bool = False  # the backward direction of a bidirectional layer

    @classmethod
    def parse(cls, text: str | NeuronId) -> NeuronId:
        if isinstance(text, NeuronId):
            return text
        m = _NEURON_RE.match(str(text).strip())
        if not m:
            raise NeuronError(
                f"{text!r} is not a neuron id; write L{{layer}}.{{kind}}.{{index}}, e.g. L2.c.117 "
                "(L2r.c.117: the backward direction)."
            )
        return cls(int(m.group(1)), m.group(3), int(m.group(4)), m.group(2) == "r")

    def __str__(self) -> str:
        return f"L{self.layer}{'r' if self.reverse else ''}.{self.kind}.{self.index}"

    @property
    def series(self) -> str:
        """The series it belongs to, e.g. ``L2.c`` or ``L2r.c``."""
        return f"L{self.layer}{'r' if self.reverse else ''}.{self.kind}"

    @property
    def hook_name(self) -> str:
        """The hook point this neuron's series passes through, e.g. ``layers.1.hook_c``."""
        return hook_name(self.layer - 1, self.kind, self.reverse)


def hook_name(layer: int, kind: str, reverse: bool = False) -> str:
    """The hook point of ``kind`` in ``layer`` (counted from 0); ``reverse``: the backward
    direction of a bidirectional layer."""
    return f"layers.{layer}.{'reverse.' if reverse else ''}hook_{kind}"


def parse_neurons(text: str | NeuronId | list) -> list[NeuronId]:
    """Neuron ids from a comma-separated string, one id, or a list of either (order kept,
    repeats dropped); an empty list is an error."""
    items = comma_list(text) if isinstance(text, str) else [text] if isinstance(text, NeuronId) else list(text)
    out: list[NeuronId] = []
    for item in items:
        if isinstance(item, str) and not item.strip():
            continue
        n = NeuronId.parse(item)
        if n not in out:
            out.append(n)
    if not out:
        raise NeuronError("Give at least one neuron id, e.g. L2.c.117.")
    return out
