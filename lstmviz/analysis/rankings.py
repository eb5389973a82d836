"""Every neuron ranked against every feature (AUROC for binary features, Spearman's rho for
numeric ones, Pearson's r beside them), and "the best cell" of a feature (``RANKED_KINDS``).

Rankings are exact and vectorised. Activations are float16, which has at most 65,536
distinct values, so the ranks of one neuron's whole series come from one counting pass
(``bincount`` over the value codes) instead of a sort: AUROC is the Mann-Whitney statistic
from the positive and negative counts per value, Spearman's rho is Pearson's r of the
tie-averaged ranks (one gather and one matrix product per block of neurons).
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.stats import rankdata

from ..core.errors import LstmvizError, StoreError
from ..core.options import TOP
from ..core.runtime import map_threads
from ..store.cache import cached
from ..store.reader import ActivationStore
from ..text.features import Features
from .distribution import KEY_FINITE, KEY_FINITE_VALUES, value_keys


@dataclass
class Ranking:
    """Every neuron against one feature, best first."""

    feature: str
    metric: str  # auroc | spearman
    table: pd.DataFrame  # neuron, score (folded strength), value (signed), pearson
    absent: bool = False  # the text lacks the feature (one value throughout): nothing ranked, the table is empty

    def top(self, k: int) -> pd.DataFrame:
        return self.table.head(TOP.check(k))

    def to_json(self, k: int | None = None) -> list[dict]:
        rows = self.table if k is None else self.top(k)
        return [
            {
                "neuron": r.neuron,
                "metric": self.metric,
                "score": round(float(r.score), 5),
                "value": round(float(r.value), 5),
                "pearson": round(float(r.pearson), 5),
            }
            for r in rows.itertuples()
        ]

    def to_text(self, k: int) -> str:
        """The best ``k`` as a plain-text table, each signed value as it reads."""
        best = self.top(k)
        label = "AUROC" if self.metric == "auroc" else "rho"
        shown = pd.DataFrame(
            {
                "neuron": best["neuron"],
                label: [signed_reading(self.metric, v, 4) for v in best["value"]],
                "pearson": [f"{v:+.4f}" for v in best["pearson"]],
            }
        )
        title = f"{self.feature} ({'AUROC' if self.metric == 'auroc' else 'Spearman rho'}, strongest first; Pearson r beside)"
        return title + "\n" + shown.to_string(index=False)


def signed_reading(metric: str, value: float, digits: int = 3) -> str:
    """A signed score written as it reads. An AUROC below 0.5 means the unit is low inside
    the feature, as strong as 1 - AUROC: 0.076 reads ``0.924 (low inside)``, 0.93 reads
    ``0.930 (high inside)``. A correlation keeps its sign: ``-0.512``."""
    if metric == "auroc":
        return f"{max(value, 1 - value):.{digits}f} ({'high' if value >= 0.5 else 'low'} inside)"
    return f"{value:+.{digits}f}"


@dataclass
class CellRankings:
    """What ``find-cells`` reports: the ranked neurons of one store against each feature."""

    store: ActivationStore
    methods: dict[str, str]  # document name -> how its tracks were found (tokenize | heuristic)
    rankings: dict[str, Ranking]

    def _methods(self) -> list[str]:
        return sorted(set(self.methods.values()))

    def ranked(self) -> dict[str, Ranking]:
        return {name: r for name, r in self.rankings.items() if not r.absent}

    def absent(self) -> list[str]:
        """The features the text lacks (one value throughout): reported, not ranked."""
        return [name for name, r in self.rankings.items() if r.absent]

    def to_json(self, top: int = 5) -> dict:
        TOP.check(top)
        return {
            "store": str(self.store.path),
            "chars": len(self.store),
            "neurons": sum(len(r.table) for r in self.ranked().values()) // max(len(self.ranked()), 1),
            "feature_methods": {m: sum(v == m for v in self.methods.values()) for m in self._methods()},
            "features": {name: r.to_json(top) for name, r in self.ranked().items()},
            "absent": self.absent(),
        }

    def to_text(self, top: int = 5) -> str:
        TOP.check(top)
        lines = [f"{self.store.name}: {len(self.store):,} characters; features by {', '.join(self._methods())}"]
        for ranking in self.ranked().values():
            lines += ["", ranking.to_text(top)]
        if self.absent():
            lines += ["", f"not ranked, absent from this text (one value throughout): {', '.join(self.absent())}"]
        return "\n".join(lines)


def _nonzero_sd(centered: np.ndarray) -> np.ndarray:
    """Column norms, with a constant column's made infinite: it correlates with nothing."""
    sd = np.sqrt((centered.astype(np.float64) ** 2).sum(0))
    sd[sd == 0] = np.inf
    return sd


