"""The command that trains a sparse dictionary on one series of a store: dictionary."""

from __future__ import annotations

import click

from ..analysis.dictionary_options import BATCH, SPLICE_CHARS, STEPS, DictionaryOptions, K
from ..core.errors import ConfigError
from ..core.options import MAX_CHARS
from .common import checked, print_json


def _layer(ctx: click.Context, param: click.Parameter, value):
    if value is not None and value < 1:
        raise ConfigError(f"--layer counts from 1, as neuron ids do (L1.c.52), not {value}.")
    return value


@click.command()
@click.argument("store", type=click.Path())
@click.option("--layer", type=int, required=True, callback=_layer, help="The layer, from 1 (as in L1.c.52).")
@click.option("--kind", type=click.Choice(["h", "c"]), required=True, help="The series: h or c.")
@click.option(
    "--size", default=DictionaryOptions.size, show_default=True, help="Features: a multiple of the units (8x) or a number."
)
@click.option("--k", default=DictionaryOptions.k, show_default=True, callback=checked(K), help="Features active per character.")
@click.option("--steps", default=DictionaryOptions.steps, show_default=True, callback=checked(STEPS), help="Training steps.")
@click.option("--batch", default=DictionaryOptions.batch, show_default=True, callback=checked(BATCH), help="Characters per step.")
@click.option("--seed", default=0, show_default=True, help="Seed for the initial weights and the batches.")
@click.option(
    "--max-chars",
    type=int,
    default=SPLICE_CHARS,
    show_default=True,
    callback=checked(MAX_CHARS),
    help="Characters of the store's text the spliced bits per character are measured on.",
)
@click.option(
    "--out", type=click.Path(), default=None, help="Directory to save it in (default: STORE/dictionaries/SERIES-SIZE-kK)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def dictionary(store, layer, kind, size, k, steps, batch, seed, max_chars, out, as_json) -> None:
    """Train a sparse dictionary (a top-k sparse autoencoder) on one series of STORE, save it in
    SAELens's format, and report the variance it explains, the bits per character with the
    series replaced by its reconstruction, and the features that track the text's features."""
    from ..analysis.dictionary import dictionary as train_and_report

    report = train_and_report(store, layer, kind, size, k, steps, batch=batch, seed=seed, splice_chars=max_chars, out=out)
    if as_json:
        print_json(report.to_json())
    else:
        click.echo(report.to_text())


COMMANDS = [dictionary]
