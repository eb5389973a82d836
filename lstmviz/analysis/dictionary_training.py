"""Training a sparse dictionary (a top-k sparse autoencoder, ``model/sparse_dictionary.py``)
on one series of a store: Gao et al. (2024), as SAELens trains its ``TopKTrainingSAE``.

- The data: the store's series is neuron-major ([units, chars] float16); it is read once in
  blocks of characters, each turned character-major and kept in float16 ([chars, units]:
  the shipped model's test split is 365 MB so, against 730 MB in float32); each batch is
  widened to float32 as it is drawn. Every tenth block of ``HELD_OUT_BLOCK`` characters is
  held out, for the evaluation (``dictionary_evaluation.py``).
- Normalised as SAELens's ``normalize_activations="expected_average_only_in"``: the inputs
  are scaled by one factor so their mean norm is sqrt(units) while training, and the
  factor is folded into the weights at the end, so the saved dictionary reads raw values.
- The loss: the squared reconstruction error, summed over units, plus the auxiliary loss of
  Gao et al. (their appendix A.2, SAELens's ``calculate_topk_aux_loss``): the features dead
  for ``DEAD_AFTER`` characters rebuild the live ones' residual from their own top
  units/2, so they come back. Decoder rows are kept at unit norm.
- The gradients are written out by hand (:func:`loss_and_grads`), not taken by autograd:
  only k of the features are non-zero per character, and the hand-written backward pass
  touches only those (0.3 s a step of 4,096 characters for 3,072 features on 2 cores,
  against 2.0 s through autograd's dense top-k and scatter). A test holds them to autograd.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..core.errors import StoreError
from ..model.sparse_dictionary import SparseDictionary
from .dictionary_options import DictionaryOptions

HELD_OUT_BLOCK = 4096  # characters: every tenth block of this many (at most) is held out
HELD_OUT_EVERY = 10
READ_BLOCK = 65_536  # characters read from the neuron-major store at once
DEAD_AFTER = 200_000  # characters a feature may stay silent before it counts as dead (and the aux loss revives it)
AUX_COEFFICIENT = 1 / 32  # Gao et al.'s alpha


def held_out(chars: int) -> np.ndarray:
    """[chars] bool: the characters kept out of training, every tenth block of
    ``HELD_OUT_BLOCK`` characters (of fewer in a short text, so it has 20 such blocks)."""
    block = max(1, min(HELD_OUT_BLOCK, chars // (HELD_OUT_EVERY * 20)))
    return (np.arange(chars) // block) % HELD_OUT_EVERY == HELD_OUT_EVERY - 1


def character_major(block: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """A neuron-major float16 series ``block`` [units, chars] as [chars, units] float16 (the
    characters ``rows`` only, if given), read ``READ_BLOCK`` characters at a time: never the
    whole series in float32."""
    units, chars = block.shape
    rows = np.arange(chars) if rows is None else np.asarray(rows)
    out = np.empty((len(rows), units), dtype=np.float16)
    for start in range(0, len(rows), READ_BLOCK):
        part = rows[start : start + READ_BLOCK]
        lo, hi = int(part[0]), int(part[-1]) + 1
        out[start : start + len(part)] = np.asarray(block[:, lo:hi]).T[part - lo]
    return out


def series_of(store, layer: int, kind: str) -> np.ndarray:
    """The store's series ``L{layer}.{kind}`` [units, chars] float16; an unknown one is one sentence."""
    if not any(s.layer == layer and s.kind == kind and not s.reverse for s in store.series):
        layers = max(s.layer for s in store.series)
        kinds = ", ".join(sorted({s.kind for s in store.series}))
        raise StoreError(f"No series L{layer}.{kind} in this store: it has layers 1-{layers} and kinds {kinds}.")
    return store.series_block(layer, kind)


@dataclass
class _Weights:
    """The trainable tensors, on the scaled inputs."""

    W_enc: torch.Tensor
    b_enc: torch.Tensor
    W_dec: torch.Tensor
    b_dec: torch.Tensor

    def tensors(self) -> list[torch.Tensor]:
        return [self.W_enc, self.b_enc, self.W_dec, self.b_dec]


