"""Commands that read what a store says: find-cells, vs-ngram, compare, emergence."""

from __future__ import annotations

import copy

import click

from ..analysis.ngram import DEFAULT_MAX_ORDER
from ..core.options import MAX_CHARS, MAX_ORDER, TOP, comma_list
from .common import RAY_HELP, checked, print_json


@click.command("find-cells")
@click.argument("store", type=click.Path())
@click.option("--feature", "extra", multiple=True, metavar="NAME=REGEX", help="Add a feature marking regex matches.")
@click.option("--only", multiple=True, help="Rank only these features (repeatable).")
@click.option("--kinds", default=None, help="Series kinds to rank (default: h,c, the cells every page ranks; i,f,g,o add gates).")
@click.option("--top", "top_k", default=5, show_default=True, callback=checked(TOP), help="Neurons to show per feature.")
@click.option("--ray", "ray_address", is_flag=False, flag_value="", default=None, metavar="[ADDRESS]", help=RAY_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def find_cells(store, extra, only, kinds, top_k, ray_address, as_json) -> None:
    """Rank every neuron of STORE against text features: which cells track strings, comments, indentation..."""
    from ..analysis.rankings import CellRankings, rank_neurons, ranked_kinds
    from ..store.open import open_store
    from ..text.features import parse_feature_option, store_features

    opened = open_store(store)
    feats = store_features(opened, dict(parse_feature_option(opt) for opt in extra), list(only) or None)
    kind_list = comma_list(kinds) or ranked_kinds(opened)
    if ray_address is None:
        rankings = rank_neurons(opened, feats, kind_list)
    else:  # shard by shard on the cluster: the same rankings to float rounding
        from ..scale.shard_rankings import rank_neurons_sharded

        rankings = rank_neurons_sharded(opened, feats, kind_list, ray_address or None)
    found = CellRankings(opened, feats.methods, rankings)
    if as_json:
        from ..analysis.explain.explainer import with_explanations

        print_json(with_explanations(found.to_json(top_k), opened))
    else:
        click.echo(found.to_text(top_k))


@click.command("vs-ngram")
@click.argument("store", type=click.Path())
@click.option("--top", "top_k", default=15, show_default=True, callback=checked(TOP), help="Characters to show at each end.")
@click.option(
    "--max-order", default=DEFAULT_MAX_ORDER, show_default=True, callback=checked(MAX_ORDER), help="Highest n-gram order to try."
)
@click.option("--json", "as_json", is_flag=True)
def vs_ngram(store, top_k, max_order, as_json) -> None:
    """Which characters the recurrent model predicts better than the n-gram, and worse (Karpathy et al., sec. 5)."""
    from ..analysis.evaluate import model_vs_ngram
    from ..store.open import open_store

    result = model_vs_ngram(open_store(store), max_order)
    if as_json:
        print_json(result.to_json())
    else:
        click.echo(result.to_text(top_k))


# `errors` was this command's first name; it still works, unlisted.
errors = copy.copy(vs_ngram)
errors.name, errors.hidden = "errors", True


@click.command()
@click.argument("a", type=click.Path())
@click.argument("b", type=click.Path())
@click.argument("paths", nargs=-1)
@click.option(
    "--max-chars",
    type=int,
    default=None,
    callback=checked(MAX_CHARS),
    help="Compare on at most this many characters of the text.",
)
@click.option("--top", "top_k", default=10, show_default=True, callback=checked(TOP), help="Best-matched neuron pairs to list.")
@click.option("--json", "as_json", is_flag=True)
def compare(a, b, paths, max_chars, top_k, as_json) -> None:
    """Compare two checkpoints or stores on the same text: CKA, matched neurons, cells, loss.

    Text: PATHS if given, else the text of a given store, else A's test split."""
    from ..analysis.compare import compare_stores
    from ..recording.one_text import OneText
    from ..recording.sources import open_source

    sources = [open_source(a), open_source(b)]
    text = OneText.choose(sources, paths, max_chars)

    def say(ckpt) -> None:
        click.echo(f"recording {ckpt.name}'s h and c on {text.chars:,} characters (cached for next time)", err=True)

    result = compare_stores(*text.stores(sources, before_recording=say))
    if as_json:
        print_json(result.to_json())
    else:
        click.echo(result.to_text(top_k))


@click.command()
@click.argument("checkpoint", type=click.Path())
@click.argument("paths", nargs=-1)
@click.option(
    "--max-chars",
    type=int,
    default=100_000,
    show_default=True,
    callback=checked(MAX_CHARS),
    help="Characters of the text to record each snapshot on.",
)
@click.option("--json", "as_json", is_flag=True)
def emergence(checkpoint, paths, max_chars, as_json) -> None:
    """When the cells appear: bpc and the best score per feature at every snapshot."""
    from ..analysis.compare import emergence as follow
    from ..model.checkpoint import load_checkpoint
    from ..recording.one_text import OneText

    ckpt = load_checkpoint(checkpoint)
    result = follow(OneText.choose([ckpt], paths, max_chars).snapshots(ckpt))
    if as_json:
        print_json(result.to_json())
    else:
        click.echo(result.to_text())


COMMANDS = [find_cells, vs_ngram, errors, compare, emergence]
