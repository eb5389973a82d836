import json

import pytest
import torch

from lstmviz.core.errors import CheckpointError
from lstmviz.model.checkpoint import load_checkpoint, save_checkpoint
from lstmviz.model.rnn import CharRNN, ModelConfig
from lstmviz.text.corpus import Vocab


@pytest.fixture
def saved(tmp_path):
    vocab = Vocab("abc\n")
    model = CharRNN(ModelConfig(vocab_size=len(vocab), hidden_size=8, embed_dim=4))
    path = save_checkpoint(tmp_path / "ck", model, vocab, corpus={"sources": ["x"]}, training={"seed": 0}, history={"step": [1]})
    return path, model, vocab


def test_round_trip(saved):
    path, model, vocab = saved
    ckpt = load_checkpoint(path)
    assert ckpt.vocab == vocab
    assert ckpt.model_config == model.config
    assert ckpt.history == {"step": [1]}
    for k, v in model.state_dict().items():
        assert torch.equal(ckpt.model.state_dict()[k], v)
    assert "rnn.weight_ih_l0" in ckpt.model.state_dict()  # PyTorch's fused layout
    assert len(ckpt.content_hash) == 64


def test_missing_directory(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope")


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no config.json"):
        load_checkpoint(tmp_path)


def test_corrupt_config(saved):
    path = saved[0]
    (path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(path)


def test_truncated_weights(saved):
    path = saved[0]
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)


def test_weights_that_do_not_match_the_config(saved):
    path = saved[0]
    config = json.loads((path / "config.json").read_text())
    config["model"]["hidden_size"] = 16
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="do not match its config: wrong shape"):
        load_checkpoint(path)


def test_vocabulary_that_does_not_match_the_model(saved):
    path = saved[0]
    config = json.loads((path / "config.json").read_text())
    config["vocab"] = ["a"]
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="inconsistent"):
        load_checkpoint(path)


def test_newer_format_version_is_refused(saved):
    path = saved[0]
    config = json.loads((path / "config.json").read_text())
    config["format_version"] = 99
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="format version 99"):
        load_checkpoint(path)


def test_a_store_whose_shipped_checkpoint_moved_finds_it_by_name_and_weights(tmp_path):
    """A store keeps the path it was recorded from; when the clone that recorded it has
    moved, the shipped checkpoint of that name with the same weights stands in. Another
    checkpoint that moved is still one clear error."""
    import shutil

    from click.testing import CliRunner

    from lstmviz.cli.main import main
    from lstmviz.model.checkpoint import SHIPPED_DIR, recorded_path

    copy = tmp_path / "old-clone" / "stdlib-gru"
    shutil.copytree(SHIPPED_DIR / "stdlib-gru", copy)
    (tmp_path / "t.py").write_text("x = 'a string'\n# a comment\n", encoding="utf-8")
    store = tmp_path / "t.store"
    recorded = CliRunner().invoke(main, ["record", str(copy), str(tmp_path / "t.py"), "--out", str(store)])
    assert recorded.exit_code == 0, recorded.output
    shutil.rmtree(tmp_path / "old-clone")
    why = CliRunner().invoke(main, ["attribute", str(store), "--neuron", "L1.h.3", "--pos", "10", "--method", "grad", "--json"])
    assert why.exit_code == 0, why.output
    assert json.loads(why.output)["text"].endswith("'a stri")

    mine = tmp_path / "mine" / "my-gru"
    shutil.copytree(SHIPPED_DIR / "stdlib-gru", mine)
    recorded = CliRunner().invoke(main, ["record", str(mine), str(tmp_path / "t.py"), "--out", str(tmp_path / "m.store")])
    assert recorded.exit_code == 0, recorded.output
    shutil.rmtree(tmp_path / "mine")
    assert recorded_path({"path": str(mine), "name": "my-gru", "content_hash": ""}) == mine
    why = CliRunner().invoke(main, ["attribute", str(tmp_path / "m.store"), "--neuron", "L1.h.3", "--pos", "10"])
    assert why.exit_code == 2 and f"No checkpoint at {mine}" in why.output