def _initial(units: int, features: int, mean: torch.Tensor, generator: torch.Generator) -> _Weights:
    """Decoder rows random unit vectors, the encoder their transpose, b_dec the data's mean
    (as SAELens's ``decoder_init_norm`` and ``b_dec_init_method="mean"``)."""
    W_dec = torch.randn(features, units, generator=generator)
    W_dec /= W_dec.norm(dim=1, keepdim=True)
    return _Weights(W_dec.t().contiguous(), torch.zeros(features), W_dec, mean.clone())


def _sparse_backward(w: _Weights, xc: torch.Tensor, indices: torch.Tensor, acts: torch.Tensor, g: torch.Tensor, through):
    """Add to the weights' gradients those of a reconstruction sum_j acts_j W_dec[indices_j]
    whose loss has gradient ``g`` [batch, units]; ``through`` [batch, k] masks where the
    activation passes gradient to the pre-activation ((x - b_dec) W_enc + b_enc)."""
    batch, k = indices.shape
    features = w.W_dec.shape[0]
    flat = indices.reshape(-1)
    rows = torch.arange(batch).repeat_interleave(k)
    at = torch.stack([flat, rows])
    # dL/dW_dec[f] = sum, over the characters f is active on, of act * g
    w.W_dec.grad.add_(
        torch.sparse.mm(torch.sparse_coo_tensor(at, acts.reshape(-1), (features, batch), check_invariants=False), g)
    )
    # dL/dact_j = W_dec[indices_j] . g, then to the pre-activation
    g_pre = torch.mm(g, w.W_dec.t()).gather(1, indices) * through  # dense: gathering k rows per character costs more
    w.W_enc.grad.add_(
        torch.sparse.mm(torch.sparse_coo_tensor(at, g_pre.reshape(-1), (features, batch), check_invariants=False), xc).t()
    )
    g_b_enc = torch.zeros(features).index_add_(0, flat, g_pre.reshape(-1))
    w.b_enc.grad.add_(g_b_enc)
    w.b_dec.grad.sub_(w.W_enc @ g_b_enc)  # the encoder reads x - b_dec


