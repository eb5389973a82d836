"""Named hook points, in the manner of TransformerLens's ``hook_points.py``.

Every per-character state of the instrumented model passes through a :class:`HookPoint`
(an identity module) with a dotted name such as ``layers.1.hook_c``. A hook is a function
``fn(tensor, name) -> tensor | None``: returning a tensor replaces the value downstream
(clamp, zero), returning ``None`` only reads it. Hooks are added by the :func:`hooks`
context manager, so they can never outlive the block that added them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

HookFn = Callable[[torch.Tensor, str], "torch.Tensor | None"]


class HookPoint(nn.Module):
    """Identity on a whole ``[batch, time, units]`` tensor, calling the hooks added to it."""

    def __init__(self) -> None:
        super().__init__()
        self.name = ""
        self.fns: list[HookFn] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for fn in self.fns:
            out = fn(x, self.name)
            if out is not None:
                if out.shape != x.shape:
                    raise ValueError(f"A hook on {self.name} returned shape {tuple(out.shape)}, expected {tuple(x.shape)}.")
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
        return points
    if callable(names):
        return {n: p for n, p in points.items() if names(n)}
    if isinstance(names, str):
        pattern = re.compile(names)
        return {n: p for n, p in points.items() if pattern.fullmatch(n)}
    unknown = [n for n in names if n not in points]
    if unknown:
        raise KeyError(f"No hook point named {', '.join(unknown)}; the model has {', '.join(points)}.")
    return {n: points[n] for n in names}


@contextmanager
def hooks(model: nn.Module, fwd_hooks: dict[str, HookFn] | list[tuple[str, HookFn]]) -> Iterator[nn.Module]:
    """Add hooks by exact hook-point name for the duration of the block; always removed."""
    pairs = list(fwd_hooks.items()) if isinstance(fwd_hooks, dict) else list(fwd_hooks)
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


def run_with_cache(
    model: nn.Module,
    run: Callable[[], object],
    names_filter: str | Callable[[str], bool] | list[str] | None = None,
    detach: bool = True,
) -> tuple[object, dict[str, torch.Tensor]]:
    """Call ``run()`` with read hooks on the selected points; return its result and the
    cached tensors ``{name: [batch, time, units]}``. Only what was asked for is kept."""
    cache: dict[str, torch.Tensor] = {}

    def keep(x: torch.Tensor, name: str) -> None:
        cache[name] = x.detach() if detach else x

    selected = _select(model, names_filter)
    with hooks(model, [(name, keep) for name in selected]):
        result = run()
    return result, cache
