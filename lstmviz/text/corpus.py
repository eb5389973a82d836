"""Text in, documents and a character vocabulary out.

A corpus is any set of files, folders or globs, or one of the named corpora built from the
running interpreter (``CORPORA``): the default is the Python standard library's code (its
non-test ``.py`` files), and ``stdlib-prose`` its hard-wrapped prose (``prose.py``). Each
document is assigned to the train, validation or test split by a hash of its name (a
file's relative path), so the split is the same on every machine.
"""

from __future__ import annotations

import glob
import hashlib
import sysconfig
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.errors import CorpusError
from .prose import docstring_documents, topic_documents

SPLITS = ("train", "val", "test")
# Fractions of documents (by path hash) in the validation and test splits; the rest trains.
VAL_FRACTION = 0.05
TEST_FRACTION = 0.05
STDLIB = "python-stdlib"  # the code corpus, the default
STDLIB_PROSE = "stdlib-prose"
CORPORA = {
    STDLIB: "the non-test .py files of the running Python's standard library",
    STDLIB_PROSE: "the pydoc topics and the dedented docstrings of the running Python's standard library",
}
UNKNOWN_CHAR = "\ufffd"
_BINARY_PROBE_BYTES = 8192
_SKIPPED_DIRS = {".git", ".hg", ".svn", "__pycache__", ".venv", "node_modules", "site-packages"}


@dataclass(frozen=True)
class Document:
    """One file's text. ``name`` is its path relative to the corpus root it came from."""

    name: str
    text: str

    @property
    def split(self) -> str:
        return split_of(self.name)


@dataclass
class Corpus:
    """Documents read from ``sources`` (paths as given, or the stdlib marker)."""

    sources: list[str]
    documents: list[Document]
    replaced_chars: int = 0
    skipped_binary: list[str] = field(default_factory=list)

    def split(self, name: str) -> list[Document]:
        if name not in SPLITS:
            raise CorpusError(f"Unknown split {name!r}; choose one of {', '.join(SPLITS)}.")
        return [d for d in self.documents if d.split == name]

    def describe(self) -> dict:
        """What a checkpoint records about the text it was trained on."""
        return {
            "sources": self.sources,
            "splits": {s: sorted(d.name for d in self.split(s)) for s in SPLITS},
            "chars": {s: sum(len(d.text) for d in self.split(s)) for s in SPLITS},
            "replaced_chars": self.replaced_chars,
        }


