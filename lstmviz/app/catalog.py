"""The stores a running dashboard serves, by name, with their rankings computed once.

The browser only ever names a store from this catalog; no file path from a request is read.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode

import numpy as np

from ..atomic import write_atomic
from ..checkpoint import CONFIG_FILE, SHIPPED_DIR, SNAPSHOT_DIR
from ..colours import ColourScale, ValueStats, scale_for
from ..errors import StoreError
from ..evaluate import error_analysis
from ..model import SERIES_KINDS
from ..rankings import store_rankings
from ..recording import recorded_rows, store_bytes
from ..saturation import gate_saturation
from ..store import ActivationStore, NeuronId
from ..summaries import neuron_summary, store_summaries
from .jobs import Job, Jobs
from .main_thread import MainThread

ERRORS_CACHE = "model-errors-v2.npz"  # the n-gram comparison, inside the store directory (v2: modified Kneser-Ney)
NAMED_PER_FEATURE = 5  # the picker names the feature of each feature's best few neurons
EMERGENCE_CHARS = 100_000  # the sample of the first store's text that snapshots are recorded on
LIVE_KEPT = 16  # typed texts kept recorded in memory
TEXTS_KEPT = 256  # typed texts too long for a URL, kept for their URLs


class SeriesPending(StoreError):
    """A series the store lacks is being recorded (``job``); the page says so and waits."""

    def __init__(self, message: str, job: Job):
        super().__init__(message)
        self.job = job


@dataclass
class Catalog:
    stores: dict[str, ActivationStore]
    _rankings: dict[str, dict] = field(default_factory=dict)
    _summaries: dict[str, dict[str, dict]] = field(default_factory=dict)  # per store, per neuron
    _saturation: dict[str, object] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    jobs: Jobs = field(default_factory=Jobs)
    _built: dict = field(default_factory=dict)
    _live: OrderedDict = field(default_factory=OrderedDict)  # typed texts recorded in memory, latest last
    _kept_texts: OrderedDict = field(default_factory=OrderedDict)  # long typed texts a URL names
    main_thread: MainThread = field(default_factory=MainThread)  # where model work for requests runs

    @classmethod
    def of(cls, stores: list[ActivationStore], names: list[str | None] | None = None) -> Catalog:
        named = {}
        for s, given in zip(stores, names or [None] * len(stores), strict=True):
            name = base = given or s.name
            k = 2
            while name in named:
                name, k = f"{base}-{k}", k + 1
            named[name] = s
        if not named:
            raise StoreError("The dashboard needs at least one store.")
        return cls(named)

    @property
    def default(self) -> str:
        return next(iter(self.stores))

    def store(self, name: str | None) -> ActivationStore:
        if name in (None, ""):
            return self.stores[self.default]
        if name not in self.stores:
            raise StoreError(f"No store named {name!r} is open here; open ones: {', '.join(self.stores)}.")
        return self.stores[name]

    def neuron(self, store: ActivationStore, text: str | None) -> NeuronId:
        n = NeuronId.parse(text or "")
        store.row_of(n)  # validates layer, kind and index against the store
        return n

    def rankings(self, name: str) -> dict:
        """{feature: {"metric", "rows": [{"neuron", "score", "value", "pearson"}]}} for h and c,
        read from the store's cache or computed once (and cached)."""
        with self._lock:
            if name in self._rankings:
                return self._rankings[name]
            data = store_rankings(self.store(name))
            self._rankings[name] = data
            return data

    def best_neuron(self, name: str, feature: str = "in_string") -> str:
        rows = self.rankings(name).get(feature, {}).get("rows", [])
        return rows[0]["neuron"] if rows else str(self.store(name).neuron_ids()[0])

    def neuron_options(self, name: str) -> list[dict]:
        """Every neuron id of a store, for the pickers (built once), each with the feature it
        ranks best at (so typing "string" finds the quote cell), those first, and the gates
        its model has that are recorded when first chosen."""

        def build() -> list[dict]:
            best: dict[str, tuple] = {}  # neuron: (its best rank, -score, feature)
            for feature, ranking in self.rankings(name).items():
                for rank, row in enumerate(ranking["rows"][:NAMED_PER_FEATURE]):
                    best[row["neuron"]] = min(best.get(row["neuron"], (rank + 1,)), (rank, -row["score"], feature))
            named = sorted(best, key=best.get)  # each feature's best cells first, then the rest in store order
            store = self.store(name)
            options = [{"label": f"{n} · best at {best[n][2]} {-best[n][1]:.2f}", "value": n} for n in named]
            options += [{"label": str(n), "value": str(n)} for n in store.neuron_ids() if str(n) not in best]
            model = store.meta["model"]
            kinds = self.unrecorded_kinds(name)
            directions = ("", "r") if model.get("bidirectional") else ("",)
            later = [
                f"L{layer}{d}.{k}.{i}"
                for layer in range(1, model["num_layers"] + 1)
                for d in directions
                for k in kinds
                for i in range(model["hidden_size"])
            ]
            return options + [{"label": f"{n} (recorded when chosen)", "value": n} for n in later]

        return self.once(("neurons", name), build)

    def document_options(self, name: str) -> list[dict]:
        return self.once(("documents", name), lambda: [{"label": d.name, "value": d.start} for d in self.store(name).documents])

    def once(self, key, build):
        """``build()`` the first time ``key`` is asked for, its result after."""
        if key not in self._built:
            self._built[key] = build()
        return self._built[key]

    def scores_of(self, name: str, neuron: str) -> list[dict]:
        out = []
        for feature, r in self.rankings(name).items():
            for rank, row in enumerate(r["rows"], 1):
                if row["neuron"] == neuron:
                    out.append({"feature": feature, "metric": r["metric"], "rank": rank, **row})
                    break
        return out

    def saturation(self, name: str):
        """Gate saturation table of a store, computed once."""
        if name not in self._saturation:
            self._saturation[name] = gate_saturation(self.store(name))
        return self._saturation[name]

    # -- series recorded on demand (a dashboard starts on h and c) --------------------------------

    def unrecorded_kinds(self, name: str) -> list[str]:
        """The model's series kinds the store ``name`` lacks (its gates, when the dashboard
        started on h and c only); empty when the store has them all, or its checkpoint is gone."""
        store = self.store(name)
        if not (Path(store.checkpoint.get("path") or "") / CONFIG_FILE).is_file():
            return []
        recorded = {s.kind for s in store.series}
        return [k for k in SERIES_KINDS[store.meta["model"]["cell"]] if k not in recorded]

    def all_series(self, name: str) -> Job | None:
        """Record every series of the store's model on its text, in the background (into the
        cache, once), and swap it in for the store when done; None when nothing is missing.
        The h and c values are the same recording's, so rankings and summaries carry over."""
        if not self.unrecorded_kinds(name):
            return None
        store = self.store(name)

        def work(job: Job) -> str:
            from ..checkpoint import load_checkpoint
            from ..sources import recorded, store_documents

            ckpt = load_checkpoint(store.checkpoint["path"])
            size = store_bytes(recorded_rows(ckpt.model_config), len(store))
            note = f"recording the gates of {ckpt.name} on {len(store):,} characters (about {size / 1e9:.1f} GB, once)"

            def report(done: int, total: int) -> None:
                job.report(done / max(total, 1), note)

            full = recorded(ckpt, store_documents(store), progress=False, on_progress=report)
            with self._lock:
                self.stores[name] = full
                self._built.pop(("neurons", name), None)
            return str(full.path)

        return self.jobs.start(f"gates:{name}", work)

    def neuron_or_wait(self, store: ActivationStore, name: str, text: str | None) -> NeuronId:
        """:meth:`neuron`, except that a series the store lacks but its model has starts its
        recording (:meth:`all_series`) and says so in a sentence with the progress."""
        n = NeuronId.parse(text or "")
        if n.kind in self.unrecorded_kinds(name):
            job = self.all_series(name)
            if job.state == "failed":
                raise StoreError(f"Recording the gates failed: {job.error}")
            note = f"{n} is a gate, and the dashboard started on h and c only: the gates are recorded now, once."
            raise SeriesPending(note, job)
        return self.neuron(store, text)

    def model_errors(self, name: str) -> Job:
        """The recorded model against the n-gram baseline on this store (Karpathy et al.,
        sec. 5): a background job, since the n-gram is trained on the checkpoint's whole
        training split; its result is cached in the store directory. The result is
        ``{"advantage": [chars] bits saved by the model, "table": by character,
        "baseline": the n-gram's result}``."""
        store = self.store(name)

        def work(job: Job) -> dict:
            cache = store.path / ERRORS_CACHE
            if cache.is_file():
                with np.load(cache, allow_pickle=False) as saved:
                    return {"advantage": saved["advantage"], **json.loads(str(saved["summary"]))}
            from ..checkpoint import load_checkpoint
            from ..evaluate import ngram_for_store

            job.report(0.05, "loading the checkpoint's training split")
            ckpt = load_checkpoint(store.checkpoint["path"])
            job.report(0.1, "counting n-grams up to order 20 on the training split (a minute or two)")
            ngram, result = ngram_for_store(store, ckpt)
            advantage, table = error_analysis(store, ngram)
            summary = {"baseline": result.to_json(), "table": table.to_dict(orient="records")}
            advantage = advantage.astype(np.float32)
            try:
                buffer = io.BytesIO()
                np.savez(buffer, advantage=advantage, summary=np.array(json.dumps(summary)))
                write_atomic(cache, buffer.getvalue())
            except OSError:
                pass  # a read-only store: computed again next time
            return {"advantage": advantage, **summary}

        return self.jobs.start(f"errors:{name}", work)

    def checkpoint(self, name: str):
        """The checkpoint a store was recorded from, loaded once (interventions need it)."""
        store = self.store(name)

        def load():
            from ..checkpoint import load_checkpoint

            return self.main_thread.run(lambda: load_checkpoint(store.checkpoint.get("path") or ""))

        with self._lock:
            return self.once(("checkpoint", name), load)

    def effect(self, name: str, neuron: str) -> Job:
        """A neuron's mean-ablation effect on the store's text against random controls
        (:func:`lstmviz.ablation.store_effect`): a background job, cached in the store."""
        from ..ablation import store_effect

        store, ckpt = self.store(name), self.checkpoint(name)

        def work(job: Job) -> dict:
            return store_effect(store, ckpt, neuron, on_progress=lambda done, total: job.report(done / total, "measuring"))

        return self.jobs.start(f"effect:{name}:{neuron}", work)

    # -- typed text (the Text page, the Neuron page's box) --------------------------------------

    def live_recording(self, name: str, text: str, kind: str):
        """``text`` recorded in memory by the checkpoint of store ``name`` (only the series of
        ``kind``, which is all a painted view needs), and the characters the model does not
        know; the latest few are kept, least recently used dropped."""
        key = (name, kind, hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest())
        with self._lock:
            if key in self._live:
                self._live.move_to_end(key)
                return self._live[key]
        from ..recording import record_text

        ckpt = self.checkpoint(name)
        unknown = ckpt.vocab.unknown_chars(text)
        result = (self.main_thread.run(lambda: record_text(ckpt, text, kinds=(kind,), name="typed text")), unknown)
        with self._lock:
            self._live[key] = result
            while len(self._live) > LIVE_KEPT:
                self._live.popitem(last=False)
        return result

    def keep_text(self, text: str) -> str:
        """A short key for a typed text too long for a URL (kept while recent)."""
        key = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        with self._lock:
            self._kept_texts[key] = text
            self._kept_texts.move_to_end(key)
            while len(self._kept_texts) > TEXTS_KEPT:
                self._kept_texts.popitem(last=False)
        return key

    def kept_text(self, key: str) -> str | None:
        with self._lock:
            return self._kept_texts.get(key)

    # -- comparing models (the Compare page) ---------------------------------------------------

    def compare_sources(self) -> dict[str, tuple[str, Path]]:
        """What the Compare page offers, by name: the open stores, the checkpoint of each with
        its snapshots, and the other shipped checkpoints (the GRU beside the LSTM); a
        checkpoint is recorded, when chosen, on the text of the first store."""
        out: dict[str, tuple[str, Path]] = {name: ("store", s.path) for name, s in self.stores.items()}
        for store in self.stores.values():
            path = Path(store.checkpoint.get("path") or "")
            if not (path / CONFIG_FILE).is_file():
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
        return (snapshots[0] if snapshots else self.default), self.default

    def _as_store(self, name: str, job: Job, share: tuple[float, float]) -> ActivationStore:
        kind, path = self.compare_sources()[name]
        if kind == "store":
            return self.stores[name]
        from ..checkpoint import load_checkpoint
        from ..sources import COMPARED_KINDS, recorded, store_documents

        text = self.stores[self.default]
        ckpt = load_checkpoint(path)
        if ckpt.content_hash == text.checkpoint.get("content_hash"):
            return text  # the first store already is this checkpoint on this text

        def report(done: int, total: int) -> None:
            job.report(share[0] + (share[1] - share[0]) * done / max(total, 1), f"recording {name} on {len(text):,} characters")

        return recorded(ckpt, store_documents(text), kinds=COMPARED_KINDS, progress=False, on_progress=report)

    def compare_cost(self, a: str, b: str) -> int:
        """Bytes the comparison of ``a`` and ``b`` will record into the cache (0: none)."""
        from ..checkpoint import load_checkpoint
        from ..sources import COMPARED_KINDS, store_documents, uncached_bytes

        text = self.stores[self.default]
        sources = self.compare_sources()
        ckpts = [load_checkpoint(sources[n][1]) for n in (a, b) if n in sources and sources[n][0] == "checkpoint"]
        ckpts = [c for c in ckpts if c.content_hash != text.checkpoint.get("content_hash")]
        return uncached_bytes(ckpts, store_documents(text), COMPARED_KINDS) if ckpts else 0

    def has_snapshots(self) -> bool:
        """Whether the first store's checkpoint has snapshots (the emergence plot needs them)."""
        path = Path(self.stores[self.default].checkpoint.get("path") or "")
        return bool(list((path / SNAPSHOT_DIR).glob(f"*/{CONFIG_FILE}")))

    def emergence_cost(self, chars: int = EMERGENCE_CHARS) -> int:
        """Bytes the emergence plot will record into the cache (0: none)."""
        from ..checkpoint import load_checkpoint
        from ..lanes import limit_chars
        from ..sources import COMPARED_KINDS, store_documents, uncached_bytes

        text = self.stores[self.default]
        final = load_checkpoint(text.checkpoint.get("path") or "")
        ckpts = [load_checkpoint(p) for p in final.snapshots()] + [final]
        return uncached_bytes(ckpts, limit_chars(store_documents(text), chars), COMPARED_KINDS)

    def comparison(self, a: str, b: str, start: bool = True) -> Job | None:
        """A against B on the first store's text (background job; ``job.result`` is a
        :class:`~lstmviz.compare.Comparison`); with ``start=False``, None if not started."""
        if not start:
            return self.jobs.get(f"compare:{a}|{b}")
        sources = self.compare_sources()
        for name in (a, b):
            if name not in sources:
                raise StoreError(f"Nothing named {name!r} to compare; choose one of {', '.join(sources)}.")

        def work(job: Job):
            from ..compare import compare_stores

            store_a = self._as_store(a, job, (0.0, 0.4))
            store_b = self._as_store(b, job, (0.4, 0.8))
            job.report(0.8, "correlating every h and c neuron of A with every one of B")
            return compare_stores(store_a, store_b)

        return self.jobs.start(f"compare:{a}|{b}", work)

    def emergence(self, chars: int = EMERGENCE_CHARS, start: bool = True) -> Job | None:
        """Cells across the snapshots of the first store's checkpoint, on the first
        ``chars`` characters of its text (background job), or None without snapshots (or,
        with ``start=False``, when it has not been started)."""
        text = self.stores[self.default]
        path = Path(text.checkpoint.get("path") or "")
        if not self.has_snapshots():
            return None
        if not start:
            return self.jobs.get(f"emergence:{path}")

        def work(job: Job) -> dict:
            from ..compare import emergence
            from ..lanes import limit_chars
            from ..sources import store_documents

            return emergence(path, limit_chars(store_documents(text), chars), progress=False, on_progress=job.report)

        return self.jobs.start(f"emergence:{path}", work)

    def prepare(self, name: str) -> None:
        """Compute (or read from the store's cache) what every page needs: the rankings, and
        the summaries of every h and c neuron, so a neuron switch only reads them."""
        self.rankings(name)
        summaries = store_summaries(self.store(name))
        self._summaries.setdefault(name, {}).update(summaries)

    def summary(self, name: str, neuron: str) -> dict:
        """A neuron's colour statistics, context positions and histogram
        (:func:`lstmviz.summaries.neuron_summary`): prepared ones, or computed once here."""
        table = self._summaries.setdefault(name, {})
        if neuron not in table:
            table[neuron] = neuron_summary(self.store(name), neuron)
        return table[neuron]

    def scale(self, name: str, neuron: str, scale: str | None = None) -> ColourScale:
        """The neuron's colour scale ``scale`` (default: chosen for it), from its whole series
        (stable while scrolling)."""
        return scale_for(neuron, ValueStats(**self.summary(name, neuron)["stats"]), scale)


def neighbour(store: ActivationStore, neuron: NeuronId, step: int) -> NeuronId:
    """The previous or next neuron in store order (wrapping)."""
    row = (store.row_of(neuron) + step) % store.rows
    return store.neuron_of_row(row)


def clamp_position(store: ActivationStore, position: int) -> int:
    return int(np.clip(position, 0, max(len(store) - 1, 0)))


def parse_query(search: str | None) -> dict[str, str]:
    """The view state in a page's URL query (``?store=...&neuron=...``), first value of each."""
    return {k: v[0] for k, v in parse_qs((search or "").lstrip("?")).items()}


def changed_search(query: dict[str, str], search: str | None):
    """The URL query for ``query``, or Dash's ``no_update`` when the URL already says it
    (so setting controls from the URL does not loop)."""
    from dash import no_update

    new = "?" + urlencode(query)
    return no_update if new == (search or "") else new
