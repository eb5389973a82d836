"""Linear probes: is a text feature one unit, or a direction spread over a series?

For every feature and every series (a layer and kind), a probe is trained on one half of
the store's documents (every other one, in order) and scored on the other half only:
a logistic regression for a binary feature (AUROC), a ridge regression for a numeric one
(Spearman's rho). Beside it, the best single unit of any probed series (chosen on the
training half, scored on the held-out half), and an L1 path that says how few units reach
95% of the probe's score above chance (AUROC 0.5, rho 0): the lasso on the same
standardised units orders them, and each support on its path is refitted as the probe is
(a relaxed lasso) and scored on the held-out half.

Written in torch, not scikit-learn: the lasso path for a whole grid of penalties is one
batched proximal-gradient solve on the units' 384 x 384 Gram matrix (a few milliseconds),
where scikit-learn's ``lasso_path`` and ``LogisticRegression`` fit one penalty at a time;
``lstmviz bench directions`` times scikit-learn's fits on the same data beside ours.

Each probe's direction is saved in the store directory as a unit, ``L2.c~in_string``
(``store/units.py``): the unit vector d with series . d increasing as the probe's output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.stats import rankdata

from ..core.errors import LstmvizError, StoreError
from ..core.neurons import DirectionId
from ..core.options import comma_list
from ..store.reader import ActivationStore
from ..store.units import save_direction
from ..text.features import FeatureFn, Features, store_features
from .rankings import ranked_kinds

TRAIN_CHARS = 20_000  # training characters sampled from the training half (all held-out ones are scored): 50 per weight
PATH_STEPS = 16  # penalties on the L1 path, from the one that keeps one unit down to 1/1000 of it
REACH = 0.95  # "units for 95%": the fewest units whose score reaches this share of the probe's above chance
RIDGE = 1e-3  # the probes' L2 penalty, on standardised units and the mean loss
SCORE_CHARS = 1 << 16  # held-out characters projected at a time


@dataclass
class Probe:
    feature: str
    layer: int
    kind: str
    metric: str  # auroc | spearman
    score: float  # held-out
    units_for_95: int | None  # None: no support on the L1 path reached it
    direction: DirectionId  # the probe's direction, a unit (e.g. L2.c~in_string)

    @property
    def series(self) -> str:
        return self.direction.series

    def to_json(self) -> dict:
        return {
            "layer": self.layer,
            "kind": self.kind,
            "score": round(self.score, 5),
            "units_for_95": self.units_for_95,
            "direction": str(self.direction),
        }


@dataclass
class FeatureProbes:
    feature: str
    metric: str
    best_unit: tuple[str, float]  # the best single unit (chosen on the training half) and its held-out score
    probes: list[Probe] = field(default_factory=list)

    def to_json(self) -> dict:
        neuron, score = self.best_unit
        return {"best_unit": {"neuron": neuron, "score": round(score, 5)}, "probes": [p.to_json() for p in self.probes]}


@dataclass
class ProbeReport:
    store: str
    train_documents: int
    held_out_documents: int
    held_out_chars: int
    features: dict[str, FeatureProbes]
    absent: list[str]  # features one half of the documents lacks: not probed

    def to_json(self) -> dict:
        return {
            "store": self.store,
            "train_documents": self.train_documents,
            "held_out_documents": self.held_out_documents,
            "held_out_chars": self.held_out_chars,
            "features": {name: f.to_json() for name, f in self.features.items()},
            "absent": self.absent,
        }

    def to_text(self) -> str:
        lines = [
            f"{self.store}: probes trained on {self.train_documents} documents, "
            f"scored on the other {self.held_out_documents} ({self.held_out_chars:,} characters)"
        ]
        for name, f in self.features.items():
            label = "AUROC" if f.metric == "auroc" else "rho"
            lines += ["", f"{name} ({label}): best unit {f.best_unit[0]} {f.best_unit[1]:.4f}"]
            for p in f.probes:
                reach = f"{p.units_for_95} units reach 95%" if p.units_for_95 else "no sparse probe reaches 95%"
                lines.append(f"  probe on {p.series:<6} {p.score:.4f}   {reach}   ({p.direction})")
        if self.absent:
            lines += ["", f"not probed (one value throughout in a half of the documents): {', '.join(self.absent)}"]
        return "\n".join(lines)


# -- scores ------------------------------------------------------------------------------------


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """The area under the ROC curve, ties counted as halves (as scikit-learn's)."""
    labels = labels.astype(bool)
    pos = int(labels.sum())
    neg = len(labels) - pos
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - pos * (pos + 1) / 2) / (pos * neg))


