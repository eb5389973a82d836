"""Commands that write a store out as files: export (a heatmap), report (a static site),
export-lstmvis (an LSTMVis project)."""

from __future__ import annotations

import click

from ..core.options import TOP, comma_list
from .common import checked


@click.command()
@click.argument("store", type=click.Path())
@click.option("--neurons", required=True, help="Comma-separated unit ids, e.g. L2.c.117,L1.h.3 or L2.c~in_string")
@click.option("--range", "char_range", required=True, help="Characters START:END, e.g. 0:300.")
@click.option("--out", required=True, type=click.Path(), help="A .png, .svg, .pdf or .html file.")
@click.option("--shared-scale", is_flag=True, help="One colour scale for all rows (default: each row its own).")
def export(store, neurons, char_range, out, shared_scale) -> None:
    """Write the heatmap of NEURONS over a range of STORE's text to a file."""
    from ..core.neurons import parse_units
    from ..render.colours import neuron_scales
    from ..render.export import write_figure
    from ..render.figures import export_width, heatmap_figure, parse_range
    from ..store.open import open_store

    opened = open_store(store)
    start, stop = parse_range(char_range, len(opened))
    ids = [str(n) for n in parse_units(neurons)]
    for n in ids:
        opened.neuron(n, 0, 0)  # a bad id is an error before any work
    scales = None if shared_scale else neuron_scales(opened, ids)
    figure = heatmap_figure(opened, ids, start, stop, scales, export_width(stop - start))
    click.echo(f"wrote {write_figure(figure, out)}")


@click.command()
@click.argument("store", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="Folder to write (new, or empty).")
@click.option("--features", default=None, help="Comma-separated features to list (default: all).")
@click.option("--top", "top_k", default=3, show_default=True, callback=checked(TOP), help="Best cells listed per feature.")
def report(store, out, features, top_k) -> None:
    """A static report of STORE's best cells: a folder that opens from file://, no server needed."""
    from ..render.report import write_report
    from ..store.open import open_store

    folder = write_report(open_store(store), out, comma_list(features), top_k)
    click.echo(f"wrote {folder / 'index.html'}")


@click.command("export-lstmvis")
@click.argument("store", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="Project folder to write (new, or empty).")
@click.option("--kinds", default="h,c", show_default=True, help="Series kinds to export.")
def export_lstmvis_command(store, out, kinds) -> None:
    """STORE as an LSTMVis project (lstm.yml, states, words, dictionary, feature tracks)."""
    from ..render.lstmvis import export_lstmvis
    from ..store.open import open_store

    folder = export_lstmvis(open_store(store), out, comma_list(kinds))
    click.echo(f"wrote {folder} (open it with LSTMVis: python lstm_server.py -dir {folder.parent})")


COMMANDS = [export, report, export_lstmvis_command]
