"""Values to pictures: the one colour scale and the figure builders, shared by the command
line export and the dashboard (one builder per figure)."""

from __future__ import annotations

import base64

import numpy as np
import plotly.graph_objects as go

from ..core.characters import NEWLINE_GLYPH, glyph_of
from ..core.errors import StoreError
from ..core.neurons import UnitId, parse_unit
from ..store.format import check_range
from ..store.reader import ActivationStore
from .colours import COLOUR_STOPS, ColourScale, level_table, symmetric_of

MAX_HEATMAP_CHARS = 2000
MAX_HEATMAP_NEURONS = 48  # rows: more is unreadable, and unbounded work for a server
# What a graph shows until its figure arrives: nothing (no empty axes), in little height.
EMPTY_FIGURE = {"data": [], "layout": {"xaxis": {"visible": False}, "yaxis": {"visible": False}, "height": 40}}


def coloured_html(
    text: str,
    values,
    scale: ColourScale,
    titles: list[str] | None = None,
    mark: int | None = None,
    first: int | None = None,
    keep_lines: bool = False,
) -> str:
    """``text`` as HTML, each character a ``<span>`` on the colour of its value (inline
    styles only: no script, no stylesheet, nothing fetched), for a notebook cell or a static
    page. ``titles`` are the characters' hover texts (default: the value), ``mark`` the index
    of a character to outline, ``first`` the position of the first one (``data-pos``). A
    newline shows as ``⏎``, and also breaks the line with ``keep_lines``."""
    from html import escape

    spans = []
    table = level_table()
    for i, (ch, value, level) in enumerate(zip(text, values, scale.levels(values), strict=True)):
        r, g, b, dark = table[level]
        ink = "color:#fff;" if dark else ""  # legible on strong colours
        marked = ' class="mark"' if i == mark else ""
        title = titles[i] if titles is not None else f"{float(value):+.3f}"
        pos = f' data-pos="{first + i}"' if first is not None else ""
        shown = (NEWLINE_GLYPH + "\n" if keep_lines else NEWLINE_GLYPH) if ch == "\n" else ch
        style = f"background:rgb({r},{g},{b});{ink}"
        spans.append(f'<span{marked} style="{style}" title="{escape(title)}"{pos}>{escape(shown)}</span>')
    return "".join(spans)


def ansi_coloured(text: str, values: np.ndarray, scale: ColourScale | None = None) -> str:
    """``text`` for a terminal, each character on its colour of ``scale`` (24-bit ANSI;
    default: +-99th percentile of |value|); white letters on strong colours."""
    scale = symmetric_of(values) if scale is None else scale
    out = []
    table = level_table()
    for ch, level in zip(text, scale.levels(values), strict=True):
        r, g, b, dark = table[level]
        fg = "38;2;255;255;255;" if dark else "38;2;0;0;0;"
        shown = " " if ch == "\n" else ch
        out.append(f"\x1b[{fg}48;2;{r};{g};{b}m{shown}\x1b[0m" + ("\n" if ch == "\n" else ""))
    return "".join(out)


def text_payload(store: ActivationStore, neuron: str | UnitId, start: int, stop: int, scale: ColourScale) -> dict:
    """What the browser needs to paint a window of text by one neuron: characters, values,
    their colours on ``scale``, and the model's top-5 guesses for the next character."""
    start, stop = check_range(start, stop, len(store))
    return values_payload(store, store.neuron(neuron, start, stop), str(parse_unit(neuron)), start, scale)


def _base64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()).decode("ascii")


def values_payload(store: ActivationStore, values: np.ndarray, label: str, start: int, scale: ColourScale) -> dict:
    """The painter's data for ``values`` (one per character of ``store`` from ``start``), named
    ``label`` (a neuron id, or a derived series such as bits saved over the n-gram)."""
    stop = start + len(values)
    guesses = (store.top_ids[start:stop], store.top_probs[start:stop])
    return painted_payload(store.text(start, stop), values, *guesses, store.vocab_chars, label, start, scale)


