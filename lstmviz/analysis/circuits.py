"""The circuit into a cell: what each of a unit's gates is made of, over chosen positions.

A gate's pre-activation at t is exactly W_ih x_t + W_hh h_{t-1} + b (PyTorch's nn.LSTM, nn.GRU,
nn.RNN): one term per unit of h_{t-1} of its own layer, one per unit of its input (the layer
below's h_t; in the first layer the character's embedding, one term per character: the
character at t gives its embedding's projection, the others nothing) and the bias. Averaged
over chosen positions the terms sum to the mean pre-activation, so "inside strings, L2.c.90's
input gate is driven by L2.h.17 (+2.3), L1.h.200 (+1.1) ..." is exact about the recorded run.
Each term is a weight times a series' sum over the positions, so a summary is one pass over
the series it reads (the layer's h and the layer below's), block by block.

Variants: a peephole gate also reads its own unit's c (i and f: c_{t-1}; o: c_t), a source of
its own; cifg has no input gate (i = 1 - f, so an i unit is driven by f's terms, negated). A
GRU's n is tanh(W_in x + b_in + r * (W_hn h + b_hn)): with r_t the unit's own reset gate
(computed here from its own terms), unit k of h_{t-1} gives r_t W_hn[j, k] h_{t-1}[k] and the
bias b_in + r_t b_hn, so the terms still sum to the pre-activation; r is a gate on those
edges, and what drives r is listed under r.

Beside the summary, a causal check in ``ablation.py``'s manner (:func:`causal_check`): the
unit's layer is rerun on the exact step path with only the unit's top-k edges cut (path
ablation through ``hook_pre_*``: its gates' pre-activations lose exactly those terms,
everything else computes as before) and, as controls, with k random edges cut instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..core.characters import name_of
from ..core.errors import LstmvizError, NeuronError
from ..core.neurons import NeuronId
from ..core.options import CONTROLS, TOP, Bounded
from ..model.checkpoint import Checkpoint
from ..model.hooks import HookCall, reader
from ..model.rnn import GATE_ORDER
from ..store.reader import ActivationStore
from ..text.corpus import Document
from ..text.lanes import LaidText
from .ablation import layers_state

LEVELS = Bounded("--levels", low=1, high=2)  # the unit's sources, and their own sources
TOP_SOURCES = 5  # sources listed per gate, and edges cut by the check
CHECK_CHARS = 10_000  # characters the causal check reruns (documents holding the positions)
CHECK_CONTROLS = 10  # random edge sets beside the top edges
BLOCK = 16_384  # positions per block of the summary's pass (float16 to float32 in cache)
BIAS = "bias"
CHAR = "char:"  # a first layer's input source: "char:" and the character's name


def driving_gates(cell: str, kind: str) -> tuple[str, ...]:
    """The gates whose pre-activations make a unit of ``kind``: all of its cell's for h and c,
    itself for a gate (cifg's i = 1 - f: f)."""
    if kind in ("h", "c"):
        return GATE_ORDER[cell]
    return ("f",) if cell == "cifg" and kind == "i" else (kind,)


@dataclass(frozen=True)
class GateRows:
    """The weights that make the gates (all of the cell's, in ``GATE_ORDER``) of ``units`` of one
    layer, as arrays [units, gates, ...]; the sources' names per term."""

    layer: int  # from 1
    units: list[int]
    gates: tuple[str, ...]
    w_rec: np.ndarray  # [U, G, hidden]: W_hh rows, on h_{t-1} of the layer
    w_in: np.ndarray  # [U, G, in]: W_ih rows on the layer below's h_t; first layer: on each character ([vocab])
    bias: np.ndarray  # [U, G]: b_ih + b_hh (GRU n: b_in)
    gated_bias: np.ndarray  # [U, G]: GRU n's b_hn, inside r * (...); 0 elsewhere
    peephole: np.ndarray  # [U, G]: the weight on the unit's own c (peephole i, f: c_{t-1}; o: c_t); 0 elsewhere
    sources: list[str]  # one name per term: h_{t-1} units, inputs, own c, bias

    @classmethod
    def of(cls, model, layer: int, units: list[int], vocab_chars: list[str]) -> GateRows:
        cfg, H = model.config, model.config.hidden_size
        order = GATE_ORDER[cfg.cell]
        weights = {k: w.detach().double().cpu().numpy() for k, w in model.layer_weights(layer - 1).items()}
        rows = np.array([[order.index(g) * H + u for g in order] for u in units], dtype=int).reshape(len(units), len(order))
        w_in = weights["weight_ih_l0"]
        if layer == 1:  # the character's embedding, projected: one term per character
            w_in = w_in @ model.embedding.weight.detach().double().cpu().numpy().T
        bias, gated = weights["bias_ih_l0"][rows] + weights["bias_hh_l0"][rows], np.zeros(rows.shape)
        if cfg.cell == "gru":  # n's b_hn sits inside r * (W_hn h + b_hn)
            n = order.index("n")
            bias[:, n], gated[:, n] = weights["bias_ih_l0"][rows[:, n]], weights["bias_hh_l0"][rows[:, n]]
        peephole = np.zeros(rows.shape)
        if cfg.cell == "peephole":
            for gate, name in (("i", "weight_ci_l0"), ("f", "weight_cf_l0"), ("o", "weight_co_l0")):
                peephole[:, order.index(gate)] = weights[name][units]
        inputs = [CHAR + name_of(c) for c in vocab_chars] if layer == 1 else [str(NeuronId(layer - 1, "h", k)) for k in range(H)]
        recurrent = [str(NeuronId(layer, "h", k)) for k in range(H)]
        own_c = ["own c"] if cfg.cell == "peephole" else []
        sources = recurrent + inputs + own_c + [BIAS]
        return cls(layer, list(units), order, weights["weight_hh_l0"][rows], w_in[rows], bias, gated, peephole, sources)


@dataclass(frozen=True)
class Selection:
    """The positions a summary is over, and how they were chosen."""

    label: str  # "in_string", "characters 100:200", "the whole text"
    positions: np.ndarray  # sorted positions of the store

    @classmethod
    def of_store(cls, store: ActivationStore, feature: str | None = None, char_range: tuple[int, int] | None = None):
        """A binary feature's positions, a character range, or (neither) the whole text."""
        if feature is not None and char_range is not None:
            raise LstmvizError("Give a feature or a character range, not both.")
        if feature is not None:
            from ..text.features import store_features

            feats = store_features(store, names=[feature])
            if not feats.is_binary(feature):
                raise LstmvizError(f"Feature {feature!r} is not binary (on or off per character); choose a binary one.")
            return cls(feature, np.flatnonzero(feats[feature]))
        if char_range is not None:
            return cls(f"characters {char_range[0]}:{char_range[1]}", np.arange(*char_range))
        return cls("the whole text", np.arange(len(store)))

    def shifted_back(self, store: ActivationStore) -> Selection:
        """The positions one step earlier, within each document (where h_{t-1} was made)."""
        starts = np.array([d.start for d in store.documents])
        kept = self.positions[~np.isin(self.positions, starts)]
        return Selection(f"{self.label}, one step earlier", kept - 1)


# -- the summary's pass: sums of each series over the positions, block by block ----------------


@dataclass
class Sums:
    """Over the chosen positions (``count``): the sums every term is a weight times, and how far
    the pre-activations recomputed from them are from what the store recorded (``errors``:
    series -> largest difference). Only a GRU's are per unit and gate (its r weighs n's
    recurrent terms); every other cell's are the same for every unit of the layer."""

    h_prev: np.ndarray  # [hidden], a GRU's [U, G, hidden]: sum of m_t h_{t-1} (m: r_t on a GRU's n, else 1)
    inputs: np.ndarray  # [in]: sum of x_t (first layer: each character's count)
    own_c: np.ndarray  # [U, G]: sum of the c a peephole gate reads
    gate_mult: np.ndarray | float  # a GRU's [U, G]: sum of m_t; the count elsewhere
    count: int = 0
    errors: dict[str, float] = field(default_factory=dict)


def _window(store: ActivationStore, neurons: list[NeuronId], start: int, stop: int) -> np.ndarray | None:
    """The neurons' values over [start, stop), or None where the store did not record them."""
    try:
        return store.window(neurons, start, stop)
    except NeuronError:
        return None


class BlockReads:
    """The series a pass reads over one block of characters [start, stop), each read (and made
    float32) once however many groups of units ask for it."""

    def __init__(self, store: ActivationStore):
        self.store, self.span, self.read = store, (0, 0), {}

    def at(self, start: int, stop: int) -> None:
        if (start, stop) != self.span:
            self.span, self.read = (start, stop), {}

    def layer_h(self, layer: int) -> np.ndarray:
        """The whole of L{layer}.h over the block [hidden, n], from its float16 rows in one slice
        (torch converts float16 several times faster than numpy)."""
        if layer not in self.read:
            try:
                block = self.store.series_block(layer, "h")
            except LstmvizError:
                raise NeuronError(f"The store holds no L{layer}.h: record it with h, which the circuit reads.") from None
            half = np.ascontiguousarray(block[:, self.span[0] : self.span[1]])
            self.read[layer] = torch.from_numpy(half).float().numpy()
        return self.read[layer]

    def units(self, layer: int, kind: str, units: list[int]) -> np.ndarray | None:
        """Some units of one series over the block, or None where the store did not record them."""
        key = (layer, kind, tuple(units))
        if key not in self.read:
            self.read[key] = _window(self.store, [NeuronId(layer, kind, u) for u in units], *self.span)
        return self.read[key]


def _block_inputs(reads: BlockReads, rows: GateRows, a: int, has_prev: np.ndarray, ids) -> dict[str, np.ndarray]:
    """What the gates of ``rows`` read at every position of [a, b) (``reads`` holds [a - 1, b),
    or [0, b) at the text's start): h_{t-1} [hidden, n] (as recorded one step earlier:
    ``has_prev`` is 0 where a document starts, and the terms are multiplied by it), the input
    [in, n] (first layer: the character ids [n]), the layer's h at t, and the units' own c at
    t-1 (0 where a document starts) and t, where recorded. Slices of one read per series: no
    copy per position."""
    L, H = rows.layer, rows.w_rec.shape[-1]
    a0, b = reads.span
    block = reads.layer_h(L)
    before = block[:, :-1] if a0 < a else np.concatenate([np.zeros((H, 1), np.float32), block[:, :-1]], 1)
    out = {"h_prev": before, "h_now": block[:, a - a0 :]}
    out["x"] = ids[a:b] if L == 1 else reads.layer_h(L - 1)[:, a - a0 :]
    c = reads.units(L, "c", rows.units) if rows.units else None
    if c is not None:
        c_prev = c[:, :-1] if a0 < a else np.concatenate([np.zeros((len(rows.units), 1), np.float32), c[:, :-1]], 1)
        out["c_prev"], out["c_now"] = c_prev * has_prev, c[:, a - a0 :]
    return out


def _pre_activations(rows: GateRows, cell: str, got: dict, has_prev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every gate's pre-activation [U, G, n] from its terms, and m [U, G, n], the factor on its
    recurrent terms (a GRU's r on n; else 1)."""
    U, G, H = rows.w_rec.shape
    n = got["h_prev"].shape[1]
    recurrent = (rows.w_rec.reshape(U * G, H).astype(np.float32) @ got["h_prev"]).reshape(U, G, n) * has_prev
    if rows.layer == 1:
        given = rows.w_in[:, :, got["x"]]
    else:
        given = (rows.w_in.reshape(U * G, -1).astype(np.float32) @ got["x"]).reshape(U, G, n)
    pre = given + rows.bias[..., None]
    if cell == "peephole":
        o = rows.gates.index("o")
        own = np.repeat(got["c_prev"][:, None], G, axis=1)
        own[:, o] = got["c_now"]
        pre += rows.peephole[..., None] * own
    mult = np.ones((U, G, n), dtype=np.float32)
    if cell == "gru":
        r, gate_n = rows.gates.index("r"), rows.gates.index("n")
        mult[:, gate_n] = _sigmoid(pre[:, r] + recurrent[:, r])
    pre += mult * (recurrent + rows.gated_bias[..., None])
    return pre, mult


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def _activated(cell: str, gate: str, pre: np.ndarray) -> np.ndarray:
    return np.tanh(pre) if gate in ("g", "n") or cell == "rnn" else _sigmoid(pre)


def _recorded_errors(store, rows: GateRows, cell: str, span: tuple[int, int], chosen, pre, got: dict) -> dict[str, float]:
    """How far the gates (and the state they make) recomputed from their terms are from the
    series the store recorded, at the ``chosen`` positions (a mask) of ``span``, per series
    recorded: the largest difference."""
    errors, L = {}, rows.layer
    values = {g: _activated(cell, g, pre[:, k, chosen]) for k, g in enumerate(rows.gates)}
    for gate, value in values.items():
        recorded = _window(store, [NeuronId(L, gate, u) for u in rows.units], *span)
        if recorded is not None and gate != "h":
            errors[f"L{L}.{gate}"] = float(np.abs(value - recorded[:, chosen]).max())
    h_prev, h_now = got["h_prev"][rows.units][:, chosen] * got["has_prev"][chosen], got["h_now"][rows.units][:, chosen]
    if cell in ("lstm", "peephole", "cifg") and "c_now" in got:
        i = 1 - values["f"] if cell == "cifg" else values["i"]
        made = values["f"] * got["c_prev"][:, chosen] + i * values["g"]
        errors[f"L{L}.c"] = float(np.abs(made - got["c_now"][:, chosen]).max())
    elif cell == "gru":
        made = (1 - values["z"]) * values["n"] + values["z"] * h_prev
        errors[f"L{L}.h"] = float(np.abs(made - h_now).max())
    elif cell == "rnn":
        errors[f"L{L}.h"] = float(np.abs(values["h"] - h_now).max())
    return errors


def summed(store: ActivationStore, rows: GateRows, cell: str, positions: np.ndarray, ids=None, check: bool = False) -> Sums:
    """The sums over ``positions`` (sorted) that make every term of ``rows``' gates (see
    :func:`summed_together`). ``ids``: the text's character ids (first layer). ``check``: also
    compare with the recorded series."""
    return summed_together(store, [(rows, positions)], cell, ids, check)[0]


def summed_together(store: ActivationStore, groups: list[tuple[GateRows, np.ndarray]], cell: str, ids=None, check=False):
    """One pass over the series the ``groups`` (rows, sorted positions) read, from the first
    chosen position to the last in blocks of ``BLOCK``, each series read once per block for all
    of them: per group, the sums over its positions that make every term (each block's terms
    weighted by whether a position is chosen)."""
    every = [_empty_sums(rows, cell) for rows, _ in groups]
    chosen = [_indicator(len(store), positions) for _, positions in groups]
    starts = _indicator(len(store), np.array([d.start for d in store.documents]))
    spans = [(int(p[0]), int(p[-1]) + 1) for _, p in groups if len(p)]
    first, last = min((s for s, _ in spans), default=0), max((e for _, e in spans), default=0)
    reads = BlockReads(store)
    for a in range(first, last, BLOCK):
        b = min(a + BLOCK, last)
        has_prev = 1 - starts[a:b]
        for (rows, _), mask, sums in zip(groups, chosen, every, strict=True):
            if mask[a:b].any():
                reads.at(max(a - 1, 0), b)
                _add_block(rows, cell, reads, (a, b), mask[a:b], has_prev, ids, sums, check)
    return every


def _empty_sums(rows: GateRows, cell: str) -> Sums:
    U, G, H = rows.w_rec.shape
    if cell == "gru":
        return Sums(np.zeros((U, G, H)), np.zeros(rows.w_in.shape[-1]), np.zeros((U, G)), np.zeros((U, G)))
    return Sums(np.zeros(H), np.zeros(rows.w_in.shape[-1]), np.zeros((U, G)), 0.0)


def _indicator(n: int, where: np.ndarray) -> np.ndarray:
    """1 at ``where`` among n positions (and one past the end), else 0: float32."""
    out = np.zeros(n + 1, dtype=np.float32)
    out[where] = 1
    return out


def _add_block(rows: GateRows, cell: str, reads: BlockReads, span, m, has_prev, ids, sums: Sums, check: bool) -> None:
    """Add one block's chosen positions (``m``) to ``sums``."""
    U, G, H = rows.w_rec.shape
    got = _block_inputs(reads, rows, span[0], has_prev, ids) | {"has_prev": has_prev}
    # the pre-activations are only needed for a GRU's r (on n's recurrent terms) and the check
    check = check and bool(rows.units)  # a group of no units sums only what every unit shares
    pre, mult = _pre_activations(rows, cell, got, has_prev) if check or cell == "gru" else (None, None)
    if cell != "gru":  # every recurrent term of every unit and gate weighs h_{t-1} alike: one product
        sums.h_prev += got["h_prev"] @ (m * has_prev)
        sums.gate_mult += m.sum()
    else:  # [hidden, n] @ [n, U*G]: the long axis inside (BLAS is slow on [U*G, n] @ [n, hidden])
        sums.h_prev += (got["h_prev"] @ (mult * (m * has_prev)).reshape(U * G, -1).T).T.reshape(U, G, H)
        sums.gate_mult += (mult * m).sum(-1)
    if rows.layer == 1:
        sums.inputs += np.bincount(got["x"], weights=m, minlength=len(sums.inputs))
    else:
        sums.inputs += got["x"] @ m
    if cell == "peephole":
        o = rows.gates.index("o")
        sums.own_c += (got["c_prev"] @ m)[:, None]
        sums.own_c[:, o] += got["c_now"] @ m - got["c_prev"] @ m
    sums.count += int(m.sum())
    if check:
        for name, error in _recorded_errors(reads.store, rows, cell, span, m > 0, pre, got).items():
            sums.errors[name] = max(error, sums.errors.get(name, 0.0))


def mean_terms(rows: GateRows, sums: Sums) -> np.ndarray:
    """Each source's mean term [U, G, sources] (``rows.sources``): they sum to the mean
    pre-activation of each unit's gate over the positions."""
    n = max(sums.count, 1)
    parts = [rows.w_rec * sums.h_prev, rows.w_in * sums.inputs]
    if rows.sources[-2] == "own c":
        parts.append((rows.peephole * sums.own_c)[..., None])
    parts.append((rows.bias * sums.count + rows.gated_bias * sums.gate_mult)[..., None])
    return np.concatenate(parts, -1) / n


# -- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """One edge into a unit: its gate, the source, and the source's mean term there."""

    gate: str
    source: str
    contribution: float

    def to_json(self) -> dict:
        return {"source": self.source, "contribution": round(self.contribution, 5)}


@dataclass
class UnitCircuit:
    """One unit's gates over the chosen positions: each source's mean term (summing, with the
    bias, to the gate's mean pre-activation)."""

    neuron: NeuronId
    positions: int
    sources: list[str]
    terms: dict[str, np.ndarray]  # gate -> [sources] mean terms

    def pre_activation(self, gate: str) -> float:
        return float(self.terms[gate].sum())

    def top(self, gate: str, k: int) -> list[Term]:
        """The ``k`` sources with the largest terms (by size) into ``gate``, the bias left out."""
        terms = self.terms[gate][:-1]
        return [Term(gate, self.sources[s], float(terms[s])) for s in np.argsort(-np.abs(terms), kind="stable")[:k]]

    def top_edges(self, k: int) -> list[Term]:
        """The ``k`` largest terms over all the unit's gates."""
        every = [t for gate in self.terms for t in self.top(gate, k)]
        return sorted(every, key=lambda t: -abs(t.contribution))[:k]

    def to_json(self, k: int) -> dict:
        return {
            "neuron": str(self.neuron),
            "positions": self.positions,
            "gates": {g: [t.to_json() for t in self.top(g, k)] for g in self.terms},
            "bias": {g: round(float(v[-1]), 5) for g, v in self.terms.items()},
            "pre_activation": {g: round(self.pre_activation(g), 5) for g in self.terms},
        }


@dataclass
class CausalCheck:
    """The unit's change when its top-k edges are cut, beside k random edges cut (controls):
    the mean |unit cut - unit| over the chosen positions the check ran on."""

    edges: list[Term]
    change: float
    controls: np.ndarray
    chars: int  # characters rerun
    positions: int  # chosen positions among them

    def to_json(self) -> dict:
        controls = self.controls
        return {
            "top_k": len(self.edges),
            "edges": [{"gate": t.gate, "source": t.source} for t in self.edges],
            "change": round(self.change, 6),
            "control_mean": round(float(controls.mean()), 6) if len(controls) else None,
            "control_sd": round(float(controls.std(ddof=1)), 6) if len(controls) > 1 else None,
            "controls_as_large": int((controls >= self.change).sum()),
            "controls": len(controls),
            "chars": self.chars,
            "positions": self.positions,
        }


@dataclass
class Circuit:
    """What drives a unit over a selection, two levels back, with the causal check."""

    unit: UnitCircuit
    selection: str
    top_k: int
    recorded_error: dict[str, float]  # series -> largest |recomputed - recorded| (float16 rounding)
    sources: dict[str, UnitCircuit]  # the top sources' own circuits (second level)
    check: CausalCheck | None

    @property
    def neuron(self) -> NeuronId:
        return self.unit.neuron

    def to_json(self) -> dict:
        data = self.unit.to_json(self.top_k)
        data |= {
            "selection": self.selection,
            "recorded_error": {k: round(v, 6) for k, v in self.recorded_error.items()},
            "sources": {name: unit.to_json(self.top_k) for name, unit in self.sources.items()},
            "check": None if self.check is None else self.check.to_json(),
        }
        return data

    def to_text(self) -> str:
        u = self.unit
        lines = [f"{u.neuron} over {self.selection} ({u.positions:,} positions): mean term of each source in each gate"]
        for gate in u.terms:
            listed = ", ".join(f"{t.source} ({t.contribution:+.3f})" for t in u.top(gate, self.top_k))
            lines.append(f"  {gate}: {u.pre_activation(gate):+.3f} = bias {u.terms[gate][-1]:+.3f} + {listed} + ...")
        for name, source in self.sources.items():
            edges = ", ".join(f"{t.source} via {t.gate} ({t.contribution:+.3f})" for t in source.top_edges(self.top_k))
            lines.append(f"    {name} <- {edges}")
        if self.recorded_error:
            shown = ", ".join(f"{k} {v:.2g}" for k, v in self.recorded_error.items())
            lines.append(f"recomputed from the terms, against the recording (largest difference): {shown}")
        if self.check is not None:
            lines.append(check_line(self.check.to_json()))
        return "\n".join(lines)


def check_line(c: dict) -> str:
    """The causal check (``CausalCheck.to_json``) in one line."""
    line = f"cutting its top {c['top_k']} edges changes it by {c['change']:.4f} on average"
    if c["controls"]:
        sd = f" +- {c['control_sd']:.4f}" if c["control_sd"] is not None else ""
        line += f"; {c['controls']} sets of {c['top_k']} random edges: {c['control_mean']:.4f}{sd}"
        line += f" ({c['controls_as_large']} as large)"
    return line + f" ({c['positions']:,} positions in {c['chars']:,} characters rerun)"


# -- the summary, two levels back ----------------------------------------------------------------


def unit_circuits(ckpt: Checkpoint, store: ActivationStore, neurons: list[NeuronId], positions: np.ndarray, ids, check=False):
    """The circuits of ``neurons`` (all of one layer) over ``positions``, from one pass; and,
    with ``check``, how far the recomputed gates are from the recorded ones."""
    ((circuits, errors),) = circuits_together(ckpt, store, [(neurons, positions)], ids, check)
    return circuits, errors


def circuits_together(
    ckpt: Checkpoint, store: ActivationStore, groups: list[tuple[list[NeuronId], np.ndarray]], ids, check=False
):
    """Per group (units of one layer, positions): the units' circuits and the recorded errors,
    every group from the same pass over the series (:func:`summed_together`)."""
    cell = ckpt.model_config.cell
    rows = [GateRows.of(ckpt.model, neurons[0].layer, [n.index for n in neurons], ckpt.vocab.chars) for neurons, _ in groups]
    found = summed_together(store, [(r, p) for r, (_, p) in zip(rows, groups, strict=True)], cell, ids, check)
    return [(_circuits(r, sums, neurons, cell), sums.errors) for r, (neurons, _), sums in zip(rows, groups, found, strict=True)]


def _circuits(rows: GateRows, sums: Sums, neurons: list[NeuronId], cell: str) -> list[UnitCircuit]:
    terms = mean_terms(rows, sums)
    return [
        UnitCircuit(n, sums.count, rows.sources, {g: terms[u, rows.gates.index(g)] for g in driving_gates(cell, n.kind)})
        for u, n in enumerate(neurons)
    ]


def _as_neuron(source: str) -> NeuronId | None:
    try:
        return NeuronId.parse(source)
    except NeuronError:
        return None


def source_positions(store: ActivationStore, neuron: NeuronId, selection: Selection) -> dict[int, np.ndarray]:
    """Where the unit's sources feed it, per layer of units: its own layer's h one step earlier,
    the layer below's at the same positions (a first layer's input is the characters)."""
    where = {neuron.layer: selection.shifted_back(store).positions}
    return where | ({neuron.layer - 1: selection.positions} if neuron.layer > 1 else {})


def second_level(ckpt, store, unit: UnitCircuit, where: dict[int, np.ndarray], ids, k: int, ready=None) -> dict[str, UnitCircuit]:
    """The circuits of the units among ``unit``'s top ``k`` edges, each over the positions where
    it feeds the unit (``where``: :func:`source_positions`); a layer whose sums are ``ready``
    (layer -> Sums of no units: what every unit of it shares) is not read again."""
    found = [n for n in (_as_neuron(t.source) for t in unit.top_edges(k)) if n is not None]
    ready, cell, out = ready or {}, ckpt.model_config.cell, {}
    groups = [(layer, list(dict.fromkeys(n for n in found if n.layer == layer))) for layer in where]
    for layer, group in groups:
        if group and layer in ready:
            rows = GateRows.of(ckpt.model, layer, [n.index for n in group], ckpt.vocab.chars)
            out |= {str(c.neuron): c for c in _circuits(rows, ready[layer], group, cell)}
    unread = [(group, where[layer]) for layer, group in groups if group and layer not in ready]
    out |= {str(c.neuron): c for circuits, _ in circuits_together(ckpt, store, unread, ids) for c in circuits}
    return {str(n): out[str(n)] for n in dict.fromkeys(found)}


def two_levels(ckpt: Checkpoint, store: ActivationStore, neuron: NeuronId, selection: Selection, ids, k: int, levels: int = 2):
    """The unit's circuit, how far its recomputed gates are from the recorded ones, and (with
    ``levels`` 2) its top ``k`` sources' own circuits. Where every unit of a layer shares its
    sums (all cells but the GRU and the peephole) both levels come from one pass: the sources'
    layers are summed beside the unit before its top sources are known."""
    cell = ckpt.model_config.cell
    rows = GateRows.of(ckpt.model, neuron.layer, [neuron.index], ckpt.vocab.chars)
    where = source_positions(store, neuron, selection) if levels == 2 else {}
    ahead = {} if cell in ("gru", "peephole") else where
    layers = [(GateRows.of(ckpt.model, layer, [], ckpt.vocab.chars), p) for layer, p in ahead.items()]
    sums = summed_together(store, [(rows, selection.positions), *layers], cell, ids, check=True)
    (unit,) = _circuits(rows, sums[0], [neuron], cell)
    sources = second_level(ckpt, store, unit, where, ids, k, dict(zip(ahead, sums[1:], strict=True))) if levels == 2 else {}
    return unit, sums[0].errors, sources


def circuit(
    ckpt: Checkpoint,
    store: ActivationStore,
    neuron,
    selection: Selection | None = None,
    top: int = TOP_SOURCES,
    levels: int = 2,
    controls: int = CHECK_CONTROLS,
    check_chars: int = CHECK_CHARS,
    seed: int = 0,
    on_progress=None,
) -> Circuit:
    """What drives ``neuron`` over ``selection`` (default: the store's whole text): each
    gate's mean terms from the recorded series and the weights, the top sources' own (with
    ``levels`` 2), and the causal check on up to ``check_chars`` characters.
    ``on_progress(fraction, message)`` is told as each part starts."""
    say = on_progress or (lambda fraction, message: None)
    model = ckpt.model
    if model.config.bidirectional:
        raise LstmvizError("A bidirectional tagger's circuit is not read here: its backward direction has no step before.")
    n = model.check_neuron(neuron)
    TOP.check(top), LEVELS.check(levels), CONTROLS.check(controls)
    if store.checkpoint.get("content_hash") != ckpt.content_hash:
        raise LstmvizError(f"The store {store.name} was not recorded from {ckpt.name}: give the checkpoint it was recorded from.")
    selection = selection or Selection.of_store(store)
    if not len(selection.positions):
        raise LstmvizError(f"No position is chosen ({selection.label} holds nowhere in this text): there is nothing to sum.")
    ids = ckpt.vocab.encode_array(store.text())
    say(0.0, f"summing the terms of {n} and its sources over {len(selection.positions):,} positions")
    unit, errors, sources = two_levels(ckpt, store, n, selection, ids, top, levels)
    say(0.5, f"cutting its top {top} edges, and {controls} sets of random ones")
    check = causal_check(ckpt, store, unit, selection, top, controls, check_chars, seed)
    return Circuit(unit, selection.label, top, errors, sources, check)


# -- the causal check: path ablation of chosen edges -----------------------------------------------


class EdgeCuts:
    """Hooks on a unit's gate pre-activations (``hook_pre_*``) that take out the terms of chosen
    edges, a different set of edges in each copy of the batch (row = set * lanes + lane): the
    term is the weight times the source's value in this run (h_{t-1}, x_t, the unit's own c;
    r_t on a GRU's n), so exactly that edge carries nothing."""

    def __init__(self, rows: GateRows, cell: str, sets: list[list[Term]]):
        self.rows, self.cell, self.sets, self.ids = rows, cell, len(sets), None
        H, index = rows.w_rec.shape[-1], {s: k for k, s in enumerate(rows.sources)}
        self.cut: dict[str, np.ndarray] = {}  # gate -> [sets, sources] weight of each cut edge
        for r, edges in enumerate(sets):
            for t in edges:
                g = rows.gates.index(t.gate)
                weights = np.concatenate([rows.w_rec[0, g], rows.w_in[0, g], rows.peephole[0, g : g + 1]])
                s = index[t.source]
                self.cut.setdefault(t.gate, np.zeros((len(sets), len(rows.sources))))[r, s] = weights[s]
        self.split = (H, H + rows.w_in.shape[-1])

    def hooks(self, ids: torch.Tensor) -> dict[str, list]:
        """The hooks for a chunk of character ids [lanes, time] (a first layer's input)."""
        self.ids = ids
        layer = self.rows.layer - 1
        return {f"layers.{layer}.hook_pre_{gate}": [self._hook(gate, cut)] for gate, cut in self.cut.items()}

    def _hook(self, gate: str, cut: np.ndarray):
        a, b = self.split
        j, R = self.rows.units[0], self.sets
        recurrent, given = torch.tensor(cut[:, :a], dtype=torch.float32), torch.tensor(cut[:, a:b], dtype=torch.float32)
        own = torch.tensor(cut[:, b] if cut.shape[1] > b + 1 else np.zeros(R), dtype=torch.float32)

        def take_out(pre: torch.Tensor, hook: HookCall) -> torch.Tensor:
            n, inputs = pre.shape[0] // R, hook.inputs
            delta = (inputs["h"].view(R, n, -1) * recurrent[:, None]).sum(-1)
            if self.cell == "gru" and gate == "n":
                delta = delta * inputs["r"][:, j].view(R, n)
            if self.rows.layer == 1:
                delta += given[:, self.ids[:, hook.positions.start]]
            else:
                delta += (inputs["x"].view(R, n, -1) * given[:, None]).sum(-1)
            if "c" in inputs:
                delta += own[:, None] * inputs["c"][:, j].view(R, n)
            out = pre.clone()
            out[:, 0, j] -= delta.reshape(-1)
            return out

        return take_out


@torch.no_grad()
def path_ablated(ckpt: Checkpoint, docs: list[Document], neuron: NeuronId, sets: list[list[Term]], lanes: int = 16):
    """The unit's value [sets, chars] over ``docs`` (each from a zero state) with each set's
    edges cut (an empty set: as the model computes it). The layers below run once; the unit's
    layer runs on the exact step path for every set at once, a copy of the batch each."""
    model, R, layer0 = ckpt.model, len(sets), neuron.layer - 1
    laid = LaidText.of(docs, ckpt.vocab, lanes)
    cuts = EdgeCuts(GateRows.of(model, neuron.layer, [neuron.index], ckpt.vocab.chars), ckpt.model_config.cell, sets)
    below, at, seen = range(layer0), range(layer0, layer0 + 1), {}

    @reader
    def keep(x: torch.Tensor, hook: HookCall) -> None:
        seen["value"] = x[..., neuron.index]

    def forward(chunk, state):
        (state_below, state_at), x = state, model.embedding(chunk.ids)
        if layer0:
            x, state_below = model.run_layers(x, state_below, chunk.keep, layers=below)
        hooks = cuts.hooks(chunk.ids) | {neuron.hook_name: [keep]}
        _, state_at = model.run_layers(x.repeat(R, 1, 1), state_at, chunk.keep.repeat(R, 1), hooks, layers=at)
        return seen.pop("value").reshape(R, len(chunk.rows), -1), (state_below, state_at)

    state = (layers_state(model.initial_state(laid.lanes), below), layers_state(model.initial_state(R * laid.lanes), at))
    out = np.full((R, len(laid.text)), np.nan)
    for chunk, values, _ in laid.run(laid.chunks(64), forward, state):
        for r in range(R):
            out[r, chunk.pos[chunk.valid]] = values[r].numpy()[chunk.valid]
    return out


def check_text(store: ActivationStore, selection: Selection, chars: int) -> tuple[list[Document], np.ndarray]:
    """The documents holding chosen positions, in order, about ``chars`` characters in all (the
    first reaching at least its first chosen position), and where the chosen positions lie in them."""
    chosen = np.zeros(len(store), dtype=bool)
    chosen[selection.positions] = True
    docs, mask, total = [], [], 0
    for d in store.documents:
        if total >= chars:
            break
        where = np.flatnonzero(chosen[d.start : d.stop])
        if not len(where):
            continue
        stop = d.start + max(min(d.stop - d.start, chars - total), int(where[0]) + 1)
        docs.append(Document(d.name, store.text(d.start, stop)))
        mask.append(chosen[d.start : stop])
        total += stop - d.start
    return docs, np.concatenate(mask)


def causal_check(ckpt, store, unit: UnitCircuit, selection: Selection, k: int, controls: int, chars: int, seed: int = 0):
    """Cut the unit's top ``k`` edges, and ``controls`` sets of ``k`` random other edges into
    its gates (bias aside), over the first ``chars`` characters of the documents holding the
    positions: the unit's mean absolute change at those positions, each way."""
    edges = unit.top_edges(k)
    taken = {(t.gate, t.source) for t in edges}
    pool = [Term(g, s, 0.0) for g in unit.terms for s in unit.sources[:-1] if (g, s) not in taken]
    if controls and len(pool) < len(edges):
        raise LstmvizError(f"{unit.neuron} has too few other edges to draw {len(edges)} for a control; give a smaller --top.")
    rng = np.random.default_rng(seed)
    sets = [[], edges] + [[pool[i] for i in sorted(rng.choice(len(pool), len(edges), replace=False))] for _ in range(controls)]
    docs, mask = check_text(store, selection, chars)
    values = path_ablated(ckpt, docs, unit.neuron, sets)[:, mask]
    change = np.abs(values[1:] - values[0]).mean(1)
    return CausalCheck(edges, float(change[0]), change[1:], len(mask), int(mask.sum()))


def model_and_store(source, before_recording=None) -> tuple[Checkpoint, ActivationStore]:
    """The checkpoint and the store a circuit reads: a store and the checkpoint it was recorded
    from, or a checkpoint and its test split recorded (h and c, cached: once;
    ``before_recording(ckpt, chars)`` is called first)."""
    from ..model.checkpoint import CONFIG_FILE, load_checkpoint, recorded_path
    from ..recording.one_text import evaluation_documents
    from ..recording.sources import COMPARED_KINDS, open_source, recorded

    opened = source if isinstance(source, ActivationStore | Checkpoint) else open_source(source)
    if isinstance(opened, ActivationStore):
        path = recorded_path(opened.checkpoint)
        if not opened.checkpoint.get("path") or not (path / CONFIG_FILE).is_file():
            named = opened.checkpoint.get("path") or "none"
            raise LstmvizError(f"The store {opened.name} names no checkpoint that is still there ({named}); give the checkpoint.")
        return load_checkpoint(path), opened
    docs = evaluation_documents(opened)
    if before_recording is not None:
        before_recording(opened, sum(len(d.text) for d in docs))
    return opened, recorded(opened, docs, kinds=COMPARED_KINDS, progress=False)
