"""Comparing two recordings of the same text (two models, or one training run's snapshots):
which neuron of B does the job of a neuron of A, how similar their layers are, whose cells
are stronger, and where B predicts better.

The correlation of every h and c series of A with every one of B is computed in one pass
over the characters, in chunks: each chunk is read from the two stores (float16, as
recorded), widened to float32 while shifted by a per-series offset (the first chunk's mean,
so float32 sums do not cancel), and multiplied; totals are kept in float64. The cost is one
float32 matrix product of the two blocks plus the reading; memory is a few chunks.

Linear CKA (Kornblith et al. 2019) between every pair of layers is computed on a sample of
``CKA_CHARS`` characters, the first ones of every chunk (it compares whole layers, so a
sample suffices): the same pass gives the sample's cross products, and only each layer's
products with itself are extra. A layer compared with itself scores 1."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from scipy.optimize import linear_sum_assignment

from ..core.errors import LstmvizError
from ..core.neurons import NeuronId
from ..core.options import TOP
from ..recording.one_text import same_text
from ..store.reader import ActivationStore, predicted_log2p
from .rankings import mapped_tensor, store_rankings

COMPARED_KINDS = ("h", "c")
CKA_CHARS = 20_000
CHUNK = 8192
FLUSH_EVERY = 8  # chunks summed in float32 before the float64 totals


@dataclass
class Block:
    """The compared series of one store: neuron ids, their rows, and their layer."""

    ids: list[str]
    rows: np.ndarray
    layers: np.ndarray

    @classmethod
    def of(cls, store: ActivationStore, kinds: tuple[str, ...] = COMPARED_KINDS) -> Block:
        ids, rows, layers = [], [], []
        for s in sorted(store.series, key=lambda s: s.layer):  # a layer's series side by side
            if s.kind in kinds:
                ids += [str(s.neuron(u)) for u in range(s.units)]
                rows += range(s.row, s.row + s.units)
                layers += [s.layer] * s.units
        if not ids:
            raise LstmvizError(f"{store.name} has no {' or '.join(kinds)} series to compare.")
        return cls(ids, np.array(rows), np.array(layers))

    @functools.cached_property
    def layer_spans(self) -> dict[int, tuple[int, int]]:
        """{layer: (first index, stop index)}: each layer's series are consecutive in the block."""
        return {
            int(la): (int(np.argmax(self.layers == la)), int(len(self.layers) - np.argmax(self.layers[::-1] == la)))
            for la in np.unique(self.layers)
        }

    @functools.cached_property
    def segments(self) -> list[tuple[int, int]]:
        """The block's rows as runs of consecutive store rows: [(first index, stop index)]."""
        breaks = np.flatnonzero(np.diff(self.rows) != 1) + 1
        return list(zip(np.r_[0, breaks].tolist(), np.r_[breaks, len(self.rows)].tolist(), strict=True))

    def read(self, store: ActivationStore, start: int, stop: int, dtype=np.float16) -> np.ndarray:
        """[series, characters] for characters [start, stop), read run by run (each a
        contiguous range of rows); float16 as stored unless another ``dtype`` is asked for."""
        out = np.empty((len(self.rows), stop - start), dtype=dtype)
        for a, b in self.segments:
            out[a:b] = store.activations[self.rows[a] : self.rows[b - 1] + 1, start:stop]
        return out

    def widen_into(self, store: ActivationStore, start: int, stop: int, out: torch.Tensor) -> None:
        """Characters [start, stop) as float32 into ``out`` [series, stop - start], straight
        from the memory-mapped store (one strided copy per run of rows, no float16 copy)."""
        for a, b in self.segments:
            out[a:b].copy_(mapped_tensor(store.activations[self.rows[a] : self.rows[b - 1] + 1, start:stop]))


