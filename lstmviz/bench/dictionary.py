"""``lstmviz bench dictionary``: training a sparse dictionary of 8 x 384 features (k = 32) on
one series (L1.c) of the shipped model's test split, beside SAELens's own training step
(``TopKTrainingSAE.training_forward_pass``, autograd's backward and Adam) on the same
batches, where SAELens is installed."""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from ..analysis.dictionary_evaluation import dead_and_dense, variance_explained
from ..analysis.dictionary_features import feature_codes
from ..analysis.dictionary_options import DictionaryOptions
from ..analysis.dictionary_training import series_of, train_dictionary, training_data
from ..recording.one_text import evaluation_documents
from ..recording.sources import COMPARED_KINDS, recorded
from ..text.lanes import limit_chars
from .fixtures import default_checkpoint
from .harness import at_most, result

SAE_LENS_STEPS = 5  # SAELens's steps timed (after one untimed)


def sae_lens_step_seconds(data: np.ndarray, scale: float, options: DictionaryOptions, features: int) -> float | None:
    """The median seconds of SAELens's top-k training step on batches like ours (None where
    SAELens is not installed)."""
    try:
        from sae_lens.saes.sae import TrainStepInput
        from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig
    except ImportError:
        return None
    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=data.shape[1], d_sae=features, k=options.k))
    optimizer = torch.optim.Adam(sae.parameters(), lr=options.lr)
    generator = torch.Generator().manual_seed(options.seed)
    dead = torch.zeros(features, dtype=torch.bool)
    times = []
    for step in range(SAE_LENS_STEPS + 1):
        rows = torch.randint(0, len(data), (options.batch,), generator=generator).numpy()
        x = torch.from_numpy(data[rows].astype(np.float32)).mul_(scale)
        t0 = time.perf_counter()
        optimizer.zero_grad()
        out = sae.training_forward_pass(TrainStepInput(x, {}, dead, step, False))
        out.loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def bench_dictionary(checkpoint: str | None = None, chars: int | None = None, steps: int = 1500, layer: int = 1) -> dict:
    """Train the dictionary on the first ``chars`` characters of the test split (default all of
    it) of the checkpoint's layer-``layer`` c, and time SAELens's step beside ours."""
    ckpt = default_checkpoint(checkpoint)
    store = recorded(ckpt, limit_chars(evaluation_documents(ckpt), chars), kinds=COMPARED_KINDS, progress=False)
    options = DictionaryOptions(steps=steps)
    features = options.features(series_of(store, layer, "c").shape[0])
    t0 = time.perf_counter()
    trained, record = train_dictionary(store, layer, "c", options, progress=False)
    seconds = time.perf_counter() - t0
    dead, dense = dead_and_dense(feature_codes(store, trained))
    data, scale, _ = training_data(series_of(store, layer, "c"))
    theirs = sae_lens_step_seconds(data, scale, options, features)
    ours = record.seconds / steps
    figures = {
        "model": f"{ckpt.model_config.num_layers}x{ckpt.model_config.hidden_size} {ckpt.model_config.cell}",
        "series": trained.series,
        "chars": len(store),
        "features": features,
        "k": options.k,
        "steps": steps,
        "batch": options.batch,
        "train_seconds": round(seconds, 2),
        "step_ms": round(1000 * ours, 1),
        "sae_lens_step_ms": None if theirs is None else round(1000 * theirs, 1),
        "vs_sae_lens": None if theirs is None else round(theirs / ours, 2),
        "variance_explained": round(variance_explained(store, trained), 4),
        "dead": dead,
        "dense": dense,
    }
    measures = "training a top-k dictionary (data read included) beside SAELens's training step on the same batches: seconds"
    return result("dictionary", measures, figures, {"train_seconds": at_most(600, "8 x 384 features on the test split")})
