"""Explaining neurons with numbers: rankings against features, top contexts, histograms,
gate saturation, range hypotheses, and error analysis against the n-gram baseline.

Rankings are exact and vectorised. Activations are float16, which has at most 65,536
distinct values, so the ranks of one neuron's whole series come from one counting pass
(``bincount`` over the value codes) instead of a sort: AUROC is the Mann-Whitney statistic
from the positive and negative counts per value, Spearman's rho is Pearson's r of the
tie-averaged ranks (one gather and one matrix product per block of neurons).
"""

from __future__ import annotations

import functools
import math
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from scipy.stats import rankdata

from .atomic import write_atomic
from .colours import ColourScale, ValueStats, scale_for
from .errors import LstmvizError, StoreError
from .features import Features
from .store import ActivationStore, NeuronId, predicted_log2p

# Order-preserving keys of float16 bit patterns (b -> b ^ 0x8000 for positive, ~b for
# negative), and the value of each key; NaN keys are never counted.
_KEYS = np.arange(65536, dtype=np.uint16)
_KEY_VALUES = np.where(_KEYS >= 0x8000, _KEYS ^ 0x8000, _KEYS ^ 0xFFFF).astype(np.uint16).view(np.float16).astype(np.float64)
_KEY_FINITE = np.isfinite(_KEY_VALUES)
_KEY_FINITE_VALUES = np.where(_KEY_FINITE, _KEY_VALUES, 0.0)
GATE_KINDS = ("i", "f", "o", "r", "z")  # sigmoid gates, in [0, 1]


@dataclass
class Ranking:
    """Every neuron against one feature, best first."""

    feature: str
    metric: str  # auroc | spearman
    table: pd.DataFrame  # neuron, score (folded strength), value (signed), pearson

    def top(self, k: int) -> pd.DataFrame:
        return self.table.head(k)

    def to_json(self, k: int | None = None) -> list[dict]:
        rows = self.table if k is None else self.table.head(k)
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


def ranks_from_counts(counts: np.ndarray, n: int) -> tuple[np.ndarray, float, float]:
    """From a neuron's count of each of the 65,536 value keys over ``n`` characters: the
    centred average rank of each key (ties averaged, as scipy's rankdata; -0 and +0 one
    value), and the norms of the centred ranks and of the centred (finite) values. Counts
    add over shards, so shards merged give exactly one store's ranks."""
    counts = counts.copy()
    counts[_ZERO_KEY] += counts[_NEG_ZERO_KEY]
    counts[_NEG_ZERO_KEY] = 0
    avg_rank = np.cumsum(counts) - counts + (counts + 1) / 2.0 - (n + 1) / 2.0
    avg_rank[_NEG_ZERO_KEY] = avg_rank[_ZERO_KEY]
    rank_sd = float(np.sqrt((counts * avg_rank**2).sum()))
    mean = (counts * _KEY_FINITE_VALUES).sum() / n
    value_sd = float(np.sqrt(max((counts * _KEY_FINITE_VALUES**2).sum() - n * mean**2, 0.0)))
    return avg_rank, rank_sd, value_sd


def finite_values(row: np.ndarray, values_out: np.ndarray, keys_counted: np.ndarray) -> np.ndarray:
    """float16 values ``row`` as float32 in ``values_out``, non-finite ones (which its key
    counts ``keys_counted`` tell of) as 0."""
    values = torch.from_numpy(values_out).copy_(mapped_tensor(row))  # widening by copy_: no table needed
    if keys_counted[~_KEY_FINITE].any():
        values.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
    return values_out


def _row_ranks(keys: np.ndarray, row: np.ndarray, ranks_out: np.ndarray, values_out: np.ndarray) -> tuple[float, float]:
    """One neuron's exact centred average ranks (see :func:`ranks_from_counts`), by counting
    its 65,536 possible values (``keys``), written into ``ranks_out``, and its float16 values
    ``row`` as float32 (non-finite ones as 0) into ``values_out``; returns the norms of its
    centred ranks and values."""
    index = torch.from_numpy(keys.astype(np.int64))  # once: bincount and the gather share it
    counts = np.bincount(index.numpy(), minlength=65536)
    avg_rank, rank_sd, value_sd = ranks_from_counts(counts, len(keys))
    # A table lookup (torch's index_select is the fastest gather here).
    torch.index_select(torch.from_numpy(avg_rank.astype(np.float32)), 0, index, out=torch.from_numpy(ranks_out))
    finite_values(row, values_out, counts)
    return rank_sd, value_sd


