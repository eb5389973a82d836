"""Recording split into shards on a Ray cluster, with a manifest written last.

The documents are cut into ``shards`` contiguous runs of whole documents of about equal
length. Each shard is recorded by ``recording.record_activations`` into an ordinary store,
``OUT/shard-00003.store``, written under a temporary name and moved into place as every
store is; the driver writes ``OUT/manifest.json`` (``sharded_store.py``) only when every
shard is there, so an interrupted run is never mistaken for a finished one. A rerun into
the same ``OUT`` keeps the shards already finished and records only the others.

Ray *actors* do the work: an actor loads the model once and records shard after shard, on
a GPU where the cluster has one. An actor that dies (a lost machine, a killed process) is
restarted by Ray and its shard recorded again (``max_restarts``, ``max_task_retries``).
A shard's values equal a single store's of the same documents to float rounding: documents
start from a zero state, but which documents run side by side in a batch decides the
blocking of the matrix products and of the cell-state scan (as ``--lanes`` does for a single
store), so about one value in 10^5 is one float16 step apart.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from ..core.errors import CorpusError, LstmvizError, StoreError
from ..core.runtime import use_torch_threads
from ..model.checkpoint import load_checkpoint, shipped_path
from ..store.cache import cache_files
from ..store.format import DEFAULT_LANES
from ..store.open import open_store
from ..store.reader import ActivationStore
from ..store.sharded import MANIFEST, ShardedStore, open_sharded, write_manifest
from ..text.corpus import Document
from ..text.lanes import document_runs

RETRIES = 3  # times a shard is recorded again after its worker died


def plan_shards(docs: list[Document], shards: int) -> list[list[Document]]:
    """``docs`` cut into up to ``shards`` contiguous runs of whole documents, each of about
    the same number of characters (``lanes.document_runs``, as recording cuts its lanes)."""
    return [docs[a:b] for a, b in document_runs([len(d.text) for d in docs], shards)]


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.store"


def finished_shard(path: Path, docs: list[Document]) -> ActivationStore | None:
    """The shard at ``path`` if it is a whole, readable store of exactly ``docs``."""
    try:
        store = open_store(path)
    except StoreError:
        return None
    listed = [(d.name, len(d)) for d in store.documents]
    return store if listed == [(d.name, len(d.text)) for d in docs] else None


class ShardRecorder:
    """A Ray actor: the model loaded once, recording shard after shard."""

    def __init__(self, checkpoint: str, device: str, threads: int):
        use_torch_threads(threads)  # a process of its own
        self.ckpt = load_checkpoint(checkpoint, device=device)

    def record(self, index: int, docs: list[Document], out: str, kinds, lanes: int) -> dict:
        from ..recording.recorder import record_activations

        t0 = time.perf_counter()
        store = record_activations(self.ckpt, docs, out, overwrite=True, kinds=kinds, lanes=lanes, progress=False)
        return {"index": index, "chars": len(store), "seconds": time.perf_counter() - t0, "pid": os.getpid()}


def cluster_plan(workers: int | None, shards: int) -> dict:
    """How many actors to start and what each one takes: a GPU each where the cluster has
    GPUs, else an equal share of the cluster's CPUs, with as many torch threads (fewer
    threads than cores leaves cores idle; more makes OpenMP teams fight over them)."""
    import ray

    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), max(int(resources.get("CPU", 1)), 1)
    workers = max(min(workers or gpus or cpus, shards), 1)
    if gpus:
        return {"workers": workers, "num_gpus": 1, "num_cpus": 1, "threads": 1, "device": "cuda"}
    share = max(cpus // workers, 1)
    return {"workers": workers, "num_gpus": 0, "num_cpus": share, "threads": share, "device": "cpu"}


def connect(address: str | None) -> bool:
    """Join the Ray cluster at ``address`` (``None``: start a local one) unless already
    connected; True if this call connected (so the caller disconnects)."""
    try:
        import ray
    except ImportError:
        raise LstmvizError("Ray is not installed: pip install 'lstmviz[ray]'.") from None
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address or None, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except ConnectionError as exc:
        raise LstmvizError(f"Cannot reach the Ray cluster at {address}: {exc}".rstrip(".") + ".") from None
    return True


def _check_out(out: Path, overwrite: bool) -> None:
    if (out / "meta.json").is_file():
        raise StoreError(f"{out} is a single store; choose another --out for a sharded recording.")
    if out.exists() and not out.is_dir():
        raise StoreError(f"{out} exists and is not a directory; choose another --out.")
    if overwrite and (out / MANIFEST).is_file():
        (out / MANIFEST).unlink()  # the old shards are replaced one by one; no manifest names a mix


def record_sharded(
    checkpoint: str | Path,
    docs: list[Document],
    out: str | Path,
    *,
    shards: int | None = None,
    address: str | None = None,
    workers: int | None = None,
    kinds: tuple[str, ...] | None = None,
    lanes: int = DEFAULT_LANES,
    overwrite: bool = False,
) -> ShardedStore:
    """Record ``checkpoint`` over ``docs`` into the sharded store ``out`` on the Ray cluster at
    ``address`` (default: a local one): ``shards`` shards (default: one per worker) recorded
    by ``workers`` actors. Shards already finished in ``out`` are kept (unless ``overwrite``)."""
    from ..recording.recorder import check_free_space, checked_kinds, recorded_rows, store_bytes

    docs = [d for d in docs if d.text]
    if not docs:
        raise CorpusError("There is no text to record: every document is empty.")
    out, checkpoint = Path(out), shipped_path(checkpoint).resolve()
    _check_out(out, overwrite)
    cfg = load_checkpoint(checkpoint).model_config
    kinds = checked_kinds(cfg, kinds)
    started = connect(address)
    try:
        import ray

        plan = cluster_plan(workers, shards or len(docs))
        parts = plan_shards(docs, shards or plan["workers"])
        kept = {} if overwrite else {i: finished_shard(out / shard_name(i), p) for i, p in enumerate(parts)}
        todo = [i for i, p in enumerate(parts) if kept.get(i) is None]
        check_free_space(out, store_bytes(recorded_rows(cfg, kinds), sum(len(d.text) for i in todo for d in parts[i])))
        out.mkdir(parents=True, exist_ok=True)
        if todo:
            (out / MANIFEST).unlink(missing_ok=True)  # no manifest names a mix of old and new shards
            for cache in cache_files(out):  # rankings and summaries computed over the old shards
                cache.unlink()
            _record_on_actors(ray, plan, str(checkpoint), [(i, parts[i], str(out / shard_name(i))) for i in todo], kinds, lanes)
        write_manifest(out, [(shard_name(i), open_store(out / shard_name(i))) for i in range(len(parts))])
    finally:
        if started:
            import ray

            ray.shutdown()
    return open_sharded(out)


def _record_on_actors(ray, plan: dict, checkpoint: str, jobs: list, kinds, lanes: int) -> list[dict]:
    """Record ``jobs`` (index, documents, path) on ``plan['workers']`` actors, each shard sent
    to the next free actor; a dead actor is restarted and its shard recorded again."""
    from ray.util import ActorPool

    actor = ray.remote(ShardRecorder).options(
        num_cpus=plan["num_cpus"], num_gpus=plan["num_gpus"], max_restarts=RETRIES, max_task_retries=RETRIES
    )
    actors = [actor.remote(checkpoint, plan["device"], plan["threads"]) for _ in range(min(plan["workers"], len(jobs)))]
    pool = ActorPool(actors)
    try:
        return list(pool.map_unordered(lambda a, job: a.record.remote(*job, kinds, lanes), jobs))
    except ray.exceptions.RayTaskError as exc:
        cause = exc.as_instanceof_cause()
        if isinstance(cause, LstmvizError):
            raise LstmvizError(str(cause.args[0]) if cause.args else str(cause)) from None
        raise
    except ray.exceptions.RayActorError:
        raise LstmvizError(f"A recording worker died {RETRIES + 1} times; see the Ray logs, then run again to resume.") from None
    finally:
        for a in actors:
            ray.kill(a)
