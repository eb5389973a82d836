"""lstmviz in a notebook: the dashboard's views as objects a notebook displays.

    lstmviz.show("stdlib-lstm", neuron="L2.c.90", text="x = 'a string'  # and code\\n")
    lstmviz.show(store, neuron="L1.c.52", range="1200:1800")
    lstmviz.heatmap(store, ["L2.c.90", "L1.c.52"], range="0:200")   # a plotly figure
    lstmviz.dashboard([store])                                        # the whole dashboard, inline

``show`` gives HTML with inline styles only and the values and guesses in each character's
``title`` (hover): no script, nothing fetched from a CDN, so it renders in Jupyter, VS Code,
a saved notebook or an exported HTML file alike.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

import numpy as np

from ..analysis.distribution import stats_of
from ..core.characters import name_of
from ..core.errors import LstmvizError
from ..core.neurons import UnitId, parse_unit, parse_units
from ..model.checkpoint import Checkpoint, load_checkpoint, recorded_path
from ..recording.recorder import record_text
from ..render.colours import ColourScale, scale_for
from ..render.figures import coloured_html, heatmap_figure, parse_range
from ..store.open import open_store
from ..store.reader import ActivationStore

SHOWN_CHARS = 2000  # shown when neither a text nor a range is given
MAX_TEXT = 100_000


class ColouredText:
    """Text coloured by one neuron; a notebook displays it (``_repr_html_``)."""

    def __init__(self, text: str, values: np.ndarray, neuron: str, scale: ColourScale, titles: list[str], note: str = ""):
        self.text, self.values, self.neuron, self.scale, self.titles, self.note = text, values, neuron, scale, titles, note

    def __repr__(self) -> str:
        return f"ColouredText({self.neuron}, {len(self.text)} characters, colours: {self.scale.label})"

    def _repr_html_(self) -> str:
        spans = coloured_html(self.text, self.values, self.scale, self.titles, keep_lines=True)
        low, high = self.scale.ends()
        head = f"{escape(self.scale.label)}: blue {low}, white {self.scale.centre:+.2f}, red {high}; hover a character"
        note = f"; {escape(self.note)}" if self.note else ""
        return (
            f'<div class="lstmviz-text"><div style="font:12px sans-serif;color:#555;margin:2px 0">{head}{note}</div>'
            '<pre style="white-space:pre-wrap;font:13px/1.45 ui-monospace,monospace;margin:0;padding:6px;'
            f'background:#fff;border:1px solid #ddd">{spans}</pre></div>'
        )

    def to_html(self) -> str:
        """A standalone page of this view."""
        return f'<!doctype html><meta charset="utf-8"><title>{escape(self.neuron)}</title>{self._repr_html_()}'


def _opened(source) -> ActivationStore | Checkpoint:
    if isinstance(source, ActivationStore | Checkpoint):
        return source
    path = Path(source)
    if (path / "meta.json").is_file():
        return open_store(path)
    return load_checkpoint(source)


def _titles(text: str, values, neuron: str, top_ids, top_probs, vocab: list[str], first: int = 0) -> list[str]:
    """Each character's hover text: position, value, and the model's top guesses for the next."""
    titles = []
    for i, (ch, v) in enumerate(zip(text, values, strict=True)):
        guesses = ", ".join(
            f"'{name_of(vocab[j])}' {100 * float(p):.1f}%"
            for j, p in zip(top_ids[i], top_probs[i], strict=True)
            if j < len(vocab)
        )
        titles.append(f"position {first + i}  '{name_of(ch)}'  {neuron} = {float(v):.3f}  |  next: {guesses}")
    return titles


def show(
    source, neuron: str | UnitId, text: str | None = None, range: str | tuple[int, int] | None = None, scale: str | None = None
) -> ColouredText:
    """``neuron`` over ``text`` (recorded now, in memory, by the checkpoint: ``source`` a
    checkpoint, or a store whose checkpoint it was) or over a ``range`` of a store's text
    ("START:END"), coloured on the dashboard's colour ``scale`` (default: the one chosen for
    the neuron; see ``lstmviz.render.colours``). With a store, the scale comes from the neuron's
    whole series, as in the dashboard."""
    from ..analysis.distribution import value_stats

    opened = _opened(source)
    store = opened if isinstance(opened, ActivationStore) else None
    note = ""
    if text is not None:
        if len(text) > MAX_TEXT:
            raise LstmvizError(f"The text has {len(text):,} characters; show() takes at most {MAX_TEXT:,}.")
        ckpt = opened if store is None else load_checkpoint(recorded_path(store.checkpoint))
        n = ckpt.model.check_neuron(neuron)
        view, start, stop = record_text(ckpt, text, kinds=(n.kind,), name="shown text"), 0, len(text)
        unknown = ckpt.vocab.unknown_chars(text)
        note = f"read as unknown: {''.join(unknown)!r}" if unknown else ""
    elif store is not None:
        n = parse_unit(neuron)  # a neuron, or a direction kept in the store
        store.neuron(n, 0, 0)
        view = store
        start, stop = parse_range(range, len(store)) if isinstance(range, str) else (range or (0, min(len(store), SHOWN_CHARS)))
    else:
        raise LstmvizError("Give the text to show (text=...), or a store and a range of it.")
    values, shown = view.neuron(n, start, stop), view.text(start, stop)
    colours = scale_for(str(n), value_stats(store, n) if store is not None else stats_of(values), scale)
    titles = _titles(shown, values, str(n), view.top_ids[start:stop], view.top_probs[start:stop], view.vocab_chars, start)
    return ColouredText(shown, values, str(n), colours, titles, note)


def heatmap(source, neurons, range: str = "0:120", shared_scale: bool = False):
    """Neurons by characters of a store's text, as the dashboard's Heatmap page draws it (a
    plotly figure: it displays itself in a notebook): each row on its own colour scale, or
    all on one with ``shared_scale``."""
    from ..render.colours import neuron_scales

    store = _opened(source)
    if not isinstance(store, ActivationStore):
        raise LstmvizError("heatmap() draws a recorded store; record one first (lstmviz.record).")
    ids = [str(n) for n in parse_units(neurons)]
    scales = None if shared_scale else neuron_scales(store, ids)
    return heatmap_figure(store, ids, *parse_range(range, len(store)), scales=scales)


def dashboard(sources, mode: str = "inline", port: int = 8050, height: int = 800):
    """The whole dashboard inside the notebook (Dash's ``jupyter_mode``: ``inline``, ``tab``
    or ``external``) on stores; returns the Dash app."""
    from . import create_app

    stores = [_opened(s) for s in (sources if isinstance(sources, list | tuple) else [sources])]
    if not all(isinstance(s, ActivationStore) for s in stores):
        raise LstmvizError("dashboard() serves recorded stores; record one first (lstmviz.record).")
    app = create_app(stores)
    for name in app.catalog.stores:
        app.catalog.prepare(name)
    app.run(jupyter_mode=mode, port=port, jupyter_height=height)
    return app
