"""A sparse dictionary on disk, in SAELens's format, so ``SAE.load_from_disk(path)`` loads it
as a ``TopKSAE`` unchanged:

  cfg.json                  SAELens's inference config of the ``topk`` architecture (d_in, d_sae,
                            k, dtype, device, apply_b_dec_to_input, normalize_activations
                            "none": the training scale is folded into the weights,
                            rescale_acts_by_decoder_norm false, metadata); lstmviz's own keys
                            sit in ``metadata`` (the series, the checkpoint's content hash,
                            the training record), which SAELens keeps and ignores
  sae_weights.safetensors   W_enc [d_in, d_sae], b_enc, W_dec [d_sae, d_in], b_dec, float32

We write the format rather than use SAELens's classes: SAELens pulls TransformerLens,
transformers, datasets and wandb (about 60 packages) for classes whose inference is four
lines (``model/sparse_dictionary.py``), and its trainer expects a transformer to hook. The
test suite loads a saved dictionary in SAELens where it is installed.

A dictionary lives in the store's directory, beside its files and caches:
``STORE/dictionaries/L1.c-3072-k32/``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.atomic import write_atomic
from ..core.errors import LstmvizError, StoreError

if TYPE_CHECKING:  # torch loads only when a dictionary is read or written: a page listing features does not
    from ..model.sparse_dictionary import SparseDictionary

CONFIG_FILE, WEIGHTS_FILE = "cfg.json", "sae_weights.safetensors"  # SAELens's names
SAE_LENS_FORMAT = "6.0.0"  # the SAELens config version this layout follows (its 6.x cfg.json)
WEIGHT_NAMES = ("W_enc", "b_enc", "W_dec", "b_dec")


def dictionary_path(store, series: str, size: int, k: int) -> Path:
    """Where a store keeps its dictionary of ``series`` with ``size`` features and ``k``."""
    return Path(store.path) / "dictionaries" / f"{series}-{size}-k{k}"


def sae_config(dictionary: SparseDictionary, store, training: dict | None = None) -> dict:
    """The cfg.json SAELens reads for a ``TopKSAE``, lstmviz's keys in its metadata."""
    layer, kind = dictionary.series[1:].split(".")
    return {
        "architecture": "topk",
        "d_in": dictionary.units,
        "d_sae": dictionary.size,
        "k": dictionary.k,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "reshape_activations": "none",
        "rescale_acts_by_decoder_norm": False,
        "metadata": {
            "sae_lens_version": SAE_LENS_FORMAT,
            "sae_lens_training_version": None,  # trained by lstmviz (dictionary_training.py)
            "model_name": store.checkpoint.get("name"),
            "hook_name": f"layers.{int(layer) - 1}.hook_{kind}",
            "lstmviz_series": dictionary.series,
            "lstmviz_checkpoint_hash": store.checkpoint.get("content_hash"),
            "lstmviz_store": str(Path(store.path).resolve()),
            "lstmviz_training": training or {},
        },
    }


def save_dictionary(dictionary: SparseDictionary, path: str | Path, store, training: dict | None = None) -> Path:
    """Write ``dictionary`` (trained on ``store``) to the directory ``path``; each file whole
    or not at all. Returns the path."""
    from safetensors.torch import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    weights = {name: getattr(dictionary, name).detach().float().contiguous().cpu() for name in WEIGHT_NAMES}
    tmp = path / f".{WEIGHTS_FILE}.writing"
    save_file(weights, str(tmp))
    tmp.replace(path / WEIGHTS_FILE)
    write_atomic(path / CONFIG_FILE, json.dumps(sae_config(dictionary, store, training), indent=1))
    return path


def load_dictionary(path: str | Path, store=None) -> SparseDictionary:
    """The dictionary saved at ``path``; with ``store``, checked to belong to its model and
    series (one sentence if not)."""
    from safetensors.torch import load_file

    from ..model.sparse_dictionary import SparseDictionary

    path = Path(path)
    if not (path / CONFIG_FILE).is_file() or not (path / WEIGHTS_FILE).is_file():
        raise LstmvizError(f"No dictionary at {path}: it needs {CONFIG_FILE} and {WEIGHTS_FILE}.")
    try:
        cfg = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
        weights = load_file(str(path / WEIGHTS_FILE))
        meta = cfg["metadata"]
        dictionary = SparseDictionary(*(weights[name] for name in WEIGHT_NAMES), int(cfg["k"]), meta["lstmviz_series"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LstmvizError(f"The dictionary at {path} is damaged ({type(exc).__name__}); train it again.") from None
    if cfg.get("architecture") != "topk" or dictionary.W_dec.shape != (int(cfg["d_sae"]), int(cfg["d_in"])):
        raise LstmvizError(f"The dictionary at {path} is not a top-k dictionary of the shape its cfg.json says.")
    if store is not None:
        check_belongs(dictionary, meta, store, path)
    return dictionary


def check_belongs(dictionary: SparseDictionary, meta: dict, store, path: Path) -> None:
    """One sentence where a dictionary was trained on another model than the store's, or on
    a series the store lacks: its features would mean nothing there."""
    if meta.get("lstmviz_checkpoint_hash") != store.checkpoint.get("content_hash"):
        raise StoreError(
            f"The dictionary at {path} was trained on another model's states ({meta.get('model_name')}), "
            f"not on those of {store.checkpoint.get('name')} that {store.name} holds."
        )
    layer, kind = dictionary.series[1:].split(".")
    units = [s.units for s in store.series if s.layer == int(layer) and s.kind == kind and not s.reverse]
    if units != [dictionary.units]:
        raise StoreError(f"The dictionary at {path} reads {dictionary.series}, which {store.name} does not hold.")
