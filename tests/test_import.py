"""Import of a user's own plain PyTorch character model."""

import json

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from lstmviz.checkpoint import load_checkpoint
from lstmviz.cli import main
from lstmviz.errors import CheckpointError
from lstmviz.importer import import_torch

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