def painted_payload(
    text: str, values, top_ids: np.ndarray, top_probs: np.ndarray, vocab: list[str], label: str, start: int, scale: ColourScale
) -> dict:
    """What assets/painter.js paints: ``text`` coloured by ``values`` on ``scale``, with the
    model's top guesses for the next character after each one.

    Compact, since it crosses the network on every neuron switch: the text and the top-5
    guesses as strings (5 characters per position), values as base64 float32 (for the
    hover), their palette levels as base64 bytes (the colours: computed here, once) and
    guess probabilities as base64 uint16 in units of 1/10000; assets/painter.js decodes them."""
    ids = np.asarray(top_ids, dtype=np.int64)
    codes = np.array([ord(c) for c in vocab] + [0xFFFD], dtype=np.uint32)
    probs = np.nan_to_num(np.asarray(top_probs, dtype=np.float32), nan=0.0)
    if ids.ndim == 2 and not probs.any():  # no guesses recorded (a store written without a model): none shown
        ids, probs = ids[:, :0], probs[:, :0]
    return {
        "start": start,
        "text": text,
        "values": _base64(np.asarray(values, dtype=np.float32)),
        "levels": _base64(scale.levels(values)),
        "palette": level_table(),
        "scale": scale.label,
        "top": codes[np.minimum(ids, len(codes) - 1)].astype("<u4").tobytes().decode("utf-32-le"),
        "top_k": int(ids.shape[1]) if ids.ndim == 2 else 0,
        "probs": _base64(np.round(probs * 10000).astype(np.uint16)),
        "label": label,
    }


