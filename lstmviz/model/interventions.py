"""Ready-made hooks that replace values, as TransformerLens's hook functions do: ``zero``,
``mean`` (a neuron's mean over a store), ``clamp`` (a fixed value), ``scale`` (by a factor)
and ``patch`` (the values of another run, from its cache), each on chosen neurons and,
if given, only at chosen positions (steps of the call, ``hook.positions``); and, through a
sparse dictionary of a series (``sparse_dictionary.py``), ``splice`` (the series replaced by
its reconstruction) and ``edit_features`` (chosen features ablated or set, the reconstruction
error kept).

Along a direction d (a unit vector over one series' units, e.g. a probe's ``L2.c~in_string``)
the projection p = x . d is what changes, the rest of x stays: ``project_out`` (p -> 0),
``clamp_along`` (p -> a value) and ``steer`` (p -> p + alpha, i.e. x + alpha d); the vector
is given (``store.units.direction_vector`` reads a saved one).

    from lstmviz import interventions as iv
    with model.hooks(iv.clamp("L2.c.90", 20.0) + iv.zero("L1.c.5", positions=range(10, 50))):
        logits, _ = model(ids)

Each returns (hook name, hook) pairs, one per hook point it touches; lists add up with ``+``.
They replace values, so the layers they touch run on the exact step path (``stepwise.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch

from ..core.errors import LstmvizError
from ..core.neurons import NeuronId, parse_neurons, parse_unit
from ..core.options import comma_list
from .hooks import HookCall
from .sparse_dictionary import SparseDictionary

# new(x [batch, time, units], steps) -> values broadcastable to x
NewValues = Callable[[torch.Tensor, range], torch.Tensor]
Positions = int | range | Iterable[int] | None


class Replace:
    """x' = where(chosen, new(x, steps), x): the chosen units (the same for every row, or a
    mask per row) at the chosen positions (all, if none are given) take new values."""

    def __init__(self, new: NewValues, units=None, mask: torch.Tensor | None = None, positions: Positions = None):
        if (units is None) == (mask is None):
            raise ValueError("Give the units to replace, or a mask [rows, units].")
        self.new = new
        self.units = None if units is None else sorted(set(int(u) for u in units))
        self.mask = mask
        self.positions = _positions(positions)
        self._masks: dict = {}

    def _unit_mask(self, x: torch.Tensor) -> torch.Tensor:
        """[rows or 1, 1, units] bool, built once per width and device."""
        key = (x.shape[-1], x.device)
        if key not in self._masks:
            if self.mask is not None:
                mask = self.mask.to(x.device, torch.bool)
            else:
                if self.units and self.units[-1] >= x.shape[-1]:
                    raise LstmvizError(f"Unit {self.units[-1]} is outside this series (units 0-{x.shape[-1] - 1}).")
                mask = torch.zeros(1, x.shape[-1], dtype=torch.bool, device=x.device)
                mask[0, self.units] = True
            self._masks[key] = mask.unsqueeze(1)
        return self._masks[key]

    def fixed_values(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(mask [rows or 1, units], values) when this sets fixed values at every step, for
        a value like ``x`` [batch, units]: the step path then applies it as one ``where``."""
        if self.positions is not None or not isinstance(self.new, Constant):
            return None
        return self._unit_mask(x)[:, 0], self.new(x)

    def __call__(self, x: torch.Tensor, hook: HookCall) -> torch.Tensor | None:
        chosen = self._unit_mask(x)
        steps = hook.positions
        if self.positions is not None:
            at = [p in self.positions for p in steps]
            if not any(at):
                return None
            if not all(at):
                chosen = chosen & torch.tensor(at, device=x.device).view(1, -1, 1)
        return torch.where(chosen, self.new(x, steps), x)


def _positions(positions: Positions):
    if positions is None or isinstance(positions, range):
        return positions
    if isinstance(positions, int | np.integer):
        return range(int(positions), int(positions) + 1)
    return frozenset(int(p) for p in positions)


