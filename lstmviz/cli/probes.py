"""Commands about directions over many units: probe (a linear probe of every feature on
every series, beside the best single unit)."""

from __future__ import annotations

import click

from ..core.options import comma_list
from .common import print_json


@click.command()
@click.argument("store", type=click.Path())
@click.option("--features", default=None, help="Comma-separated features to probe (default: every built-in one).")
@click.option("--feature", "extra", multiple=True, metavar="NAME=REGEX", help="Add a feature marking regex matches.")
@click.option("--layers", default=None, help="Comma-separated layers to probe, from 1 (default: all).")
@click.option("--kinds", default=None, help="Series kinds to probe (default: h,c).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def probe(store, features, extra, layers, kinds, as_json) -> None:
    """Linear probes of each text feature on every layer and kind of STORE, trained on half its
    documents and scored on the other half, beside the best single unit; each probe's direction
    is kept in STORE as a unit (e.g. L2.c~in_string)."""
    from ..analysis.probes import parse_layers, probe_features
    from ..store.open import open_store
    from ..text.features import parse_feature_option

    opened = open_store(store)
    user = dict(parse_feature_option(opt) for opt in extra)
    names = [*comma_list(features), *user] if features else None
    report = probe_features(opened, names, user, parse_layers(layers), comma_list(kinds))
    if as_json:
        print_json(report.to_json())
    else:
        click.echo(report.to_text())


COMMANDS = [probe]