_ZERO_KEY, _NEG_ZERO_KEY = 0x8000, 0x7FFF  # +0 and -0 are one value: their counts are merged


@dataclass
class _Targets:
    """The features as the per-neuron computation needs them, prepared once per ranking."""

    n_pos: np.ndarray  # [binary] characters where each binary feature holds
    ys: torch.Tensor  # [N, numeric + binary] centred values, float32 (for Pearson)
    ys_sd: np.ndarray  # their norms
    rank_targets: torch.Tensor  # [N, numeric + binary] centred ranks of numeric features, then centred binaries
    ranks_sd: np.ndarray  # norms of the numeric features' centred ranks

    @classmethod
    def of(cls, binaries: list[np.ndarray], numeric_c: np.ndarray, numeric_rank_c: np.ndarray) -> _Targets:
        binary_c = np.stack([m - m.mean() for m in binaries], 1) if binaries else numeric_c[:, :0]
        ys = np.concatenate([numeric_c, binary_c], 1)
        rank_targets = np.concatenate([numeric_rank_c, binary_c], 1)
        return cls(
            np.array([int(m.sum()) for m in binaries], dtype=np.int64),
            torch.from_numpy(np.ascontiguousarray(ys, dtype=np.float32)),
            _nonzero_sd(ys),
            torch.from_numpy(np.ascontiguousarray(rank_targets, dtype=np.float32)),
            _nonzero_sd(numeric_rank_c),
        )


def mapped_tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor sharing the memory of ``array``, which may be a read-only memory-mapped store
    slice: for reading only (torch warns about non-writable arrays; reading them is safe)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


def ranks_from_counts(counts: np.ndarray, n: int) -> tuple[np.ndarray, float, float, float]:
    """From a neuron's count of each of the 65,536 value keys over ``n`` characters: the
    centred average rank of each key (ties averaged, as scipy's rankdata; -0 and +0 one
    value), the norms of the centred ranks and of the centred (finite) values, and the
    values' mean. Counts add over shards, so shards merged give exactly one store's ranks."""
    counts = counts.copy()
    counts[_ZERO_KEY] += counts[_NEG_ZERO_KEY]
    counts[_NEG_ZERO_KEY] = 0
    avg_rank = np.cumsum(counts) - counts + (counts + 1) / 2.0 - (n + 1) / 2.0
    avg_rank[_NEG_ZERO_KEY] = avg_rank[_ZERO_KEY]
    rank_sd = float(np.sqrt((counts * avg_rank**2).sum()))
    mean = (counts * KEY_FINITE_VALUES).sum() / n
    value_sd = float(np.sqrt(max((counts * KEY_FINITE_VALUES**2).sum() - n * mean**2, 0.0)))
    return avg_rank, rank_sd, value_sd, float(mean)


def finite_values(row: np.ndarray, values_out: np.ndarray, keys_counted: np.ndarray, mean: float) -> np.ndarray:
    """float16 values ``row`` as float32 in ``values_out``, non-finite ones (which its key
    counts ``keys_counted`` tell of) as 0, less their ``mean``: the targets are centred, so
    that changes no product, but the products then sum terms the size of the values'
    spread, not of their level (a cell state far from 0 lost 1e-5 of its Pearson's r)."""
    values = torch.from_numpy(values_out).copy_(mapped_tensor(row))  # widening by copy_: no table needed
    if keys_counted[~KEY_FINITE].any():
        values.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
    values.sub_(mean)
    return values_out


def _row_ranks(keys: np.ndarray, row: np.ndarray, ranks_out: np.ndarray, values_out: np.ndarray) -> tuple[float, float]:
    """One neuron's exact centred average ranks (see :func:`ranks_from_counts`), by counting
    its 65,536 possible values (``keys``), written into ``ranks_out``, and its float16 values
    ``row`` as float32, centred (non-finite ones as 0, then centred) into ``values_out``;
    returns the norms of its centred ranks and values."""
    index = torch.from_numpy(keys.astype(np.int64))  # once: bincount and the gather share it
    counts = np.bincount(index.numpy(), minlength=65536)
    avg_rank, rank_sd, value_sd, mean = ranks_from_counts(counts, len(keys))
    # A table lookup (torch's index_select is the fastest gather here).
    torch.index_select(torch.from_numpy(avg_rank.astype(np.float32)), 0, index, out=torch.from_numpy(ranks_out))
    finite_values(row, values_out, counts, mean)
    return rank_sd, value_sd


SUM_CHUNK = 128  # characters summed in float32 before the sum is taken on in float64


