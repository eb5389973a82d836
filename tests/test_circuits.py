"""The circuit into a cell: each gate's pre-activation split into one term per source. On
models with planted weights the top sources are the planted ones with the terms computed by
hand; for every cell type the terms sum to the pre-activation the exact step path computes
(read at its ``hook_pre_*`` point); cutting edges (path ablation) equals an independent step
loop that takes the terms out by hand; the causal check finds planted edges matter more than
random ones; bad input is one sentence."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from lstmviz.analysis.circuits import Selection, Term, circuit, path_ablated, unit_circuits
from lstmviz.core.characters import name_of
from lstmviz.core.errors import LstmvizError, NeuronError
from lstmviz.core.neurons import NeuronId, hook_name
from lstmviz.model.checkpoint import load_checkpoint, save_checkpoint
from lstmviz.model.rnn import CELLS, GATE_ORDER, CharRNN, ModelConfig
from lstmviz.recording.recorder import record_activations
from lstmviz.text.corpus import Document, Vocab

DOCS = [
    Document("a.py", "x = \"ab\"  # note\nif x:\n    y = 'c'\n"),
    Document("b.py", "def f(a):\n    return a + 'q'  # done\n"),
]
VOCAB = Vocab("".join(d.text for d in DOCS))
HIDDEN = 8
UNIT, FROM_OWN, FROM_BELOW = 3, 5, 1  # the planted unit of layer 2 reads L2.h.5 and L1.h.1
OWN_WEIGHT, BELOW_WEIGHT, BIAS = 2.0, -1.5, 0.5


def _checkpoint(tmp_path, cell: str, planted: bool = True, seed: int = 0):
    """A 2-layer model of ``cell``; ``planted``: small random weights, and the first gate of
    L2 unit ``UNIT`` reading only L2.h.``FROM_OWN`` and L1.h.``FROM_BELOW``, with bias ``BIAS``."""
    torch.manual_seed(seed)
    model = CharRNN(ModelConfig(vocab_size=len(VOCAB), cell=cell, num_layers=2, hidden_size=HIDDEN, embed_dim=4)).eval()
    if planted:
        with torch.no_grad():
            for p in model.rnn.parameters():
                p.mul_(0.3)
            row = UNIT  # the first gate's rows come first in every layout
            model.rnn.weight_hh_l1[row] = 0
            model.rnn.weight_hh_l1[row, FROM_OWN] = OWN_WEIGHT
            model.rnn.weight_ih_l1[row] = 0
            model.rnn.weight_ih_l1[row, FROM_BELOW] = BELOW_WEIGHT
            model.rnn.bias_ih_l1[row], model.rnn.bias_hh_l1[row] = BIAS / 2, BIAS / 2
    path = save_checkpoint(tmp_path / cell, model, VOCAB, corpus={"sources": ["test"]}, training={"seed": seed})
    return load_checkpoint(path)


def _exact_store(ckpt):
    """The model recorded on ``DOCS`` (one lane), holding the float32 values of an exact run
    instead of float16 ones, so sums can be held to float32 rounding."""
    store = record_activations(ckpt, DOCS, None, lanes=1, progress=False)
    values = np.zeros((store.rows, len(store)), dtype=np.float32)
    for doc in store.documents:
        ids = torch.tensor([ckpt.vocab.encode(store.text(doc.start, doc.stop))])
        _, cache = ckpt.model.run_with_cache(ids)
        for s in store.series:
            values[s.row : s.row + s.units, doc.start : doc.stop] = cache[hook_name(s.layer - 1, s.kind)][0].T.numpy()
    store._arrays["activations.f16"] = values
    store.__dict__.pop("activations", None)
    return store


def _series(store, layer: int, kind: str) -> np.ndarray:
    return store.window([NeuronId(layer, kind, k) for k in range(HIDDEN)])


def _previous(store, values: np.ndarray) -> np.ndarray:
    """values [units, chars] one step later: h_{t-1} at t, 0 where a document starts."""
    out = np.zeros_like(values)
    out[:, 1:] = values[:, :-1]
    out[:, [d.start for d in store.documents]] = 0
    return out


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "peephole"])
def test_the_planted_sources_lead_with_the_terms_computed_by_hand(tmp_path, cell):
    ckpt = _checkpoint(tmp_path, cell)
    store = _exact_store(ckpt)
    gate = GATE_ORDER[cell][0]
    inside = Selection.of_store(store, "in_string")
    (unit,), _ = unit_circuits(ckpt, store, [NeuronId(2, gate, UNIT)], inside.positions, None)
    own = _previous(store, _series(store, 2, "h"))[FROM_OWN, inside.positions].mean(dtype=np.float64)
    below = _series(store, 1, "h")[FROM_BELOW, inside.positions].mean(dtype=np.float64)
    expected = {f"L2.h.{FROM_OWN}": OWN_WEIGHT * own, f"L1.h.{FROM_BELOW}": BELOW_WEIGHT * below}
    top = unit.top(gate, 2)
    assert {t.source: pytest.approx(expected[t.source], rel=1e-5) for t in top} == expected
    assert unit.terms[gate][-1] == pytest.approx(BIAS)
    others = [v for s, v in zip(unit.sources, unit.terms[gate], strict=True) if s not in expected and s != "bias"]
    assert np.abs(others).max() < 1e-6 if cell != "peephole" else True  # a peephole gate also reads its own c


def _pre_activations(ckpt, doc: Document, layer: int) -> dict[str, np.ndarray]:
    """Each gate's pre-activation [time, hidden] as the exact step path computes it, read at its hook point."""
    seen: dict[str, list] = {}

    def keep(pre, hook):
        seen.setdefault(hook.name.rsplit("_", 1)[-1], []).append(pre[0, 0].clone())

    gates = GATE_ORDER[ckpt.model_config.cell]
    hooks = [(hook_name(layer - 1, f"pre_{g}"), keep) for g in gates]
    ckpt.model.forward_instrumented(torch.tensor([ckpt.vocab.encode(doc.text)]), hooks=hooks)
    return {g: torch.stack(v).numpy() for g, v in seen.items()}


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layer", [1, 2])
def test_the_terms_sum_to_the_pre_activation_of_every_gate_at_every_position(tmp_path, cell, layer):
    ckpt = _checkpoint(tmp_path, cell, planted=False, seed=layer)
    store = _exact_store(ckpt)
    ids = ckpt.vocab.encode_array(store.text())
    doc = store.documents[1]
    expected = _pre_activations(ckpt, DOCS[1], layer)
    neurons = [NeuronId(layer, "c" if ckpt.model_config.has_c else "h", u) for u in (0, 6)]
    for t in range(doc.start, doc.stop, 5):
        circuits, errors = unit_circuits(ckpt, store, neurons, np.array([t]), ids, check=True)
        for unit in circuits:
            for gate, terms in unit.terms.items():
                assert terms.sum() == pytest.approx(expected[gate][t - doc.start, unit.neuron.index], abs=2e-5)
        assert errors and max(errors.values()) < 2e-5, errors  # the recorded gates and state, recomputed


