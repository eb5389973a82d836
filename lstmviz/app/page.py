"""One way to write a dashboard page: a :class:`Page` subclass with a path, a title, a
``layout()`` and its callbacks as methods marked with :func:`callback` (browser-side ones
listed in ``clientside``). ``create_app`` makes one instance per app, over that app's
catalog, and registers it. A page's view state (what its URL holds) is a
``view_state.ViewState`` in the page's module.

A callback that sets several outputs names them (a dict of Outputs) and returns a dict of
the ones it sets; the others keep their value. So adding an output cannot shift another,
and "leave it" is said by leaving it out, not by a ``no_update`` at the right place.

Every server callback of a page runs only while that page is shown. The address bar
(``url``) is shared by all pages, so a link that leaves the Neuron page for the Heatmap
changes ``url.search`` while the Neuron page's components are still there for a moment: the
guard here keeps the Neuron page from reading the Heatmap's query (and, say, starting a
recording for it). It is written once here instead of once per callback.

Why not Dash Pages: its registry (``dash.page_registry``) is one per process, but lstmviz
builds several apps in one process, each over its own stores (a notebook's
``dashboard()`` per store, the tests' servers side by side), so a page's layout must belong
to its app; a page here is an object bound to its app's catalog."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import dash
from dash import Output, State
from dash.exceptions import PreventUpdate

from .catalog import Catalog


@dataclass(frozen=True)
class CallbackSpec:
    output: Output | dict[str, Output]
    deps: tuple
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Clientside:
    """A callback run in the browser: ``namespace.function`` of the assets' scripts."""

    namespace: str
    function: str
    deps: tuple
    options: dict = field(default_factory=dict)


def callback(output: Output | dict[str, Output], *deps, **options):
    """Mark a page method as a Dash callback setting ``output`` from ``deps`` (Inputs and
    States, in the order the method takes its arguments); ``options`` go to ``app.callback``.
    ``output`` is one Output (the method returns its value) or several by name (the method
    returns a dict of the ones it sets; those it leaves out keep their value)."""

    def mark(method):
        method.callback_spec = CallbackSpec(output, deps, options)
        return method

    return mark


def clientside(namespace: str, function: str, *deps, **options) -> Clientside:
    return Clientside(namespace, function, deps, options)


def only_on(path: str, method):
    """``method`` with the page's path as an extra last argument (``State("url",
    "pathname")``), run only when the browser shows ``path``."""

    @functools.wraps(method)
    def guarded(*args):
        *given, pathname = args
        if (pathname or "/") != path:
            raise PreventUpdate
        return method(*given)

    return guarded


def by_name(names: tuple[str, ...], method):
    """``method``, which returns a dict of named outputs, as Dash calls it: every output in
    order, ``no_update`` for those it leaves out."""

    @functools.wraps(method)
    def in_order(*args):
        named = method(*args)
        unknown = set(named) - set(names)
        if unknown:
            raise KeyError(f"{method.__qualname__} sets outputs it does not declare: {', '.join(sorted(unknown))}")
        return [named.get(name, dash.no_update) for name in names]

    return in_order


def register_callback(app: dash.Dash, path: str, method, spec: CallbackSpec) -> None:
    output = spec.output
    if isinstance(output, dict):
        method, output = by_name(tuple(output), method), list(output.values())
    app.callback(*spec.deps, State("url", "pathname"), output=output, **spec.options)(only_on(path, method))


def register_clientside(app: dash.Dash, callbacks) -> None:
    for c in callbacks:
        app.clientside_callback(dash.ClientsideFunction(namespace=c.namespace, function_name=c.function), *c.deps, **c.options)


class Page:
    """A page of the dashboard, bound to one app's catalog."""

    path: str = "/"
    title: str = ""
    clientside: tuple[Clientside, ...] = ()

    def __init__(self, catalog: Catalog):
        self.catalog = catalog

    def layout(self):
        raise NotImplementedError

    def parts(self) -> list:
        """Components with callbacks of their own shown on this page (see ``live_text.py``)."""
        return []

    def register(self, app: dash.Dash) -> None:
        for name in dir(type(self)):
            spec = getattr(getattr(type(self), name), "callback_spec", None)
            if spec is not None:
                register_callback(app, self.path, getattr(self, name), spec)
        register_clientside(app, self.clientside)
        for part in self.parts():
            part.register(app, self.path)
