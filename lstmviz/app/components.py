"""Pieces several pages share."""

from __future__ import annotations

from dash import Output, dcc, html

from ..render.colours import COLOUR_STOPS, SCALE_HELP, SCALES, ColourScale
from .catalog import NoModel

HIDDEN = {"display": "none"}  # the style of a part of a page with nothing to show yet (no empty plot frames)


def message(what: str | Exception, *more, hint: bool = False) -> html.Div:
    """A message in the page: what is wrong, in one sentence (red), or with ``hint`` a note
    (grey), followed by ``more`` (a progress bar, say). That a store has no model is a
    note, not an error: nothing the user did is wrong."""
    note = hint or isinstance(what, NoModel)
    return html.Div([str(what), *more] if more else str(what), className="hint" if note else "error")


def ask_to_record(what: str, cost: int, href: str, link_id: str) -> html.Div:
    """What a recording will cost on disk, said before it starts, and a link (``href``, the
    page's view with the user's agreement in it) that starts it."""
    note = (
        f"{what}: about {cost / 1e9:.1f} GB in the cache, once (“lstmviz cache list” shows it, “lstmviz cache clear” frees it). "
    )
    return message(note, dcc.Link("Record and go on ▸", href=href, id=link_id), hint=True)


def text_panel(panel_id: str, hover_id: str, className: str = "text-panel") -> list[html.Div]:
    """A text the painter (``assets/painter.js``) draws in ``panel_id``, below the line
    ``hover_id`` where it writes what it knows of the character under the pointer."""
    return [
        html.Div(id=hover_id, className="hover-line"),
        html.Div(id=panel_id, className=className, **{"data-hover": hover_id}),
    ]


def view_notes(view) -> html.Div | None:
    """What a page changed from its URL to show the nearest valid view (``view.problems``,
    one sentence each), as one message; None when it changed nothing."""
    return message(" ".join(view.problems)) if view.problems else None


def colour_legend(prefix: str) -> html.Div:
    """The colour scale as a bar with what it shows (``{prefix}-label``) and the values at
    its ends (``{prefix}-low``, ``{prefix}-high``), all set by the page: see :func:`legend_of`."""
    stops = ", ".join(f"rgb{c} {t * 100:.0f}%" for t, c in COLOUR_STOPS)
    return html.Div(
        className="legend",
        children=[
            html.Span(id=f"{prefix}-label", className="legend-label"),
            html.Span(id=f"{prefix}-low"),
            html.Div(className="bar", style={"background": f"linear-gradient(to right, {stops})"}),
            html.Span(id=f"{prefix}-high"),
        ],
    )


def legend_outputs(prefix: str) -> dict[str, Output]:
    """The outputs that set the legend ``colour_legend(prefix)``, named as :func:`legend_of` names them."""
    return {f"legend_{part}": Output(f"{prefix}-{part}", "children") for part in ("low", "high", "label")}


def legend_of(scale: ColourScale) -> dict[str, str]:
    """A legend's low end, high end and label for ``scale`` (see :func:`legend_outputs`). A
    sequential (gate) scale starts at the bar's white middle, so its low end is said in the label."""
    low, high = scale.ends()
    if scale.low >= scale.centre:  # the bar's left half is not used
        low, high = f"white {low}", f"red {high}"
    return {"legend_low": low, "legend_high": high, "legend_label": f"{scale.label}:"}


def scale_picker(component_id: str) -> dcc.Dropdown:
    """The colour scale menu ("default": the scale chosen for the neuron). It starts empty
    (None), so a page's first call, which lists every input, changes nothing; the page sets
    it from the URL."""
    options = [{"label": "colours: chosen for the neuron", "value": "default"}]
    options += [{"label": f"colours: {name}", "value": name, "title": SCALE_HELP[name]} for name in SCALES]
    style = {"width": "15em"}
    return dcc.Dropdown(id=component_id, options=options, value=None, clearable=False, searchable=False, style=style)
