"""The command that reads what drives a unit: circuit."""

from __future__ import annotations

import click

from ..core.options import CONTROLS, TOP
from .common import checked, print_json


@click.command()
@click.argument("source", type=click.Path())
@click.option("--neuron", required=True, help="The unit, e.g. L2.c.90.")
@click.option("--feature", default=None, help="Sum over the positions of this binary feature, e.g. in_string.")
@click.option("--range", "char_range", default=None, metavar="A:B", help="Sum over characters A to B of the text.")
@click.option("--top", "top_k", default=5, show_default=True, callback=checked(TOP), help="Sources listed per gate; edges cut.")
@click.option("--levels", default=2, show_default=True, help="1: the unit's sources; 2: also their own sources.")
@click.option(
    "--controls", default=10, show_default=True, callback=checked(CONTROLS), help="Random edge sets cut beside the top ones."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def circuit(source, neuron, feature, char_range, top_k, levels, controls, as_json) -> None:
    """What drives NEURON: each gate's pre-activation split into one term per source (h_{t-1} of
    its layer, its input, the bias), averaged over the chosen positions, two levels back; and
    the change when its top edges are cut, beside random edges cut.

    SOURCE: a store (with the checkpoint it was recorded from), or a checkpoint (its test
    split, recorded once into the cache)."""
    from ..analysis.circuits import LEVELS, Selection, model_and_store
    from ..analysis.circuits import circuit as find_circuit
    from ..render.figures import parse_range

    LEVELS.check(levels)

    def say(ckpt, chars: int) -> None:
        if not as_json:
            click.echo(
                f"reading {ckpt.name}'s h and c on its test split ({chars:,} characters; recorded once, then cached)", err=True
            )

    ckpt, store = model_and_store(source, say)
    ckpt.model.check_neuron(neuron)  # a bad id is an error before the text is read
    span = None if char_range is None else parse_range(char_range, len(store))
    selection = Selection.of_store(store, feature, span)
    result = find_circuit(ckpt, store, neuron, selection, top_k, levels, controls)
    if as_json:
        print_json(result.to_json())
    else:
        click.echo(result.to_text())


COMMANDS = [circuit]