def summed_products(rows: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """``rows`` [b, N] times ``targets`` [N, t] (float32), summed over the N characters:
    [b, t] float64. One float32 product drifts from the exact sums by up to 2e-5 of a score
    on 20,000 characters of cells tuned to a feature (its running sums grow far past the
    terms, and each addition rounds to them). Summed in float32 over chunks of
    ``SUM_CHUNK`` characters (one batched product), the chunks' sums added in float64, it
    stays within about 1e-8 (the error grows with the chunk: 1,024 characters left 1e-7),
    and is no slower (16 neurons x 1M characters, ranks and values: 61 ms, against 68 ms)."""
    b, k = rows.shape[0], rows.shape[1] // SUM_CHUNK
    whole = k * SUM_CHUNK
    chunks = rows[:, :whole].reshape(b, k, SUM_CHUNK).transpose(0, 1)  # [k, b, SUM_CHUNK]
    sums = torch.bmm(chunks, targets[:whole].reshape(k, SUM_CHUNK, targets.shape[1])).double().sum(0)
    return (sums + (rows[:, whole:] @ targets[whole:]).double()).numpy()


def block_stats(block: np.ndarray, targets: _Targets, buffers: tuple[np.ndarray, np.ndarray] | None = None):
    """For a block of neurons [b, N] float16: AUROC per binary feature, Spearman's rho and
    Pearson's r per numeric feature, and Pearson's r per binary feature.

    Everything comes from the exact ranks (counted, see :func:`_row_ranks`) and two matrix
    products (:func:`summed_products`): AUROC is the Mann-Whitney U of the ranks inside the feature, which with
    average ranks counts ties as halves, exactly as scikit-learn does."""
    b, n = block.shape
    if buffers is None or buffers[0].shape[0] < b:
        buffers = (np.empty((b, n), dtype=np.float32), np.empty((b, n), dtype=np.float32))
    ranks, values = buffers[0][:b], buffers[1][:b]
    sds = np.array([_row_ranks(k, block[i], ranks[i], values[i]) for i, k in enumerate(value_keys(block))]).reshape(b, 2)
    by_rank = summed_products(torch.from_numpy(ranks), targets.rank_targets)  # [b, numeric + binary]
    by_value = summed_products(torch.from_numpy(values), targets.ys)
    return scores_from_products(by_rank, by_value, sds[:, 0], sds[:, 1], targets, n)


def scores_from_products(by_rank, by_value, rank_sd, value_sd, targets: _Targets, n: int):
    """AUROC, Spearman's rho and Pearson's r of neurons from the products of their centred
    ranks and values with the targets (sums over characters, so shards' sums add up)."""
    rank_sd, value_sd = np.where(rank_sd == 0, np.inf, rank_sd), np.where(value_sd == 0, np.inf, value_sd)
    n_numeric = targets.ranks_sd.shape[0]
    rho = by_rank[:, :n_numeric] / (rank_sd[:, None] * targets.ranks_sd)
    # Sum of centred ranks inside a binary feature -> Mann-Whitney U -> AUROC.
    n_pos = targets.n_pos.astype(np.float64)
    u = by_rank[:, n_numeric:] + n_pos * (n + 1) / 2.0 - n_pos * (n_pos + 1) / 2.0
    pairs = n_pos * (n - n_pos)
    with np.errstate(invalid="ignore", divide="ignore"):
        aurocs = np.where(pairs > 0, u / pairs, 0.5)
    pearson = by_value / (value_sd[:, None] * targets.ys_sd)
    return aurocs, rho, pearson


@dataclass
class RankingPlan:
    """What a ranking of a store's neurons against features needs before any neuron is
    read: the features split into binary and numeric, their targets, and the neuron blocks."""

    names: list[str]
    binary_names: list[str]  # of the features present in the text
    numeric_names: list[str]
    targets: _Targets
    jobs: list[tuple]  # (series, first unit, end unit)
    absent: dict[str, str]  # the features the text lacks, with their metric: not ranked

    @property
    def neurons(self) -> list[str]:
        return [str(s.neuron(i)) for s, lo, hi in self.jobs for i in range(lo, hi)]


def ranking_plan(store: ActivationStore, features: Features, kinds: tuple[str, ...] | None, block_size: int) -> RankingPlan:
    """Check the features and kinds against the store, and prepare the targets."""
    names = features.names()
    for k in names:
        if len(features[k]) != len(store):
            raise LstmvizError(f"Feature {k!r} has {len(features[k])} values for a store of {len(store)} characters.")
    absent = {k: "auroc" if features.is_binary(k) else "spearman" for k in features.absent()}
    present = [k for k in names if k not in absent]
    binary_names = [k for k in present if features.is_binary(k)]
    numeric_names = [k for k in present if not features.is_binary(k)]
    binaries = [features[k].astype(bool) for k in binary_names]
    numeric = np.stack([features[k].astype(np.float64) for k in numeric_names], 1) if numeric_names else np.zeros((len(store), 0))
    numeric_c = numeric - numeric.mean(0)
    numeric_rank = np.stack([rankdata(numeric[:, j]) for j in range(numeric.shape[1])], 1) if numeric_names else numeric
    numeric_rank_c = numeric_rank - numeric_rank.mean(0) if numeric_names else numeric_rank
    kinds = kinds or tuple(dict.fromkeys(s.kind for s in store.series))
    unknown = [k for k in kinds if k not in {s.kind for s in store.series}]
    if unknown:
        raise StoreError(f"This store has no series of kind {', '.join(unknown)}.")
    ranked = [s for s in store.series if s.kind in kinds]
    jobs = [(s, lo, min(lo + block_size, s.units)) for s in ranked for lo in range(0, s.units, block_size)]
    targets = _Targets.of(binaries, numeric_c, numeric_rank_c)
    return RankingPlan(names, binary_names, numeric_names, targets, jobs, absent)


def ranking_tables(plan: RankingPlan, auroc: np.ndarray, rho: np.ndarray, pearson: np.ndarray) -> dict[str, Ranking]:
    """The rankings, best first, from every neuron's scores (rows in ``plan.neurons`` order)."""
    neurons, numeric_names = plan.neurons, plan.numeric_names
    out = {}
    for j, name in enumerate(numeric_names):
        table = pd.DataFrame({"neuron": neurons, "score": np.abs(rho[:, j]), "value": rho[:, j], "pearson": pearson[:, j]})
        out[name] = Ranking(name, "spearman", table.sort_values("score", ascending=False, kind="stable").reset_index(drop=True))
    for j, name in enumerate(plan.binary_names):
        a = auroc[:, j]
        table = pd.DataFrame(
            {"neuron": neurons, "score": np.maximum(a, 1 - a), "value": a, "pearson": pearson[:, len(numeric_names) + j]}
        )
        out[name] = Ranking(name, "auroc", table.sort_values("score", ascending=False, kind="stable").reset_index(drop=True))
    empty = pd.DataFrame({"neuron": [], "score": [], "value": [], "pearson": []})
    for name, metric in plan.absent.items():
        out[name] = Ranking(name, metric, empty, absent=True)
    return {name: out[name] for name in plan.names}


def rank_neurons(
    store: ActivationStore,
    features: Features,
    kinds: tuple[str, ...] | None = None,
    block_size: int = 16,
    workers: int | None = None,
) -> dict[str, Ranking]:
    """Every neuron (of the given kinds; default all) against every feature, over the whole
    store: AUROC for binary features, Spearman's rho (with Pearson's r beside) for numeric;
    blocks of neurons on ``workers`` threads (default: as the thread policy says,
    ``core.runtime.fan_out``). (Over a sharded store's shards on a Ray cluster:
    ``shard_rankings.rank_neurons_sharded``.)"""
    plan = ranking_plan(store, features, kinds, block_size)
    local = threading.local()  # each worker reuses its buffers: fresh ones cost a page fault per 4 KB

    def run(job):
        s, lo, hi = job
        if not hasattr(local, "buffers"):
            local.buffers = tuple(np.empty((block_size, len(store)), dtype=np.float32) for _ in range(2))
        return block_stats(np.asarray(store.activations[s.row + lo : s.row + hi]), plan.targets, local.buffers)

    results = list(map_threads(run, plan.jobs, workers))
    auroc = np.concatenate([r[0] for r in results]) if results else np.zeros((0, len(plan.binary_names)))
    rho = np.concatenate([r[1] for r in results]) if results else np.zeros((0, len(plan.numeric_names)))
    pearson = np.concatenate([r[2] for r in results]) if results else np.zeros((0, len(plan.names)))
    return ranking_tables(plan, auroc, rho, pearson)


RANKINGS_CACHE = "rankings-v2.json"  # written inside the store directory (v1 ranked absent features too)


RANKED_KINDS = ("h", "c")  # "the best cell" of a feature: the best of these, in every command and page


def ranked_kinds(store: ActivationStore) -> tuple[str, ...]:
    """The kinds whose neurons are ranked for "best cell" in ``store`` (a GRU has no c)."""
    return tuple(k for k in RANKED_KINDS if any(s.kind == k for s in store.series))


def store_rankings(store: ActivationStore) -> dict:
    """Every h and c neuron of a store against the built-in features its text has, as JSON-ready
    ``{feature: {"metric", "rows": [{"neuron", "score", "value", "pearson"}]}}`` best first;
    read from the store's cache file or computed once and cached there."""
    from ..text.features import store_features

    def compute():
        ranked = rank_neurons(store, store_features(store), ranked_kinds(store))
        return {f: {"metric": r.metric, "rows": r.to_json()} for f, r in ranked.items() if not r.absent}

    return cached(store, RANKINGS_CACHE, compute)
