import hashlib
import inspect
import json
import os
import shutil
import subprocess
import sys
import warnings

import pytest

from lstmviz.core.errors import CorpusError
from lstmviz.text.corpus import STDLIB_PROSE, UNKNOWN_CHAR, Vocab, documents_from_description, load_corpus, named_corpus, split_of


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


DIGEST = """
import hashlib, json
from lstmviz.text.corpus import named_corpus
h = hashlib.sha256()
for d in named_corpus("stdlib-prose").documents:
    h.update(json.dumps([d.name, d.split, d.text]).encode())
print(h.hexdigest())
"""


@pytest.fixture(scope="module")
def prose():
    return named_corpus(STDLIB_PROSE)


def test_the_prose_corpus_is_the_same_in_every_run_of_this_python(prose):
    h = hashlib.sha256()
    for d in prose.documents:
        h.update(json.dumps([d.name, d.split, d.text]).encode())
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # sets and dicts iterate otherwise: the order must not
    done = subprocess.run([sys.executable, "-c", DIGEST], capture_output=True, text=True, check=True, env=env)
    assert done.stdout.strip() == h.hexdigest()


def test_the_prose_corpus_is_pydoc_topics_and_dedented_docstrings(prose):
    import json.decoder
    from pydoc_data.topics import topics

    docs = {d.name: d.text for d in prose.documents}
    assert docs["topics/if"] == topics["if"]
    assert len([n for n in docs if n.startswith("topics/")]) == len(topics)
    decoder = docs["docstrings/json.decoder"]
    assert inspect.cleandoc(json.decoder.JSONDecoder.__doc__) in decoder  # dedented as help() shows it
    assert inspect.cleandoc(json.decoder.JSONDecoder.raw_decode.__doc__) in decoder
    assert "docstrings/json" in docs  # a package's __init__.py
    assert not any(n.startswith(("docstrings/test.", "docstrings/idlelib.idle_test")) for n in docs)
    assert {d.split for d in prose.documents} == {"train", "val", "test"}
    assert prose.describe()["sources"] == ["stdlib-prose"]


def test_a_prose_checkpoint_reads_its_test_split_back(prose):
    description = prose.describe()
    test = documents_from_description(description, "test")
    assert sorted(d.name for d in test) == description["splits"]["test"] == sorted(d.name for d in prose.split("test"))
    assert [d.text for d in test] == [d.text for d in prose.split("test")]