def readable_mask(a: ActivationStore, b: ActivationStore) -> tuple[np.ndarray, dict]:
    """Characters both models can read (in both vocabularies), and what was dropped."""
    text = np.asarray(a.codepoints)
    mask = np.ones(len(text), dtype=bool)
    dropped = {}
    for store, label in ((a, "a"), (b, "b")):
        known = np.array(sorted(ord(c) for c in store.vocab_chars if len(c) == 1), dtype=np.uint32)
        unknown = ~np.isin(text, known)
        mask &= ~unknown
        chars = np.unique(text[unknown])
        dropped[label] = {"chars": int(unknown.sum()), "distinct": [chr(c) for c in chars[:20]]}
    dropped["compared_chars"] = int(mask.sum())
    return mask, dropped


@dataclass
class CrossMoments:
    """What one pass over the characters of two stores gives, for correlations and CKA.

    Every series is shifted by its mean over the first chunk (so float32 sums do not
    cancel); ``cross`` [A series + 1, B series + 1] holds the sums of products of shifted
    values, with both sides' sums in its last row and column and the count in the corner;
    ``sq_a``/``sq_b`` the sums of squares. The CKA sample (the first characters of every
    chunk, ``CKA_CHARS`` in all) has its own ``sample_cross`` and keeps its values
    ``sample_a``/``sample_b`` (shifted, a row of ones last)."""

    cross: np.ndarray
    sq_a: np.ndarray
    sq_b: np.ndarray
    sample_cross: np.ndarray
    sample_a: torch.Tensor
    sample_b: torch.Tensor

    def correlations(self) -> np.ndarray:
        """Pearson r of every series of A with every one of B: [A series, B series] float32
        (0 where a series is constant)."""
        na, nb = len(self.sq_a), len(self.sq_b)
        count = float(self.cross[na, nb])
        if count < 2:
            raise LstmvizError("Fewer than two characters to compare on.")
        mean_a, mean_b = self.cross[:na, nb] / count, self.cross[na, :nb] / count
        var_a = np.maximum(self.sq_a / count - mean_a**2, 0)
        var_b = np.maximum(self.sq_b / count - mean_b**2, 0)
        cov = self.cross[:na, :nb] / count - np.outer(mean_a, mean_b)
        sd = np.outer(np.sqrt(var_a), np.sqrt(var_b))
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where(sd > 1e-12, cov / sd, 0.0)
        return np.clip(r, -1, 1).astype(np.float32)

    def cka(self, block_a: Block, block_b: Block) -> tuple[np.ndarray, list[int], list[int]]:
        """Linear CKA over the sample between every layer of A (rows) and every layer of B
        (columns): ||X_a^T X_b||^2 / (||X_a^T X_a|| ||X_b^T X_b||), X centred per series.
        The cross products come from the pass; only each layer's own are computed here."""
        na, nb = len(self.sq_a), len(self.sq_b)
        s = self.sample_cross
        count = s[na, nb]
        centred = s[:na, :nb] - np.outer(s[:na, nb], s[na, :nb]) / count

        def own(x: torch.Tensor, sums: np.ndarray, span: tuple[int, int]) -> float:
            part, part_sums = x[span[0] : span[1]], sums[span[0] : span[1]]
            return float(np.linalg.norm((part @ part.T).double().numpy() - np.outer(part_sums, part_sums) / count))

        # the sample's sums per series are in the last column and row of its cross products
        own_a = {la: own(self.sample_a, s[:na, nb], span) for la, span in block_a.layer_spans.items()}
        own_b = {lb: own(self.sample_b, s[na, :nb], span) for lb, span in block_b.layer_spans.items()}
        out = np.zeros((len(own_a), len(own_b)))
        for i, (la, (a0, a1)) in enumerate(block_a.layer_spans.items()):
            for j, (lb, (b0, b1)) in enumerate(block_b.layer_spans.items()):
                den = own_a[la] * own_b[lb]
                out[i, j] = float((centred[a0:a1, b0:b1] ** 2).sum()) / den if den > 0 else 0.0
        return out, list(own_a), list(own_b)


