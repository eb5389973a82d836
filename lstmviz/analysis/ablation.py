"""Ablation effects, teacher-forced: how many bits the model loses on each character of a text
when chosen neurons are replaced (zeroed, set to their mean, or clamped), beside the same for
random neuron sets of the same layer, kind and size (the controls), so that an effect can be
seen to stand out, or not.

The text is run once unchanged (the fast path), then once for the target set and every
control set together: each set is a copy of the batch, the layers below the lowest replaced
one are computed once and shared, and the layers from it up run on the exact step path.
Losses are attributed to the character predicted: position p predicts p + 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..core.characters import name_of, one_line
from ..core.errors import CorpusError, LstmvizError
from ..core.neurons import DirectionId, FeatureId, NeuronId, UnitId, parse_neurons, parse_units
from ..core.options import CONTROLS, TOP
from ..model.checkpoint import Checkpoint
from ..model.hooks import HookCall, reader
from ..model.interventions import AlongDirection, Mode, Replace, constant, edit_features
from ..model.sparse_dictionary import SparseDictionary
from ..store.cache import cached, read_cached
from ..store.dictionary_format import load_dictionary
from ..store.format import DEFAULT_LANES
from ..store.units import BLOCK_CHARS, dictionary_of, direction_vector, series_block_of
from ..text.corpus import Document
from ..text.features import BINARY, compute_features
from ..text.lanes import Chunk, LaidText, limit_chars, logp_of_next

TOP_LISTED = 10  # characters and positions listed
BEFORE_NEWLINE = 10  # "before a newline": a line's last characters, this many (where the line-length cell is needed)
MIN_CHAR_COUNT = 5  # a character is listed once it was predicted this often


@dataclass
class Ablation:
    """The log-probability of every predicted character, unchanged and with each neuron set
    replaced (row 0: the target set; rows 1..K: the controls)."""

    neurons: list[UnitId]  # neurons, or directions (whose projection is replaced)
    mode: Mode
    control_sets: list[list[UnitId]]  # neurons alike, or random directions in the same series
    text: str
    base_logp: np.ndarray  # [chars] natural log, NaN where nothing is predicted
    ablated_logp: np.ndarray  # [1 + controls, chars]
    features: dict[str, np.ndarray]  # binary tracks over the text (``BINARY`` and :func:`line_end_tracks`)
    controls_drawn: str = "random sets of as many units of the same series"  # how the controls were drawn, in words

    @property
    def scored(self) -> np.ndarray:
        return np.isfinite(self.base_logp)

    def bits_lost(self) -> np.ndarray:
        """[1 + controls, chars]: bits lost at each position (NaN where nothing is predicted)."""
        return (self.base_logp - self.ablated_logp) / math.log(2)

    def to_json(self, top: int = TOP_LISTED) -> dict:
        TOP.check(top)
        ok = self.scored
        lost = self.bits_lost()[:, ok]
        bpc = float(-self.base_logp[ok].mean() / math.log(2))
        ablated = bpc + lost.mean(axis=1)  # per set
        controls = ablated[1:]
        predicted = np.flatnonzero(ok) + 1  # the character each scored position predicts
        return {
            "neurons": [str(n) for n in self.neurons],
            "mode": str(self.mode),
            "chars": int(ok.sum()),
            "bpc": round(bpc, 5),
            "ablated_bpc": round(float(ablated[0]), 5),
            "bits_lost": round(float(lost[0].mean()), 5),
            "by_feature": {name: _inside_outside(lost, track[predicted]) for name, track in self.features.items()},
            "control": {
                "sets": len(controls),
                "ablated_bpc_mean": _round(controls.mean()) if len(controls) else None,
                "ablated_bpc_sd": _round(controls.std(ddof=1)) if len(controls) > 1 else None,
                "as_large": int((controls >= ablated[0]).sum()),  # controls losing as much or more
                "drawn": self.controls_drawn,
                "neurons": [[str(n) for n in s] for s in self.control_sets],
            },
            "top_chars": self._top_chars(lost, predicted, top),
            "top_positions": self._top_positions(lost[0], predicted, top),
        }

    def to_text(self, top: int = TOP_LISTED) -> str:
        """The effect as a few plain-text tables: overall, by feature, by character, by position."""
        data = self.to_json(top)
        control = data["control"]
        line = f"bits per character: {data['bpc']:.4f} -> {data['ablated_bpc']:.4f} ({data['bits_lost']:+.4f})"
        if control["sets"] > 1:
            line += (
                f"; {control['sets']} random sets alike: {control['ablated_bpc_mean']:.4f} +- {control['ablated_bpc_sd']:.4f} "
                f"({control['as_large']} of {control['sets']} lose as much)"
            )
        lines = [f"{', '.join(data['neurons'])} set to {data['mode']}, on {data['chars']:,} predicted characters", line]
        lines += [f"controls: {control['drawn']}"] if control["sets"] else []
        lines += ["", "bits lost per predicted character, inside and outside each feature (controls: mean +- sd)"]
        lines.append(f"  {'feature':<14}{'chars in':>9}{'inside':>9}  {'controls':>18}{'outside':>9}  {'controls':>18}")
        for name, f in data["by_feature"].items():
            inside = _bits_cell(f["inside_bits"], f["control_inside_mean"], f["control_inside_sd"])
            outside = _bits_cell(f["outside_bits"], f["control_outside_mean"], f["control_outside_sd"])
            lines.append(f"  {name:<14}{f['chars_inside']:>9,}{inside}{outside}")
        lines += ["", "characters most affected (bits lost on average; controls' mean):"]
        for c in data["top_chars"]:
            ctl = f"  (controls {c['control_bits_lost']:+.3f})" if c["control_bits_lost"] is not None else ""
            lines.append(f"  {name_of(c['char']):<6} {c['bits_lost']:+.3f} over {c['count']:,}{ctl}")
        lines += ["", "positions most affected:"]
        for p in data["top_positions"]:
            context = one_line(p["before"] + "[" + p["char"] + "]" + p["after"])
            lines.append(f"  {p['position']:>8}  {p['bits_lost']:+.3f}  {context}")
        return "\n".join(lines)

    def _top_chars(self, lost: np.ndarray, predicted: np.ndarray, top: int) -> list[dict]:
        codes = np.frombuffer(self.text.encode("utf-32-le"), dtype=np.uint32)[predicted]
        uniq, inverse, counts = np.unique(codes, return_inverse=True, return_counts=True)
        sums = np.stack([np.bincount(inverse, weights=row, minlength=len(uniq)) for row in lost])  # [sets, chars]
        means = sums / counts
        order = [k for k in np.argsort(-means[0]) if counts[k] >= MIN_CHAR_COUNT][:top]
        return [
            {
                "char": chr(int(uniq[k])),
                "count": int(counts[k]),
                "bits_lost": round(float(means[0, k]), 4),
                "control_bits_lost": round(float(means[1:, k].mean()), 4) if len(means) > 1 else None,
            }
            for k in order
        ]

    def _top_positions(self, lost: np.ndarray, predicted: np.ndarray, top: int) -> list[dict]:
        out = []
        for k in np.argsort(-lost)[:top]:
            p = int(predicted[k])
            out.append(
                {
                    "position": p,
                    "char": self.text[p],
                    "bits_lost": round(float(lost[k]), 4),
                    "before": self.text[max(0, p - 30) : p],
                    "after": self.text[p + 1 : p + 11],
                }
            )
        return out


def _bits_cell(value, mean=None, sd=None) -> str:
    """One column pair of the by-feature table: bits lost, and the controls' mean +- sd."""
    if value is None:
        return f"{'-':>9}{'':>20}"
    ctl = f"{mean:+.4f} +- {sd:.4f}" if sd is not None else ""
    return f"{value:>+9.4f}  {ctl:>18}"


