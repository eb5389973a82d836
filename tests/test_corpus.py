import shutil
import warnings

import pytest

from lstmviz.core.errors import CorpusError
from lstmviz.text.corpus import UNKNOWN_CHAR, Vocab, load_corpus, split_of


def test_split_depends_only_on_relative_path(corpus_dir, tmp_path):
    copy = tmp_path / "elsewhere"
    shutil.copytree(corpus_dir, copy)
    a = {d.name: d.split for d in load_corpus([str(corpus_dir)]).documents}
    b = {d.name: d.split for d in load_corpus([str(copy)]).documents}
    assert a == b
    assert split_of("json/decoder.py") == split_of("json/decoder.py")


def test_split_fractions_are_about_90_5_5():
    splits = [split_of(f"pkg/module_{i}.py") for i in range(20000)]
    assert 0.04 < splits.count("test") / len(splits) < 0.06
    assert 0.04 < splits.count("val") / len(splits) < 0.06


def test_default_corpus_is_stdlib_without_tests():
    corpus = load_corpus()
    names = [d.name for d in corpus.documents]
    assert "json/decoder.py" in names
    assert not any(n.startswith("test/") or "/test_" in n or n.startswith("test_") for n in names)
    assert {d.split for d in corpus.documents} == {"train", "val", "test"}


def test_vocab_round_trip_and_unknown_characters():
    vocab = Vocab.build(["hello world"])
    assert vocab.decode(vocab.encode("hello")) == "hello"
    ids = vocab.encode("hz€")
    assert ids[1] == 0 and ids[2] == 0  # unseen -> unknown id
    assert vocab.decode(ids) == "h" + UNKNOWN_CHAR * 2
    assert Vocab.from_json(vocab.to_json()) == vocab


def test_rare_characters_become_unknown():
    vocab = Vocab.build(["aaaab"], min_count=2)
    assert vocab.encode("ab") == [vocab.encode("a")[0], 0]


def test_utf8_replacement_is_counted_and_newlines_normalised(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9\r\nok\n")
    corpus = load_corpus([str(tmp_path)])
    assert corpus.replaced_chars == 1
    assert corpus.documents[0].text == "caf\ufffd\nok\n"


def test_binary_files_are_skipped_with_a_warning(tmp_path):
    (tmp_path / "a.txt").write_text("text")
    (tmp_path / "b.bin").write_bytes(b"\x00\x01\x02")
    with pytest.warns(UserWarning, match="Skipped 1 binary"):
        corpus = load_corpus([str(tmp_path)])
    assert [d.name for d in corpus.documents] == ["a.txt"]


def test_empty_or_binary_only_corpus_is_a_clear_error(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "b.bin").write_bytes(b"\x00")
    with warnings.catch_warnings(), pytest.raises(CorpusError, match="No text found"):
        warnings.simplefilter("ignore")
        load_corpus([str(tmp_path)])


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(CorpusError, match="No file, folder or glob"):
        load_corpus([str(tmp_path / "nope")])


def test_globs(corpus_dir):
    corpus = load_corpus([str(corpus_dir / "module_1*.py")])
    assert len(corpus.documents) == 11  # module_1 and module_10..19
