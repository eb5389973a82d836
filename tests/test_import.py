"""Import of a user's own plain PyTorch character model."""

import base64
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from lstmviz.cli.main import main
from lstmviz.core.errors import CheckpointError
from lstmviz.model.checkpoint import load_checkpoint
from lstmviz.model.importer import import_torch
from lstmviz.model.rnn import CharRNN, ModelConfig

CHARS = list("abcdef \n")


class PlainCharModel(nn.Module):
    """What a tutorial writes: embedding (or one-hot), a recurrent layer, a linear decoder."""

    def __init__(self, cell="lstm", one_hot=False):
        super().__init__()
        self.one_hot = one_hot
        if not one_hot:
            self.embed = nn.Embedding(len(CHARS), 5)
        rnn = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell]
        self.lstm = rnn(len(CHARS) if one_hot else 5, 7, num_layers=2, batch_first=True)
        self.head = nn.Linear(7, len(CHARS))

    def forward(self, ids):
        x = nn.functional.one_hot(ids, len(CHARS)).float() if self.one_hot else self.embed(ids)
        return self.head(self.lstm(x)[0])


@pytest.mark.parametrize(("cell", "one_hot"), [("lstm", False), ("gru", True), ("rnn", False)])
def test_imported_model_reproduces_the_original(tmp_path, cell, one_hot):
    torch.manual_seed(0)
    plain = PlainCharModel(cell, one_hot).eval()
    torch.save(plain.state_dict(), tmp_path / "model.pt")
    (tmp_path / "vocab.json").write_text(json.dumps(CHARS))
    result = CliRunner().invoke(
        main, ["import-torch", str(tmp_path / "model.pt"), "--vocab", str(tmp_path / "vocab.json"), "--out", str(tmp_path / "ck")]
    )
    assert result.exit_code == 0, result.output
    ckpt = load_checkpoint(tmp_path / "ck")
    text = "abc def\nfed cba\n"
    theirs = torch.log_softmax(plain(torch.tensor([[CHARS.index(c) for c in text]])), -1)
    ours, _ = ckpt.model.forward_instrumented(torch.tensor([ckpt.vocab.encode(text)]))
    ours = torch.log_softmax(ours, -1)[..., ckpt.vocab.encode("".join(CHARS))]  # in their id order
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


def test_unknown_layout_names_the_keys(tmp_path):
    state = PlainCharModel().state_dict()
    state["attention.weight"] = torch.zeros(3, 3)
    torch.save(state, tmp_path / "m.pt")
    (tmp_path / "v.json").write_text(json.dumps(CHARS))
    with pytest.raises(CheckpointError, match="attention.weight"):
        import_torch(tmp_path / "m.pt", tmp_path / "v.json", tmp_path / "out")


def test_bad_files_are_clear_errors(tmp_path):
    (tmp_path / "v.json").write_text(json.dumps(CHARS))
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="weights_only=True"):
        import_torch(tmp_path / "junk.pt", tmp_path / "v.json", tmp_path / "out")
    torch.save(PlainCharModel().state_dict(), tmp_path / "m.pt")
    (tmp_path / "bad.json").write_text(json.dumps(["ab", "c"]))
    with pytest.raises(CheckpointError, match="single characters"):
        import_torch(tmp_path / "m.pt", tmp_path / "bad.json", tmp_path / "out")
    (tmp_path / "short.json").write_text(json.dumps(CHARS[:3]))
    with pytest.raises(CheckpointError, match="Cannot place"):
        import_torch(tmp_path / "m.pt", tmp_path / "short.json", tmp_path / "out")


class CharTagger(nn.Module):
    """A bidirectional character tagger: embedding, a two-layer bidirectional recurrent
    network, a per-character classification head on both directions."""

    def __init__(self, cell="lstm", tags=3):
        super().__init__()
        self.embed = nn.Embedding(len(CHARS), 5)
        self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell](5, 7, num_layers=2, batch_first=True, bidirectional=True)
        self.tagger = nn.Linear(14, tags)

    def forward(self, ids):
        return self.tagger(self.rnn(self.embed(ids))[0])