def _block_stats(block: np.ndarray, targets: _Targets, buffers: tuple[np.ndarray, np.ndarray] | None = None):
    """For a block of neurons [b, N] float16: AUROC per binary feature, Spearman's rho and
    Pearson's r per numeric feature, and Pearson's r per binary feature.

    Everything comes from the exact ranks (counted, see :func:`_row_ranks`) and two float32
    matrix products: AUROC is the Mann-Whitney U of the ranks inside the feature, which with
    average ranks counts ties as halves, exactly as scikit-learn does."""
    b, n = block.shape
    if buffers is None or buffers[0].shape[0] < b:
        buffers = (np.empty((b, n), dtype=np.float32), np.empty((b, n), dtype=np.float32))
    ranks, values = buffers[0][:b], buffers[1][:b]
    sds = np.array([_row_ranks(k, block[i], ranks[i], values[i]) for i, k in enumerate(value_keys(block))]).reshape(b, 2)
    by_rank = (torch.from_numpy(ranks) @ targets.rank_targets).double().numpy()  # [b, numeric + binary]
    by_value = (torch.from_numpy(values) @ targets.ys).double().numpy()
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
    # ys is centred, so the values need no centring.
    pearson = by_value / (value_sd[:, None] * targets.ys_sd)
    return aurocs, rho, pearson


# Rankings run on two worker threads with torch single-threaded inside them: the fastest way
# on the command line, but torch's thread count is process-wide, so a server must not flip
# it under other requests; ``serve`` calls keep_torch_threads() once its start-up work is
# done, and later rankings use one worker and torch's own threads.
_ranking_workers = 2


def keep_torch_threads() -> None:
    """From now on, rankings leave torch's process-wide thread count alone."""
    global _ranking_workers
    _ranking_workers = 1


@dataclass
class RankingPlan:
    """What a ranking of a store's neurons against features needs before any neuron is
    read: the features split into binary and numeric, their targets, and the neuron blocks."""

    names: list[str]
    binary_names: list[str]
    numeric_names: list[str]
    targets: _Targets
    jobs: list[tuple]  # (series, first unit, end unit)

    @property
    def neurons(self) -> list[str]:
        return [str(s.neuron(i)) for s, lo, hi in self.jobs for i in range(lo, hi)]


def ranking_plan(store: ActivationStore, features: Features, kinds: tuple[str, ...] | None, block_size: int) -> RankingPlan:
    """Check the features and kinds against the store, and prepare the targets."""
    names = features.names()
    binary_names = [k for k in names if features.is_binary(k)]
    numeric_names = [k for k in names if not features.is_binary(k)]
    for k in names:
        if len(features[k]) != len(store):
            raise LstmvizError(f"Feature {k!r} has {len(features[k])} values for a store of {len(store)} characters.")
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
    return RankingPlan(names, binary_names, numeric_names, _Targets.of(binaries, numeric_c, numeric_rank_c), jobs)


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
    return {name: out[name] for name in plan.names}


def rank_neurons(
    store: ActivationStore,
    features: Features,
    kinds: tuple[str, ...] | None = None,
    block_size: int = 16,
    workers: int | None = None,
) -> dict[str, Ranking]:
    """Every neuron (of the given kinds; default all) against every feature, over the whole
    store: AUROC for binary features, Spearman's rho (with Pearson's r beside) for numeric.
    (Over a sharded store's shards on a Ray cluster: ``shard_rankings.rank_neurons_sharded``.)"""
    plan = ranking_plan(store, features, kinds, block_size)
    local = threading.local()  # each worker reuses its buffers: fresh ones cost a page fault per 4 KB

    def run(job):
        s, lo, hi = job
        if not hasattr(local, "buffers"):
            local.buffers = tuple(np.empty((block_size, len(store)), dtype=np.float32) for _ in range(2))
        return _block_stats(np.asarray(store.activations[s.row + lo : s.row + hi]), plan.targets, local.buffers)

    # The workers are the parallelism: torch's own threads inside each would oversubscribe
    # the cores (measured: 11.6 s with them, 8.5 s without, 1M characters x 1,536 neurons).
    workers = workers or _ranking_workers
    if workers == 1:
        results = [run(job) for job in plan.jobs]
    else:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                results = list(pool.map(run, plan.jobs))
        finally:
            torch.set_num_threads(threads)
    auroc = np.concatenate([r[0] for r in results]) if results else np.zeros((0, len(plan.binary_names)))
    rho = np.concatenate([r[1] for r in results]) if results else np.zeros((0, len(plan.numeric_names)))
    pearson = np.concatenate([r[2] for r in results]) if results else np.zeros((0, len(plan.names)))
    return ranking_tables(plan, auroc, rho, pearson)