def histogram_figure(hist: dict, neuron: str) -> dict:
    """The activation histogram (density), as a plain figure dict: it is sent on every
    neuron switch, and a plain dict serialises without plotly's validation and template."""
    edges = np.asarray(hist["edges"], dtype=np.float64)
    density = np.asarray(hist["density"], dtype=np.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    return {
        "data": [
            {
                "type": "bar",
                "x": centres.tolist(),
                "y": density.tolist(),
                "width": np.diff(edges).tolist(),
            }
            | {"marker": {"color": "#4a6fa5"}, "hovertemplate": "%{x:.3f}: density %{y:.3g}<extra></extra>"}
        ],
        "layout": {
            # left-aligned, clear of the mode bar on the right
            "title": {
                "text": f"{neuron}: density, mean {hist['mean']:.3f}, sd {hist['std']:.3f}",
                "x": 0,
                "xanchor": "left",
                "font": {"size": 14},
            },
            "height": 260,
            "margin": {"l": 50, "r": 10, "t": 40, "b": 40},
            "bargap": 0,
            "plot_bgcolor": "white",
        },
    }


def parse_range(text: str, length: int) -> tuple[int, int]:
    """``START:END`` (either may be omitted) within a store of ``length`` characters."""
    start_s, sep, stop_s = str(text).partition(":")
    try:
        start = int(start_s) if start_s.strip() else 0
        stop = int(stop_s) if stop_s.strip() else length
    except ValueError:
        raise StoreError(f"{text!r} is not a character range; write START:END, e.g. 0:500.") from None
    if not sep:
        raise StoreError(f"{text!r} is not a character range; write START:END, e.g. 0:500.")
    return check_range(start, stop, length)


def _heatmap_window(store: ActivationStore, neurons: list, start: int, stop: int) -> tuple[list[UnitId], int, int]:
    """The neurons and the range a heatmap can show, or the sentence that says why not."""
    if not neurons:
        raise StoreError("Give at least one neuron.")
    if len(neurons) > MAX_HEATMAP_NEURONS:
        raise StoreError(f"A heatmap shows at most {MAX_HEATMAP_NEURONS} neurons; {len(neurons)} were asked for.")
    start, stop = check_range(start, stop, len(store))
    if stop - start > MAX_HEATMAP_CHARS:
        raise StoreError(f"A heatmap shows at most {MAX_HEATMAP_CHARS} characters; the range {start}:{stop} has {stop - start}.")
    if stop == start:
        raise StoreError("The character range is empty.")
    return [parse_unit(n) for n in neurons], start, stop


def heatmap_figure(
    store: ActivationStore,
    neurons: list[str | UnitId],
    start: int,
    stop: int,
    scales: list[ColourScale] | None = None,
    width: int | None = None,
    name: str | None = None,
) -> go.Figure:
    """Neurons (rows) by characters (columns), each cell labelled with its character, as in
    the paper's figures, titled with ``name`` (default: the store's own). Each row is
    coloured on its own scale (``scales``, one per neuron: a -27..+6 cell beside a -4..+4
    one both read), or, without ``scales``, all rows on one scale (+-99th percentile of
    |value| in the window). Without ``width`` the figure fits its container."""
    ids, start, stop = _heatmap_window(store, neurons, start, stop)
    values = store.window(ids, start, stop)
    labels = [glyph_of(c) for c in store.text(start, stop)]
    shared = symmetric_of(values, "all rows: ±99th percentile of |value|")
    rows = scales if scales is not None else [shared] * len(ids)
    colour_bar = {"title": {"text": "value"}}
    if scales is not None:
        ticks = {"tickvals": [0, 0.5, 1], "ticktext": ["low", "centre", "high"]}
        colour_bar = {"title": {"text": "each row<br>its own scale"}, **ticks}
    fig = go.Figure(
        go.Heatmap(
            z=np.stack([scale.positions(row) for scale, row in zip(rows, values, strict=True)]),
            customdata=values,
            x=list(range(start, stop)),
            y=[scale.label if scales is not None else str(n) for scale, n in zip(rows, ids, strict=True)],
            text=[labels] * len(ids),
            texttemplate="%{text}" if stop - start <= 160 else None,
            hovertemplate="%{y} at %{x}: %{customdata:.3f} ('%{text}')<extra></extra>",
            colorscale=[[t, f"rgb{c}"] for t, c in COLOUR_STOPS],
            zmin=0,
            zmax=1,
            colorbar=colour_bar if scales is not None else {**colour_bar, **_value_ticks(shared)},
        )
    )
    fig.update_layout(
        title=f"{name or store.name}: characters {start}-{stop}" + ("" if scales is not None else " (one scale for all rows)"),
        height=140 + 40 * len(ids),
        width=width,
        autosize=width is None,
        margin={"l": 200 if scales is not None else 90, "r": 30, "t": 60, "b": 40},
        plot_bgcolor="white",
    )
    fig.update_yaxes(autorange="reversed")
    return fig


def export_width(chars: int) -> int:
    """A heatmap's width in a file (on a page it fits its container): 14 px a character."""
    return max(600, min(2400, 14 * chars + 300))


def _value_ticks(scale: ColourScale) -> dict:
    ticks = [scale.low, scale.centre, scale.high]
    return {"tickvals": scale.positions(ticks).tolist(), "ticktext": [f"{v:+.2f}" for v in ticks]}


def saturation_figure(table) -> go.Figure:
    """Karpathy et al. (2015) fig. 3: per gate unit, the fraction of characters it is
    left-saturated (< 0.1) against right-saturated (> 0.9), one panel per layer."""
    from plotly.subplots import make_subplots

    layers = sorted(table["layer"].unique())
    fig = make_subplots(rows=1, cols=len(layers), subplot_titles=[f"layer {n}" for n in layers], shared_yaxes=True)
    colours = {"i": "#1f77b4", "f": "#2ca02c", "o": "#d62728", "r": "#9467bd", "z": "#ff7f0e"}
    for col, layer in enumerate(layers, 1):
        for gate, part in table[table["layer"] == layer].groupby("gate"):
            fig.add_trace(
                go.Scatter(
                    x=part["left"],
                    y=part["right"],
                    mode="markers",
                    name=f"{gate} gate",
                    legendgroup=gate,
                    showlegend=col == 1,
                    marker={"color": colours.get(gate, "#555"), "size": 5, "opacity": 0.7},
                    text=part["neuron"],
                    hovertemplate="%{text}: left %{x:.2f}, right %{y:.2f}<extra></extra>",
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(title_text="fraction left-saturated (< 0.1)", range=[-0.03, 1.03], row=1, col=col)
    fig.update_yaxes(title_text="fraction right-saturated (> 0.9)", range=[-0.03, 1.03], row=1, col=1)
    fig.update_layout(height=460, margin={"l": 60, "r": 20, "t": 50, "b": 50}, plot_bgcolor="white")
    return fig


def training_figure(history: dict, reference: dict[str, float] | None = None) -> go.Figure:
    """Training curves from a checkpoint's history (training bpc every 10 steps, validation
    bpc at each evaluation), with horizontal reference lines (e.g. the n-gram's test bpc)."""
    fig = go.Figure()
    if history.get("step"):
        fig.add_trace(
            go.Scatter(x=history["step"], y=history["train_bpc"], name="training bpc", line={"width": 1, "color": "#9ab"})
        )
    if history.get("val_step"):
        fig.add_trace(
            go.Scatter(
                x=history["val_step"], y=history["val_bpc"], name="validation bpc", mode="lines+markers", line={"color": "#c33"}
            )
        )
    for k, (label, value) in enumerate((reference or {}).items()):
        fig.add_hline(  # labels on alternate sides and heights: two close lines' labels never overlap
            y=value,
            line={"dash": "dot", "color": ["#333", "#2a7"][k % 2]},
            annotation_text=f"{label}: {value:.3f}",
            annotation_position=["top right", "bottom left"][k % 2],
        )
    fig.update_layout(
        title="Training curves",
        xaxis_title="step",
        yaxis_title="bits per character (log scale)",
        yaxis_type="log",
        yaxis_range=_bpc_range(history, list((reference or {}).values())),
        height=360,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        plot_bgcolor="white",
    )
    return fig


def _bpc_range(history: dict, references: list[float]) -> list[float] | None:
    """The log y range (log10 units, as plotly takes it) that shows the whole run, from its
    first steps at ~8 bits to where it ends up beside the references: a log axis keeps the
    differences near the end readable with the start in view."""
    values = [v for v in (*references, *history.get("val_bpc", []), *history.get("train_bpc", [])) if np.isfinite(v) and v > 0]
    if not values:
        return None
    return [float(np.log10(0.95 * min(values))), float(np.log10(1.05 * max(values)))]


def cka_figure(cka: np.ndarray, layers_a: list[int], layers_b: list[int], name_a: str, name_b: str) -> go.Figure:
    """Linear CKA between every layer of A (rows) and of B (columns)."""
    fig = go.Figure(
        go.Heatmap(
            z=cka,
            x=[f"B L{n}" for n in layers_b],
            y=[f"A L{n}" for n in layers_a],
            text=np.round(cka, 3),
            texttemplate="%{text}",
            colorscale="Viridis",
            zmin=0,
            zmax=1,
            colorbar={"title": {"text": "CKA"}},
        )
    )
    fig.update_layout(  # the title on three lines, left: long store names stay clear of the mode bar
        title={
            "text": f"Linear CKA between layers<br>A = {name_a}<br>B = {name_b}",
            "x": 0,
            "xanchor": "left",
            "font": {"size": 13},
        },
        height=200 + 60 * len(layers_a),
        width=320 + 90 * len(layers_b),
        margin={"l": 70, "r": 20, "t": 100, "b": 40},
    )
    fig.update_yaxes(autorange="reversed")
    return fig


def emergence_figure(data: dict) -> go.Figure:
    """Best score per feature at each snapshot (left axis) and bits per character (right)."""
    from plotly.subplots import make_subplots

    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for name, scores in data["features"].items():
        neurons = data["neurons"][name]
        fig.add_trace(
            go.Scatter(
                x=data["steps"],
                y=scores,
                name=name,
                mode="lines+markers",
                text=neurons,
                hovertemplate=name + " at step %{x}: %{y:.3f} (%{text})<extra></extra>",
            ),
            secondary_y=False,
        )
    fig.add_trace(
        go.Scatter(
            x=data["steps"], y=data["bpc"], name="bits per character", mode="lines+markers", line={"dash": "dot", "color": "#333"}
        ),
        secondary_y=True,
    )
    fig.update_layout(
        title=f"When the cells appear: {data['checkpoint']}",
        height=400,
        margin={"l": 60, "r": 60, "t": 50, "b": 50},
        plot_bgcolor="white",
    )
    fig.update_xaxes(title_text="training step")
    fig.update_yaxes(title_text="best score (AUROC or |Spearman|)", range=[0, 1.02], secondary_y=False)
    fig.update_yaxes(title_text="bits per character", secondary_y=True)
    return fig