def loss_and_grads(w: _Weights, x: torch.Tensor, k: int, dead: torch.Tensor) -> tuple[float, float, torch.Tensor]:
    """One batch x [batch, units] (scaled): the reconstruction loss (squared error summed over
    units, mean over characters) and the auxiliary loss of the ``dead`` [features] features,
    their gradients written into the weights' ``.grad``; and the features active on it."""
    batch, units = x.shape
    for t in w.tensors():
        t.grad = torch.zeros_like(t)
    xc = x - w.b_dec
    pre = torch.addmm(w.b_enc, xc, w.W_enc)  # [batch, features]
    values, indices = pre.topk(k, dim=-1, sorted=False)
    acts = values.clamp(min=0)
    err = F.embedding_bag(indices, w.W_dec, mode="sum", per_sample_weights=acts) + w.b_dec - x
    mse = float(err.pow(2).sum(-1).mean())
    g = err * (2.0 / batch)
    w.b_dec.grad.add_(g.sum(0))  # the decoder adds b_dec
    _sparse_backward(w, xc, indices, acts, g, values > 0)
    aux = 0.0
    dead_count = int(dead.sum())
    if dead_count:
        k_aux = min(units // 2, dead_count)
        scale = AUX_COEFFICIENT * min(dead_count / (units // 2), 1.0)
        aux_values, aux_indices = pre.masked_fill(~dead, -math.inf).topk(k_aux, dim=-1, sorted=False)
        aux_err = F.embedding_bag(aux_indices, w.W_dec, mode="sum", per_sample_weights=aux_values) + err  # rebuilds -err
        aux = scale * float(aux_err.pow(2).sum(-1).mean())
        _sparse_backward(w, xc, aux_indices, aux_values, aux_err * (2.0 * scale / batch), torch.ones_like(aux_values))
    return mse, aux, indices[values > 0]


@dataclass
class TrainingRecord:
    """What a training run did, kept with the dictionary (``dictionary_format.py``)."""

    steps: int
    batch: int
    lr: float
    seed: int
    train_chars: int
    scale: float  # the input scale used while training (folded into the weights since)
    seconds: float
    final_fvu: float  # the last steps' unexplained variance, on training batches
    dead_at_end: int  # features silent for the last DEAD_AFTER characters

    def to_json(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def _learning_rate(options: DictionaryOptions, step: int) -> float:
    decay_from = int(options.steps * 0.8)
    return options.lr * min(1.0, (options.steps - step) / max(options.steps - decay_from, 1))


def training_data(series: np.ndarray) -> tuple[np.ndarray, float, torch.Tensor]:
    """The training characters of a series [units, chars] as [chars, units] float16, the
    input scale (mean norm to sqrt(units), from up to 100,000 of them) and their scaled mean."""
    units, chars = series.shape
    data = character_major(series, np.flatnonzero(~held_out(chars)))
    if len(data) == 0:
        raise StoreError("The store has too few characters to train a dictionary on.")
    sample = torch.from_numpy(data[:: max(1, len(data) // 100_000)].astype(np.float32))
    scale = math.sqrt(units) / max(float(sample.norm(dim=1).mean()), 1e-12)
    return data, scale, sample.mean(0) * scale


def train_dictionary(
    store,
    layer: int,
    kind: str,
    options: DictionaryOptions | None = None,
    progress: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[SparseDictionary, TrainingRecord]:
    """A top-k dictionary of the store's series ``L{layer}.{kind}`` trained on its training
    characters (all but the held-out blocks); ``on_progress(step, steps)`` follows it."""
    options = options or DictionaryOptions()
    series = series_of(store, layer, kind)
    features = options.features(series.shape[0])
    data, scale, mean = training_data(series)
    generator = torch.Generator().manual_seed(options.seed)
    w = _initial(series.shape[0], features, mean, generator)
    record = _train_loop(w, data, scale, features, options, generator, progress, on_progress)
    folded = SparseDictionary(w.W_enc * scale, w.b_enc.clone(), w.W_dec / scale, w.b_dec / scale, options.k, f"L{layer}.{kind}")
    return folded, record


@torch.no_grad()
def _train_loop(w: _Weights, data, scale, features, options: DictionaryOptions, generator, progress, on_progress):
    from tqdm.auto import tqdm

    optimizer = torch.optim.Adam(w.tensors(), lr=options.lr, betas=(0.9, 0.999))
    silent = torch.zeros(features, dtype=torch.int64)  # characters since each feature last fired
    fvus: list[float] = []
    started = time.perf_counter()
    bar = tqdm(total=options.steps, disable=not progress, unit="step", desc="training dictionary", dynamic_ncols=True)
    for step in range(options.steps):
        rows = torch.randint(0, len(data), (options.batch,), generator=generator).numpy()
        x = torch.from_numpy(data[rows].astype(np.float32)).mul_(scale)
        mse, aux, fired = loss_and_grads(w, x, options.k, silent >= DEAD_AFTER)
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(options, step)
        optimizer.step()
        w.W_dec /= w.W_dec.norm(dim=1, keepdim=True).clamp_(min=1e-12)
        silent += options.batch
        silent[fired] = 0
        fvus.append(mse / max(float((x - x.mean(0)).pow(2).sum(-1).mean()), 1e-12))
        bar.update(1)
        if step % 10 == 0:
            bar.set_postfix(fvu=f"{np.mean(fvus[-10:]):.3f}", dead=int((silent >= DEAD_AFTER).sum()), refresh=False)
        if on_progress is not None:
            on_progress(step + 1, options.steps)
    bar.close()
    return TrainingRecord(
        options.steps,
        options.batch,
        options.lr,
        options.seed,
        len(data),
        scale,
        time.perf_counter() - started,
        float(np.mean(fvus[-20:])),
        int((silent >= DEAD_AFTER).sum()),
    )
