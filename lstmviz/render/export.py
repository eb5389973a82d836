"""Figures to files: .png, .svg and .pdf through kaleido (which drives the system's
Chromium), .html as a standalone page with plotly.js inlined (works offline)."""

from __future__ import annotations

import os
from pathlib import Path

import plotly.graph_objects as go

from ..core.errors import LstmvizError

FORMATS = (".png", ".svg", ".pdf", ".html")


def write_figure(fig: go.Figure, path: str | Path) -> Path:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise LstmvizError(f"Cannot export to {path.name!r}: the file name must end in {', '.join(FORMATS)}.")
    if not path.parent.exists():
        raise LstmvizError(f"Cannot write {path}: the folder {path.parent} does not exist.")
    tmp = path.with_name(f".{path.name}.part{suffix}")
    try:
        if suffix == ".html":
            fig.write_html(tmp, include_plotlyjs=True, full_html=True)
        else:
            try:
                fig.write_image(tmp, format=suffix[1:], scale=2 if suffix == ".png" else 1)
            except Exception as exc:  # kaleido reports a missing browser in several ways
                raise LstmvizError(
                    f"Static export needs Chromium (apt-get install chromium) for kaleido; it failed: {str(exc).splitlines()[0]}"
                ) from None
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def figure_bytes(fig: go.Figure, fmt: str) -> bytes:
    """The figure as a file's bytes in ``fmt`` (png, svg, pdf or html): for downloads."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return write_figure(fig, Path(tmp) / f"figure.{fmt}").read_bytes()
