"""A page's view lives in its URL query (``?store=...&neuron=...&pos=...``), so a view can be
shared and reloaded. Each page writes its view as a small frozen dataclass, a
:class:`ViewState`, whose fields are the query's keys (``field(metadata={"key": "t"})``
where the key differs from the field's name):

- ``View.from_query(query)`` reads a URL's query. A value that cannot be read
  (``pos=abc``) leaves its field at the default and says why, in one sentence, in
  ``problems``; keys the view does not know are ignored.
- ``view.to_query()`` writes the fields that differ from their defaults, so
  ``View.from_query(view.to_query()) == view``.
- A page then resolves the view against its catalog (the store's defaults filled in, each
  value checked against the store): ``resolve`` in each page's module. A value out of range
  (a store not open, a neuron the store lacks, a position past the text) gives way to the
  nearest valid one, with one sentence among ``problems`` (:meth:`ViewState.corrected`,
  :meth:`ViewState.on_store`, :func:`nearest_neuron`, :meth:`ViewState.at_position`); the
  page shows them once, above the view it could show (``components.view_notes``).

Also here: moving through a store (the next neuron, a position kept inside the text)."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from urllib.parse import parse_qs, urlencode

import numpy as np

from ..core.errors import LstmvizError
from ..core.neurons import NeuronId, UnitId, parse_unit
from ..core.options import comma_list
from ..store.reader import ActivationStore

Self = typing.TypeVar("Self", bound="ViewState")


# How a field of each type is read from the URL and written back. A flag is "yes" or absent.
_READERS = {str: str, int: int, bool: lambda text: text == "yes", tuple: comma_list}
_WRITERS = {str: str, int: str, bool: lambda flag: "yes", tuple: ",".join}


def _absent(value) -> bool:
    """Whether a URL says ``value`` by leaving its key out (no value, a flag not set, an empty
    list or text); 0 is a value."""
    return value is None or value is False or value == () or value == ""


@dataclass(frozen=True)
class ViewState:
    """A page's view: subclasses add the query's fields (``str``, ``int``, ``bool`` or
    ``tuple[str, ...]``, a comma list; ``| None`` where the page picks the default)."""

    problems: tuple[str, ...] = field(default=(), compare=False, kw_only=True)  # values the URL gave that cannot be read

    @classmethod
    def from_query(cls: type[Self], query: Mapping[str, str]) -> Self:
        values, problems = {}, []
        for f, key, kind in _fields(cls):
            text = query.get(key)
            if text in (None, ""):
                continue
            try:
                values[f.name] = _READERS[kind](text)
            except ValueError:
                problems.append(f"The {f.metadata.get('label', f.name)} {text!r} is not a number.")
        return cls(**values, problems=tuple(problems))

    def to_query(self) -> dict[str, str]:
        return {
            key: _WRITERS[kind](value)
            for f, key, kind in _fields(type(self))
            if (value := getattr(self, f.name)) != f.default and not _absent(value)
        }

    def search(self) -> str:
        """This view as the address bar's query (``?...``)."""
        return "?" + urlencode(self.to_query())

    def check(self: Self) -> Self:
        """This view when every value the URL gave could be read; else the first problem, as
        an error the page shows."""
        if self.problems:
            raise LstmvizError(self.problems[0])
        return self

    def replace(self: Self, **changes) -> Self:
        return dataclasses.replace(self, **changes)

    def corrected(self: Self, name: str, value, why: str) -> Self:
        """This view with field ``name`` at ``value``, the nearest the page can show to what
        the URL asked, and ``why`` (one sentence) among its problems."""
        return dataclasses.replace(self, **{name: value}, problems=(*self.problems, why))

    def as_shown(self: Self, resolved: Self) -> Self:
        """This view, as the URL gave it, with each value it gave that ``resolved`` had to
        correct replaced by the one shown; defaults it left out stay out. A user's next change
        starts from what the page shows."""
        changes = {
            f.name: getattr(resolved, f.name)
            for f, _, _ in _fields(type(self))
            if getattr(self, f.name) != f.default and getattr(self, f.name) != getattr(resolved, f.name)
        }
        return dataclasses.replace(self, **changes, problems=())

    def on_store(self: Self, catalog) -> tuple[Self, ActivationStore]:
        """This view on the store it names, or on the first open one (saying so) when none of
        that name is open; with that store."""
        view = self
        if view.store and view.store not in catalog.stores:
            why = f"No store named {view.store!r} is open here; showing {catalog.default}."
            view = view.corrected("store", catalog.default, why)
        name = view.store or catalog.default
        return view.replace(store=name), catalog.stores[name]

    def at_position(self: Self, store: ActivationStore, name: str = "pos") -> Self:
        """This view with its position ``name`` inside the store's text (the nearest end, saying so)."""
        asked = getattr(self, name)
        valid = clamp_position(store, asked)
        if valid == asked:
            return self
        return self.corrected(name, valid, f"Position {asked:,} is outside the text (0-{len(store) - 1:,}); showing {valid:,}.")


