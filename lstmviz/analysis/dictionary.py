"""``lstmviz.dictionary``: train a sparse dictionary on one series of a store, save it beside
the store's files (SAELens's format), and report what it keeps and what its features track.

    report = lstmviz.dictionary("test.store", layer=1, kind="c", size="8x", k=32)
    print(report.to_text())
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..core.options import MAX_CHARS
from ..model.checkpoint import load_checkpoint, recorded_path
from ..model.sparse_dictionary import SparseDictionary
from ..store.dictionary_format import dictionary_path, save_dictionary
from ..store.open import open_store
from .dictionary_evaluation import (
    DictionaryReport,
    best_by_feature,
    dead_and_dense,
    spliced_bits,
    variance_explained,
)
from .dictionary_features import feature_codes
from .dictionary_options import SPLICE_CHARS, DictionaryOptions
from .dictionary_training import series_of, train_dictionary


def evaluate_dictionary(
    store, dictionary: SparseDictionary, path: str | Path = "", splice_chars: int = SPLICE_CHARS, training: dict | None = None
) -> DictionaryReport:
    """The report on ``dictionary`` over ``store`` (its model is loaded for the spliced bits)."""
    ckpt = load_checkpoint(recorded_path(store.checkpoint))
    codes = feature_codes(store, dictionary)
    dead, dense = dead_and_dense(codes)
    return DictionaryReport(
        dictionary.series,
        dictionary.size,
        dictionary.k,
        str(path),
        variance_explained(store, dictionary),
        dead,
        dense,
        spliced_bits(ckpt, store, dictionary, splice_chars),
        min(splice_chars, len(store)),
        best_by_feature(store, dictionary, codes),
        training or {},
    )


def dictionary(
    store,
    layer: int,
    kind: str,
    size: str | int = "8x",
    k: int = 32,
    steps: int = DictionaryOptions.steps,
    *,
    batch: int = DictionaryOptions.batch,
    seed: int = 0,
    splice_chars: int = SPLICE_CHARS,
    out: str | Path | None = None,
    progress: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
) -> DictionaryReport:
    """Train a top-k dictionary of ``size`` features (``"8x"``: 8 times the units) on the series
    ``L{layer}.{kind}`` of ``store`` (a store or its path), save it (default:
    ``STORE/dictionaries/L1.c-3072-k32``) and report on it. Bad input is one sentence,
    before any training."""
    store = open_store(store) if isinstance(store, str | Path) else store
    MAX_CHARS.check(splice_chars)
    options = DictionaryOptions(size, k, steps, batch, seed=seed)
    features = options.features(series_of(store, layer, kind).shape[0])
    load_checkpoint(recorded_path(store.checkpoint))  # the model the splice needs: refused now, not after training
    trained, record = train_dictionary(store, layer, kind, options, progress=progress, on_progress=on_progress)
    path = Path(out) if out is not None else dictionary_path(store, trained.series, features, k)
    save_dictionary(trained, path, store, record.to_json())
    return evaluate_dictionary(store, trained, path, splice_chars, record.to_json())