DOCS = ["abc def\nfed", "cba\n", "dead beef fab\n  cafe"]


def _import_tagger(tmp_path, cell):
    torch.manual_seed(1)
    plain = CharTagger(cell).eval()
    torch.save({"state_dict": plain.state_dict()}, tmp_path / "tagger.pt")
    (tmp_path / "vocab.json").write_text(json.dumps(CHARS))
    args = ["import-torch", str(tmp_path / "tagger.pt"), "--vocab", str(tmp_path / "vocab.json"), "--out", str(tmp_path / "ck")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0 and "bidirectional" in result.output, result.output
    return plain, load_checkpoint(tmp_path / "ck")


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_bidirectional_tagger_records_both_directions_as_the_module_computes_them(tmp_path, cell):
    from lstmviz.recording.recorder import record_activations
    from lstmviz.text.corpus import Document

    plain, ckpt = _import_tagger(tmp_path, cell)
    assert ckpt.model_config.bidirectional and ckpt.model_config.num_labels == 3
    store = record_activations(ckpt, [Document(f"d{k}", t) for k, t in enumerate(DOCS)], tmp_path / "s", lanes=2, progress=False)
    kinds = ckpt.model_config.series_kinds
    assert [(s.layer, s.reverse, s.kind) for s in store.series] == [
        (layer, reverse, kind) for layer in (1, 2) for reverse in (False, True) for kind in kinds
    ]
    # The module's own outputs, document by document: layer 1 from a one-layer copy of it.
    first = {"lstm": nn.LSTM, "gru": nn.GRU}[cell](5, 7, num_layers=1, batch_first=True, bidirectional=True)
    first.load_state_dict({k: v for k, v in plain.rnn.state_dict().items() if "_l0" in k})
    for doc, stored in zip(DOCS, store.documents, strict=True):
        ids = torch.tensor([[CHARS.index(c) for c in doc]])
        with torch.no_grad():
            x = plain.embed(ids)
            out1, final1 = first(x)
            out2, final2 = plain.rnn(x)
        for layer, out, final in ((1, out1, final1), (2, out2, final2[-2:] if cell == "gru" else tuple(f[-2:] for f in final2))):
            for reverse, half in ((False, out[0, :, :7]), (True, out[0, :, 7:])):
                neurons = [f"L{layer}{'r' if reverse else ''}.h.{u}" for u in range(7)]
                got = store.window(neurons, stored.start, stored.stop).T
                torch.testing.assert_close(torch.from_numpy(got), half, atol=2e-3, rtol=0, msg=f"{neurons[0]} in {doc!r}")
            if cell == "lstm":  # the cell state where each direction finishes: the last character, or the first
                c_n = final[1][:, 0]  # [directions, hidden]
                for reverse, at in ((False, stored.stop - 1), (True, stored.start)):
                    got = store.window([f"L{layer}{'r' if reverse else ''}.c.{u}" for u in range(7)], at, at + 1)[:, 0]
                    torch.testing.assert_close(torch.from_numpy(got), c_n[int(reverse)], atol=2e-3, rtol=0)
    assert "L2r.h.6" in [str(n) for n in store.neuron_ids()]
    assert store.neuron("L1r.h.3").shape == (len(store),)
    assert not np.isfinite(store.logp).any()  # a tagger predicts no next character


def test_bidirectional_tagger_evaluate_says_what_it_is_and_sample_and_ablate_refuse(tmp_path):
    plain, ckpt = _import_tagger(tmp_path, "lstm")
    text = tmp_path / "t.txt"
    text.write_text(DOCS[2])
    result = CliRunner().invoke(main, ["evaluate", str(tmp_path / "ck"), str(text), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["accuracy"] is None and "not a next-character model" in data["note"]
    with torch.no_grad():
        guess = plain(torch.tensor([[CHARS.index(c) for c in DOCS[2]]]))[0].argmax(-1).tolist()
    labels = [g if k % 2 else (g + 1) % 3 for k, g in enumerate(guess)]  # right at odd positions only
    labels[0] = -1  # not scored
    (tmp_path / "labels.json").write_text(json.dumps([labels]))
    result = CliRunner().invoke(main, ["evaluate", str(tmp_path / "ck"), str(text), "--labels", str(tmp_path / "labels.json")])
    assert result.exit_code == 0, result.output
    right = sum(1 for k in range(1, len(labels)) if k % 2)
    assert f"{right / (len(labels) - 1):.2%} of {len(labels) - 1} labelled characters" in result.output
    for args in (["sample", str(tmp_path / "ck")], ["ablate", str(tmp_path / "ck"), str(text), "--neurons", "L1.c.0"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2 and "not a next-character model" in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1


def test_direction_in_neuron_ids():
    from lstmviz.core.errors import NeuronError
    from lstmviz.core.neurons import NeuronId, parse_neurons

    n = NeuronId.parse("L2r.c.17")
    assert (n.layer, n.kind, n.index, n.reverse) == (2, "c", 17, True)
    assert str(n) == "L2r.c.17" and n.hook_name == "layers.1.reverse.hook_c"
    assert parse_neurons("L1.h.3,L1r.h.3") == [NeuronId(1, "h", 3), NeuronId(1, "h", 3, True)]
    for bad in ("L2R.c.1", "L2rr.c.1", "L2.r.c.1", "Lr2.c.1"):
        with pytest.raises(NeuronError, match="not a neuron id"):
            NeuronId.parse(bad)
    model = CharRNN(ModelConfig(vocab_size=5, num_layers=1, hidden_size=4, embed_dim=3))
    with pytest.raises(NeuronError, match="one direction"):
        model.check_neuron("L1r.h.0")


def test_both_directions_are_ranked_and_shown_in_the_dashboard(tmp_path, monkeypatch):
    from lstmviz.analysis.rankings import store_rankings
    from lstmviz.analysis.summaries import neuron_summary
    from lstmviz.app import create_app
    from lstmviz.app.view_state import neighbour
    from lstmviz.recording.recorder import record_activations
    from lstmviz.render.colours import neuron_scale
    from lstmviz.render.figures import heatmap_figure, text_payload
    from lstmviz.text.corpus import Document

    monkeypatch.setenv("LSTMVIZ_CACHE", str(tmp_path / "cache"))
    _, ckpt = _import_tagger(tmp_path, "lstm")
    docs = [Document(f"d{k}", "def f(x):\n    return 'abc'  # c\n" * 3) for k in range(4)]
    store = record_activations(ckpt, docs, tmp_path / "s", progress=False)
    ranked = {row["neuron"] for feature in store_rankings(store).values() for row in feature["rows"]}
    assert any(n.startswith("L1r.") for n in ranked) and any(n.startswith("L1.") for n in ranked)
    stats = neuron_summary(store, "L2r.c.4")["stats"]
    assert stats["q99"] > stats["q01"]
    catalog = create_app([store]).catalog
    options = catalog.neuron_options(store.name)
    values = [o["value"] for o in options]
    assert {"L1.h.0", "L1r.h.0", "L2r.o.6"} <= set(values) and len(set(values)) == len(values) == 2 * 2 * 6 * 7
    assert str(catalog.neuron(store, "L2r.h.5")) == "L2r.h.5"
    assert str(neighbour(store, catalog.neuron(store, "L1.o.6"), 1)) == "L1r.h.0"  # the forward series, then the backward
    figure = heatmap_figure(store, ["L1.h.2", "L1r.h.2"], 0, 40)
    assert list(figure.data[0].y) == ["L1.h.2", "L1r.h.2"]
    payload = text_payload(store, "L1r.h.2", 0, 40, neuron_scale(store, "L1r.h.2"))
    values = np.frombuffer(base64.b64decode(payload["values"]), dtype=np.float32)
    assert payload["label"] == "L1r.h.2" and payload["text"] == store.text(0, 40)
    np.testing.assert_allclose(values, store.neuron("L1r.h.2", 0, 40))
