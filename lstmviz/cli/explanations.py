"""``lstmviz explain``: every unit of a store explained in words, scored on held-out text."""

from __future__ import annotations

import click

from ..core.options import comma_list
from .common import print_json


@click.command("explain")
@click.argument("store", type=click.Path())
@click.option("--neurons", default=None, help="Only these units, e.g. L1.h.200,L2.c.90 (their kinds are explained and cached).")
@click.option("--kinds", default=None, help="Series kinds to explain (default: h,c; i,f,g,o add gates).")
@click.option("--feature", "extra", multiple=True, metavar="NAME=REGEX", help="Add a hypothesis of yours to the grammar.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def explain(store, neurons, kinds, extra, as_json) -> None:
    """Explain every unit of STORE in words: the description that best simulates it, scored on held-out documents."""
    from ..analysis.explain.explainer import explain as explain_units
    from ..store.open import open_store
    from ..text.features import parse_feature_option

    for option in extra:
        parse_feature_option(option)  # a bad NAME=REGEX is one sentence before anything runs
    features = dict(option.split("=", 1) for option in extra) or None
    found = explain_units(open_store(store), neurons, comma_list(kinds) or None, features)
    if as_json:
        print_json(found.to_json())
    else:
        click.echo(found.to_text())


COMMANDS = [explain]