# -- one neuron ---------------------------------------------------------------------------------


def value_keys(series: np.ndarray) -> np.ndarray:
    """float16 values as uint16 keys in value order (``a < b`` implies ``key(a) < key(b)``;
    -0 sits just below +0): comparing keys is many times faster than comparing float16 in
    numpy, and they are a few integer operations away from the stored bits."""
    bits = np.ascontiguousarray(series, dtype=np.float16).view(np.uint16)
    return bits ^ ((bits >> 15) * np.uint16(0x7FFF) | np.uint16(0x8000))


@dataclass
class Distribution:
    """A float16 series' exact distribution: how often each of the 65,536 float16 values
    occurs, by value key (see :func:`value_keys`). Built by counting (no sort), so
    quantiles, thresholds and histograms of a million values cost a millisecond or two."""

    counts: np.ndarray  # [65536] int64, per key; NaN and inf left out

    @classmethod
    def of(cls, keys: np.ndarray) -> Distribution:
        # torch's bincount: twice numpy's speed on 32-bit keys, and it releases the GIL
        counts = torch.bincount(torch.from_numpy(keys.astype(np.int32)), minlength=65536).numpy().astype(np.int64)
        counts[~_KEY_FINITE] = 0
        return cls(counts)

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    def quantile(self, q) -> np.ndarray:
        """As ``numpy.quantile`` (linear interpolation between order statistics)."""
        pos = np.asarray(q, dtype=np.float64) * (self.n - 1)
        lo, hi = np.floor(pos).astype(np.int64), np.ceil(pos).astype(np.int64)
        cum = np.cumsum(self.counts)
        v_lo = _KEY_VALUES[np.searchsorted(cum, lo, side="right")]
        v_hi = _KEY_VALUES[np.searchsorted(cum, hi, side="right")]
        return v_lo + (v_hi - v_lo) * (pos - lo)

    def abs_quantile(self, q: float) -> float:
        """As ``numpy.quantile`` of the absolute values (the key of -v mirrors that of v
        around the middle, so the negative half folds onto the positive one)."""
        folded = np.zeros_like(self.counts)
        folded[0x8000:] = self.counts[0x8000:] + self.counts[0x7FFF::-1]
        return float(Distribution(folded).quantile(q))

    def deviation_quantile(self, centre: float, q: float) -> float:
        """As ``numpy.quantile`` of ``|value - centre|``."""
        present = np.flatnonzero(self.counts)
        dev = np.abs(_KEY_VALUES[present] - centre)
        order = np.argsort(dev, kind="stable")
        pos = q * (self.n - 1)
        cum = np.cumsum(self.counts[present][order])
        lo, hi = (int(np.searchsorted(cum, r, side="right")) for r in (math.floor(pos), math.ceil(pos)))
        return float(dev[order][lo] + (dev[order][hi] - dev[order][lo]) * (pos - math.floor(pos)))

    def quantile_keys(self, q) -> np.ndarray:
        """The keys of the order statistics at quantiles ``q`` (the lower one)."""
        ranks = np.floor(np.asarray(q, dtype=np.float64) * (self.n - 1)).astype(np.int64)
        return np.searchsorted(np.cumsum(self.counts), ranks, side="right")

    def top_key(self, k: int) -> int:
        """The largest key c with at least ``k`` values of key >= c."""
        from_top = np.cumsum(self.counts[::-1])
        return 65535 - min(int(np.searchsorted(from_top, k)), 65535)

    def bottom_key(self, k: int) -> int:
        """The smallest key c with at least ``k`` values of key <= c."""
        return min(int(np.searchsorted(np.cumsum(self.counts), k)), 65535)

    def histogram(self, bins: int) -> tuple[np.ndarray, np.ndarray]:
        present = np.flatnonzero(self.counts)
        lo, hi = (_KEY_VALUES[present[0]], _KEY_VALUES[present[-1]]) if len(present) else (0.0, 1.0)
        return np.histogram(_KEY_VALUES[present], bins=bins, range=(lo, hi if hi > lo else lo + 1), weights=self.counts[present])

    def mean(self) -> float:
        present = np.flatnonzero(self.counts)
        return float((_KEY_VALUES[present] * self.counts[present]).sum() / max(self.n, 1))

    def std(self) -> float:
        present = np.flatnonzero(self.counts)
        dev = (_KEY_VALUES[present] - self.mean()) ** 2
        return float(np.sqrt((dev * self.counts[present]).sum() / max(self.n, 1)))


