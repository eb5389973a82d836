"""Exact rankings over a sharded store, shard by shard on a Ray cluster.

``rankings.rank_neurons`` needs, per neuron, its values' ranks over the whole store, then
sums over characters of ranks and values times the feature targets. Both split exactly
over shards (contiguous runs of characters):

1. each shard counts its neurons' float16 values (at most 65,536 distinct, sent as the
   keys present and their counts); counts add, so the driver has every neuron's exact
   global distribution and from it (``rankings.ranks_from_counts``) the global average
   rank of each value, the rank and value norms, and the mean;
2. each shard is sent the global ranks of the values it holds, the global means, and its
   slice of the targets, and returns the sums of rank x target and (value - mean) x
   target; sums add.

The driver then applies ``rankings.scores_from_products``, the formulas a single store's
ranking uses, so the rankings equal one store's to float rounding (the same float32
products, summed in other chunks: ``rankings.summed_products``).
"""

from __future__ import annotations

import numpy as np

from ..analysis.distribution import value_keys
from ..analysis.rankings import (
    Ranking,
    finite_values,
    mapped_tensor,
    ranking_plan,
    ranking_tables,
    ranks_from_counts,
    scores_from_products,
    summed_products,
)
from ..core.runtime import use_torch_threads
from ..store.open import open_store
from ..store.reader import ActivationStore
from ..store.sharded import ShardedStore
from ..text.features import Features
from .sharding import cluster_plan, connect

KEYS = 65536  # float16 bit patterns


def shard_value_counts(path: str, rows: list[int], threads: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per row of the shard at ``path``: the value keys present and how often each occurs."""
    import torch

    use_torch_threads(threads)  # a Ray worker: a process of its own
    store, out = open_store(path, verify_checkpoint=False), []
    for row in rows:
        counts = torch.bincount(torch.from_numpy(value_keys(store.activations[row]).astype(np.int32)), minlength=KEYS).numpy()
        present = np.flatnonzero(counts)
        out.append((present.astype(np.uint16), counts[present].astype(np.int64)))
    return out


def shard_products(
    path: str,
    rows: list[int],
    present: list[np.ndarray],
    ranks: list[np.ndarray],
    means: np.ndarray,
    rank_targets,
    ys,
    threads: int,
    block: int = 16,
):
    """Sums over the shard's characters of each row's global centred ranks (``ranks``: one
    per value key ``present`` in the row, as :func:`shard_value_counts` gave them) and of its
    values less their global ``means``, times the targets: ([rows, targets], [rows,
    features]) float64."""
    import torch

    use_torch_threads(threads)  # a Ray worker: a process of its own
    store = open_store(path, verify_checkpoint=False)
    n = len(store)
    rank_targets, ys = mapped_tensor(rank_targets), mapped_tensor(ys)  # Ray's arrays are read-only; only read here
    by_rank, by_value = [], []
    table = np.zeros(KEYS, dtype=np.float32)
    rank_buf, value_buf = np.empty((block, n), dtype=np.float32), np.empty((block, n), dtype=np.float32)
    for a in range(0, len(rows), block):
        part = rows[a : a + block]
        for i, row in enumerate(part):
            values = np.asarray(store.activations[row])
            keys = value_keys(values)
            table[present[a + i]] = ranks[a + i]  # the keys pass 1 counted: no second count
            rank_buf[i] = table[keys]
            finite_values(values, value_buf[i], _key_marks(present[a + i]), means[a + i])
        by_rank.append(summed_products(torch.from_numpy(rank_buf[: len(part)]), rank_targets))
        by_value.append(summed_products(torch.from_numpy(value_buf[: len(part)]), ys))
    return np.concatenate(by_rank), np.concatenate(by_value)


def _key_marks(present: np.ndarray) -> np.ndarray:
    """Which of the 65,536 keys occur (what ``finite_values`` asks of a row's counts)."""
    marks = np.zeros(KEYS, dtype=bool)
    marks[present.astype(np.int64)] = True
    return marks


def _global_ranks(per_shard: list[list[tuple[np.ndarray, np.ndarray]]], n: int):
    """Merge the shards' value counts, neuron by neuron: each shard's ranks (at its keys, in
    its order) and every neuron's rank and value norms and mean."""
    rows = len(per_shard[0])
    shard_ranks: list[list[np.ndarray]] = [[] for _ in per_shard]
    norms = np.empty((rows, 3))
    counts = np.zeros(KEYS, dtype=np.int64)
    for r in range(rows):
        counts[:] = 0
        for shard in per_shard:
            keys, c = shard[r]
            counts[keys] += c
        avg_rank, norms[r, 0], norms[r, 1], norms[r, 2] = ranks_from_counts(counts, n)
        for k, shard in enumerate(per_shard):
            shard_ranks[k].append(avg_rank[shard[r][0]].astype(np.float32))
    return shard_ranks, norms


def rank_neurons_sharded(
    store: ActivationStore,
    features: Features,
    kinds: tuple[str, ...] | None = None,
    address: str | None = None,
    workers: int | None = None,
) -> dict[str, Ranking]:
    """:func:`lstmviz.analysis.rankings.rank_neurons` computed shard by shard on the Ray cluster at
    ``address`` (default: a local one); a single store is one shard."""
    plan = ranking_plan(store, features, kinds, block_size=16)
    shards = store.shards if isinstance(store, ShardedStore) else [store]
    starts = np.concatenate([[0], np.cumsum([len(s) for s in shards])]).astype(np.int64)
    rows = [s.row + i for s, lo, hi in plan.jobs for i in range(lo, hi)]
    rank_targets, ys = plan.targets.rank_targets.numpy(), plan.targets.ys.numpy()
    started = connect(address)
    try:
        import ray

        cluster = cluster_plan(workers, len(shards))
        options = {"num_cpus": cluster["num_cpus"], "max_retries": 3}
        counting, summing = ray.remote(shard_value_counts).options(**options), ray.remote(shard_products).options(**options)
        paths = [str(s.path) for s in shards]
        per_shard = ray.get([counting.remote(p, rows, cluster["threads"]) for p in paths])
        shard_ranks, norms = _global_ranks(per_shard, len(store))
        sums = ray.get(
            [
                summing.remote(
                    p,
                    rows,
                    [keys for keys, _ in per_shard[k]],
                    shard_ranks[k],
                    norms[:, 2],
                    rank_targets[a:b],
                    ys[a:b],
                    cluster["threads"],
                )
                for k, (p, a, b) in enumerate(zip(paths, starts[:-1], starts[1:], strict=True))
            ]
        )
    finally:
        if started:
            import ray

            ray.shutdown()
    by_rank, by_value = sum(s[0] for s in sums), sum(s[1] for s in sums)
    auroc, rho, pearson = scores_from_products(by_rank, by_value, norms[:, 0], norms[:, 1], plan.targets, len(store))
    return ranking_tables(plan, auroc, rho, pearson)
