"""Hard-wrapped English prose that every Python install carries: the pydoc topics (the
language reference as ``help()`` shows it, wrapped at about 70 columns) and the docstrings
of the standard library's modules, classes and functions (wrapped at 72-79), dedented.

Karpathy et al. (2015) found their line-length cell in text wrapped at a fixed width, where
a model must count characters to know when the newline comes; in code, lines end where the
syntax does. This is such a text, built from the running interpreter alone.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Iterable
from pathlib import Path

TOPICS_PREFIX = "topics/"  # a document per pydoc topic: topics/if, topics/strings, ...
DOCSTRINGS_PREFIX = "docstrings/"  # a document per module: docstrings/json.decoder, ...
_DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def module_name(relative_path: str) -> str:
    """``json/decoder.py`` -> ``json.decoder``; a package's ``__init__.py`` is the package."""
    parts = relative_path.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def docstrings_of(source: str) -> list[str]:
    """The docstrings of a module, its classes and functions, in source order, each dedented
    as ``inspect.cleandoc`` does; none for a file that does not parse."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escapes in old modules' strings
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            return []
    found = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, _DOCUMENTED):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                found.append(doc)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def topic_documents() -> list[tuple[str, str]]:
    """``(name, text)`` for each pydoc topic, sorted by name; none where the interpreter was
    installed without ``pydoc_data``."""
    try:
        from pydoc_data.topics import topics
    except ImportError:
        return []
    return [(TOPICS_PREFIX + key, topics[key]) for key in sorted(topics)]


def docstring_documents(files: Iterable[tuple[Path, str]], read, wanted: set[str] | None = None) -> list[tuple[str, str]]:
    """``(name, text)`` per module of ``files`` (path, relative name) that has docstrings:
    its docstrings joined by blank lines. ``read(path)`` gives a file's text (or None);
    ``wanted`` limits the work to the documents of those names (one split of the corpus)."""
    out = []
    for path, rel in files:
        name = DOCSTRINGS_PREFIX + module_name(rel)
        if wanted is not None and name not in wanted:
            continue
        source = read(path)
        docs = docstrings_of(source) if source else []
        if docs:
            out.append((name, "\n\n".join(docs) + "\n"))
    return out
