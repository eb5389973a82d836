"""How good a sparse dictionary of a series is, and what its features track:

- variance explained on the held-out characters (``dictionary_training.held_out``):
  1 - sum |x - x^|^2 / sum |x - mean x|^2;
- dead features (active on none of them) and dense ones (on more than ``DENSE`` of them);
- the *spliced* bits per character: the model run on the first characters of the store's
  text with the series replaced by its reconstruction at every step, through the exact
  hooks (``interventions.splice``), beside the clean run and the series zeroed;
- per text feature, the best dictionary feature's score (AUROC or Spearman's rho, computed
  exactly as ``rankings.py`` scores neurons) beside the best neuron's of the same series.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..core.neurons import NeuronId
from ..core.options import MAX_CHARS
from ..model import interventions as iv
from ..model.sparse_dictionary import SparseDictionary
from ..recording.sources import store_documents
from ..store.format import DEFAULT_LANES
from ..text.lanes import LaidText, bits_per_character, limit_chars
from .dictionary_features import FeatureCodes
from .dictionary_options import SPLICE_CHARS
from .dictionary_training import character_major, held_out, series_of
from .rankings import block_stats, ranking_plan, store_rankings

DENSE = 0.1  # a feature active on more than this share of the characters is dense
RANK_BLOCK = 16


@torch.no_grad()
def variance_explained(store, dictionary: SparseDictionary) -> float:
    """1 - (squared reconstruction error) / (squared deviation from the mean), summed over the
    held-out characters and units."""
    layer, kind = dictionary.series[1:].split(".")
    series = series_of(store, int(layer), kind)
    x = torch.from_numpy(character_major(series, np.flatnonzero(held_out(series.shape[1]))).astype(np.float32)).double()
    error = sum(float((dictionary.reconstruct(part.float()).double() - part).pow(2).sum()) for part in x.split(16_384))
    return 1.0 - error / max(float((x - x.mean(0)).pow(2).sum()), 1e-300)


def dead_and_dense(codes: FeatureCodes) -> tuple[int, int]:
    """Features active on none of the held-out characters, and on more than ``DENSE`` of them."""
    rows = np.flatnonzero(held_out(len(codes)))
    share = codes.fired(rows) / max(len(rows), 1)
    return int((share == 0).sum()), int((share > DENSE).sum())


def spliced_bits(ckpt, store, dictionary: SparseDictionary, max_chars: int = SPLICE_CHARS) -> dict[str, float]:
    """Bits per character on the first ``max_chars`` characters of the store's text: clean, with
    the series replaced by the dictionary's reconstruction, and with the series zeroed."""
    MAX_CHARS.check(max_chars)
    laid = LaidText.of(limit_chars(store_documents(store), max_chars), ckpt.vocab, DEFAULT_LANES)
    series = NeuronId.parse(f"{dictionary.series}.0")
    every_unit = [NeuronId(series.layer, series.kind, u) for u in range(dictionary.units)]
    model = ckpt.model
    return {
        "clean_bpc": bits_per_character(model, laid)[0],
        "spliced_bpc": bits_per_character(model, laid, hooks=iv.splice(dictionary))[0],
        "zero_ablated_bpc": bits_per_character(model, laid, hooks=iv.zero(every_unit))[0],
    }


def best_by_feature(store, dictionary: SparseDictionary, codes: FeatureCodes) -> dict[str, dict]:
    """For every text feature of the store: the dictionary feature that tracks it best and its
    score, beside the best neuron of the same series and its score (rankings' scores)."""
    from ..text.features import store_features

    features = store_features(store)
    layer, kind = dictionary.series[1:].split(".")
    plan = ranking_plan(store, features, (kind,), RANK_BLOCK)
    blocks = [
        block_stats(codes.dense(lo, min(lo + RANK_BLOCK, codes.size)), plan.targets) for lo in range(0, codes.size, RANK_BLOCK)
    ]
    auroc, rho = np.concatenate([b[0] for b in blocks]), np.concatenate([b[1] for b in blocks])
    scores = {name: np.maximum(auroc[:, j], 1 - auroc[:, j]) for j, name in enumerate(plan.binary_names)}
    scores |= {name: np.abs(rho[:, j]) for j, name in enumerate(plan.numeric_names)}
    neurons = store_rankings(store)
    out = {}
    for name, score in scores.items():
        rows = [r for r in neurons.get(name, {}).get("rows", []) if NeuronId.parse(r["neuron"]).series == dictionary.series]
        best = int(np.argmax(score))
        out[name] = {
            "feature": f"{dictionary.series}#{best}",
            "score": round(float(score[best]), 5),
            "best_neuron": rows[0]["neuron"] if rows else None,
            "best_neuron_score": round(float(rows[0]["score"]), 5) if rows else None,
        }
    return out


def _finite(value: float) -> float | None:
    """A figure for JSON: None where the run diverged (a spliced state that grows without
    bound, step after step, ends in inf or NaN)."""
    return round(value, 5) if np.isfinite(value) else None


def _shown(value: float) -> str:
    return f"{value:.4f}" if np.isfinite(value) else "diverged (the state grew without bound)"


@dataclass
class DictionaryReport:
    """What ``lstmviz dictionary`` reports of a trained dictionary."""

    series: str
    size: int
    k: int
    path: str
    variance_explained: float
    dead: int
    dense: int
    bits: dict[str, float]  # clean_bpc, spliced_bpc, zero_ablated_bpc
    splice_chars: int
    best: dict[str, dict]
    training: dict

    def to_json(self) -> dict:
        layer, kind = self.series[1:].split(".")
        return {
            "layer": int(layer),
            "kind": kind,
            "size": self.size,
            "k": self.k,
            "path": self.path,
            "variance_explained": round(self.variance_explained, 5),
            **{name: _finite(value) for name, value in self.bits.items()},
            "splice_chars": self.splice_chars,
            "dead": self.dead,
            "dense": self.dense,
            "best_by_feature": self.best,
            "training": self.training,
        }

    def to_text(self) -> str:
        b = self.bits
        lines = [
            f"{self.series}: {self.size:,} features, k = {self.k}, saved in {self.path}",
            f"variance explained on held-out characters: {self.variance_explained:.4f}",
            f"dead features: {self.dead:,}; dense (active on > {DENSE:.0%} of characters): {self.dense:,}",
            f"bits per character on {self.splice_chars:,} characters: clean {_shown(b['clean_bpc'])}, "
            f"spliced {_shown(b['spliced_bpc'])}, {self.series} zeroed {_shown(b['zero_ablated_bpc'])}",
            "",
            f"  {'text feature':<14}{'best feature':>16}{'score':>8}{'best neuron':>14}{'score':>8}",
        ]
        for name, row in self.best.items():
            neuron = row["best_neuron"] or "-"
            neuron_score = f"{row['best_neuron_score']:.3f}" if row["best_neuron_score"] is not None else "-"
            lines.append(f"  {name:<14}{row['feature']:>16}{row['score']:>8.3f}{neuron:>14}{neuron_score:>8}")
        return "\n".join(lines)
