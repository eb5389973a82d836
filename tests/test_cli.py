"""The command line starts fast: asking for help never imports torch (over a second to load)."""

import subprocess
import sys

HELP_WITHOUT_TORCH = """
import sys
from lstmviz.cli.main import main

for args in (["--help"], ["train", "--help"], ["record", "--help"], ["vs-ngram", "--help"], ["bench", "record", "--help"]):
    try:
        main(args, prog_name="lstmviz")
    except SystemExit as done:
        assert done.code == 0, (args, done.code)
print("torch" in sys.modules)
"""


def test_help_does_not_import_torch():
    done = subprocess.run([sys.executable, "-c", HELP_WITHOUT_TORCH], capture_output=True, text=True, check=True)
    assert "Usage: lstmviz" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "False"


def test_the_package_loads_torch_only_when_a_model_is_asked_for():
    code = "import sys, lstmviz; before = 'torch' in sys.modules; lstmviz.load_checkpoint; print(before, 'torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True"]