def split_of(name: str) -> str:
    """The split of a document, from a hash of its relative path (machine-independent)."""
    digest = hashlib.sha1(name.replace("\\", "/").encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < TEST_FRACTION:
        return "test"
    if u < TEST_FRACTION + VAL_FRACTION:
        return "val"
    return "train"


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _is_stdlib_test(rel: Path) -> bool:
    parts = rel.parts
    return (
        any(p in ("test", "tests", "idle_test") for p in parts[:-1])
        or parts[-1].startswith("test_")
        or parts[-1] == "conftest.py"
    )


def _stdlib_files() -> list[tuple[Path, str]]:
    root = stdlib_root()
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if any(p in _SKIPPED_DIRS for p in rel.parts) or _is_stdlib_test(rel):
            continue
        out.append((path, rel.as_posix()))
    return out


def _expand(source: str) -> list[tuple[Path, str]]:
    """Files named by one source (a file, a folder, or a glob) with their relative names."""
    path = Path(source).expanduser()
    if path.is_file():
        return [(path, path.name)]
    if path.is_dir():
        files = []
        for f in sorted(path.rglob("*")):
            rel = f.relative_to(path)
            if f.is_file() and not any(p in _SKIPPED_DIRS or p.startswith(".") for p in rel.parts):
                files.append((f, rel.as_posix()))
        return files
    matches = sorted(Path(m) for m in glob.glob(str(path), recursive=True))
    files = [(m, m.as_posix()) for m in matches if m.is_file()]
    if not files:
        raise CorpusError(f"No file, folder or glob match for {source!r}.")
    return files


def read_text(path: Path) -> tuple[str | None, int]:
    """UTF-8 text with replacement, newlines normalised, and the number of replaced
    characters; ``None`` for a binary file (a NUL byte near its start)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    if b"\x00" in data[:_BINARY_PROBE_BYTES]:
        return None, 0
    text = data.decode("utf-8", errors="replace")
    replaced = text.count(UNKNOWN_CHAR) - data.count(UNKNOWN_CHAR.encode("utf-8"))
    return text.replace("\r\n", "\n").replace("\r", "\n"), replaced


def source_files(sources: Sequence[str] | None = None) -> list[tuple[Path, str]]:
    """The files that files, folders or globs name (default: the standard library's), with
    the names their documents get."""
    sources = list(sources or [])
    return _stdlib_files() if not sources else [f for s in sources for f in _expand(s)]


def load_corpus(sources: Sequence[str] | None = None, max_chars: int | None = None) -> Corpus:
    """Read documents from files, folders or globs; with none, the Python standard library.
    With ``max_chars``, reading stops once that much text is read (a 10 GB folder is not
    read whole to record its first 100,000 characters)."""
    sources = list(sources or [])
    named = source_files(sources)
    corpus = Corpus(sources=sources or [STDLIB], documents=[])
    seen, total = set(), 0
    for path, name in named:
        if max_chars is not None and total >= max_chars:
            break
        if name in seen:  # the same file reached twice (overlapping globs)
            continue
        seen.add(name)
        text, replaced = read_text(path)
        if text is None:
            corpus.skipped_binary.append(name)
            continue
        corpus.replaced_chars += replaced
        if text:
            corpus.documents.append(Document(name, text))
            total += len(text)
    if corpus.skipped_binary:
        shown = ", ".join(corpus.skipped_binary[:5])
        more = len(corpus.skipped_binary) - 5
        warnings.warn(
            f"Skipped {len(corpus.skipped_binary)} binary file(s): {shown}" + (f" and {more} more" if more > 0 else ""),
            stacklevel=2,
        )
    if not corpus.documents:
        where = ", ".join(corpus.sources)
        raise CorpusError(f"No text found in {where}: every file is empty or binary.")
    return corpus


def _prose_corpus(wanted: set[str] | None) -> Corpus:
    replaced = 0

    def read(path: Path) -> str | None:
        nonlocal replaced
        text, count = read_text(path)
        replaced += count
        return text

    named = topic_documents() + docstring_documents(_stdlib_files(), read, wanted)
    documents = [Document(name, text) for name, text in named if wanted is None or name in wanted]
    return Corpus(sources=[STDLIB_PROSE], documents=documents, replaced_chars=replaced)


def named_corpus(name: str, wanted: set[str] | None = None) -> Corpus:
    """One of the corpora built from the running interpreter (``CORPORA``), the same on every
    machine with that Python. ``wanted`` names the documents needed (one split), where
    reading only those saves work; the corpus may hold more."""
    if name == STDLIB:
        return load_corpus()
    if name == STDLIB_PROSE:
        return _prose_corpus(wanted)
    raise CorpusError(f"Unknown corpus {name!r}; the named corpora are {', '.join(CORPORA)}.")


def described_corpus(description: dict, wanted: set[str] | None = None) -> Corpus:
    """The corpus a checkpoint's config describes, read again on this machine (``wanted``:
    as for :func:`named_corpus`)."""
    sources = description["sources"]
    if len(sources) == 1 and sources[0] in CORPORA:
        return named_corpus(sources[0], wanted)
    return load_corpus(sources)


def documents_from_description(description: dict, split: str) -> list[Document]:
    """Re-read one split of the corpus a checkpoint was trained on (as recorded in its config)."""
    names = set(description["splits"][split])
    sources = description["sources"]
    if not names:
        raise CorpusError(
            f"This checkpoint records no {split} split (it was imported, or its corpus was too small); give the text explicitly."
        )
    corpus = described_corpus(description, names)
    docs = [d for d in corpus.documents if d.name in names]
    if not docs:
        raise CorpusError(
            f"None of the {len(names)} {split} documents of this checkpoint's corpus "
            f"({', '.join(sources)}) could be found on this machine; give the text explicitly."
        )
    return docs


class Vocab:
    """Characters to ids. Id 0 is the unknown character, for anything rare or unseen."""

    def __init__(self, chars: Iterable[str]):
        chars = sorted(set(chars) - {UNKNOWN_CHAR})
        self.chars = [UNKNOWN_CHAR, *chars]
        self._codepoints = np.array([ord(c) for c in chars], dtype=np.uint32)

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1) -> Vocab:
        counts: Counter[str] = Counter()
        for t in texts:
            counts.update(t)
        return cls(c for c, n in counts.items() if n >= min_count)

    def __len__(self) -> int:
        return len(self.chars)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.chars == other.chars

    def encode_array(self, text: str) -> np.ndarray:
        """Vectorised encoding to an int64 array (unknown characters become 0)."""
        cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        pos = np.searchsorted(self._codepoints, cps)
        pos_clipped = np.minimum(pos, max(len(self._codepoints) - 1, 0))
        found = (pos < len(self._codepoints)) & (self._codepoints[pos_clipped] == cps)
        return np.where(found, pos + 1, 0).astype(np.int64)

    def unknown_chars(self, text: str) -> list[str]:
        """The distinct characters of ``text`` this vocabulary does not hold (read as unknown)."""
        chars = sorted(set(text) - {UNKNOWN_CHAR})
        return [c for c, i in zip(chars, self.encode_array("".join(chars)), strict=True) if i == 0]

    def encode(self, text: str) -> list[int]:
        return self.encode_array(text).tolist()

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.chars[i] for i in ids)

    def to_json(self) -> list[str]:
        return self.chars[1:]

    @classmethod
    def from_json(cls, chars: list[str]) -> Vocab:
        return cls(chars)
