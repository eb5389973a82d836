"""The stores a running dashboard serves, by name, and what its pages read of them, computed
once: rankings, neuron summaries, picker options, colour scales; the series a store lacks
(its gates) recorded on demand; a neuron's effect and the n-gram comparison as jobs in the
dashboard's one queue (``jobs.py``). Typed text (``typed_texts.py``) and the Compare page's
choices (``comparisons.py``) are its parts; the URL's view state is ``view_state.py``.

The browser only ever names a store from this catalog; no file path from a request is read.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from ..analysis.distribution import ValueStats
from ..analysis.evaluate import store_error_analysis
from ..analysis.first_views import first_views
from ..analysis.rankings import store_rankings
from ..analysis.saturation import gate_saturation
from ..analysis.summaries import neuron_summary, store_summaries
from ..core.errors import StoreError
from ..core.neurons import NeuronId, UnitId, parse_unit
from ..core.runtime import MainThread
from ..model.checkpoint import CONFIG_FILE, recorded_path
from ..model.rnn import SERIES_KINDS, ModelConfig
from ..recording.pace import paced
from ..recording.recorder import recorded_rows, store_bytes
from ..render.colours import ColourScale, scale_for
from ..store.reader import ActivationStore
from ..store.units import saved_dictionaries, saved_directions
from .comparisons import Comparisons
from .jobs import Job, Jobs
from .typed_texts import TypedTexts

NAMED_PER_FEATURE = 5  # the picker names the feature of each feature's best few neurons
EFFECT_NEEDS = "measure this neuron's effect"  # what a store without a model cannot do (NoModel)


class NoModel(StoreError):
    """What a page asked for needs the model that made the store's activations, and the
    store was written without one (``write_store`` with no checkpoint)."""

    def __init__(self, name: str, action: str):
        super().__init__(f"{name} was written without the model that made its activations, so the dashboard cannot {action}.")


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
    main_thread: MainThread = field(default_factory=MainThread)  # where model work for requests runs
    typed: TypedTexts = field(init=False)  # text users type, recorded in memory
    comparisons: Comparisons = field(init=False)  # the Compare page's choices and jobs

    def __post_init__(self) -> None:
        self.typed, self.comparisons = TypedTexts(self), Comparisons(self)

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

    def named(self, name: str | None) -> tuple[str, ActivationStore]:
        """The store a URL names, or the first one when it names none, with its name."""
        name = name or self.default
        if name not in self.stores:
            raise StoreError(f"No store named {name!r} is open here; open ones: {', '.join(self.stores)}.")
        return name, self.stores[name]

    def store(self, name: str | None) -> ActivationStore:
        return self.named(name)[1]

    def has_model(self, name: str) -> bool:
        """Whether the store was recorded by a model (its meta.json holds the model's config),
        rather than written from activations alone."""
        store = self.store(name)
        return bool(store.meta.get("model")) and bool(store.checkpoint.get("path"))

    def neuron(self, store: ActivationStore, text: str | None) -> UnitId:
        """The unit ``text`` names, checked against the store: a neuron, or a direction or
        dictionary feature kept in it (``store/units.py``)."""
        n = parse_unit(text or "")
        if isinstance(n, NeuronId):
            store.row_of(n)  # validates layer, kind and index against the store
        else:
            store.neuron(n, 0, min(1, len(store)))  # the unit exists and can be computed
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
            return options + [{"label": f"{n} (recorded when chosen)", "value": n} for n in self._unrecorded_neurons(name)]

        return self.once(("neurons", name), build)

    def unit_options(self, name: str) -> list[dict]:
        """:meth:`neuron_options`, then the probe directions and dictionary features kept in
        the store (``store/units.py``), looked for at each call: ``lstmviz probe`` or
        ``lstmviz dictionary`` may have added some since the dashboard started."""
        store = self.store(name)
        directions = [
            {"label": f"direction: {d.name} ({d.series})", "value": str(d)}
            for d, _ in sorted(saved_directions(store), key=lambda item: (item[0].name, item[0].series))
        ]
        features = [
            {"label": f"feature #{k} of {series} dictionary", "value": f"{series}#{k}"}
            for series, size in saved_dictionaries(store).items()
            for k in range(size)
        ]
        return self.neuron_options(name) + directions + features

    def _unrecorded_neurons(self, name: str) -> list[str]:
        """The ids of the neurons the store's model has and the store lacks (its gates)."""
        kinds = self.unrecorded_kinds(name)
        if not kinds:
            return []
        model = self.store(name).meta["model"]
        directions = (False, True) if model.get("bidirectional") else (False,)
        return [
            str(NeuronId(layer, k, i, reverse))
            for layer in range(1, model["num_layers"] + 1)
            for reverse in directions
            for k in kinds
            for i in range(model["hidden_size"])
        ]

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
        if not self.has_model(name) or not (recorded_path(store.checkpoint) / CONFIG_FILE).is_file():
            return []
        recorded = {s.kind for s in store.series}
        return [k for k in SERIES_KINDS[store.meta["model"]["cell"]] if k not in recorded]

    def all_series_cost(self, name: str) -> int:
        """Bytes a recording of every series of the store's model on its text takes in the cache."""
        return store_bytes(recorded_rows(ModelConfig(**self.store(name).meta["model"])), len(self.store(name)))

    def all_series_job(self, name: str) -> Job | None:
        """The recording :meth:`all_series` started for the store ``name``, if one was."""
        return self.jobs.get(f"gates:{name}")

    def all_series(self, name: str) -> Job | None:
        """Record every series of the store's model on its text, in the background (into the
        cache, once), and swap it in for the store when done; None when nothing is missing.
        The h and c values are the same recording's, so rankings and summaries carry over."""
        if not self.unrecorded_kinds(name):
            return None
        store = self.store(name)

        def work(job: Job) -> str:
            from ..model.checkpoint import load_checkpoint
            from ..recording.sources import recorded, store_documents

            ckpt = load_checkpoint(recorded_path(store.checkpoint))
            size = self.all_series_cost(name)
            note = f"recording the gates of {ckpt.name} on {len(store):,} characters (about {size / 1e9:.1f} GB, once)"
            full = recorded(ckpt, store_documents(store), progress=False, on_progress=paced(job.report, note))
            with self._lock:
                self.stores[name] = full
                self._built.pop(("neurons", name), None)
            return str(full.path)

        return self.jobs.start(f"gates:{name}", work)

    def neuron_or_wait(self, store: ActivationStore, name: str, text: str | None) -> UnitId:
        """:meth:`neuron`, except that a series the store lacks but its model has starts its
        recording (:meth:`all_series`) and says so in a sentence with the progress."""
        n = parse_unit(text or "")
        if n.kind in self.unrecorded_kinds(name):
            job = self.all_series(name)
            if job.state == "failed":
                raise StoreError(f"Recording the gates failed: {job.error}")
            note = f"{n} is a gate, and the dashboard started on h and c only: the gates are recorded now, once."
            raise SeriesPending(note, job)
        return self.neuron(store, text)

    def model_errors(self, name: str) -> Job:
        """The recorded model against the n-gram baseline on this store
        (:func:`lstmviz.analysis.evaluate.store_error_analysis`): a background job, since the n-gram is
        trained on the checkpoint's whole training split; cached in the store directory."""
        store = self.store(name)
        if not self.has_model(name):
            raise NoModel(name, "compare its model with the n-gram baseline")
        return self.jobs.start(f"errors:{name}", lambda job: store_error_analysis(store, job.report))

    def checkpoint(self, name: str, action: str):
        """The checkpoint a store was recorded from, loaded once (interventions need it);
        :class:`NoModel`, saying the dashboard cannot ``action``, for a store written without one."""
        store = self.store(name)
        if not self.has_model(name):
            raise NoModel(name, action)

        def load():
            from ..model.checkpoint import load_checkpoint

            return self.main_thread.run(lambda: load_checkpoint(recorded_path(store.checkpoint)))

        with self._lock:
            return self.once(("checkpoint", name), load)

    def effect(self, name: str, neuron: str) -> Job:
        """A neuron's mean-ablation effect on the store's text against random controls
        (:func:`lstmviz.analysis.ablation.store_effect`): a background job, cached in the store."""
        from ..analysis.ablation import store_effect

        store, ckpt = self.store(name), self.checkpoint(name, EFFECT_NEEDS)

        def work(job: Job) -> dict:
            return store_effect(store, ckpt, neuron, on_progress=lambda done, total: job.report(done / total, "measuring"))

        return self.jobs.start(f"effect:{name}:{neuron}", work)

    def prepare(self, name: str) -> None:
        """Compute (or read from the store's cache) what every page needs: the rankings, and
        the summaries of every h and c neuron, so a neuron switch only reads them, and where
        the first views open."""
        self.rankings(name)
        first_views(self.store(name))
        summaries = store_summaries(self.store(name))
        self._summaries.setdefault(name, {}).update(summaries)

    def summary(self, name: str, neuron: str) -> dict:
        """A neuron's colour statistics, context positions and histogram
        (:func:`lstmviz.analysis.summaries.neuron_summary`): prepared ones, or computed once here."""
        table = self._summaries.setdefault(name, {})
        if neuron not in table:
            table[neuron] = neuron_summary(self.store(name), neuron)
        return table[neuron]

    def scale(self, name: str, neuron: str, scale: str | None = None) -> ColourScale:
        """The neuron's colour scale ``scale`` (default: chosen for it), from its whole series
        (stable while scrolling)."""
        return scale_for(neuron, ValueStats(**self.summary(name, neuron)["stats"]), scale)
