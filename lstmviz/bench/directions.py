"""``lstmviz bench directions``: probes of every feature on every series of a store (the
shipped model's test split), beside scikit-learn fitting the same probes on the same data
(``LogisticRegression`` and ``Ridge`` with the same penalty, and ``lasso_path`` over the same
penalties); and painting a direction beside painting a neuron: the work of the Neuron
page's switch (the window's payload on the unit's colour scale), in this process."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from ..analysis.probes import PATH_STEPS, RIDGE, SeriesData, feature_targets, probe_features, probed_series, sampled_halves
from ..app.pages.neuron import WINDOW
from ..render.colours import neuron_scale
from ..render.figures import text_payload
from ..store.open import open_store
from ..text.features import store_features
from .fixtures import default_checkpoint, synthetic_store
from .harness import at_most, result, timed

TARGETS = {
    "probe_s": at_most(60, "7 features x 4 series (h, c of both layers) of the shipped model's test split, 2 cores"),
    "direction_switch_ms": at_most(50, "painting a direction's window once its series is kept"),
}


def _default_store():
    """The shipped model's test split, recorded (h and c) once and cached."""
    from ..recording.one_text import evaluation_documents
    from ..recording.sources import recorded

    ckpt = default_checkpoint(None)
    store = recorded(ckpt, evaluation_documents(ckpt), kinds=("h", "c"), progress=False)
    return store, f"{ckpt.name}'s test split, {len(store):,} characters"


def _scikit_learn_fits(store) -> tuple[float, list[tuple[float, float]]]:
    """Seconds scikit-learn takes to fit every probe (and its lasso path over our penalties)
    on the training sample our probes use; and, per probe, its held-out score beside ours."""
    from sklearn.linear_model import LogisticRegression, Ridge, lasso_path

    train_at, held_out = sampled_halves(store)
    targets, _ = feature_targets(store_features(store), train_at, held_out)
    seconds, pairs = 0.0, []
    for s in probed_series(store):
        data = SeriesData.of(store.series_block(*s.key), train_at, held_out)
        x, n = data.x.numpy(), len(train_at)
        for target in targets:
            y = target.train
            t0 = time.perf_counter()
            if target.binary:  # the same objective: C * sum of losses = (mean loss) / ridge
                w = LogisticRegression(C=1 / (RIDGE * n), max_iter=1000).fit(x, y).coef_[0]
            else:
                w = Ridge(alpha=RIDGE * n).fit(x, y).coef_
            top = float(np.abs(x.T @ (y - y.mean())).max()) / n
            lasso_path(x, y - y.mean(), alphas=top * np.logspace(np.log10(0.9), -3, PATH_STEPS))
            seconds += time.perf_counter() - t0
            pairs.append((data.score(target, w / data.sd), data.score(target, data.fit(target))))
    return seconds, pairs


def _switch_ms(store, unit: str, switches: int) -> list[float]:
    """Milliseconds of each of ``switches`` switches to ``unit`` at positions across the text:
    its colour scale (from its whole series, kept) and the painted window's payload."""
    positions = np.linspace(0, max(len(store) - WINDOW, 0), switches).astype(int)
    out = []
    for pos in positions:
        t0 = time.perf_counter()
        text_payload(store, unit, int(pos), min(len(store), int(pos) + WINDOW), neuron_scale(store, unit))
        out.append((time.perf_counter() - t0) * 1000)
    return out


def bench_directions(
    store_path: str | None = None, chars: int | None = None, switches: int = 20, out: Path | None = None
) -> dict:
    """Probes of the built-in features on every h and c series of the store at ``store_path``
    (default: the shipped model's test split; with ``chars``, synthetic activations over that
    many stdlib characters, written under ``out``), beside scikit-learn's fits; then a
    direction's switch beside its best neuron's."""
    if chars:
        store, described = synthetic_store(Path(out) / "synthetic.store", chars)
    elif store_path:
        store = open_store(store_path)
        described = f"{store.name}, {len(store):,} characters"
    else:
        store, described = _default_store()
    t0 = time.perf_counter()
    report = probe_features(store)  # the directions are kept in the store
    probe_s = time.perf_counter() - t0
    sklearn_s, pairs = _scikit_learn_fits(store)
    found = report.features.get("in_string")
    neuron = found.best_unit[0] if found else str(store.series[0].neuron(0))
    direction = str(max(found.probes, key=lambda p: p.score).direction) if found else None
    first_ms = timed(lambda: neuron_scale(store, direction)) * 1000 if direction else None  # the whole series, once
    neuron_ms = _switch_ms(store, neuron, switches)
    direction_ms = _switch_ms(store, direction, switches) if direction else []
    figures = {
        "store": described,
        "probes": len(pairs),
        "probe_s": round(probe_s, 2),
        "sklearn_fit_s": round(sklearn_s, 2),
        "max_score_gap_vs_sklearn": round(max((abs(a - b) for a, b in pairs), default=0.0), 5),
        "neuron": neuron,
        "direction": direction,
        "direction_first_ms": round(first_ms, 1) if first_ms is not None else None,
        "neuron_switch_ms": round(statistics.median(neuron_ms), 2),
        "direction_switch_ms": round(statistics.median(direction_ms), 2) if direction_ms else None,
    }
    measures = (
        "linear probes of 7 features on every h and c series, beside scikit-learn's fits of the same probes; "
        "painting a direction beside a neuron (ms a switch, in process)"
    )
    return result("directions", measures, figures, TARGETS)