@dataclass
class Context:
    position: int
    value: float
    text: str  # the context window
    offset: int  # index of the character at ``position`` within ``text``
    values: np.ndarray  # the neuron over the window


def _context(store: ActivationStore, values: np.ndarray, position: int, width: int) -> Context:
    doc = store.document_at(position)
    lo, hi = max(doc.start, position - width), min(doc.stop, position + width + 1)
    return Context(position, float(values[position]), store.text(lo, hi), position - lo, values[lo:hi].astype(np.float32))


def _spread(order: np.ndarray, k: int, width: int) -> list[int]:
    """The first ``k`` positions of ``order`` more than ``width`` apart (non-overlapping)."""
    chosen: list[int] = []
    for p in order:
        if all(abs(int(p) - q) > width for q in chosen):
            chosen.append(int(p))
            if len(chosen) == k:
                break
    return chosen


def _raw(store: ActivationStore, neuron: str | NeuronId) -> np.ndarray:
    """One neuron's whole series as stored (float16): one contiguous read."""
    return np.asarray(store.activations[store.row_of(neuron)])


@functools.lru_cache(maxsize=8)
def _keyed(store: ActivationStore, neuron: str) -> tuple[np.ndarray, np.ndarray, Distribution]:
    """A neuron's series, its value keys and its distribution: shared by the views of one
    neuron (contexts, histogram) that are asked for together."""
    values = _raw(store, neuron)
    keys = value_keys(values)
    return values, keys, Distribution.of(keys)


