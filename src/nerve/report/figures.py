"""What every figure shares: saving (PNG at 150 dpi and SVG with text kept as text, each atomically), file
names for tags, colours per entity type, the diverging colour scale, axis limits and font sizes.

Figures are laid out by matplotlib's constrained layout: titles, labels, colour bars and legends are placed by
matplotlib itself so that they stay inside the canvas."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import numpy as np
from matplotlib import rc_context
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from nerve.io import atomic_save
from nerve.tags import entity_type, entity_types

DPI = 150
# Text as <text> in SVG (several times smaller and faster to write than glyph outlines); stable element ids.
SAVE_RC = {"svg.fonttype": "none", "svg.hashsalt": "nerve", "path.simplify": True}
GREY = (0.45, 0.45, 0.45)
LINE_STYLES = {"B": "-", "I": "--", "E": ":", "S": "-."}


def new_figure(width: float, height: float) -> Figure:
    """A figure of ``width`` x ``height`` inches under constrained layout."""
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


FORMATS = ("png", "svg")  # what save_figure writes unless told otherwise (``figure_formats``)
_formats: ContextVar[tuple[str, ...]] = ContextVar("figure_formats", default=FORMATS)


@contextmanager
def figure_formats(formats: Sequence[str]) -> Iterator[None]:
    """Within the block, ``save_figure`` writes ``formats`` (some of png, svg) by default."""
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ValueError(f"figure formats: expected some of {', '.join(FORMATS)}, got {', '.join(bad)}")
    token = _formats.set(tuple(formats))
    try:
        yield
    finally:
        _formats.reset(token)


def save_figure(fig: Figure, base: str | os.PathLike, formats: tuple[str, ...] | None = None) -> list[Path]:
    """Save ``fig`` as ``base``.png (dpi 150) and ``base``.svg (or the formats of ``figure_formats``), each
    atomically; return the paths written.

    ``formats=("pdf",)`` writes ``base`` itself as one PDF instead.
    """
    formats = _formats.get() if formats is None else tuple(formats)
    if formats == ("pdf",):
        with rc_context(SAVE_RC):
            atomic_save(Path(base), lambda buf: fig.savefig(buf, format="pdf", metadata={"CreationDate": None}))
        return [Path(base)]
    png, svg = Path(f"{os.fspath(base)}.png"), Path(f"{os.fspath(base)}.svg")
    with rc_context(SAVE_RC):
        if "png" in formats:
            atomic_save(png, lambda buf: fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None}))
        if "svg" in formats:
            _save_svg(fig, svg, laid_out="png" in formats)
    return [p for p, f in ((png, "png"), (svg, "svg")) if f in formats]


def _save_svg(fig: Figure, path: Path, laid_out: bool) -> None:
    """The SVG; after the PNG's draw it keeps the layout that draw computed (one layout, not two)."""
    engine = fig.get_layout_engine()
    if laid_out:
        fig.set_layout_engine("none")
    try:
        atomic_save(path, lambda buf: fig.savefig(buf, format="svg", dpi=DPI, metadata={"Date": None}))
    finally:
        fig.set_layout_engine(engine)


def colours(tags: Sequence[str]) -> dict[str, tuple]:
    """A colour per tag: one hue per entity type (tab10 without its grey, then tab20b), O and others grey."""
    from matplotlib import colormaps

    tab10 = colormaps["tab10"].colors
    pal = [c for i, c in enumerate(tab10) if i != 7] + list(colormaps["tab20b"].colors)
    hue = {t: pal[i % len(pal)] for i, t in enumerate(entity_types(tags))}
    return {t: hue.get(entity_type(t), GREY) for t in tags}


def diverging_cmap():
    """RdBu_r with NaN cells grey."""
    from matplotlib import colormaps

    return colormaps["RdBu_r"].with_extremes(bad="#d9d9d9")


def symmetric_norm(values: np.ndarray) -> TwoSlopeNorm:
    """A colour scale centred at 0 reaching the largest absolute finite value (1 when there is none)."""
    values = np.asarray(values, dtype=np.float64)
    lim = float(np.nanmax(np.abs(values))) if np.any(np.isfinite(values)) else 1.0
    lim = lim if lim > 0 else 1.0
    return TwoSlopeNorm(vcenter=0.0, vmin=-lim, vmax=lim)


def limits(values: Sequence[np.ndarray], margin: float = 0.05) -> tuple[float, float]:
    """(low, high) covering every finite value, widened by ``margin`` of the range (or ±0.5 when flat)."""
    finite = [np.asarray(v, dtype=np.float64).ravel() for v in values]
    finite = [v[np.isfinite(v)] for v in finite]
    finite = np.concatenate(finite) if finite else np.zeros(0)
    if not finite.size:
        return -0.5, 0.5
    lo, hi = float(finite.min()), float(finite.max())
    pad = (hi - lo) * margin if hi > lo else 0.5
    return lo - pad, hi + pad


def font_size(n: int, big: float = 10.0, small: float = 6.0, at: int = 60) -> float:
    """A font size shrinking from ``big`` (up to 10 labels) to ``small`` (``at`` labels or more)."""
    return big if n <= 10 else max(small, big - (big - small) * (n - 10) / max(at - 10, 1))


def every_kth(n: int, length_in: float, font: float) -> np.ndarray:
    """Positions of every k-th of n labels so that labels ``font`` pt tall fit in ``length_in`` inches."""
    step = max(1, int(np.ceil(n * font * 1.35 / 72 / max(length_in, 0.1))))
    return np.arange(0, n, step)
