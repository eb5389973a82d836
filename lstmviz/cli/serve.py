"""The dashboard command: serve stores or checkpoints (a checkpoint's test split recorded
into the cache once)."""

from __future__ import annotations

import click

from ..store.reader import ActivationStore


def open_for_dashboard(path: str | None, progress: bool = True) -> tuple[ActivationStore, str]:
    """A store as given, or a checkpoint's test split recorded into the cache (once): its h
    and c, which every page starts on; the gates are recorded when a page asks for them. With
    the name the dashboard shows it by (a cached store's file name is a hash)."""
    from ..recording.one_text import OneText
    from ..recording.sources import open_source

    source = open_source(path)
    if isinstance(source, ActivationStore):
        return source, source.name
    text = OneText.choose([source])
    size = text.uncached_bytes([source])  # 0: cached (a whole recording serves as well)
    if size:  # the time it takes is measured as it runs: the bar below says what is left
        click.echo(
            f"recording {source.name}'s test split once (later starts reuse it): {text.chars:,} characters, h and c, "
            f"about {size / 1e9:.1f} GB, the time left measured as it goes; gates are recorded when a page asks for them",
            err=True,
        )
    return text.store_for(source, progress=progress), f"{source.name} · test split"


@click.command()
@click.argument("paths", nargs=-1)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback unless told otherwise).")
@click.option("--port", default=8050, show_default=True)
@click.option("--token", default=None, help="Token required off loopback (default: a random one, printed in the URL).")
@click.option("--debug", is_flag=True, help="Dash debug mode (never on a shared network).")
def serve(paths, host, port, token, debug) -> None:
    """Open the dashboard on stores or checkpoints (default: the shipped model's test split)."""
    import secrets

    from ..app import LOOPBACK, check_serving, create_app
    from ..app import serve as run_server

    check_serving(host, port, debug)  # before any recording: a refusal should not cost minutes
    if host not in LOOPBACK:
        token = token or secrets.token_urlsafe(24)
        click.echo(f"lstmviz: warning: serving on {host}: every store named here is readable by anyone with the token.", err=True)
    elif token is not None:
        click.echo("lstmviz: on loopback no token is asked for; --token is ignored.", err=True)
        token = None
    stores, names = zip(*(open_for_dashboard(p) for p in (paths or [None])), strict=True)
    app = create_app(list(stores), list(names))
    for name in app.catalog.stores:
        app.catalog.prepare(name)  # before the first page is served (cached in the store)
    url = f"http://{host}:{port}/" + (f"?token={token}" if token else "")
    click.echo(f"lstmviz dashboard on {url}  (Ctrl-C stops it)", err=True)
    run_server(app, host=host, port=port, debug=debug, token=token)


COMMANDS = [serve]
