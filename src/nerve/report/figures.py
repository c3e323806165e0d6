"""What every figure shares: saving (PNG at 300 dpi, SVG with text kept as text, and PDF, each atomically, each
carrying the figure's caption), the words for the quantities drawn, file names for tags, colours per entity type,
the diverging colour scale, axis limits and font sizes.

Figures are laid out by matplotlib's constrained layout: titles, labels, colour bars and legends are placed by
matplotlib itself so that they stay inside the canvas."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import rc_context
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from nerve.io import atomic_save
from nerve.report.formats import FORMATS, check_formats, figure_formats, formats_in_use  # noqa: F401 (also here)
from nerve.tags import entity_type, entity_types

DPI = 300
# Text as <text> in SVG (several times smaller and faster to write than glyph outlines); stable element ids;
# TrueType (Type 42) fonts in PDF, which journals accept and which stay editable.
SAVE_RC = {"svg.fonttype": "none", "svg.hashsalt": "nerve", "path.simplify": True, "pdf.fonttype": 42}
GREY = (0.45, 0.45, 0.45)
LINE_STYLES = {"B": "-", "I": "--", "E": ":", "S": "-."}

# One term, and one sign, per quantity drawn: every axis, colour bar, legend and caption takes its words from here.
# A drop is the score at k = 0 minus the score with the units intervened on: positive means the intervention hurt.
DROP_SIGN = "k = 0 minus after; positive = worse"
TERMS = {
    "recall": "drop in recall",  # a tag's recall of its gold tokens (the "accuracy" column of the sweeps)
    "f1": "drop in token F1",  # a tag's token F1 (the methods' "f1" column)
    "entity_f1": "drop in entity F1",  # conlleval's F1, overall (F1) or of one entity type (F1:TYPE)
    "token_accuracy": "drop in token accuracy",  # ALL
}


def drop_label(quantity: str, of: str = "") -> str:
    """The axis or colour-bar label of a drop: ``TERMS[quantity]`` (+ `` of <of>``) and its sign in brackets."""
    return f"{TERMS[quantity]}{' of ' + of if of else ''}\n({DROP_SIGN})"


def eval_quantity(eval_tag: str) -> str:
    """Which quantity a sweep row of ``eval_tag`` scores: recall for a tag, entity F1 for F1 / F1:TYPE, token
    accuracy for ALL."""
    if eval_tag == "ALL":
        return "token_accuracy"
    if eval_tag == "F1" or eval_tag.startswith("F1:"):
        return "entity_f1"
    return "recall"


def new_figure(width: float, height: float) -> Figure:
    """A figure of ``width`` x ``height`` inches under constrained layout."""
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def save_figure(fig: Figure, base: str | os.PathLike, formats: Sequence[str] | None = None,
                caption: str = "") -> list[Path]:
    """Save ``fig`` as ``base``.png (300 dpi), ``base``.svg and ``base``.pdf (or the formats of
    ``figure_formats``), each atomically; return the paths written, in that order.

    ``caption``, a sentence or two saying what is drawn (the quantity and its sign, the split), is stored in each
    file (PNG and SVG "Description", PDF "Subject"), where the report reads it (``read_caption``). No dates are
    stored: the same figure gives the same bytes.
    """
    formats = formats_in_use() if formats is None else check_formats(formats)
    base = os.fspath(base)
    written = []
    with rc_context(SAVE_RC):
        if formats:
            lay_out(fig)
        laid_out = False
        for fmt in FORMATS:
            if fmt not in formats:
                continue
            path = Path(f"{base}.{fmt}")
            _save(fig, path, fmt, caption, laid_out)
            laid_out = True
            written.append(path)
    return written


def lay_out(fig: Figure) -> None:
    """A first constrained-layout pass, drawing nothing: the pass of the first save starts from it and converges
    (one pass alone can leave a long tick label a pixel or two outside the canvas)."""
    fig.draw_without_rendering()


_METADATA = {"png": lambda c: {"Software": None, **({"Description": c} if c else {})},
             "svg": lambda c: {"Date": None, **({"Description": c} if c else {})},
             "pdf": lambda c: {"CreationDate": None, "ModDate": None, **({"Subject": c} if c else {})}}


def _save(fig: Figure, path: Path, fmt: str, caption: str, laid_out: bool) -> None:
    """One file; after a first format's draw it keeps the layout that draw computed (one layout for all)."""
    engine = fig.get_layout_engine()
    if laid_out:
        fig.set_layout_engine("none")
    try:
        atomic_save(path, lambda buf: fig.savefig(buf, format=fmt, dpi=DPI, metadata=_METADATA[fmt](caption)))
    finally:
        fig.set_layout_engine(engine)


def read_caption(path: str | os.PathLike) -> str:
    """The caption ``save_figure`` stored in a PNG ("" when it holds none, e.g. a figure of an older nerve)."""
    from PIL import Image

    with Image.open(path) as img:
        return str(img.text.get("Description", "")) if hasattr(img, "text") else ""


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


def wrap(text: str, width_in: float, font: float) -> str:
    """``text`` broken into lines that fit ``width_in`` inches at ``font`` pt (its own line breaks kept)."""
    import textwrap

    chars = max(20, int(width_in * 72 / (font * 0.56)))
    return "\n".join(textwrap.fill(line, chars) for line in text.split("\n"))


def every_kth(n: int, length_in: float, font: float) -> np.ndarray:
    """Positions of every k-th of n labels so that labels ``font`` pt tall fit in ``length_in`` inches."""
    step = max(1, int(np.ceil(n * font * 1.35 / 72 / max(length_in, 0.1))))
    return np.arange(0, n, step)


MARKERS = ("", "o", "s", "^", "v", "D", "x", "+", "*", "P")
_MORE_STYLES = ("-", "--", ":", "-.")


def distinct_styles(wanted: Sequence[tuple[str, tuple | str, str | tuple]]) -> dict[str, dict]:
    """Line styles that tell every series apart: for each ``(label, colour, linestyle)`` in order, that colour and
    style, with the first marker (none, then o, s, ^, ...) and then the first other style that no earlier series
    of the same colour has. Returns ``{label: {"color", "ls", "marker"}}`` (keyword arguments of ``Axes.plot``)."""
    from matplotlib.colors import to_hex

    used, out = set(), {}
    for label, colour, ls in wanted:
        key = to_hex(colour)
        options = [(ls, m) for m in MARKERS] + [(s, m) for s in _MORE_STYLES if s != ls for m in MARKERS]
        style, marker = next((o for o in options if (key, *o) not in used), options[0])
        used.add((key, style, marker))
        out[label] = {"color": colour, "ls": style, "marker": marker, "markersize": 3.5 if marker else 0.0}
    return out
