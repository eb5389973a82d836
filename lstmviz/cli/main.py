"""The ``lstmviz`` command line: the group that holds every command. The commands live by
what they do (models, recording, analysis, interventions, attribution, circuits, outputs, serve, bench); each
parses, calls the library and prints what the result says of itself.

Every :class:`LstmvizError`, from a command or from an option's check, becomes one sentence
on stderr and exit status 2.
"""

from __future__ import annotations

import signal
import sys
import threading
import warnings

import click

from ..core.errors import LstmvizError
from . import analysis, attribution, circuits, dictionary, explanations, interventions, models, outputs, probes, recording, serve
from .bench import bench


class _Commands(click.Group):
    """A group whose user errors, raised while a command's options are checked or while it
    runs, end as one line on stderr and exit status 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except LstmvizError as exc:
            click.echo(f"lstmviz: {exc}", err=True)
            sys.exit(2)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lstmviz", message="lstmviz %(version)s")
def main() -> None:
    """See inside character-level recurrent networks."""
    # `kill` (SIGTERM) stops a command the way Ctrl-C does: training saves a resumable
    # checkpoint, a recording removes its unfinished store.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    warnings.simplefilter("default")
    warnings.formatwarning = lambda msg, *a, **k: f"lstmviz: warning: {msg}\n"


for _command in [
    *models.COMMANDS,
    *recording.COMMANDS,
    *analysis.COMMANDS,
    *explanations.COMMANDS,
    *dictionary.COMMANDS,
    *interventions.COMMANDS,
    *probes.COMMANDS,
    *attribution.COMMANDS,
    *circuits.COMMANDS,
    *outputs.COMMANDS,
    *serve.COMMANDS,
    bench,
]:
    main.add_command(_command)


if __name__ == "__main__":
    main()