@cache
def _fields(cls: type[ViewState]) -> list[tuple[dataclasses.Field, str, type]]:
    """(field, query key, the type it is read as) for each field of a view in the query."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.name == "problems":
            continue
        kind = hints[f.name]
        if typing.get_origin(kind) in (typing.Union, types.UnionType):  # X | None
            kind = next(k for k in typing.get_args(kind) if k is not type(None))
        kind = typing.get_origin(kind) or kind  # tuple[str, ...] -> tuple
        out.append((f, f.metadata.get("key", f.name), kind))
    return out


def parse_query(search: str | None) -> dict[str, str]:
    """A page's URL query (``?store=...&neuron=...``) as a dict, first value of each key."""
    return {k: v[0] for k, v in parse_qs((search or "").lstrip("?")).items()}


def view_of(view_type: type[Self], search: str | None) -> Self:
    """The view a URL's query holds (``search``, as ``url.search`` gives it)."""
    return view_type.from_query(parse_query(search))


def url_for(view: ViewState, search: str | None):
    """The address bar's query for ``view``, or Dash's ``no_update`` when the URL already
    holds that view (so setting the controls from the URL does not loop)."""
    from dash import no_update

    new = view.search()
    return no_update if view_of(type(view), new) == view_of(type(view), search) else new


def neighbour(store: ActivationStore, neuron: NeuronId, step: int) -> NeuronId:
    """The previous or next neuron in store order (wrapping)."""
    row = (store.row_of(neuron) + step) % store.rows
    return store.neuron_of_row(row)


def nearest_neuron(store: ActivationStore, text: str, fallback: str) -> tuple[UnitId, str | None]:
    """The store's neuron nearest the id ``text`` (the same kind, the layer and index moved
    inside the store), or ``fallback`` when the store has no neuron of that kind or ``text``
    is no id; with the sentence that says so, or None when ``text`` names one of its neurons."""
    try:
        unit = parse_unit(text)
        store.neuron(unit, 0, min(1, len(store)))  # a neuron it holds, or a direction or feature it keeps
        return unit, None
    except LstmvizError as exc:
        problem = str(exc).rstrip(".")
    same_kind = [s for s in store.series if (s.kind, s.reverse) == _kind_of(text)]
    if same_kind:
        asked = NeuronId.parse(text)
        series = min(same_kind, key=lambda s: abs(s.layer - asked.layer))
        nearest = series.neuron(min(asked.index, series.units - 1))
    else:
        nearest = NeuronId.parse(fallback)
    return nearest, f"{problem}; showing {nearest}."


def _kind_of(text: str) -> tuple[str, bool] | None:
    try:
        n = NeuronId.parse(text)
    except LstmvizError:
        return None
    return n.kind, n.reverse


def clamp_position(store: ActivationStore, position: int) -> int:
    return int(np.clip(position, 0, max(len(store) - 1, 0)))
