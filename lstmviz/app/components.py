"""Pieces several pages share."""

from __future__ import annotations

from dash import html

from ..render import COLOUR_STOPS


def colour_legend(low_id: str, high_id: str) -> html.Div:
    """The colour scale as a bar, its ends labelled by ``low_id`` and ``high_id`` (set by the page)."""
    stops = ", ".join(f"rgb{c} {t * 100:.0f}%" for t, c in COLOUR_STOPS)
    return html.Div(
        className="legend",
        children=[
            html.Span(id=low_id),
            html.Div(className="bar", style={"background": f"linear-gradient(to right, {stops})"}),
            html.Span(id=high_id),
        ],
    )
