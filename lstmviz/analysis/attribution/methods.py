"""Three ways to share a target's value among the characters of a window, each from a
``TargetFunction`` f and a baseline embedding b for every character of the window:

- ``ig``: integrated gradients (Sundararajan et al. 2017, "Axiomatic Attribution for Deep
  Networks"): (x - b) times the mean gradient along the straight path from b to x, the
  path integral taken at adaptively placed points (:func:`integrated_gradients`), each
  round of points one batched forward and one backward.
- ``grad``: gradient x input, (x - b) times the gradient at x: one forward and one backward.
- ``occlusion``: the true change, f(x) - f(x with character s read as the baseline), for
  every s, batched; no gradients. A unidirectional model's windows share what comes
  before s: a batch of occluded characters starts at the first of them, from the state
  the characters before it left.

Each returns (contributions [window] float64, f(x), f(b)), summed over the embedding.
"""

from __future__ import annotations

import numpy as np
import torch

from .forward import TargetFunction

OCCLUSION_BATCH = 24  # occluded characters run side by side
REFINING_ROUNDS = 4  # rounds in which integrated gradients adds path points


def _path_points(f: TargetFunction, x: torch.Tensor, baseline: torch.Tensor, alphas: torch.Tensor):
    """f and the per-character gradient terms (x - b) . grad f at the path points
    b + alpha (x - b): ([points] float64, [points, window] float64), one forward and one backward."""
    rows = (baseline + alphas.view(-1, 1, 1).float() * (x - baseline)).requires_grad_(True)
    out = f(rows)
    (grad,) = torch.autograd.grad(out.sum(), rows)
    return out.detach().double(), ((x - baseline) * grad).sum(-1).double()


def integrated_gradients(f: TargetFunction, baseline: torch.Tensor, steps: int) -> tuple[np.ndarray, float, float]:
    """Adaptive: a third of the ``steps`` path points on an even grid from b to x (both
    ends included, so f(b) and f(x) come with them), the rest added in
    ``REFINING_ROUNDS`` rounds, each at the midpoints of the intervals where the trapezoid
    rule's integral of the gradient disagrees most with the change of f across them, which
    f's values at the points give for free. The path integral is then the trapezoid rule
    on all points. On the recurrent models here the integrand has narrow spikes (a cell
    switching as the embeddings grow), which a fixed grid misses: on the shipped model a
    uniform grid of 32 leaves a 38% median completeness error over string positions and
    Gauss-Legendre's 64 nodes 20%; the median these points leave is measured by ``lstmviz
    bench attribute --quality`` (docs/performance.md). Few rounds, because each round is a
    pass through the window: on the shipped model about 25 ms on top of 19 ms a point."""
    x = f.inputs
    alphas = torch.linspace(0, 1, max(2, steps // 3), dtype=torch.float64)
    values, terms = _path_points(f, x, baseline, alphas)
    per_round = -(-(steps - len(alphas)) // REFINING_ROUNDS)
    while len(alphas) < steps:
        width = alphas[1:] - alphas[:-1]
        estimate = (terms[1:] + terms[:-1]).sum(1) / 2 * width
        worst = torch.argsort(-(estimate - (values[1:] - values[:-1])).abs())[: min(steps - len(alphas), per_round)]
        middle = (alphas[worst] + alphas[worst + 1]) / 2
        more_values, more_terms = _path_points(f, x, baseline, middle)
        order = torch.argsort(torch.cat([alphas, middle]))
        alphas = torch.cat([alphas, middle])[order]
        values, terms = torch.cat([values, more_values])[order], torch.cat([terms, more_terms])[order]
    contributions = ((terms[1:] + terms[:-1]) / 2 * (alphas[1:] - alphas[:-1]).unsqueeze(1)).sum(0)
    return contributions.numpy(), float(values[-1]), float(values[0])


def gradient_x_input(f: TargetFunction, baseline: torch.Tensor) -> tuple[np.ndarray, float, float]:
    x = f.inputs
    rows = torch.stack([x, baseline]).requires_grad_(True)
    out = f(rows)
    (grad,) = torch.autograd.grad(out[0], rows)
    contributions = ((x - baseline) * grad[0]).sum(-1)
    return contributions.double().numpy(), float(out[0].detach()), float(out[1].detach())


@torch.no_grad()
def occlusion(f: TargetFunction, baseline: torch.Tensor) -> tuple[np.ndarray, float, float]:
    x = f.inputs
    T = x.shape[0]
    ends = f(torch.stack([x, baseline]))
    value, baseline_value = float(ends[0]), float(ends[1])
    changed, rest, rest_start = [], f, 0  # rest: f read from window character ``rest_start`` on
    for a in range(0, T, OCCLUSION_BATCH):
        if f.causal:
            rest, rest_start = rest.after(a - rest_start), a
        rows = torch.arange(a, min(T, a + OCCLUSION_BATCH))
        batch = rest.inputs.expand(len(rows), -1, -1).clone()
        batch[torch.arange(len(rows)), rows - rest_start] = baseline[rows]
        changed.append(rest(batch).double())
    return value - torch.cat(changed).numpy(), value, baseline_value


METHODS = ("ig", "grad", "occlusion")
