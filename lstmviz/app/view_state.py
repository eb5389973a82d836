"""A page's view state lives in its URL query (``?store=...&neuron=...&pos=...``), so a view
can be shared and reloaded: reading and writing the query, and moving through a store
(the next neuron, a position kept inside the text)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode

import numpy as np

from ..core.neurons import NeuronId
from ..store.reader import ActivationStore


def neighbour(store: ActivationStore, neuron: NeuronId, step: int) -> NeuronId:
    """The previous or next neuron in store order (wrapping)."""
    row = (store.row_of(neuron) + step) % store.rows
    return store.neuron_of_row(row)


def clamp_position(store: ActivationStore, position: int) -> int:
    return int(np.clip(position, 0, max(len(store) - 1, 0)))


def parse_query(search: str | None) -> dict[str, str]:
    """The view state in a page's URL query (``?store=...&neuron=...``), first value of each."""
    return {k: v[0] for k, v in parse_qs((search or "").lstrip("?")).items()}


def changed_search(query: dict[str, str], search: str | None):
    """The URL query for ``query``, or Dash's ``no_update`` when the URL already says it
    (so setting controls from the URL does not loop)."""
    from dash import no_update

    new = "?" + urlencode(query)
    return no_update if new == (search or "") else new