def spearman(scores: np.ndarray, target_ranks: np.ndarray) -> float:
    """Spearman's rho against a target already ranked (average ranks)."""
    r = rankdata(scores) - (len(scores) + 1) / 2
    t = target_ranks - (len(scores) + 1) / 2
    denominator = math.sqrt(float(r @ r) * float(t @ t))
    return float(r @ t / denominator) if denominator else 0.0


@dataclass
class Target:
    """One feature over the training sample and over the held-out characters."""

    name: str
    binary: bool
    train: np.ndarray  # [train] float64
    held_out: np.ndarray  # [held out]: 0/1 for a binary feature, average ranks for a numeric one

    @property
    def metric(self) -> str:
        return "auroc" if self.binary else "spearman"

    def score(self, values: np.ndarray) -> float:
        return auroc(values, self.held_out) if self.binary else spearman(values, self.held_out)


# -- fitting -------------------------------------------------------------------------------------


def logistic_probe(x: torch.Tensor, y: torch.Tensor, ridge: float = RIDGE) -> tuple[torch.Tensor, float]:
    """Weights and bias of an L2-penalised logistic regression of 0/1 ``y`` on standardised
    ``x`` [n, units] (L-BFGS: the loss is smooth and convex)."""
    y = y.to(x.dtype)
    w = torch.zeros(x.shape[1] + 1, dtype=x.dtype, requires_grad=True)
    optimiser = torch.optim.LBFGS([w], lr=1, max_iter=100, tolerance_grad=1e-5, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimiser.zero_grad()
        value = torch.nn.functional.binary_cross_entropy_with_logits(x @ w[:-1] + w[-1], y) + ridge / 2 * (w[:-1] @ w[:-1])
        value.backward()
        return value

    optimiser.step(loss)
    weights = w.detach()
    return weights[:-1], float(weights[-1])


def ridge_probe(gram: torch.Tensor, xy: torch.Tensor, ridge: float = RIDGE) -> torch.Tensor:
    """Weights of a ridge regression on standardised units from their Gram matrix (X'X/n)
    and X'y/n, with centred y."""
    return torch.linalg.solve(gram + ridge * torch.eye(len(gram), dtype=gram.dtype), xy)


def lasso_path(gram: torch.Tensor, xy: torch.Tensor, steps: int = PATH_STEPS, iterations: int = 1000) -> torch.Tensor:
    """The lasso's weights for ``steps`` penalties of each target at once: ``xy`` [units,
    targets] -> [targets, steps, units], from the penalty that keeps one unit down to 1/1000
    of it. Minimises ``w'Gw/2 - xy'w + lambda |w|_1`` (the mean squared loss on standardised
    units, from their Gram matrix ``G``) by accelerated proximal gradient (FISTA), every
    penalty of every target in one batch."""
    targets = xy.shape[1]
    scale = torch.logspace(math.log10(0.9), -3, steps, dtype=gram.dtype)
    lambdas = (xy.abs().amax(0)[:, None] * scale).reshape(1, -1)  # [1, targets * steps]
    step = 1.0 / float(torch.linalg.eigvalsh(gram)[-1])
    b = xy.repeat_interleave(steps, dim=1)  # [units, targets * steps]
    w = torch.zeros_like(b)
    z, t = w.clone(), 1.0
    for _ in range(iterations):
        w_next = _shrink(z - step * (gram @ z - b), step * lambdas)
        t_next = (1 + math.sqrt(1 + 4 * t * t)) / 2
        z = w_next + (t - 1) / t_next * (w_next - w)
        w, t = w_next, t_next
    return w.T.reshape(targets, steps, -1)


def _shrink(v: torch.Tensor, by: torch.Tensor) -> torch.Tensor:
    return torch.sign(v) * torch.clamp(v.abs() - by, min=0)


# -- the data -------------------------------------------------------------------------------------


def document_halves(store: ActivationStore) -> tuple[np.ndarray, np.ndarray]:
    """Which characters train the probes (every other document, from the first) and which
    score them (the rest): two boolean masks over the store."""
    docs = [d for d in store.documents if len(d)]
    if len(docs) < 2:
        raise StoreError("Probes need a store of two or more documents: one half trains them, the other scores them.")
    train = np.zeros(len(store), dtype=bool)
    for d in docs[::2]:
        train[d.start : d.stop] = True
    held_out = np.zeros(len(store), dtype=bool)
    for d in docs[1::2]:
        held_out[d.start : d.stop] = True
    return train, held_out


def sampled_halves(store: ActivationStore, train_chars: int = TRAIN_CHARS, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The training sample (``train_chars`` characters of the training half, sorted) and the
    held-out half (a mask): what every probe of ``store`` is fitted and scored on."""
    train, held_out = document_halves(store)
    train_at = np.flatnonzero(train)
    return np.sort(np.random.default_rng(seed).choice(train_at, min(train_chars, len(train_at)), replace=False)), held_out


def parse_layers(text: str | None) -> list[int] | None:
    """``--layers 1,2``: layer numbers from 1 (None for all)."""
    items = comma_list(text)
    if not items:
        return None
    if not all(item.isdigit() for item in items):
        raise LstmvizError(f"--layers takes layer numbers from 1, e.g. 1,2, not {text!r}.")
    return [int(item) for item in items]


def probed_series(store: ActivationStore, layers=None, kinds=None) -> list:
    """The series to probe (default: every layer, the kinds every page ranks), each checked."""
    kinds = tuple(kinds) if kinds else ranked_kinds(store)
    have_kinds = {s.kind for s in store.series}
    have_layers = sorted({s.layer for s in store.series})
    bad_kinds = [k for k in kinds if k not in have_kinds]
    if bad_kinds:
        raise StoreError(f"This store has no series of kind {', '.join(bad_kinds)}; it has {', '.join(sorted(have_kinds))}.")
    layers = [int(x) for x in layers] if layers else have_layers
    bad_layers = [x for x in layers if x not in have_layers]
    if bad_layers:
        raise StoreError(
            f"This store has no layer {', '.join(map(str, bad_layers))}; it has layers {have_layers[0]}-{have_layers[-1]}."
        )
    return [s for s in store.series if s.layer in layers and s.kind in kinds]


def feature_targets(features: Features, train_at: np.ndarray, held_out: np.ndarray) -> tuple[list[Target], list[str]]:
    targets, absent = [], []
    for name in features.names():
        values = features[name].astype(np.float64)
        train, test = values[train_at], values[held_out]
        if np.ptp(train) == 0 or np.ptp(test) == 0:
            absent.append(name)
            continue
        binary = features.is_binary(name)
        targets.append(Target(name, binary, train, test.astype(bool) if binary else rankdata(test)))
    return targets, absent


@dataclass
class SeriesData:
    """One series as the probes see it: its training sample, standardised, with its Gram
    matrix; and its values at every held-out character."""

    x: torch.Tensor  # [train, units] float32, standardised
    sd: np.ndarray  # [units]
    gram: torch.Tensor  # [units, units] float64
    held_out: torch.Tensor  # [units, held out] float32, as stored
    products: dict[str, torch.Tensor] = field(default_factory=dict)  # feature -> X'y/n (y centred), float64

    @classmethod
    def of(cls, block, train_at: np.ndarray, held_out: np.ndarray) -> SeriesData:
        x = np.asarray(block[:, train_at], dtype=np.float32).T
        mean, sd = x.mean(0), x.std(0)
        sd[sd == 0] = 1.0
        xs = torch.from_numpy(np.ascontiguousarray((x - mean) / sd))
        x64 = xs.double()
        values = np.empty((block.shape[0], int(held_out.sum())), dtype=np.float32)
        done = 0
        for a in range(0, len(held_out), SCORE_CHARS):
            part = held_out[a : a + SCORE_CHARS]
            if part.any():
                values[:, done : done + int(part.sum())] = np.asarray(block[:, a : a + len(part)], dtype=np.float32)[:, part]
                done += int(part.sum())
        return cls(xs, sd, x64.T @ x64 / len(x), torch.from_numpy(values))

    def xy(self, target: Target) -> torch.Tensor:
        if target.name not in self.products:
            y = torch.from_numpy(target.train)
            self.products[target.name] = (self.x.T @ (y - y.mean()).float()).double() / len(y)
        return self.products[target.name]

    def fit(self, target: Target, support: np.ndarray | None = None) -> np.ndarray:
        """The probe's weights on the raw units (0 outside ``support``, if given)."""
        units = np.arange(len(self.sd)) if support is None else support
        w = np.zeros(len(self.sd))
        if target.binary:
            w[units] = logistic_probe(self.x[:, units], torch.from_numpy(target.train))[0].numpy()
        else:
            index = torch.from_numpy(units)
            w[units] = ridge_probe(self.gram[index][:, index], self.xy(target)[index]).numpy()
        return w / self.sd

    def score(self, target: Target, weights: np.ndarray) -> float:
        """The held-out score of the series projected on ``weights``."""
        return target.score((torch.from_numpy(weights.astype(np.float32)) @ self.held_out).numpy())


def _units_for(series: SeriesData, target: Target, probe: float, path: torch.Tensor) -> int | None:
    """The fewest units reaching 95% of the probe's score above chance: each support on the L1
    path (fewest units first), refitted (a relaxed lasso) and scored on the held-out half;
    a binary search, the score growing with the support."""
    chance = 0.5 if target.metric == "auroc" else 0.0
    needed = chance + REACH * (probe - chance)
    supports = {}
    for w in path:
        kept = np.flatnonzero(w.numpy())
        if len(kept) and len(kept) not in supports:
            supports[len(kept)] = kept
    sizes = sorted(supports)
    lo, hi, found = 0, len(sizes) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        if series.score(target, series.fit(target, supports[sizes[mid]])) >= needed:
            found, hi = sizes[mid], mid - 1
        else:
            lo = mid + 1
    return found


def _best_unit(series: SeriesData, target: Target, candidates: int = 5) -> tuple[int, float]:
    """Among the units most correlated with the feature on the training sample, the one
    that scores best there (folded: a unit low inside the feature counts as much)."""
    x = series.x.numpy()
    chosen = np.argsort(-series.xy(target).abs().numpy())[:candidates]
    if target.binary:
        folded = [_folded("auroc", auroc(x[:, u], target.train)) for u in chosen]
    else:
        ranks = rankdata(target.train)
        folded = [abs(spearman(x[:, u], ranks)) for u in chosen]
    k = int(np.argmax(folded))
    return int(chosen[k]), float(folded[k])


def _folded(metric: str, score: float) -> float:
    return max(score, 1 - score) if metric == "auroc" else abs(score)


def probe_features(
    store: ActivationStore,
    features: list[str] | None = None,
    extra: dict[str, FeatureFn] | None = None,
    layers=None,
    kinds=None,
    train_chars: int = TRAIN_CHARS,
    seed: int = 0,
    save: bool = True,
) -> ProbeReport:
    """Probe every series of ``layers`` and ``kinds`` (default: all layers, h and c) for
    each feature (default: the built-in ones; ``extra``: user features, name -> function of
    a document's text), trained on half the documents and scored on the other half; with
    ``save``, each probe's direction is kept in the store directory (``L2.c~in_string``)."""
    series = probed_series(store, layers, kinds)
    bad_names = [k for k in (extra or {}) if not (k.isidentifier() and k.isascii())]
    if bad_names:
        raise LstmvizError(f"A probed feature's name is letters, digits and _, not {bad_names[0]!r}.")
    train_at, held_out = sampled_halves(store, train_chars, seed)
    targets, absent = feature_targets(store_features(store, extra, features), train_at, held_out)
    out = {t.name: FeatureProbes(t.name, t.metric, ("", 0.0)) for t in targets}
    best: dict[str, tuple[float, str, float]] = {}  # feature -> (training score, unit, held-out score)
    for s in series:
        data = SeriesData.of(store.series_block(*s.key), train_at, held_out)
        paths = lasso_path(data.gram, torch.stack([data.xy(t) for t in targets], 1)) if targets else []
        for target, path in zip(targets, paths, strict=True):
            weights = data.fit(target)
            score = data.score(target, weights)
            direction = DirectionId(s.layer, s.kind, target.name, s.reverse)
            reach = _units_for(data, target, score, path)
            out[target.name].probes.append(Probe(target.name, s.layer, s.kind, target.metric, score, reach, direction))
            unit, trained = _best_unit(data, target)
            if trained > best.get(target.name, (-1.0,))[0]:
                held = _folded(target.metric, target.score(data.held_out[unit].numpy()))
                best[target.name] = (trained, str(s.neuron(unit)), held)
            if save:
                save_direction(store, direction, weights, {"score": score})
    for name, (_, unit, score) in best.items():
        out[name].best_unit = (unit, score)
    used = [d for d in store.documents if len(d)]
    return ProbeReport(str(store.path), len(used[::2]), len(used[1::2]), int(held_out.sum()), out, absent)
