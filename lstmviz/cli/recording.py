"""Commands that record a model's states, and the cache of recordings made for you."""

from __future__ import annotations

import time

import click

from ..core.errors import ConfigError
from ..core.options import LANES, MAX_CHARS, OLDER_THAN, SHARDS, comma_list
from ..store.format import DEFAULT_LANES
from .common import RAY_HELP, checked, print_json


@click.command()
@click.argument("checkpoint", type=click.Path())
@click.argument("paths", nargs=-1)
@click.option("--out", required=True, type=click.Path(), help="Store directory to write.")
@click.option("--max-chars", type=int, default=None, callback=checked(MAX_CHARS), help="Record at most this many characters.")
@click.option(
    "--lanes",
    default=DEFAULT_LANES,
    show_default=True,
    callback=checked(LANES),
    help="Documents recorded side by side (the batch).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing store.")
@click.option("--series", "kinds", default=None, help="Kinds to record, e.g. h,c (default: all; h,c is a third of the size).")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option("--ray", "ray_address", is_flag=False, flag_value="", default=None, metavar="[ADDRESS]", help=RAY_HELP)
@click.option(
    "--shards", type=int, default=None, callback=checked(SHARDS), help="With --ray: shards to write (default: one per worker)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def record(checkpoint, paths, out, max_chars, lanes, overwrite, kinds, device, ray_address, shards, as_json) -> None:
    """Record every state of every layer of CHECKPOINT over its test split (or PATHS) into a store
    (with --ray: a sharded store, recorded on a Ray cluster; a rerun resumes it)."""
    from ..model.checkpoint import load_checkpoint
    from ..model.train import resolve_device
    from ..recording.one_text import evaluation_documents
    from ..recording.recorder import RecordingDone, check_files_fit, record_activations

    if shards is not None and ray_address is None:
        raise ConfigError("--shards needs --ray: without it the store is recorded here, in one piece.")
    ckpt = load_checkpoint(checkpoint, device=resolve_device(device))
    kinds = comma_list(kinds)
    if paths and max_chars is None:
        check_files_fit(ckpt, paths, out, kinds)  # before reading: a text too big to record is not read whole
    docs = evaluation_documents(ckpt, paths, max_chars)
    t0 = time.perf_counter()  # until the store is on disk and in place
    if ray_address is not None:
        from ..scale.sharding import record_sharded
        from ..text.lanes import limit_chars

        options = {"shards": shards, "address": ray_address or None, "kinds": kinds, "lanes": lanes, "overwrite": overwrite}
        store = record_sharded(ckpt.path, limit_chars(docs, max_chars), out, **options)
    else:
        options = {"max_chars": max_chars, "lanes": lanes, "overwrite": overwrite, "kinds": kinds, "progress": not as_json}
        store = record_activations(ckpt, docs, out, **options)
    done = RecordingDone(store, time.perf_counter() - t0)
    if as_json:
        print_json(done.to_json())
    else:
        click.echo(done.to_text())


@click.group()
def cache() -> None:
    """Recordings kept for you (by serve, compare, emergence): list them or clear them."""


@cache.command("list")
@click.option("--json", "as_json", is_flag=True)
def cache_list(as_json) -> None:
    """What the cache holds ($LSTMVIZ_CACHE, default ~/.cache/lstmviz), largest first."""
    from ..recording.sources import cache_listing

    listing = cache_listing()
    if as_json:
        print_json(listing.to_json())
    else:
        click.echo(listing.to_text())


@cache.command("clear")
@click.option(
    "--older-than",
    "days",
    type=float,
    default=None,
    callback=checked(OLDER_THAN),
    help="Only entries not used for this many days.",
)
def cache_clear(days) -> None:
    """Remove cached recordings (all, or those older than --older-than DAYS); one being written is left alone."""
    from ..recording.sources import clear_cache

    click.echo(clear_cache(days).to_text())


COMMANDS = [record, cache]