def _by_hand(ckpt, doc: Document, neuron: NeuronId, edges: list[Term]) -> np.ndarray:
    """An independent step loop (the LSTM and GRU equations written out) over ``doc``: the
    unit's value with the terms of ``edges`` taken out of its gates by hand."""
    chars = ckpt.vocab.encode(doc.text)
    x = ckpt.model.embedding(torch.tensor(chars))
    for layer in range(neuron.layer - 1):  # the layers below, uncut: PyTorch's own module
        x = _layer_h(ckpt.model, layer, x)
    return _cut_layer(ckpt, x, chars, neuron, edges)


def _cut_layer(ckpt, x, chars, neuron: NeuronId, edges: list[Term]) -> np.ndarray:
    cell, H, j, layer = ckpt.model.config.cell, HIDDEN, neuron.index, neuron.layer - 1
    order = GATE_ORDER[cell]
    w_ih, w_hh, b_ih, b_hh = (getattr(ckpt.model.rnn, f"{p}_l{layer}") for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    unit = torch.nn.functional.one_hot(torch.tensor(j), H).float().repeat(len(order))  # unit j of every gate
    h, c, out = torch.zeros(H), torch.zeros(H), []
    for t in range(len(x)):
        own, given = torch.zeros(len(order)), torch.zeros(len(order))  # the cut terms of each gate of unit j
        for e in edges:
            g = order.index(e.gate)
            if e.source.startswith("char:"):
                given[g] += (w_ih[g * H + j] @ x[t]) * float(name_of(ckpt.vocab.chars[chars[t]]) == e.source[5:])
            elif NeuronId.parse(e.source).layer == neuron.layer:
                k = NeuronId.parse(e.source).index
                own[g] += w_hh[g * H + j, k] * h[k]
            else:
                k = NeuronId.parse(e.source).index
                given[g] += w_ih[g * H + j, k] * x[t][k]
        gi = w_ih @ x[t] + b_ih - unit * given.repeat_interleave(H)
        gh = w_hh @ h + b_hh - unit * own.repeat_interleave(H)
        if cell == "lstm":
            pre = gi + gh
            i, f, g, o = (
                torch.sigmoid(pre[:H]),
                torch.sigmoid(pre[H : 2 * H]),
                torch.tanh(pre[2 * H : 3 * H]),
                torch.sigmoid(pre[3 * H :]),
            )
            c = f * c + i * g
            h = o * torch.tanh(c)
            out.append(c[j] if neuron.kind == "c" else h[j])
        else:  # a cut edge into n is r_t times its weight times its source: taken out inside r * (...)
            r, z = torch.sigmoid(gi[:H] + gh[:H]), torch.sigmoid(gi[H : 2 * H] + gh[H : 2 * H])
            n = torch.tanh(gi[2 * H :] + r * gh[2 * H :])
            h = (1 - z) * n + z * h
            out.append(h[j])
    return torch.stack(out).detach().numpy()


def _layer_h(model, layer: int, x: torch.Tensor) -> torch.Tensor:
    """h of one layer over x [time, in] from PyTorch's own fused module (no cut below the unit)."""
    cfg = model.config
    module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cfg.cell](x.shape[-1], cfg.hidden_size)
    weights = {f"{p}_l0": getattr(model.rnn, f"{p}_l{layer}") for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    module.load_state_dict(weights)
    return module(x)[0]


CUTS = {
    ("lstm", 2): ["i:L2.h.5", "f:L1.h.1", "o:L2.h.0"],
    ("lstm", 1): ["g:L1.h.2", "i:char:x", "o:char:space"],
    ("gru", 2): ["n:L2.h.5", "r:L1.h.1", "z:L2.h.6", "n:L1.h.3"],
    ("gru", 1): ["n:L1.h.4", "z:char:a"],
}


@pytest.mark.parametrize("cell,layer", list(CUTS))
@torch.no_grad()
def test_cutting_edges_equals_an_independent_loop_that_cuts_them_by_hand(tmp_path, cell, layer):
    ckpt = _checkpoint(tmp_path, cell, planted=False, seed=4)
    neuron = NeuronId(layer, "c" if cell == "lstm" else "h", 3)
    edges = [Term(e.split(":", 1)[0], e.split(":", 1)[1], 0.0) for e in CUTS[(cell, layer)]]
    got = path_ablated(ckpt, DOCS, neuron, [[], edges, edges[:1]], lanes=2)
    for doc, (start, stop) in zip(DOCS, [(0, len(DOCS[0].text)), (len(DOCS[0].text), None)], strict=True):
        np.testing.assert_allclose(got[1, start:stop], _by_hand(ckpt, doc, neuron, edges), atol=2e-5)
        np.testing.assert_allclose(got[2, start:stop], _by_hand(ckpt, doc, neuron, edges[:1]), atol=2e-5)
        np.testing.assert_allclose(got[0, start:stop], _by_hand(ckpt, doc, neuron, []), atol=2e-5)
    assert np.abs(got[1] - got[0]).max() > 1e-3, "the cut changed nothing"


def _decisive(ckpt):
    """The planted LSTM made decisive: L2's unit forgets (f ~ 0) and writes g ~ 1, so its c is
    about its input gate; the planted sources swing widely (their units' input weights x 10)."""
    rnn, H = ckpt.model.rnn, HIDDEN
    with torch.no_grad():
        rnn.bias_ih_l1[H + UNIT], rnn.bias_ih_l1[2 * H + UNIT] = -6.0, 6.0
        for layer, unit in ((0, FROM_BELOW), (1, FROM_OWN)):
            for g in range(4):
                getattr(rnn, f"weight_ih_l{layer}")[g * H + unit] *= 10
    return ckpt


def test_the_causal_check_finds_the_planted_edges_matter_more_than_random_ones(tmp_path):
    ckpt = _decisive(_checkpoint(tmp_path, "lstm"))
    store = record_activations(ckpt, DOCS, None, progress=False)
    found = circuit(ckpt, store, f"L2.c.{UNIT}", top=2, controls=8)
    assert {(t.gate, t.source) for t in found.check.edges} == {("i", f"L2.h.{FROM_OWN}"), ("i", f"L1.h.{FROM_BELOW}")}
    check = found.to_json()["check"]
    assert check["top_k"] == 2 and check["controls"] == 8 and check["positions"] == len(store)
    assert check["change"] > max(found.check.controls) and check["controls_as_large"] == 0
    assert check["change"] > check["control_mean"] + 2 * check["control_sd"]
    # two levels back: each top source's own circuit, over the positions where it feeds the unit
    assert list(found.to_json()["sources"]) == [t.source for t in found.unit.top_edges(2)]
    own = found.sources[f"L2.h.{FROM_OWN}"]
    assert own.positions == len(store) - len(store.documents) and set(own.terms) == set("ifgo")
    assert max(found.recorded_error.values()) < 0.02  # float16 inputs


def test_bad_input_is_one_clear_sentence(tmp_path):
    ckpt = _checkpoint(tmp_path, "gru", planted=False)
    store = record_activations(ckpt, DOCS, None, progress=False)
    cases = [
        (lambda: circuit(ckpt, store, "L3.h.0"), NeuronError, "No neuron L3.h.0 in this model"),
        (lambda: circuit(ckpt, store, "L1.c.0"), NeuronError, "kinds h, r, z, n"),
        (lambda: circuit(ckpt, store, "L1.h.0", top=0), LstmvizError, "--top must be at least 1"),
        (lambda: circuit(ckpt, store, "L1.h.0", levels=3), LstmvizError, "--levels must be between 1 and 2"),
        (lambda: Selection.of_store(store, "no_such"), LstmvizError, "Unknown feature no_such"),
        (lambda: Selection.of_store(store, "indent"), LstmvizError, "not binary"),
        (lambda: circuit(ckpt, store, "L1.h.0", Selection.of_store(store, "in_docstring")), LstmvizError, "No position"),
    ]
    for call, error, words in cases:
        with pytest.raises(error, match=words):
            call()
    other = _checkpoint(tmp_path / "other", "gru", planted=False, seed=9)
    with pytest.raises(LstmvizError, match="was not recorded from gru"):
        circuit(other, store, "L1.h.0")


def _cli(*args: str):
    from lstmviz.cli.main import main

    return CliRunner().invoke(main, ["circuit", *args])


def test_the_command_prints_each_gates_sources_and_the_check(tiny_store):
    done = _cli(str(tiny_store.path), "--neuron", "L2.c.3", "--feature", "in_string", "--top", "3", "--controls", "4", "--json")
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert data["neuron"] == "L2.c.3" and data["selection"] == "in_string" and set(data["gates"]) == set("ifgo")
    assert all(len(sources) == 3 and {"source", "contribution"} <= set(sources[0]) for sources in data["gates"].values())
    assert {"top_k", "change", "control_mean", "control_sd"} <= set(data["check"]) and data["check"]["controls"] == 4
    assert data["sources"] and all(s.startswith(("L1.h.", "L2.h.")) for s in data["sources"])
    for sources in data["gates"].values():  # largest first
        sizes = [abs(s["contribution"]) for s in sources]
        assert sizes == sorted(sizes, reverse=True)
    text = _cli(str(tiny_store.path), "--neuron", "L1.h.0", "--range", "0:300", "--levels", "1", "--controls", "2")
    assert text.exit_code == 0, text.output
    assert text.stdout.startswith("L1.h.0 over characters 0:300 (300 positions)") and "cutting its top 5 edges" in text.stdout


def test_the_api_reads_a_store_and_its_checkpoint(tiny_store):
    import lstmviz

    found = lstmviz.circuit(tiny_store.path, "L2.h.1", range="10:200", top=2, levels=1, controls=2)
    assert found.unit.positions == 190 and not found.sources and len(found.check.edges) == 2
    assert found.to_json()["gates"]["o"][0]["source"] == found.unit.top("o", 1)[0].source


@pytest.mark.parametrize(
    "args,words",
    [
        (["--neuron", "L3.c.0"], "No neuron L3.c.0 in this model"),
        (["--neuron", "L2.x.0"], "No neuron L2.x.0"),
        (["--neuron", "L2.c.0", "--feature", "nothing"], "Unknown feature nothing"),
        (["--neuron", "L2.c.0", "--range", "5:x"], "is not a character range"),
        (["--neuron", "L2.c.0", "--range", "5:99999999"], "outside the store"),
        (["--neuron", "L2.c.0", "--top", "0"], "--top must be at least 1"),
        (["--neuron", "L2.c.0", "--levels", "3"], "--levels must be between 1 and 2"),
        (["--neuron", "L2.c.0", "--feature", "in_string", "--range", "0:9"], "not both"),
    ],
)
def test_bad_input_to_the_command_is_one_sentence_and_exit_status_2(tiny_store, args, words):
    done = _cli(str(tiny_store.path), *args)
    assert done.exit_code == 2 and words in done.output and len(done.output.strip().splitlines()) == 1, done.output


@pytest.mark.parametrize("cell", CELLS)
def test_the_second_level_read_beside_the_first_equals_each_source_summed_alone(tmp_path, cell):
    """Both levels come from one pass where a layer's sums are shared by its units: each top
    source's terms are those of its own pass over the positions where it feeds the unit."""
    ckpt = _checkpoint(tmp_path, cell, planted=False, seed=2)
    store = record_activations(ckpt, DOCS, None, progress=False)
    kind = "c" if "c" in ckpt.model_config.series_kinds else "h"
    found = circuit(ckpt, store, f"L2.{kind}.{UNIT}", top=4, controls=1)
    assert found.sources  # a 2-layer unit's top edges include units of L2 and L1
    ids = ckpt.vocab.encode_array(store.text())
    for name, source in found.sources.items():
        n = NeuronId.parse(name)
        where = Selection.of_store(store).shifted_back(store) if n.layer == 2 else Selection.of_store(store)
        (alone,), _ = unit_circuits(ckpt, store, [n], where.positions, ids)
        assert source.positions == alone.positions
        for gate in alone.terms:
            np.testing.assert_allclose(source.terms[gate], alone.terms[gate], rtol=1e-6, atol=1e-9)
