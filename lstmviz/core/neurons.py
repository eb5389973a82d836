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
_DIRECTION_RE = re.compile(r"^L(\d+)(r?)\.([a-z])~([A-Za-z_][A-Za-z0-9_]*)$")
_FEATURE_RE = re.compile(r"^L(\d+)(r?)\.([a-z])#(\d+)$")
KIND_NAMES = {  # each kind of unit in words, with its article (LSTM: h c i f g o; GRU: h r z n)
    "h": "a hidden state",
    "c": "a cell state",
    "i": "an input gate",
    "f": "a forget gate",
    "g": "a candidate cell value",
    "o": "an output gate",
    "r": "a reset gate",
    "z": "an update gate",
    "n": "a candidate hidden value",
}
UNIT_FORMS = "L{layer}.{kind}.{index} (a neuron, e.g. L2.c.117), L2.c~NAME (a direction) or L2.c#N (a dictionary feature)"


class _OfSeries:
    """What every kind of unit says of the series it lives on."""

    layer: int
    kind: str
    reverse: bool

    @property
    def series(self) -> str:
        """The series it belongs to, e.g. ``L2.c`` or ``L2r.c``."""
        return f"L{self.layer}{'r' if self.reverse else ''}.{self.kind}"

    @property
    def described(self) -> str:
        """What it is in words: ``a cell state of layer 1``, ``... (backward)``."""
        kind = KIND_NAMES.get(self.kind, f"a {self.kind} unit")
        return f"{kind} of layer {self.layer}{' (backward)' if self.reverse else ''}"

    @property
    def hook_name(self) -> str:
        """The hook point its series passes through, e.g. ``layers.1.hook_c``."""
        return hook_name(self.layer - 1, self.kind, self.reverse)


@dataclass(frozen=True, order=True)
class NeuronId(_OfSeries):
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


@dataclass(frozen=True, order=True)
class DirectionId(_OfSeries):
    """A unit vector over the units of one series (a probe's direction), named:
    ``L2.c~in_string``."""

    layer: int
    kind: str
    name: str
    reverse: bool = False

    def __str__(self) -> str:
        return f"{self.series}~{self.name}"


@dataclass(frozen=True, order=True)
class FeatureId(_OfSeries):
    """Feature ``feature`` of the sparse dictionary trained on one series: ``L2.c#17``."""

    layer: int
    kind: str
    feature: int
    reverse: bool = False

    def __str__(self) -> str:
        return f"{self.series}#{self.feature}"


UnitId = NeuronId | DirectionId | FeatureId


def parse_unit(text: str | UnitId) -> UnitId:
    """A neuron, direction or dictionary-feature id (see the module's docstring)."""
    if isinstance(text, NeuronId | DirectionId | FeatureId):
        return text
    stripped = str(text).strip()
    if m := _DIRECTION_RE.match(stripped):
        return DirectionId(int(m.group(1)), m.group(3), m.group(4), m.group(2) == "r")
    if m := _FEATURE_RE.match(stripped):
        return FeatureId(int(m.group(1)), m.group(3), int(m.group(4)), m.group(2) == "r")
    if _NEURON_RE.match(stripped):
        return NeuronId.parse(stripped)
    raise NeuronError(f"{text!r} is not a unit id; write {UNIT_FORMS}.")


def parse_units(text: str | UnitId | list) -> list[UnitId]:
    """Unit ids (neurons, directions, features) from a comma-separated string, one id, or a
    list of either (order kept, repeats dropped); an empty list is an error."""
    return _parsed(
        text, parse_unit, (NeuronId, DirectionId, FeatureId), "Give at least one unit id, e.g. L2.c.117 or L2.c~in_string."
    )


def hook_name(layer: int, kind: str, reverse: bool = False) -> str:
    """The hook point of ``kind`` in ``layer`` (counted from 0); ``reverse``: the backward
    direction of a bidirectional layer."""
    return f"layers.{layer}.{'reverse.' if reverse else ''}hook_{kind}"


def parse_neurons(text: str | NeuronId | list) -> list[NeuronId]:
    """Neuron ids from a comma-separated string, one id, or a list of either (order kept,
    repeats dropped); an empty list is an error."""
    return _parsed(text, NeuronId.parse, NeuronId, "Give at least one neuron id, e.g. L2.c.117.")


def _parsed(text, parse, types, empty: str) -> list:
    items = comma_list(text) if isinstance(text, str) else [text] if isinstance(text, types) else list(text)
    out: list = []
    for item in items:
        if isinstance(item, str) and not item.strip():
            continue
        n = parse(item)
        if n not in out:
            out.append(n)
    if not out:
        raise NeuronError(empty)
    return out