def context_positions(
    store: ActivationStore, neuron: str | NeuronId, k: int = 10, width: int = 40, quantile_bins: int = 4, seed: int = 0
) -> dict[str, list[int]]:
    """Where a neuron's contexts are: the positions of its k highest and k lowest
    activations (``width`` characters apart, so their contexts do not overlap), and a few
    from each of ``quantile_bins`` lower quantile ranges (keys ``q80``, ``q60``, ...:
    samples between that quantile and the one above)."""
    if len(store) == 0:
        raise StoreError("The store is empty.")
    _, keys, dist = _keyed(store, str(NeuronId.parse(neuron)))
    n = len(keys)
    pool = min(n, max(k * 64, 1024))  # enough candidates that k of them do not overlap
    high = np.flatnonzero(keys >= dist.top_key(pool))
    high = high[np.argsort(-keys[high].astype(np.int32), kind="stable")]
    low = np.flatnonzero(keys <= dist.bottom_key(pool))
    low = low[np.argsort(keys[low], kind="stable")]
    out = {"high": _spread(high, k, width), "low": _spread(low, k, width)}
    rng = np.random.default_rng(seed)
    per_bin = max(k // 2, 1)
    candidates = rng.choice(n, size=min(n, 32 * per_bin * (quantile_bins + 1)), replace=False)
    picked = keys[candidates]
    edges = dist.quantile_keys(np.linspace(0, 1, quantile_bins + 2)[1:-1])[::-1]
    upper = 65536
    for q, lower in enumerate(edges):
        members = candidates[(picked >= lower) & (picked < upper)]
        out[f"q{(quantile_bins - q) * 100 // (quantile_bins + 1)}"] = _spread(members, per_bin, width)
        upper = lower
    return out


def contexts_at(store: ActivationStore, neuron: str | NeuronId, positions: dict[str, list[int]], width: int = 40):
    """The contexts (``width`` characters each side, within the document) of a neuron at
    ``positions`` ({group: [position]}), as {group: [Context]}."""
    values = _raw(store, neuron)
    return {group: [_context(store, values, p, width) for p in ps] for group, ps in positions.items()}


def top_contexts(
    store: ActivationStore, neuron: str | NeuronId, k: int = 10, width: int = 40, quantile_bins: int = 4, seed: int = 0
) -> dict[str, list[Context]]:
    """The contexts of a neuron's highest, lowest and quantile-sampled activations (see
    :func:`context_positions`)."""
    return contexts_at(store, neuron, context_positions(store, neuron, k, width, quantile_bins, seed), width)


def value_stats(store: ActivationStore, neuron: str | NeuronId) -> ValueStats:
    """What the colour scales need of a neuron's whole series (so the colours stay put while
    scrolling): its 1st, 50th and 99th percentiles, and the 99th of |value| and of the
    distance from the median."""
    dist = _keyed(store, str(NeuronId.parse(neuron)))[2]
    q01, median, q99 = (float(v) for v in dist.quantile([0.01, 0.5, 0.99]))
    return ValueStats(q01, median, q99, dist.abs_quantile(0.99), dist.deviation_quantile(median, 0.99))


def neuron_scale(store: ActivationStore, neuron: str | NeuronId, name: str | None = None) -> ColourScale:
    """The colour scale ``name`` (default: chosen for the neuron) of ``neuron`` over ``store``."""
    return scale_for(str(NeuronId.parse(neuron)), value_stats(store, neuron), name)


def neuron_scales(store: ActivationStore, neurons, name: str | None = None) -> list[ColourScale]:
    return [neuron_scale(store, n, name) for n in neurons]


def histogram(store: ActivationStore, neuron: str | NeuronId, bins: int = 60) -> dict:
    dist = _keyed(store, str(NeuronId.parse(neuron)))[2]
    counts, edges = dist.histogram(bins)
    density = counts / max(counts.sum(), 1) / np.diff(edges)
    return {"counts": counts, "edges": edges, "density": density, "mean": dist.mean(), "std": dist.std()}


RANKINGS_CACHE = "rankings-v1.json"  # written inside the store directory
SUMMARIES_CACHE = "summaries-v2.json"
RANKED_KINDS = ("h", "c")  # "the best cell" of a feature: the best of these, in every command and page


def ranked_kinds(store: ActivationStore) -> tuple[str, ...]:
    """The kinds whose neurons are ranked for "best cell" in ``store`` (a GRU has no c)."""
    return tuple(k for k in RANKED_KINDS if any(s.kind == k for s in store.series))


def _cached_json(store: ActivationStore, name: str, compute):
    """JSON data kept in the store directory: read if there, else ``compute()``d and
    written atomically (a read-only store still works, only computing it again)."""
    import json

    cache = store.path / name
    if cache.is_file():
        try:
            return json.loads(cache.read_text())
        except ValueError:  # not JSON, or not even text: computed again below
            pass
    data = compute()
    try:
        write_atomic(cache, json.dumps(data))
    except OSError:
        pass
    return data


def store_rankings(store: ActivationStore) -> dict:
    """Every h and c neuron of a store against the built-in features, as JSON-ready
    ``{feature: {"metric", "rows": [{"neuron", "score", "value", "pearson"}]}}`` best first;
    read from the store's cache file or computed once and cached there."""
    from .features import store_features

    def compute():
        ranked = rank_neurons(store, store_features(store), ranked_kinds(store))
        return {f: {"metric": r.metric, "rows": r.to_json()} for f, r in ranked.items()}

    return _cached_json(store, RANKINGS_CACHE, compute)


SUMMARY_CONTEXTS, SUMMARY_WIDTH, SUMMARY_BINS = 8, 40, 60


def neuron_summary(store: ActivationStore, neuron: str | NeuronId) -> dict:
    """What a neuron's page shows that depends on the neuron alone, JSON-ready: what its
    colour scales need (:func:`value_stats`), where its contexts are, and its histogram."""
    hist = histogram(store, neuron, SUMMARY_BINS)
    return {
        "stats": asdict(value_stats(store, neuron)),
        "contexts": context_positions(store, neuron, SUMMARY_CONTEXTS, SUMMARY_WIDTH),
        "histogram": {key: (v.tolist() if isinstance(v, np.ndarray) else v) for key, v in hist.items()},
    }


def store_summaries(store: ActivationStore, progress: bool = True) -> dict[str, dict]:
    """:func:`neuron_summary` of every h and c neuron (the ones browsed most), computed
    once per store (two threads) and cached in the store directory, as Neuronpedia and
    sae_vis precompute their feature pages: a neuron switch then reads them."""
    from tqdm.auto import tqdm

    def compute():
        ids = [str(n) for n in store.neuron_ids(RANKED_KINDS)]
        with ThreadPoolExecutor(2) as pool:
            done = tqdm(
                pool.map(lambda n: neuron_summary(store, n), ids),
                total=len(ids),
                desc="summarising neurons",
                unit="neuron",
                disable=not progress,
            )
            return dict(zip(ids, done, strict=True))

    return _cached_json(store, SUMMARIES_CACHE, compute)


# -- layers --------------------------------------------------------------------------------------


def gate_saturation(store: ActivationStore, low: float = 0.1, high: float = 0.9, chunk: int = 1 << 18) -> pd.DataFrame:
    """Karpathy et al. (2015) fig. 3: per layer, gate and unit, the fraction of characters
    with the gate left-saturated (< low) and right-saturated (> high)."""
    rows = []
    for s in store.series:
        if s.kind not in GATE_KINDS:
            continue
        block = store.series_block(*s.key)
        left = np.zeros(s.units)
        right = np.zeros(s.units)
        for a in range(0, len(store), chunk):
            part = np.asarray(block[:, a : a + chunk])
            left += (part < low).sum(1)
            right += (part > high).sum(1)
        n = max(len(store), 1)
        for unit in range(s.units):
            rows.append(
                {
                    "layer": s.layer,
                    "gate": s.kind,
                    "unit": unit,
                    "neuron": str(s.neuron(unit)),
                    "left": left[unit] / n,
                    "right": right[unit] / n,
                }
            )
    if not rows:
        raise StoreError("This store has no gates (an RNN has none): gate saturation needs an LSTM or GRU.")
    return pd.DataFrame(rows)


# -- range hypotheses (LSTMVis's select view, made automatic) ------------------------------------


def ranges_mask(length: int, ranges: list[tuple[int, int]]) -> np.ndarray:
    mask = np.zeros(length, dtype=bool)
    for a, b in ranges:
        if not 0 <= a < b <= length:
            raise StoreError(f"Character range {a}:{b} is outside the store (0:{length}) or empty.")
        mask[a:b] = True
    return mask


def _near(inside: np.ndarray, margin: int) -> np.ndarray:
    """The characters within ``margin`` of a marked span, not marked themselves."""
    n = len(inside)
    near = np.zeros(n + 1, dtype=np.int64)
    idx = np.flatnonzero(np.diff(np.concatenate([[0], inside.astype(np.int8), [0]])))
    for a, b in zip(idx[::2], idx[1::2], strict=True):
        near[max(0, a - margin)] += 1
        near[a] -= 1
        near[b] += 1
        near[min(n, b + margin)] -= 1
    outside = (np.cumsum(near[:-1]) > 0) & ~inside
    return outside if outside.any() else ~inside


def _contrasts(store: ActivationStore, local: np.ndarray, lab: np.ndarray, kinds, unit_chunk: int = 32) -> list:
    """(neuron, row, (mean inside - mean just outside) / sd) of every neuron of ``kinds``,
    over the ``local`` characters (``lab``: which of them are marked)."""
    results = []
    for s in store.series:
        if s.kind not in kinds:
            continue
        series = store.series_block(*s.key)
        for u0 in range(0, s.units, unit_chunk):  # bounded memory: a few units at a time
            block = np.asarray(series[u0 : u0 + unit_chunk][:, local], dtype=np.float32)
            contrast = (block[:, lab].mean(1) - block[:, ~lab].mean(1)) / (block.std(1) + 1e-6)
            results.extend((str(s.neuron(u0 + k)), s.row + u0 + k, float(c)) for k, c in enumerate(contrast))
    return results


def _scores(on: np.ndarray, marked: np.ndarray) -> tuple[float, float, float]:
    tp = int((on & marked).sum())
    precision, recall = tp / max(int(on.sum()), 1), tp / max(int(marked.sum()), 1)
    return precision, recall, 2 * precision * recall / max(precision + recall, 1e-12)


def range_hypotheses(
    store: ActivationStore,
    inside: np.ndarray,
    margin: int = 10,
    kinds: tuple[str, ...] | None = None,
    top: int = 20,
    candidates: int = 200,
) -> pd.DataFrame:
    """Neurons that are high (or low) on the marked characters and the other way just outside
    them (within ``margin`` characters), best first.

    Each neuron "fires" above the midpoint of its inside and just-outside means. Where the
    marks are a class (more than one span, e.g. every match of a regex), its precision and
    recall are over the whole store; where they are one selected span, an example rather
    than a class, over the span and its margin (``scope``), since firing elsewhere is no
    error there, and ``elsewhere`` says how often it fires beyond them. The ``candidates``
    of largest contrast are ranked by F1 (the contrast alone ranks a neuron that separates
    by a little, everywhere, above one that fires on just the marks)."""
    inside = np.asarray(inside, dtype=bool)
    if inside.shape != (len(store),):
        raise StoreError("The marked characters do not match the store's length.")
    if not inside.any():
        raise StoreError("Nothing is marked: select a range or give a regex that matches.")
    outside = _near(inside, margin)
    local = np.flatnonzero(inside | outside)
    kinds = kinds or tuple(dict.fromkeys(s.kind for s in store.series))
    results = sorted(_contrasts(store, local, inside[local], kinds), key=lambda r: -abs(r[2]))[:candidates]
    spans = int(np.count_nonzero(np.diff(np.concatenate([[0], inside.astype(np.int8)])) == 1))
    scope = "whole store" if spans > 1 else "selection and margin"
    rows = []
    for neuron, row, contrast in results:
        sign = 1.0 if contrast >= 0 else -1.0
        v = np.asarray(store.activations[row], dtype=np.float32) * sign
        threshold = 0.5 * (v[inside].mean() + v[outside].mean())
        on = v > threshold
        where = slice(None) if spans > 1 else local
        precision, recall, f1 = _scores(on[where], inside[where])
        beyond = ~(inside | outside)
        rows.append(
            {
                "neuron": neuron,
                "direction": "high" if sign > 0 else "low",
                "contrast": float(abs(contrast)),
                "threshold": float(threshold * sign),
                "precision": precision,
                "recall": recall,
                "f1": f1,
                "elsewhere": float(on[beyond].mean()) if beyond.any() else 0.0,
                "scope": scope,
            }
        )
    table = pd.DataFrame(rows).sort_values(["f1", "contrast"], ascending=False, kind="stable")
    return table.head(top).reset_index(drop=True)


# -- error analysis (Karpathy et al. 2015, sec. 5) ------------------------------------------------


def error_analysis(store: ActivationStore, ngram_log2p: np.ndarray) -> tuple[np.ndarray, pd.DataFrame]:
    """Per character, how many more bits the n-gram model spends on it than the recurrent
    model (positive: the LSTM predicts it better), and a table by character.

    ``ngram_log2p`` is, per store character, log2 of the n-gram's probability of that
    character given what came before (NaN for a document's first character)."""
    lstm_log2p = predicted_log2p(store)
    advantage = lstm_log2p - ngram_log2p
    ok = np.isfinite(advantage)
    chars = np.asarray(store.codepoints)[ok]
    df = pd.DataFrame(
        {
            "char": [chr(c) for c in chars],
            "advantage": advantage[ok],
            "lstm_bits": -lstm_log2p[ok],
            "ngram_bits": -ngram_log2p[ok],
        }
    )
    table = (
        df.groupby("char")
        .agg(
            count=("advantage", "size"),
            advantage=("advantage", "mean"),
            lstm_bits=("lstm_bits", "mean"),
            ngram_bits=("ngram_bits", "mean"),
        )
        .reset_index()
    )
    table = table[table["count"] >= 20].sort_values("advantage", ascending=False).reset_index(drop=True)
    return advantage, table
