"""The documentation runs: every ```python block of README.md and docs/*.md is what a user
copies, so the tests run it.

Each file's blocks run in order in one fresh interpreter (a later block may use what an
earlier one made), in an empty temporary folder (so "stdlib-test.store" is written there),
with the recordings cache there too. A block fenced ```python no-run is shown but not run
here (it needs a Ray cluster, or starts a server and waits): it is still compiled, so it
cannot rot into a syntax error. Other languages (```bash) are not run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```[ \t]*$", re.M | re.S)
RUN_SECONDS = 600  # the slowest file (README.md) runs in about 20 s on 2 cores

# Run each block compiled under the Markdown file's own name, padded so its line numbers
# are the file's: a traceback then shows the failing line of the page.
RUNNER = """
import json, sys, time
namespace = {"__name__": "__main__"}
for block in json.load(sys.stdin):
    code = "\\n" * (block["line"] - 1) + block["code"]
    started = time.perf_counter()
    exec(compile(code, block["file"], "exec"), namespace)
    print(f"{block['file']}:{block['line']}: ran in {time.perf_counter() - started:.1f} s", file=sys.stderr)
"""


def blocks(path: Path, info: str = "python") -> list[dict]:
    """The fenced blocks of ``path`` whose info string is ``info``, with the file line each starts on."""
    text = path.read_text(encoding="utf-8")
    found = []
    for m in FENCE.finditer(text):
        if m.group(1).strip() == info:
            found.append({"file": str(path), "line": text.count("\n", 0, m.start(2)) + 1, "code": m.group(2)})
    return found


def run_blocks(found: list[dict], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    env["LSTMVIZ_CACHE"] = str(cwd / "cache")
    return subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=json.dumps(found),
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
    )


def test_the_runner_leaves_no_run_blocks_out_and_names_the_failing_line_of_the_page(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "Intro.\n\n```python\nx = 1\n```\n\n```python no-run\nx = 2\n```\n\n"
        "More.\n\n```python\nassert x == 2, 'x is not 2'\n```\n"
    )
    assert [b["line"] for b in blocks(page)] == [4, 14] and [b["line"] for b in blocks(page, "python no-run")] == [8]
    result = run_blocks(blocks(page), tmp_path)
    assert result.returncode != 0
    assert f'File "{page}", line 14' in result.stderr and "x is not 2" in result.stderr


@pytest.mark.parametrize("path", [p for p in DOCS if blocks(p)], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_python_block_runs(path, tmp_path):
    result = run_blocks(blocks(path), tmp_path)
    assert result.returncode == 0, f"{path.name}'s Python blocks failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_blocks_marked_no_run_still_compile(path):
    for block in blocks(path, "python no-run"):
        compile("\n" * (block["line"] - 1) + block["code"], block["file"], "exec")


def test_the_readme_is_a_guide_of_at_most_300_lines():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 300


def test_ci_runs_the_readmes_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    command = ci[ci.index("# The README's test command, verbatim:") + 1]
    command = command.replace("pip install -q ", "pip install ")  # CI installs quietly; nothing else differs
    assert command in [b["code"].strip() for b in blocks(ROOT / "README.md", "bash")]


def test_ci_runs_the_test_command_inside_a_fresh_virtualenv(tmp_path):
    # Everything the script runs before the test command must leave python3 in a new venv.
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    setup = ci[: ci.index("# The README's test command, verbatim:")]
    script = tmp_path / "setup"
    script.write_text("\n".join([*setup, 'python3 -c "import sys; print(sys.prefix, sys.base_prefix)"']) + "\n")
    run = subprocess.run(["bash", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    prefix, base = run.stdout.split()
    assert prefix != base and Path(prefix).name == "venv"
    assert not Path(prefix).exists()  # removed when the script ends


# Pages that another branch adds (docs/performance.md is generated from the benchmarks'
# JSON); empty this once they are merged.
ARRIVING = {"docs/performance.md"}


def test_every_relative_link_in_the_docs_names_a_file_that_exists():
    missing = []
    for path in DOCS:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8")):
            linked = (path.parent / target).resolve()
            if "://" not in target and not linked.exists() and linked.relative_to(ROOT).as_posix() not in ARRIVING:
                missing.append(f"{path.relative_to(ROOT)} -> {target}")
    assert not missing, missing