def _round(x) -> float:
    return round(float(x), 5)


def _inside_outside(lost: np.ndarray, inside: np.ndarray) -> dict:
    """Mean bits lost on the predicted characters inside and outside a binary feature, for
    the target set and the controls."""
    inside = inside.astype(bool)
    out: dict = {"chars_inside": int(inside.sum())}
    for where, mask in (("inside", inside), ("outside", ~inside)):
        per_set = lost[:, mask].mean(axis=1) if mask.any() else np.full(len(lost), np.nan)
        out[f"{where}_bits"] = None if not mask.any() else _round(per_set[0])
        controls = per_set[1:]
        out[f"control_{where}_mean"] = _round(controls.mean()) if len(controls) and mask.any() else None
        out[f"control_{where}_sd"] = _round(controls.std(ddof=1)) if len(controls) > 1 and mask.any() else None
    on_inside = lost[:, inside].mean(axis=1) if inside.any() and len(lost) > 1 else None
    out["control_inside_as_large"] = None if on_inside is None else int((on_inside[1:] >= on_inside[0]).sum())
    return out


def line_end_tracks(text: str, to_eol: np.ndarray) -> dict[str, np.ndarray]:
    """Where lines end, as binary tracks: ``newline`` (the character is one) and
    ``before_newline`` (one of the ``BEFORE_NEWLINE`` characters before one); ``to_eol`` is
    each character's distance to the end of its line (``features.line_features``)."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    newline = codes == ord("\n")
    end = np.minimum(np.arange(len(text)) + to_eol, len(text) - 1)
    before = (to_eol >= 1) & (to_eol <= BEFORE_NEWLINE) & newline[end]  # a line that ends in a newline
    return {"newline": newline.astype(np.int64), "before_newline": before.astype(np.int64)}


def control_sets(model, neurons: list[NeuronId], count: int, seed: int = 0) -> list[list[NeuronId]]:
    """``count`` random neuron sets shaped like ``neurons``: as many units of each (layer,
    kind), drawn from the other units of that series."""
    rng = np.random.default_rng(seed)
    groups: dict[tuple[int, str], list[int]] = {}
    for n in neurons:
        groups.setdefault((n.layer, n.kind), []).append(n.index)
    units = model.config.hidden_size
    for (layer, kind), chosen in groups.items():
        if count and units - len(chosen) < len(chosen):
            raise LstmvizError(
                f"L{layer}.{kind} has {units} units: too few to draw {len(chosen)} other ones for a control; give fewer neurons."
            )
    out = []
    for _ in range(count):
        sets = []
        for (layer, kind), chosen in groups.items():
            pool = np.setdiff1d(np.arange(units), chosen)
            sets += [NeuronId(layer, kind, int(u)) for u in sorted(rng.choice(pool, len(chosen), replace=False))]
        out.append(sets)
    return out


def ablation_targets(ckpt: Checkpoint, neurons) -> list[NeuronId] | list[DirectionId] | list[FeatureId]:
    """The neurons (or directions, one a series; or features of one series' dictionary) to
    replace, each checked against the model (and the model checked to predict the next
    character), so a bad one is refused before any text is read."""
    ckpt.model.require_next_character("be ablated (ablation counts the bits lost on the next character)")
    units = parse_units(neurons)
    if all(isinstance(u, NeuronId) for u in units):
        return [ckpt.model.check_neuron(n) for n in parse_neurons(neurons)]
    kinds = {type(u) for u in units}
    if len(kinds) > 1:
        raise LstmvizError(
            "Ablate neurons, directions (e.g. L2.c~in_string) or dictionary features (e.g. L1.c#17) in one run, not a mix."
        )
    series = [u.series for u in units]
    if kinds == {DirectionId} and len(set(series)) < len(series):
        raise LstmvizError(f"Ablate one direction a series at a time; {', '.join(map(str, units))} share one.")
    if kinds == {FeatureId} and len(set(series)) > 1:
        raise LstmvizError(f"Ablate the features of one series' dictionary at a time, not of {', '.join(sorted(set(series)))}.")
    for u in units:
        ckpt.model.check_neuron(NeuronId(u.layer, u.kind, 0, u.reverse))  # the model has its series
    return units


def direction_vectors(store, ckpt: Checkpoint, directions: list[DirectionId]) -> dict[DirectionId, np.ndarray]:
    """The unit vectors of ``directions`` as ``store`` keeps them (``lstmviz probe`` saved
    them), the store checked to be a recording of ``ckpt``'s model."""
    if store.checkpoint.get("content_hash") != ckpt.content_hash:
        raise LstmvizError(f"The store {store.path} was recorded from another model than {ckpt.name}; probe a recording of it.")
    return {d: direction_vector(store, d) for d in directions}


def feature_dictionary(store, ckpt: Checkpoint, features: list[FeatureId]) -> SparseDictionary:
    """The dictionary ``store`` keeps for the features' series (``lstmviz dictionary`` saved
    it), the store checked to be a recording of ``ckpt``'s model."""
    if store.checkpoint.get("content_hash") != ckpt.content_hash:
        raise LstmvizError(f"The store {store.path} was recorded from another model than {ckpt.name}; use a recording of it.")
    dictionary = load_dictionary(dictionary_of(store, features[0]), store)
    for f in features:
        if not 0 <= f.feature < dictionary.size:
            raise LstmvizError(f"No feature {f}: the dictionary of {f.series} has features 0-{dictionary.size - 1}.")
    return dictionary


def control_features(size: int, features: list[FeatureId], count: int, seed: int = 0) -> list[list[FeatureId]]:
    """``count`` sets of as many other features of the same dictionary (``size`` features),
    drawn at random: a feature's controls are features, as a neuron's are neurons."""
    rng = np.random.default_rng(seed)
    chosen = sorted({f.feature for f in features})
    if count and size - len(chosen) < len(chosen):
        raise LstmvizError(f"The dictionary has {size} features: too few to draw {len(chosen)} others for a control.")
    pool, f = np.setdiff1d(np.arange(size), chosen), features[0]
    return [
        [FeatureId(f.layer, f.kind, int(k), f.reverse) for k in sorted(rng.choice(pool, len(chosen), replace=False))]
        for _ in range(count)
    ]


def series_covariance(store, unit: UnitId) -> np.ndarray:
    """The covariance of the series ``unit`` lives on over the whole store ([units, units]
    float64), computed once in blocks of characters and kept in the store directory."""
    block = series_block_of(store, unit)

    def compute() -> dict:
        total, products = np.zeros(block.shape[0]), np.zeros((block.shape[0],) * 2)
        for a in range(0, block.shape[1], BLOCK_CHARS):
            x = np.asarray(block[:, a : a + BLOCK_CHARS], dtype=np.float32)
            total += x.sum(1, dtype=np.float64)
            products += (x @ x.T).astype(np.float64)
        mean = total / block.shape[1]
        return {"covariance": products / block.shape[1] - np.outer(mean, mean)}

    return cached(store, f"covariance-{unit.series}-v1.npz", compute)["covariance"]


def matched_direction(covariance: np.ndarray, variance: float, rng: np.random.Generator) -> np.ndarray:
    """A random unit vector u whose projection has ``variance`` (u' C u, C = ``covariance``):
    u ~ C^(-a/2) g with g Gaussian, the power a found by bisection. In C's eigenbasis u' C u
    is the mean eigenvalue weighted by lambda^-a g^2, which falls as a grows (from the
    largest eigenvalue to the smallest), so one a fits any variance between them: a = 0 is a
    uniform direction, a > 0 leans to the quiet axes, as a probe's direction does."""
    lam, basis = np.linalg.eigh(covariance)
    lam = np.maximum(lam, lam[-1] * 1e-12)
    g, log_lam = rng.normal(size=len(lam)), np.log(lam)
    variance = float(np.clip(variance, lam[0], lam[-1]))

    def weights(a: float) -> np.ndarray:
        log_w = -a * log_lam + np.log(g * g + 1e-300)
        return np.exp(log_w - log_w.max())

    low, high = -1e3, 1e3
    for _ in range(200):
        a = (low + high) / 2
        w = weights(a)
        low, high = (a, high) if w @ lam / w.sum() > variance else (low, a)
    u = basis @ (np.sqrt(weights((low + high) / 2)) * np.sign(g))
    return (u / np.linalg.norm(u)).astype(np.float32)


MATCHED = (
    "random directions of the same series, each drawn so its projection has the same variance over the store as the direction's"
)
UNMATCHED = "random unit vectors of the same series (not matched in variance: no store given)"


def control_directions(
    units: int, directions: list[DirectionId], count: int, seed: int = 0, vectors: dict | None = None, covariances=None
):
    """``count`` sets of random directions shaped like ``directions`` (one unit vector in each
    of their series), named ``L2.c~random1``...: with ``covariances`` ({series: covariance over
    the store}) and the directions' ``vectors``, each drawn with the variance of its direction's
    projection (:func:`matched_direction`); without, uniformly on the sphere. Returns the
    sets, their vectors, and how they were drawn, in words."""
    rng = np.random.default_rng(seed)
    sets, out = [], {}
    for k in range(1, count + 1):
        chosen = [DirectionId(d.layer, d.kind, f"random{k}", d.reverse) for d in directions]
        for d, c in zip(directions, chosen, strict=True):
            if covariances is not None:
                cov, v = covariances[d.series], np.asarray(vectors[d], dtype=np.float64)
                out[c] = matched_direction(cov, float(v @ cov @ v), rng)
            else:
                v = rng.normal(size=units)
                out[c] = (v / np.linalg.norm(v)).astype(np.float32)
        sets.append(chosen)
    return sets, out, MATCHED if covariances is not None else UNMATCHED


def ablate(
    ckpt: Checkpoint,
    docs: list[Document],
    neurons,
    mode: Mode | str = "zero",
    controls: int = 20,
    seed: int = 0,
    lanes: int = DEFAULT_LANES,
    chunk_len: int = 64,
    on_progress: Callable[[int, int], None] | None = None,
    vectors: dict | None = None,
    dictionary: SparseDictionary | None = None,
    covariances: dict[str, np.ndarray] | None = None,
) -> Ablation:
    """Teacher-forced ablation of ``neurons`` over ``docs`` (each from a zero state), with
    ``controls`` random sets alike; ``on_progress(done, total)`` counts characters of both passes.
    Directions (``L2.c~in_string``) have their projection replaced (zero: projected out; mean:
    set to its mean over the text; clamp), beside random directions of the same series;
    ``vectors`` gives their unit vectors ({id: [units]}, ``store.units.direction_vector``) and
    ``covariances`` ({series: :func:`series_covariance`}) matches the random directions'
    projections in variance to theirs. Dictionary features (``L1.c#17``, of ``dictionary``) are removed from the series (zero) or
    held at a value (clamp) through ``interventions.edit_features``, beside random features."""
    model = ckpt.model
    targets = ablation_targets(ckpt, neurons)
    mode = mode if isinstance(mode, Mode) else Mode.parse(mode)
    CONTROLS.check(controls)
    docs = [d for d in docs if d.text]
    laid = LaidText.of(docs, ckpt.vocab, lanes) if docs else None
    if laid is None or (laid.next_ids >= 0).sum() == 0:
        raise CorpusError("The text has no character to predict (each document needs two or more).")
    sets, vectors, drawn = _control_sets(model, targets, controls, seed, vectors, dictionary, covariances)
    if isinstance(targets[0], FeatureId) and mode.name == "mean":
        raise LstmvizError("A dictionary feature is ablated with --mode zero (removed) or clamp=VALUE (held), not mean.")
    total = 2 * len(laid.text)
    report = (lambda done: on_progress(done, total)) if on_progress else (lambda done: None)

    base_logp, means = _baseline(model, laid, sets, mode, chunk_len, report)
    values = {name: (means[name] if mode.name == "mean" else mode.value) for name in _replaced_points(sets)}
    if isinstance(targets[0], FeatureId):
        edits = _feature_edits(sets, dictionary, mode)
    else:
        edits = _direction_edits(sets, vectors, mode, means) if vectors else _neuron_edits(sets, values, model.config.hidden_size)
    ablated_logp = _ablated(model, laid, sets, edits, chunk_len, lambda done: report(len(laid.text) + done))
    feats = compute_features(laid.text, laid.documents(docs), names=[*BINARY, "to_eol"])
    tracks = {n: feats[n] for n in BINARY} | line_end_tracks(laid.text, feats["to_eol"])
    return Ablation(targets, mode, sets[1:], laid.text, base_logp, ablated_logp, tracks, drawn)


def _control_sets(model, targets, controls: int, seed: int, vectors, dictionary, covariances):
    """[targets, *control sets], for directions every set's unit vectors, and how the
    controls were drawn, in words."""
    if isinstance(targets[0], DirectionId):
        missing = [str(d) for d in targets if d not in (vectors or {})]
        if missing:
            raise LstmvizError(f"No vector given for {', '.join(missing)}; read it from the store lstmviz probe kept it in.")
        units = model.config.hidden_size
        controls_sets, random_vectors, drawn = control_directions(units, targets, controls, seed, vectors, covariances)
        return [targets, *controls_sets], {**vectors, **random_vectors}, drawn
    if isinstance(targets[0], FeatureId):
        if dictionary is None or dictionary.series != targets[0].series:
            raise LstmvizError(f"No dictionary of {targets[0].series} given; read it from the store lstmviz dictionary kept.")
        drawn = "random sets of as many other features of the same dictionary"
        return [targets, *control_features(dictionary.size, targets, controls, seed)], None, drawn
    return [targets, *control_sets(model, targets, controls, seed)], None, Ablation.controls_drawn


def _replaced_points(sets: list[list[UnitId]]) -> list[str]:
    return sorted({n.hook_name for s in sets for n in s})


def _logp_of_next(logits: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """log p(next character) at each position [rows, time] (NaN where nothing is predicted)."""
    return logp_of_next(torch.log_softmax(logits.float(), dim=-1), targets).cpu().numpy()


@torch.no_grad()
def _baseline(model, laid: LaidText, sets, mode: Mode, chunk_len: int, report):
    """The unchanged run (fast path): log p of every predicted character, and, for mean
    ablation, every replaced series' mean over the text."""
    device = next(model.parameters()).device
    names = _replaced_points(sets) if mode.name == "mean" else []
    sums = {name: torch.zeros(model.config.hidden_size, dtype=torch.float64) for name in names}

    def forward(chunk: Chunk, state):
        mask = torch.from_numpy(chunk.valid).to(device).unsqueeze(-1)

        @reader
        def add(series: torch.Tensor, hook: HookCall) -> None:
            sums[hook.name] += (series * mask).sum((0, 1)).double().cpu()

        return model.forward_instrumented(chunk.ids, state, chunk.keep, hooks=[(name, add) for name in names])

    logp, done = np.full(len(laid.text), np.nan), 0
    for chunk, logits, _ in laid.run(laid.chunks(chunk_len, device), forward, model.initial_state(laid.lanes, device)):
        logp[chunk.pos[chunk.valid]] = _logp_of_next(logits, chunk.targets)[chunk.valid]
        done += int(chunk.valid.sum())
        report(done)
    return logp, {name: (s / len(laid.text)).float() for name, s in sums.items()}


Edits = Callable[[np.ndarray], dict]  # the active lanes -> {hook name: [hook]} for every set's copy of them


def _neuron_edits(sets: list[list[NeuronId]], values: dict, units: int) -> Edits:
    """Each set's neurons replaced by ``values`` ({hook name: a value, or one per unit})."""
    masks = {}  # hook name -> [sets, units] bool
    for r, s in enumerate(sets):
        for n in s:
            masks.setdefault(n.hook_name, torch.zeros(len(sets), units, dtype=torch.bool))[r, n.index] = True
    news = {name: constant(values[name]) for name in masks}

    def edits(rows: np.ndarray) -> dict:
        return {name: [Replace(news[name], mask=mask.repeat_interleave(len(rows), 0))] for name, mask in masks.items()}

    return edits


def _direction_edits(sets: list[list[DirectionId]], vectors: dict, mode: Mode, means: dict) -> Edits:
    """Each set's directions, their projection replaced as ``mode`` says (zero: projected
    out; mean: set to the text's mean projection, from ``means`` {hook name: mean vector})."""
    by_point: dict[str, list[torch.Tensor]] = {}
    for s in sets:
        for d in s:
            by_point.setdefault(d.hook_name, []).append(torch.as_tensor(vectors[d], dtype=torch.float32))
    stacked = {name: torch.stack(vs) for name, vs in by_point.items()}  # [sets, units]
    targets = {
        name: (d / d.norm(dim=1, keepdim=True)) @ means[name] if mode.name == "mean" else torch.full((len(d),), mode.value)
        for name, d in stacked.items()
    }
    how = "zero" if mode.name == "zero" else "clamp"

    def edits(rows: np.ndarray) -> dict:
        n = len(rows)
        return {
            name: [AlongDirection(d.repeat_interleave(n, 0), how, targets[name].repeat_interleave(n, 0))]
            for name, d in stacked.items()
        }

    return edits


def _feature_edits(sets: list[list[FeatureId]], dictionary: SparseDictionary, mode: Mode) -> Edits:
    """Each set's features of ``dictionary`` removed (zero) or held at ``mode.value``, each
    set on its own copy of the batch (``interventions.edit_features`` with one group a set)."""
    groups = [{f.feature: mode.value for f in s} for s in sets]
    hooks = edit_features(dictionary, groups)

    def edits(rows: np.ndarray) -> dict:
        return {name: [hook] for name, hook in hooks}

    return edits


@torch.no_grad()
def _ablated(model, laid: LaidText, sets, edits: Edits, chunk_len: int, report) -> np.ndarray:
    """Every set's run at once, each a copy of the batch (row = set * lanes + lane): the
    layers below the lowest replaced one once, shared by every copy."""
    device = next(model.parameters()).device
    cfg, R, lanes = model.config, len(sets), laid.lanes
    first = min(n.layer for s in sets for n in s) - 1  # the lowest replaced layer, from 0
    below, above = range(first), range(first, cfg.num_layers)

    def forward(chunk: Chunk, state):
        (state_below, state_above), h = state, model.embedding(chunk.ids)
        if first:
            h, state_below = model.run_layers(h, state_below, chunk.keep, layers=below)
        hooks = edits(chunk.rows)
        top, state_above = model.run_layers(h.repeat(R, 1, 1), state_above, chunk.keep.repeat(R, 1), hooks, layers=above)
        return model.decoder(top), (state_below, state_above)

    state = (
        layers_state(model.initial_state(lanes, device), below),
        layers_state(model.initial_state(R * lanes, device), above),
    )
    out, done = np.full((R, len(laid.text)), np.nan), 0
    for chunk, logits, _ in laid.run(laid.chunks(chunk_len, device), forward, state):
        logp = _logp_of_next(logits, chunk.targets.repeat(R, 1)).reshape(R, len(chunk.rows), -1)
        for r in range(R):
            out[r, chunk.pos[chunk.valid]] = logp[r][chunk.valid]
        done += int(chunk.valid.sum())
        report(done)
    return out


def layers_state(state, layers: range):
    """The state of ``layers`` only ([layers, batch, hidden] each)."""
    index = slice(layers.start, layers.stop)
    return tuple(s[index] for s in state) if isinstance(state, tuple) else state[index]


# -- effects of one neuron, as the dashboard's Neuron page shows them ----------------------------

# The Neuron page's measure: mean ablation (the neuron's mean over the text, the usual choice:
# zero can be a value a cell takes on purpose, the quote cell's inside a string), on the
# first 20,000 characters against 10 controls: about 10 s for the shipped model.
EFFECT_MODE, EFFECT_CHARS, EFFECT_CONTROLS = "mean", 20_000, 10


def _effect_cache(neuron: NeuronId, chars: int, controls: int) -> str:
    return f"effect-v1-{neuron}-{EFFECT_MODE}-{chars}x{controls}.json"


def cached_effect(store, neuron, chars: int = EFFECT_CHARS, controls: int = EFFECT_CONTROLS) -> dict | None:
    """A neuron's ablation effect on a store's text, if it was measured before."""
    return read_cached(store, _effect_cache(NeuronId.parse(neuron), chars, controls))


def store_effect(
    store, ckpt: Checkpoint, neuron, chars: int = EFFECT_CHARS, controls: int = EFFECT_CONTROLS, on_progress=None
) -> dict:
    """Set ``neuron`` to its mean on the first ``chars`` characters of a store's text, beside
    ``controls`` random neurons of its series; kept in the store directory
    (``store/cache.py``), so it is measured once."""
    from ..recording.sources import store_documents

    neuron = ckpt.model.check_neuron(neuron)

    def measure() -> dict:
        docs = limit_chars(store_documents(store), chars)
        return ablate(ckpt, docs, [neuron], EFFECT_MODE, controls, on_progress=on_progress).to_json(top=8)

    return cached(store, _effect_cache(neuron, chars, controls), measure)


def decoder_logits(model, vocab_chars: list[str], neuron, k: int = 8) -> dict | None:
    """For a neuron of the top layer's h, which next characters it promotes and suppresses
    directly, through the decoder's weights (sae_vis's logit table); None for other neurons."""
    n = model.check_neuron(neuron)
    if n.kind != "h" or n.layer != model.config.num_layers:
        return None
    weights = model.decoder.weight[:, n.index].detach().cpu().numpy()
    order = np.argsort(weights)

    def listed(index) -> list:
        return [[vocab_chars[i], round(float(weights[i]), 4)] for i in index]

    return {"promotes": listed(order[::-1][:k]), "suppresses": listed(order[:k])}
