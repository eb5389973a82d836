"""Named hook points, in the manner of TransformerLens's ``hook_points.py``.

Every per-character state of the instrumented model passes through a :class:`HookPoint`
with a dotted name such as ``layers.1.hook_c``. A hook is a function ``fn(x, hook)``: ``x``
is the value, ``hook`` a :class:`HookCall` saying where (``hook.name``) and at which steps of
the call (``hook.positions``). Returning a tensor (or changing ``x`` in place) replaces the
value; returning ``None`` leaves it. Hooks are added by the :func:`hooks` context manager, so
they can never outlive the block that added them.

Two kinds of hook, because a recurrent state feeds its own next step:
- a **reader** (wrapped by :func:`reader`, as :func:`run_with_cache`'s are) sees each series
  once per layer per call as a whole ``[batch, time, units]`` tensor, on the fast path;
- any other hook may replace its value, so a call with one runs that layer on the exact
  step path (``stepwise.py``): the hook sees one step at a time, ``[batch, 1, units]``, and
  what it returns is what the cell computes with from then on.

A gate's pre-activation (the argument of its sigmoid or tanh) has a hook point too,
``layers.1.hook_pre_i`` (:class:`PreActivationPoint`), seen on the step path only, one step at
a time, with what it is made of in ``hook.inputs``: the layer's input ``x`` at the step, the
state ``h`` it started from (h_{t-1}), and where they enter, ``c`` (a peephole's) and ``r``
(a GRU's n: ``W_in x + b_in + r * (W_hn h + b_hn)``), each ``[batch, units]``. Cutting one
edge into a unit (path ablation, ``analysis/circuits.py``) is a hook there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

import torch
from torch import nn

from ..core.errors import LstmvizError


class HookCall(NamedTuple):
    """Where a hook is being called: the hook point's name, and the steps of the call (the
    time axis of the ids given, shifted by the call's ``offset``) that its tensor covers."""

    name: str  # e.g. "layers.1.hook_c"
    positions: range  # the steps x[:, 0], x[:, 1], ... stand for
    inputs: dict[str, torch.Tensor] | None = None  # a pre-activation's sources at the step: x, h (and c, r)


HookFn = Callable[[torch.Tensor, HookCall], "torch.Tensor | None"]
Hooks = dict[str, HookFn] | list[tuple[str, HookFn]]


class Reader:
    """A hook that only reads: it sees whole ``[batch, time, units]`` series on the fast path."""

    def __init__(self, fn: Callable[[torch.Tensor, HookCall], None]):
        self.fn = fn

    def __call__(self, x: torch.Tensor, hook: HookCall) -> None:
        if self.fn(x, hook) is not None:
            raise LstmvizError(f"A hook marked as a reader returned a value at {hook.name}; drop reader() to replace values.")


def reader(fn: Callable[[torch.Tensor, HookCall], None]) -> Reader:
    """Mark ``fn`` as a hook that never changes its value, so the call keeps the fast path."""
    return fn if isinstance(fn, Reader) else Reader(fn)


def is_reader(fn: HookFn) -> bool:
    return isinstance(fn, Reader)


class HookPoint(nn.Module):
    """A named place where one series can be read or replaced; holds the hooks added to it.
    The model's forward calls them (see :func:`apply_hooks`)."""

    def __init__(self) -> None:
        super().__init__()
        self.name = ""
        self.fns: list[HookFn] = []


class PreActivationPoint(HookPoint):
    """A gate's pre-activation, ``[batch, 1, units]`` one step at a time on the exact step
    path, with ``hook.inputs``. Not a series: no reader caches it, and selecting every hook
    point (``names_filter=None``) leaves it out."""


def apply_hooks(fns: list[HookFn], x: torch.Tensor, hook: HookCall) -> torch.Tensor:
    """Call ``fns`` in order on ``x``; each returned tensor replaces the value for the next."""
    for fn in fns:
        out = fn(x, hook)
        if out is not None:
            if out.shape != x.shape:
                raise LstmvizError(f"A hook on {hook.name} returned shape {tuple(out.shape)}, expected {tuple(x.shape)}.")
            x = out
    return x


def hook_points(model: nn.Module) -> dict[str, HookPoint]:
    """All hook points of ``model`` by dotted name (names are assigned on first call)."""
    points = {}
    for name, module in model.named_modules():
        if isinstance(module, HookPoint):
            module.name = name
            points[name] = module
    return points


def _select(model: nn.Module, names: str | Callable[[str], bool] | list[str] | None) -> dict[str, HookPoint]:
    points = hook_points(model)
    if names is None:
        return {n: p for n, p in points.items() if not isinstance(p, PreActivationPoint)}
    if callable(names):
        return {n: p for n, p in points.items() if names(n)}
    if isinstance(names, str):
        pattern = re.compile(names)
        return {n: p for n, p in points.items() if pattern.fullmatch(n)}
    unknown = [n for n in names if n not in points]
    if unknown:
        raise KeyError(f"No hook point named {', '.join(unknown)}; the model has {', '.join(points)}.")
    return {n: points[n] for n in names}


def pairs_of(fwd_hooks: Hooks | None) -> list[tuple[str, HookFn]]:
    if fwd_hooks is None:
        return []
    return list(fwd_hooks.items()) if isinstance(fwd_hooks, dict) else list(fwd_hooks)


def active_hooks(model: nn.Module, extra: Hooks | None = None) -> dict[str, list[HookFn]]:
    """The hooks a call runs, by hook point: those added with :func:`hooks`, then ``extra``
    (given to the call itself, which leaves the model untouched: safe across threads)."""
    points = hook_points(model)
    out = {name: list(p.fns) for name, p in points.items() if p.fns}
    for name, fn in pairs_of(extra):
        if name not in points:
            raise KeyError(f"No hook point named {name}; the model has {', '.join(points)}.")
        out.setdefault(name, []).append(fn)
    return out


@contextmanager
def hooks(model: nn.Module, fwd_hooks: Hooks) -> Iterator[nn.Module]:
    """Add hooks by exact hook-point name for the duration of the block; always removed."""
    pairs = pairs_of(fwd_hooks)
    points = _select(model, [name for name, _ in pairs])
    added: list[tuple[HookPoint, HookFn]] = []
    try:
        for name, fn in pairs:
            points[name].fns.append(fn)
            added.append((points[name], fn))
        yield model
    finally:
        for point, fn in added:
            point.fns.remove(fn)


def caching_readers(model: nn.Module, names_filter=None, detach: bool = True) -> tuple[list[tuple[str, Reader]], dict]:
    """Readers for the selected hook points, to pass to a call (``hooks=``), and the dict
    they fill: ``{name: [batch, time, units]}``. Nothing is added to the model, so calls
    from several threads keep their caches apart."""
    cache: dict[str, torch.Tensor] = {}

    @reader
    def keep(x: torch.Tensor, hook: HookCall) -> None:
        cache[hook.name] = x.detach() if detach else x

    return [(name, keep) for name in _select(model, names_filter)], cache


def run_with_cache(
    model: nn.Module,
    run: Callable[[], object],
    names_filter: str | Callable[[str], bool] | list[str] | None = None,
    detach: bool = True,
) -> tuple[object, dict[str, torch.Tensor]]:
    """Call ``run()`` with read hooks on the selected points; return its result and the
    cached tensors ``{name: [batch, time, units]}``. Only what was asked for is kept; with
    replacing hooks also active, the cache holds the values after replacement."""
    readers, cache = caching_readers(model, names_filter, detach)
    with hooks(model, readers):
        result = run()
    return result, cache