class Constant:
    """New values that do not depend on the old: one per unit (a dict, or a tensor
    [units]), or one for all. Called as ``new(x, steps)``."""

    def __init__(self, values: dict[int, float] | torch.Tensor | float):
        self.values = values
        self._built: dict = {}

    def __call__(self, x: torch.Tensor, steps: range | None = None) -> torch.Tensor:
        key = (x.shape[-1], x.dtype, x.device)
        if key not in self._built:
            values = self.values
            if isinstance(values, torch.Tensor):
                v = values.to(x.device, x.dtype)
            elif isinstance(values, dict):
                v = torch.zeros(x.shape[-1], dtype=x.dtype, device=x.device)
                v[list(values)] = torch.tensor(list(values.values()), dtype=x.dtype, device=x.device)
            else:
                v = torch.tensor(float(values), dtype=x.dtype, device=x.device)
            self._built[key] = v
        return self._built[key]


constant = Constant


def _by_point(neurons) -> dict[str, list[int]]:
    """Neuron ids grouped by hook point: {hook name: units}."""
    out: dict[str, list[int]] = {}
    for n in parse_neurons(neurons):
        out.setdefault(n.hook_name, []).append(n.index)
    return out


def _number(value, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise LstmvizError(f"{what} must be a number, not {value!r}.") from None
    if not np.isfinite(number):
        raise LstmvizError(f"{what} must be a finite number, not {value!r}.")
    return number


def zero(neurons, positions: Positions = None) -> list[tuple[str, Replace]]:
    """Set the neurons to 0."""
    return [(name, Replace(constant(0.0), units, positions=positions)) for name, units in _by_point(neurons).items()]


def clamp(neurons, value: float, positions: Positions = None) -> list[tuple[str, Replace]]:
    """Hold the neurons at ``value``."""
    value = _number(value, "A clamp value")
    return [(name, Replace(constant(value), units, positions=positions)) for name, units in _by_point(neurons).items()]


def scale(neurons, factor: float, positions: Positions = None) -> list[tuple[str, Replace]]:
    """Multiply the neurons by ``factor``."""
    factor = _number(factor, "A scale factor")
    return [
        (name, Replace(lambda x, steps: x * factor, units, positions=positions)) for name, units in _by_point(neurons).items()
    ]


def store_means(store, neurons) -> dict[NeuronId, float]:
    """Each neuron's mean over a recorded store's whole text."""
    return {n: float(np.mean(store.neuron(n), dtype=np.float64)) for n in parse_neurons(neurons)}


def mean(neurons, store, positions: Positions = None) -> list[tuple[str, Replace]]:
    """Set each neuron to its mean over ``store`` (a recorded store of the same model)."""
    means = store_means(store, neurons)
    pairs = []
    for name, units in _by_point(neurons).items():
        values = {n.index: v for n, v in means.items() if n.hook_name == name}
        pairs.append((name, Replace(constant(values), units, positions=positions)))
    return pairs


def patch(neurons, cache: dict[str, torch.Tensor], positions: Positions = None) -> list[tuple[str, Replace]]:
    """Set the neurons to their values in another run (``cache`` from ``run_with_cache`` on
    the same batch shape), step for step: activation patching."""
    pairs = []
    for name, units in _by_point(neurons).items():
        if name not in cache:
            raise LstmvizError(f"The cache holds no {name}; record it with names_filter including it.")
        source = cache[name]

        def new(x: torch.Tensor, steps: range, source=source, name=name) -> torch.Tensor:
            if steps.stop > source.shape[1] or source.shape[0] != x.shape[0]:
                raise LstmvizError(
                    f"The patched run's {name} covers {source.shape[0]} rows x {source.shape[1]} steps; "
                    f"this call needs {x.shape[0]} rows and steps {steps.start}-{steps.stop - 1}."
                )
            return source[:, steps.start : steps.stop].to(x.device, x.dtype)

        pairs.append((name, Replace(new, units, positions=positions)))
    return pairs


class AlongDirection:
    """x' = x + (new(p) - p) d with p = x . d: only the projection on the unit vector ``d``
    changes, at the chosen positions (all, if none are given). ``d`` is one vector [units]
    for every row, or one per row [rows, units] (control directions side by side in a batch);
    ``new`` is ``("zero", 0)``, ``("clamp", value)`` (``value`` one number or one per row) or
    ``("add", alpha)``."""

    def __init__(self, d: torch.Tensor, how: str, value=0.0, positions: Positions = None):
        if how not in ("zero", "clamp", "add"):
            raise ValueError(f"A direction's projection is set to zero, clamped or added to, not {how!r}.")
        self.d = torch.as_tensor(d, dtype=torch.float32)
        self.d = self.d / self.d.norm(dim=-1, keepdim=True)
        self.how, self.value = how, torch.as_tensor(value, dtype=torch.float32)
        self.positions = _positions(positions)

    def _shift(self, x: torch.Tensor) -> torch.Tensor:
        """new(p) - p, [rows, time, 1], and d shaped to broadcast against x."""
        d = self.d.to(x.device, x.dtype)
        d = d.view(1, 1, -1) if d.dim() == 1 else d.unsqueeze(1)
        if self.how == "add":
            return self.value.to(x.device, x.dtype).reshape(-1, 1, 1), d
        p = (x * d).sum(-1, keepdim=True)
        target = 0.0 if self.how == "zero" else self.value.to(x.device, x.dtype).reshape(-1, 1, 1)
        return target - p, d

    def __call__(self, x: torch.Tensor, hook: HookCall) -> torch.Tensor | None:
        if self.d.shape[-1] != x.shape[-1]:
            raise LstmvizError(f"A direction of {self.d.shape[-1]} units does not fit {hook.name} ({x.shape[-1]} units).")
        shift, d = self._shift(x)
        moved = x + shift * d
        if self.positions is None:
            return moved
        at = [p in self.positions for p in hook.positions]
        if not any(at):
            return None
        return torch.where(torch.tensor(at, device=x.device).view(1, -1, 1), moved, x)


def _direction_point(direction) -> str:
    return parse_unit(direction).hook_name


def project_out(direction, vector, positions: Positions = None) -> list[tuple[str, AlongDirection]]:
    """Remove ``direction`` (an id such as ``L2.c~in_string``, with its unit vector) from its
    series: the projection on it set to 0."""
    return [(_direction_point(direction), AlongDirection(torch.as_tensor(vector), "zero", positions=positions))]


def clamp_along(direction, vector, value: float, positions: Positions = None) -> list[tuple[str, AlongDirection]]:
    """Hold the projection on ``direction`` at ``value``."""
    value = _number(value, "A clamp value")
    return [(_direction_point(direction), AlongDirection(torch.as_tensor(vector), "clamp", value, positions))]


def steer(direction, vector, alpha: float, positions: Positions = None) -> list[tuple[str, AlongDirection]]:
    """Add ``alpha`` times the unit vector of ``direction`` to its series."""
    alpha = _number(alpha, "A steering strength")
    return [(_direction_point(direction), AlongDirection(torch.as_tensor(vector), "add", alpha, positions))]


def steer_feature(
    dictionary: SparseDictionary, feature: int, alpha: float, positions: Positions = None
) -> list[tuple[str, AlongDirection]]:
    """Add ``alpha`` times the dictionary's row ``W_dec[feature]`` to its series: the change
    that raising the feature's value by ``alpha`` decodes to."""
    alpha = _checked_edit(dictionary, {feature: alpha})[int(feature)]
    row = dictionary.W_dec[int(feature)].detach().float().cpu()
    return [(_series_hook(dictionary), AlongDirection(row, "add", alpha * float(row.norm()), positions))]


@dataclass(frozen=True)
class Mode:
    """How an ablation replaces a neuron: ``zero``, ``mean`` (over the text it runs on) or
    ``clamp`` to ``value``."""

    name: str
    value: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Mode:
        name, sep, value = str(text).strip().partition("=")
        if name in ("zero", "mean") and not sep:
            return cls(name)
        if name == "clamp" and sep:
            return cls(name, _number(value, "The clamp value in --mode clamp=V"))
        raise LstmvizError(f"--mode takes zero, mean or clamp=VALUE (e.g. clamp=-5), not {text!r}.")

    def __str__(self) -> str:
        return f"clamp={self.value:g}" if self.name == "clamp" else self.name


def parse_assignments(items: Iterable[str], what: str = "--clamp", parse=NeuronId.parse) -> dict[NeuronId, float]:
    """``ID=VALUE`` items (``L2.c.90=20``; ``:`` works as well, as in URLs) -> {neuron: value};
    ``parse``: how an id is read (``parse_unit`` for dictionary features, ``L1.c#17=5``)."""
    out = {}
    for item in items:
        for part in comma_list(item):
            sep = "=" if "=" in part else ":"
            neuron, found, value = part.partition(sep)
            if not found:
                raise LstmvizError(f"{what} takes ID=VALUE, e.g. L2.c.90=20, not {part!r}.")
            out[parse(neuron)] = _number(value.strip(), f"The value for {neuron.strip()} in {what}")
    return out


# -- through a sparse dictionary of a series ---------------------------------------------------


def _series_hook(dictionary: SparseDictionary) -> str:
    return NeuronId.parse(f"{dictionary.series}.0").hook_name


def splice(dictionary: SparseDictionary, positions: Positions = None) -> list[tuple[str, Replace]]:
    """Replace the dictionary's series by its reconstruction x^(x) = f(x) W_dec + b_dec: the
    model then runs on what the dictionary keeps, and loses what it misses."""
    dictionary = dictionary.to("cpu")
    units = range(dictionary.units)
    return [(_series_hook(dictionary), Replace(lambda x, steps: dictionary.reconstruct(x), units, positions=positions))]


class FeatureEdit:
    """Set features of a dictionary to new values inside the series it reads, keeping what
    the dictionary does not explain: x' = x + sum_k (value_k - f_k(x)) W_dec[k]. A value of
    0 ablates feature k (x' = x - f_k(x) W_dec[k]); any other holds it there (steering).

    ``groups``: one {feature: value} for every row, or several (as many features each), the
    batch then split into that many equal groups of rows, each edited by its own (an
    ablation's target set and its controls side by side in one batch)."""

    def __init__(self, dictionary: SparseDictionary, groups: list[dict[int, float]]):
        self.dictionary = dictionary
        self.features = torch.tensor([list(g) for g in groups])  # [groups, edited]
        self.wanted = torch.tensor([list(g.values()) for g in groups], dtype=torch.float32)  # [groups, edited]

    def __call__(self, x: torch.Tensor, steps: range) -> torch.Tensor:
        groups = len(self.features)
        if x.shape[0] % groups:
            raise LstmvizError(f"{groups} groups of feature edits do not divide a batch of {x.shape[0]} rows.")
        per = x.shape[0] // groups
        features = self.features.to(x.device).repeat_interleave(per, 0)  # [rows, edited]
        wanted = self.wanted.to(x.device, x.dtype).repeat_interleave(per, 0)
        f = self.dictionary.encode(x)  # [rows, ..., features]
        shape = (x.shape[0],) + (1,) * (x.dim() - 2) + (features.shape[1],)
        now = f.gather(-1, features.view(shape).expand(*f.shape[:-1], -1))  # [rows, ..., edited]
        rows = self.dictionary.W_dec.to(x.device, x.dtype)[features]  # [rows, edited, units]
        change = (wanted.view(shape) - now).unsqueeze(-1) * rows.view(*shape, x.shape[-1])
        return x + change.sum(-2)


def edit_features(
    dictionary: SparseDictionary, values: dict[int, float] | list[dict[int, float]], positions: Positions = None
) -> list[tuple[str, Replace]]:
    """Set the dictionary's features ``{feature: value}`` (0: ablate) in its series, through
    the hooks (:class:`FeatureEdit`); a list of such dicts edits each group of the batch's
    rows by its own."""
    dictionary = dictionary.to("cpu")
    groups = [values] if isinstance(values, dict) else list(values)
    checked = [_checked_edit(dictionary, group) for group in groups]
    if not checked or len({len(g) for g in checked}) > 1:
        raise LstmvizError("Give each group of rows as many features to edit.")
    edit = FeatureEdit(dictionary, checked)
    return [(_series_hook(dictionary), Replace(edit, range(dictionary.units), positions=positions))]


def _checked_edit(dictionary: SparseDictionary, values: dict[int, float]) -> dict[int, float]:
    checked = {}
    for feature, value in values.items():
        if not 0 <= int(feature) < dictionary.size:
            raise LstmvizError(
                f"No feature {feature} in this dictionary of {dictionary.series}: it has features 0-{dictionary.size - 1}."
            )
        checked[int(feature)] = _number(value, f"The value for feature {feature}")
    if not checked:
        raise LstmvizError("Give at least one feature to edit.")
    return checked


def ablate_features(dictionary: SparseDictionary, features, positions: Positions = None) -> list[tuple[str, Replace]]:
    """Remove the dictionary's ``features`` from its series: x' = x - sum_k f_k(x) W_dec[k]."""
    return edit_features(dictionary, {int(f): 0.0 for f in features}, positions)