def _read_chunk(store: ActivationStore, block: Block, buf: torch.Tensor, start: int, stop: int, mask) -> torch.Tensor:
    """Characters ``start:stop`` of ``block``'s series, widened into ``buf``'s first rows (a
    view of ``buf``, as many columns as characters kept: those outside a vocabulary, not
    in ``mask``, are left out)."""
    rows = len(block.rows)
    if mask is None or mask[start:stop].all():
        x = buf[:, : stop - start]
        block.widen_into(store, start, stop, x[:rows])
        return x
    keep = mask[start:stop]
    x = buf[:, : int(keep.sum())]
    x[:rows].copy_(torch.from_numpy(block.read(store, start, stop)[:, keep]))
    return x


class _Sums:
    """The running sums of :func:`cross_moments`. The products accumulate in float32 in place
    (no product matrix per chunk) and are moved into the float64 totals every FLUSH_EVERY
    chunks; the sample's characters are kept, and their products summed apart."""

    def __init__(self, na: int, nb: int, room: int):
        self.sq_a, self.sq_b = torch.zeros(na, dtype=torch.float64), torch.zeros(nb, dtype=torch.float64)
        self.cross = torch.zeros((na + 1, nb + 1), dtype=torch.float64)
        self.sample_cross = torch.zeros((na + 1, nb + 1), dtype=torch.float64)
        self.acc_sample, self.acc_rest, self.flushed = torch.zeros(na + 1, nb + 1), torch.zeros(na + 1, nb + 1), 0
        self.sample_a, self.sample_b, self.sampled = torch.empty(na + 1, room), torch.empty(nb + 1, room), 0

    def add(self, xa: torch.Tensor, xb: torch.Tensor, take: int) -> None:
        """One chunk: both sides' shifted series above a row of ones, [na + 1, width] and
        [nb + 1, width]; its first ``take`` characters join the sample."""
        na, nb = len(self.sq_a), len(self.sq_b)
        self.sq_a += torch.linalg.vector_norm(xa[:na], dim=1).double() ** 2
        self.sq_b += torch.linalg.vector_norm(xb[:nb], dim=1).double() ** 2
        self.acc_sample.addmm_(xa[:, :take], xb[:, :take].T)
        if take < xa.shape[1]:
            self.acc_rest.addmm_(xa[:, take:], xb[:, take:].T)
        self.flushed += 1
        if self.flushed == FLUSH_EVERY:
            self._flush()
        at = slice(self.sampled, self.sampled + take)
        self.sample_a[:, at], self.sample_b[:, at] = xa[:, :take], xb[:, :take]
        self.sampled += take

    def _flush(self) -> None:
        self.sample_cross.add_(self.acc_sample)
        self.cross.add_(self.acc_rest)
        self.acc_sample.zero_()
        self.acc_rest.zero_()
        self.flushed = 0

    def moments(self) -> CrossMoments:
        self._flush()
        self.cross += self.sample_cross  # the sample's characters are part of the whole
        return CrossMoments(
            self.cross.numpy(),
            self.sq_a.numpy(),
            self.sq_b.numpy(),
            self.sample_cross.numpy(),
            self.sample_a[:, : self.sampled],
            self.sample_b[:, : self.sampled],
        )


