"""What the commands share: options checked by the library's rules as they are parsed, and
JSON printing."""

from __future__ import annotations

import json

import click

from ..core.options import Bounded

RAY_HELP = "Run on the Ray cluster at ADDRESS (or, with no address, a local one): lstmviz[ray]."


def checked(setting: Bounded):
    """A click callback refusing a bad value with the library's one sentence for it, while
    the command line is parsed: before a model is loaded or a text read."""

    def check(ctx: click.Context, param: click.Parameter, value):
        return value if ctx.resilient_parsing else setting.check(value)

    return check


def print_json(data: object) -> None:
    click.echo(json.dumps(data, indent=1))
