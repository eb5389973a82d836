"""The architecture, checked: the rooms of ``lstmviz/`` import only the rooms below them
(core -> text -> model -> store -> recording -> analysis -> render -> scale -> app -> bench ->
cli), and no modules import each other in a cycle, inside a room or between rooms. The
contracts are import-linter's, in ``pyproject.toml``; every import counts, a lazy one inside
a function too."""

import os
from pathlib import Path

from importlinter.cli import lint_imports

import lstmviz

ROOT = Path(lstmviz.__file__).parents[1]
ROOMS = ["core", "text", "model", "store", "recording", "analysis", "render", "scale", "app", "bench", "cli"]


def test_the_import_contracts_hold(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0


def test_every_module_lives_in_a_room():
    package = ROOT / "lstmviz"
    loose = sorted(p.name for p in package.glob("*.py") if p.name != "__init__.py")
    assert loose == [], f"put these in a room: {loose}"
    assert sorted(p.name for p in package.iterdir() if p.is_dir() and (p / "__init__.py").is_file()) == sorted(ROOMS)


def test_no_function_runs_past_sixty_lines():
    import ast

    long = []
    for path in sorted((ROOT / "lstmviz").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > 60:
                long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert long == [], os.linesep.join(long)