def cross_moments(
    a: ActivationStore, b: ActivationStore, block_a: Block, block_b: Block, mask: np.ndarray | None = None
) -> CrossMoments:
    """One pass over the characters in ``mask`` (all by default), chunk by chunk.

    Each side is widened from float16 into a reused float32 buffer whose last row is ones,
    and shifted; one float32 matrix product of the two buffers then gives the cross
    products and, in its last row and column, both sides' sums. The product is split at
    the chunk's CKA sample, so the sample's own cross products cost nothing extra. Sums of
    squares are one more pass; totals are float64."""
    n = len(a)
    na, nb = len(block_a.rows), len(block_b.rows)
    buf_a, buf_b = torch.empty(na + 1, CHUNK), torch.empty(nb + 1, CHUNK)
    chunks = -(-n // CHUNK)
    per_chunk = -(-CKA_CHARS // chunks)  # sample characters taken from each chunk
    sums = _Sums(na, nb, room=min(n, per_chunk * chunks))
    shift_a = shift_b = None
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        xa, xb = _read_chunk(a, block_a, buf_a, start, stop, mask), _read_chunk(b, block_b, buf_b, start, stop, mask)
        if (width := xa.shape[1]) == 0:
            continue
        if shift_a is None:
            shift_a, shift_b = xa[:na].mean(1, keepdim=True), xb[:nb].mean(1, keepdim=True)
        xa[:na].sub_(shift_a)
        xb[:nb].sub_(shift_b)
        xa[na], xb[nb] = 1.0, 1.0
        sums.add(xa, xb, min(per_chunk, width))
    return sums.moments()


def match_neurons(r: np.ndarray, ids_a: list[str], ids_b: list[str]) -> tuple[list[dict], list[dict], float]:
    """The best match in B for every neuron of A (largest |r|, sign kept), and a one-to-one
    assignment maximising the summed |r| (Hungarian) with its mean |r|."""
    strength = np.abs(r)
    best = strength.argmax(1)
    matches = [{"a": ids_a[i], "b": ids_b[j], "r": round(float(r[i, j]), 4)} for i, j in enumerate(best)]
    rows, cols = linear_sum_assignment(strength, maximize=True)
    assignment = [{"a": ids_a[i], "b": ids_b[j], "r": round(float(r[i, j]), 4)} for i, j in zip(rows, cols, strict=True)]
    return matches, assignment, float(strength[rows, cols].mean())


def best_neuron_of(b: ActivationStore, values: np.ndarray, chunk: int = 8192) -> dict:
    """The neuron of ``b``'s h and c series with the largest |Pearson r| against ``values``
    (one per character of ``b``'s text; NaN where it is not defined), sign kept: {"b", "r"}."""
    block, keep = Block.of(b), np.isfinite(values)
    x = np.where(keep, values - values[keep].mean(), 0.0)
    cross, sums, squares = (np.zeros(len(block.ids)) for _ in range(3))
    for start in range(0, len(b), chunk):
        stop = min(len(b), start + chunk)
        rows = block.read(b, start, stop, np.float64)[:, keep[start:stop]]
        cross += rows @ x[start:stop][keep[start:stop]]
        sums += rows.sum(1)
        squares += (rows**2).sum(1)
    n = int(keep.sum())
    if n < 2:
        raise LstmvizError("Fewer than two characters to compare on.")
    sd_b = np.sqrt(np.maximum(squares / n - (sums / n) ** 2, 0))
    sd_x = float(np.sqrt((x**2).sum() / n))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(sd_b * sd_x > 1e-12, cross / n / (sd_b * sd_x), 0.0)
    j = int(np.abs(r).argmax())
    return {"b": block.ids[j], "r": round(float(np.clip(r[j], -1, 1)), 4)}


def loss_difference(a: ActivationStore, b: ActivationStore, mask: np.ndarray) -> tuple[np.ndarray, dict]:
    """Per character, bits A spends on it minus bits B spends (positive: B predicts it
    better), aligned to the predicted character (NaN where either model scores nothing or
    cannot read it); and a summary with a table by character."""
    log2p_a, log2p_b = predicted_log2p(a), predicted_log2p(b)
    diff = log2p_b - log2p_a
    diff[~mask] = np.nan
    ok = np.isfinite(diff)
    if not ok.any():  # e.g. stores without predictions
        return diff, {"bpc_a": None, "bpc_b": None, "chars": 0, "b_better_fraction": None, "b_gains_most": [], "a_gains_most": []}
    bits_a, bits_b = -log2p_a[ok], -log2p_b[ok]
    chars = np.asarray(a.codepoints)[ok]
    table = (
        pd.DataFrame({"char": [chr(c) for c in chars], "gain": diff[ok]})
        .groupby("char")
        .agg(count=("gain", "size"), gain=("gain", "mean"))
        .reset_index()
    )
    table = table[table["count"] >= 20].sort_values("gain", ascending=False)
    summary = {
        "bpc_a": round(float(bits_a.mean()), 5),
        "bpc_b": round(float(bits_b.mean()), 5),
        "chars": int(ok.sum()),
        "b_better_fraction": round(float((diff[ok] > 0).mean()), 4),
        "b_gains_most": table.head(10).round(4).to_dict(orient="records"),
        "a_gains_most": table.tail(10).iloc[::-1].round(4).to_dict(orient="records"),
    }
    return diff, summary


def features_side_by_side(a: ActivationStore, b: ActivationStore) -> dict:
    """The best neuron per feature in each store (from the cached find-cells rankings)."""
    ra, rb = store_rankings(a), store_rankings(b)
    out = {}
    for name in ra:
        if name in rb and ra[name]["rows"] and rb[name]["rows"]:
            best_a, best_b = ra[name]["rows"][0], rb[name]["rows"][0]
            out[name] = {
                "metric": ra[name]["metric"],
                "a": {"neuron": best_a["neuron"], "score": best_a["score"]},
                "b": {"neuron": best_b["neuron"], "score": best_b["score"]},
            }
    return out


@dataclass
class Comparison:
    a: ActivationStore
    b: ActivationStore
    r: np.ndarray  # [neurons of A, neurons of B]
    ids_a: list[str]
    ids_b: list[str]
    cka: np.ndarray
    layers_a: list[int]
    layers_b: list[int]
    matches: list[dict]
    assignment: list[dict]
    assignment_mean_r: float
    loss_diff: np.ndarray
    loss_summary: dict
    features: dict
    dropped: dict
    _unit_matches: dict = field(default_factory=dict, repr=False)

    def best_match(self, neuron: str) -> dict:
        i = self.ids_a.index(str(NeuronId.parse(neuron)))
        return self.matches[i]

    def unit_match(self, unit: str) -> dict:
        """The best match in B for any unit A's store reads (a probe direction, a dictionary
        feature): its series over the compared characters correlated with every neuron of B,
        in one pass over B, as :func:`match_neurons` does for A's neurons."""
        if unit not in self._unit_matches:
            values = np.array(self.a.neuron(unit), dtype=np.float64)
            values[~readable_mask(self.a, self.b)[0]] = np.nan
            self._unit_matches[unit] = best_neuron_of(self.b, values)
        return {"a": unit, **self._unit_matches[unit]}

    def to_text(self, top: int = 10) -> str:
        """The comparison as plain text: CKA by layer, the ``top`` best-matched neuron pairs,
        each feature's best cell on either side, and the loss."""
        TOP.check(top)
        data = self.to_json()
        lines = [
            f"A = {data['a']['checkpoint']} ({data['a']['neurons']} h/c neurons), "
            f"B = {data['b']['checkpoint']} ({data['b']['neurons']}), on {data['chars']:,} characters"
        ]
        for label in ("a", "b"):
            if data["dropped"][label]["chars"]:
                lines.append(
                    f"  left out {data['dropped'][label]['chars']:,} characters {label.upper()} cannot read: "
                    f"{''.join(data['dropped'][label]['distinct'])!r}"
                )
        lines += ["", "linear CKA (rows: layers of A, columns: layers of B)"]
        lines += [
            f"  L{layer}  " + "  ".join(f"{v:.3f}" for v in row) for layer, row in zip(self.layers_a, data["cka"], strict=True)
        ]
        lines += ["", f"one-to-one assignment (Hungarian): mean |r| = {data['assignment_mean_r']:.3f}"]
        best = sorted(self.matches, key=lambda m: -abs(m["r"]))[:top]
        lines.append("best-matched neurons: " + ", ".join(f"{m['a']}~{m['b']} ({m['r']:+.3f})" for m in best))
        lines += ["", "best cell per feature"]
        for name, f in self.features.items():
            lines.append(
                f"  {name:<14} A {f['a']['neuron']:<10} {f['a']['score']:.3f}   B {f['b']['neuron']:<10} {f['b']['score']:.3f}"
            )
        loss = self.loss_summary
        if loss["chars"]:
            lines += [
                "",
                f"bits per character: A {loss['bpc_a']:.4f}, B {loss['bpc_b']:.4f}; "
                f"B predicts {100 * loss['b_better_fraction']:.1f}% of characters better",
            ]
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "a": {"store": str(self.a.path), "checkpoint": self.a.checkpoint.get("id"), "neurons": len(self.ids_a)},
            "b": {"store": str(self.b.path), "checkpoint": self.b.checkpoint.get("id"), "neurons": len(self.ids_b)},
            "chars": len(self.a),
            "dropped": self.dropped,
            "cka": np.round(self.cka, 4).tolist(),
            "cka_layers": {"a": self.layers_a, "b": self.layers_b},
            "matches": self.matches,
            "assignment": self.assignment,
            "assignment_mean_r": round(self.assignment_mean_r, 4),
            "features": self.features,
            "loss": self.loss_summary,
        }


def compare_stores(a: ActivationStore, b: ActivationStore, with_features: bool = True) -> Comparison:
    """Everything the ``compare`` command reports, for two stores of the same text."""
    same_text(a, b)
    mask, dropped = readable_mask(a, b)
    block_a, block_b = Block.of(a), Block.of(b)
    moments = cross_moments(a, b, block_a, block_b, None if mask.all() else mask)
    r = moments.correlations()
    cka, layers_a, layers_b = moments.cka(block_a, block_b)
    matches, assignment, mean_r = match_neurons(r, block_a.ids, block_b.ids)
    diff, summary = loss_difference(a, b, mask)
    features = features_side_by_side(a, b) if with_features else {}
    return Comparison(
        a, b, r, block_a.ids, block_b.ids, cka, layers_a, layers_b, matches, assignment, mean_r, diff, summary, features, dropped
    )


@dataclass
class Emergence:
    """When the cells appear: at each snapshot of a training run (and the final model), on
    one text, the bits per character and each feature's best cell and its score."""

    checkpoint: str | None  # the final model's id
    steps: list[int]
    bpc: list[float]
    features: dict[str, list[float]]  # feature -> the best score at each step
    neurons: dict[str, list[str | None]]  # feature -> the best cell at each step

    def to_json(self) -> dict:
        return {
            "checkpoint": self.checkpoint,
            "steps": self.steps,
            "bpc": self.bpc,
            "features": self.features,
            "neurons": self.neurons,
        }

    def to_text(self) -> str:
        names = list(self.features)
        lines = [f"{'step':>8} {'bpc':>7} " + " ".join(f"{n:>13}" for n in names)]
        for k, step in enumerate(self.steps):
            lines.append(f"{step:>8} {self.bpc[k]:>7.4f} " + " ".join(f"{self.features[n][k]:>13.3f}" for n in names))
        return "\n".join(lines)


def emergence(recordings) -> Emergence:
    """When the cells appear: from ``recordings``, (checkpoint, store) for each snapshot of
    a checkpoint and then the final model, all on the same text
    (:meth:`lstmviz.recording.one_text.OneText.snapshots`), each one's bits per character and
    the best score per feature."""
    from .evaluate import store_bpc

    out = Emergence(None, [], [], {}, {})
    for ckpt, store in recordings:
        out.checkpoint = ckpt.id  # the final model's, once all are read
        out.steps.append(int(ckpt.config.get("training", {}).get("trained_steps", 0)))
        out.bpc.append(round(store_bpc(store), 5))
        for name, r in store_rankings(store).items():
            best = r["rows"][0] if r["rows"] else {"neuron": None, "score": float("nan")}
            out.features.setdefault(name, []).append(round(best["score"], 4))
            out.neurons.setdefault(name, []).append(best["neuron"])
    return out
