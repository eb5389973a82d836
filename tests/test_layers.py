"""The package's one-way layering, checked: each module imports only modules of its own
layer or the layers below it (corpus -> model -> record -> store -> analysis -> render ->
app/cli). The README's architecture section shows the same table."""

import ast
from pathlib import Path

import lstmviz

LAYERS = {  # lowest first
    "foundation": {"errors", "atomic", "neurons", "colours", "hooks", "instrument", "step_kernel", "stepwise", "variants"},
    "model": {"corpus", "lanes", "model", "checkpoint", "interventions", "train", "importer"},
    "record": {"store", "recording", "sources", "sampling", "sharded_store", "sharding"},
    "analysis": {
        "features",
        "baseline",
        "distribution",
        "rankings",
        "contexts",
        "summaries",
        "saturation",
        "hypotheses",
        "evaluate",
        "compare",
        "ablation",
        "contrast",
        "lstmvis",
        "shard_rankings",
    },
    "render": {"render", "export", "report"},
    "front": {"app", "notebook", "cli", "bench", "loadtest", "__init__"},
}
RANK = {module: rank for rank, modules in enumerate(LAYERS.values()) for module in modules}
PACKAGE = Path(lstmviz.__file__).parent


def _top(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imported(path: Path) -> set[str]:
    """The package's top-level modules that ``path`` imports (relative imports)."""
    out = set()
    inside_app = path.relative_to(PACKAGE).parts[0] == "app"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            up = node.level - (1 if inside_app else 0)  # "..x" from lstmviz/app/ is lstmviz/x
            if up == 0:
                continue  # within app/
            if node.module:
                out.add(node.module.split(".")[0])
            else:
                out.update(alias.name for alias in node.names)
    return out


def test_every_module_has_a_layer():
    modules = {_top(p) for p in PACKAGE.glob("*.py")} | {"app"}
    assert modules == set(RANK), f"give these a layer: {sorted(modules ^ set(RANK))}"


def test_imports_only_go_down_the_layers():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = _top(path)
        for other in _imported(path):
            if RANK[other] > RANK[me]:
                upward.append(f"{path.relative_to(PACKAGE)} imports {other}")
    assert upward == []
