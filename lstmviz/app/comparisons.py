"""What the Compare page compares: the open stores, their checkpoints' snapshots and the
shipped checkpoints, each recorded when chosen on the text of the first store (into the
cache, once, after the page has said what it costs); comparisons and the emergence plot
run as jobs in the dashboard's one queue.

Only a call with ``record=True`` (the user has agreed to the cost) records: every other
one reads the cache, and a comparison that would have to record is not started (None).
So a figure, an export or a poll never records on a cache miss, whichever job runs."""

from __future__ import annotations

from pathlib import Path

from ..core.errors import StoreError
from ..model.checkpoint import CONFIG_FILE, SHIPPED_DIR, SNAPSHOT_DIR, recorded_path
from ..recording.pace import paced
from ..store.reader import ActivationStore
from .jobs import Job

EMERGENCE_CHARS = 100_000  # the sample of the first store's text that snapshots are recorded on


class Comparisons:
    """The comparisons of one dashboard (its catalog's stores and job queue)."""

    def __init__(self, catalog):
        self.catalog = catalog

    def compare_sources(self) -> dict[str, tuple[str, Path]]:
        """What the Compare page offers, by name: the open stores, the checkpoint of each with
        its snapshots, and the other shipped checkpoints (the GRU beside the LSTM); a
        checkpoint is recorded, when chosen, on the text of the first store."""
        out: dict[str, tuple[str, Path]] = {name: ("store", s.path) for name, s in self.catalog.stores.items()}
        for store in self.catalog.stores.values():
            path = recorded_path(store.checkpoint)
            if not store.checkpoint.get("path") or not (path / CONFIG_FILE).is_file():
                continue
            for snap in sorted((path / SNAPSHOT_DIR).glob(f"*/{CONFIG_FILE}")):
                out.setdefault(f"{path.name}/{snap.parent.name}", ("checkpoint", snap.parent))
            out.setdefault(path.name, ("checkpoint", path))
        for shipped in sorted(SHIPPED_DIR.glob(f"*/{CONFIG_FILE}")):
            out.setdefault(shipped.parent.name, ("checkpoint", shipped.parent))
        return out

    def default_pair(self) -> tuple[str, str]:
        """The first store's earliest snapshot against the first store (the final model)."""
        snapshots = [
            n for n, (kind, path) in self.compare_sources().items() if kind == "checkpoint" and path.parent.name == SNAPSHOT_DIR
        ]
        return (snapshots[0] if snapshots else self.catalog.default), self.catalog.default

    def _text(self, chars: int | None = None):
        """The first store's text (its first ``chars`` characters), that every compared model is recorded on."""
        from ..recording.one_text import OneText

        return OneText.of_store(self.catalog.stores[self.catalog.default], chars)

    def _source(self, name: str):
        kind, path = self.compare_sources()[name]
        if kind == "store":
            return self.catalog.stores[name]
        from ..model.checkpoint import load_checkpoint

        return load_checkpoint(path)

    def _as_store(self, name: str, job: Job, share: tuple[float, float], record: bool) -> ActivationStore:
        text = self._text()

        def report(fraction: float, note: str) -> None:
            job.report(share[0] + (share[1] - share[0]) * fraction, note)

        on_progress = paced(report, f"recording {name} on {text.chars:,} characters")
        return text.store_for(self._source(name), record=record, progress=False, on_progress=on_progress)

    def compare_cost(self, a: str, b: str) -> int:
        """Bytes the comparison of ``a`` and ``b`` will record into the cache (0: none)."""
        sources = self.compare_sources()
        return self._text().uncached_bytes([self._source(n) for n in (a, b) if n in sources and sources[n][0] == "checkpoint"])

    def has_snapshots(self) -> bool:
        """Whether the first store's checkpoint has snapshots (the emergence plot needs them)."""
        recorded = self.catalog.stores[self.catalog.default].checkpoint
        return bool(recorded.get("path")) and bool(list((recorded_path(recorded) / SNAPSHOT_DIR).glob(f"*/{CONFIG_FILE}")))

    def emergence_cost(self, chars: int = EMERGENCE_CHARS) -> int:
        """Bytes the emergence plot will record into the cache (0: none)."""
        path = str(recorded_path(self.catalog.stores[self.catalog.default].checkpoint))
        return self._text(chars).snapshots_uncached_bytes(path)

    def comparison(self, a: str, b: str, *, record: bool = False) -> Job | None:
        """A against B on the first store's text (background job; ``job.result`` is a
        :class:`~lstmviz.analysis.compare.Comparison`): the job started or joined, or None when
        it has not started and would record first, unless ``record`` (the user agreed)."""
        key = f"compare:{a}|{b}"
        job = self.catalog.jobs.get(key)
        if job is not None and job.state != "failed":
            return job
        sources = self.compare_sources()
        for name in (a, b):
            if name not in sources:
                raise StoreError(f"Nothing named {name!r} to compare; choose one of {', '.join(sources)}.")
        if not record and self.compare_cost(a, b):
            return None

        def work(job: Job):
            from ..analysis.compare import compare_stores

            store_a = self._as_store(a, job, (0.0, 0.4), record)
            store_b = self._as_store(b, job, (0.4, 0.8), record)
            job.report(0.8, "correlating every h and c neuron of A with every one of B")
            return compare_stores(store_a, store_b)

        return self.catalog.jobs.start(key, work)

    def emergence(self, chars: int = EMERGENCE_CHARS, *, record: bool = False) -> Job | None:
        """Cells across the snapshots of the first store's checkpoint, on the first ``chars``
        characters of its text (background job); None without snapshots, or when it has not
        started and would record first, unless ``record`` (the user agreed)."""
        if not self.has_snapshots():
            return None
        path = recorded_path(self.catalog.stores[self.catalog.default].checkpoint)
        key = f"emergence:{path}"
        job = self.catalog.jobs.get(key)
        if job is not None and job.state != "failed":
            return job
        if not record and self.emergence_cost(chars):
            return None

        def work(job: Job) -> dict:
            from ..analysis.compare import emergence

            snapshots = self._text(chars).snapshots(path, record=record, progress=False, on_progress=job.report)
            return emergence(snapshots).to_json()

        return self.catalog.jobs.start(key, work)
