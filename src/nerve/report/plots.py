"""Figures of the neuron analysis (Xin, Lin & Yu, EMNLP 2019): heatmap, rankings, ablation curves, accuracies.

Speed: every figure is laid out explicitly, in inches, from the measured size of its labels. Nothing is saved
with ``bbox_inches="tight"`` (that lays a figure out twice) or constrained layout, and axis labels and titles
sit at fixed offsets (automatic placement measures every tick label again on each draw). Figures are written as
PNG (dpi 150, written by a small encoder) and SVG with text kept as text. The per-target ablation charts of one
analysis share one figure, size and y range: only their curves, title and legend change, and only those are
redrawn for each PNG.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from matplotlib import rc_context, rcParams
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from nerve.analysis.ablation import read_ablation_csv
from nerve.analysis.checks import AnalysisInputError
from nerve.io import atomic_save
from nerve.tags import entity_type, entity_types, split_or_outside, tag_order

DPI = 150
_STYLES = {"B": "-", "I": "--", "E": ":", "S": "-."}
_PT = 1 / 72  # inches per point
_EDGE = 0.12  # blank border around every figure, inches
# Text as <text> in SVG (several times smaller and faster to write than glyph outlines); stable element ids.
_SAVE_RC = {"svg.fonttype": "none", "svg.hashsalt": "nerve", "path.simplify": True}


def tag_filenames(tags: Sequence[str], reserved: Sequence[str] = ()) -> dict[str, str]:
    """A distinct filesystem-safe stem for every tag (runs of other characters become "_"), none in ``reserved``."""
    out: dict[str, str] = {}
    used: set[str] = set(reserved)
    for tag in tags:
        stem = re.sub(r"[^A-Za-z0-9_-]+", "_", str(tag)).strip("_") or "tag"
        base, i = stem, 1
        while stem in used:
            stem, i = f"{base}_{i}", i + 1
        used.add(stem)
        out[str(tag)] = stem
    return out


def save_figure(fig: Figure, base: str | os.PathLike, tight: bool = False) -> list[Path]:
    """Save ``fig`` as ``base``.png (dpi 150) and ``base``.svg (text as text), each atomically; return both paths.

    The figures of this module are laid out to fit their labels, so the figure is saved as it is; ``tight``
    saves the tight bounding box of every artist instead (for other figures; lays the figure out twice).
    """
    extra = {"bbox_inches": "tight", "pad_inches": 0.15} if tight else {}
    png, svg = Path(f"{os.fspath(base)}.png"), Path(f"{os.fspath(base)}.svg")
    with rc_context(_SAVE_RC):
        if tight or fig.dpi != DPI or fig.get_facecolor()[3] < 1:  # _png writes opaque images only
            atomic_save(png, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI, **extra))
        else:
            atomic_save(png, lambda tmp: _save_png(fig, tmp))
        atomic_save(svg, lambda tmp: fig.savefig(tmp, format="svg", dpi=DPI, metadata={"Date": None}, **extra))
    return [png, svg]


def _save_png(fig: Figure, out) -> None:
    """Draw ``fig`` on an Agg canvas and write it with ``_png`` to the binary file ``out``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    # Reusing the figure's own Agg canvas reuses its renderer (and text-size cache) when the size is unchanged.
    canvas = fig.canvas if type(fig.canvas) is FigureCanvasAgg else FigureCanvasAgg(fig)
    canvas.draw()
    out.write(_png(np.asarray(canvas.buffer_rgba()), DPI))


def _png(rgba: np.ndarray, dpi: float) -> bytes:
    """An 8-bit RGB PNG of an opaque (h, w, 4) uint8 image: no row filters, zlib level 3.

    About 3x faster than Pillow's encoder (adaptive filters) and no larger for figures, which are mostly flat.
    """
    import struct
    import zlib

    from PIL import Image

    h, w = rgba.shape[:2]
    rgb = np.frombuffer(Image.fromarray(rgba, "RGBA").convert("RGB").tobytes(), dtype=np.uint8)  # fast in C
    raw = np.empty((h, 1 + 3 * w), dtype=np.uint8)  # each row: filter type 0, then R G B per pixel
    raw[:, 0] = 0
    raw[:, 1:] = rgb.reshape(h, 3 * w)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ppm = round(dpi / 0.0254)
    return b"".join((b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)),
                     chunk(b"pHYs", struct.pack(">IIB", ppm, ppm, 1)),
                     chunk(b"IDAT", zlib.compress(raw.tobytes(), 3)), chunk(b"IEND", b"")))


# --- layout helpers: sizes in inches -------------------------------------------------------------------------


@lru_cache(maxsize=16384)
def _text_width(text: str, size: float, family: str) -> float:
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import text_to_path

    prop = FontProperties(size=size)
    return max(text_to_path.get_text_width_height_descent(line, prop, ismath=False)[0]
               for line in text.split("\n")) * _PT


def _widest(labels: Sequence, size: float) -> float:
    """Width of the widest of ``labels`` (inches) at ``size`` points in the default font."""
    family = repr(rcParams["font.family"]) + repr(rcParams["font.sans-serif"])
    return max((_text_width(str(x), float(size), family) for x in labels), default=0.0)


def _lines(size: float, n: int = 1) -> float:
    """Height of ``n`` lines of text at ``size`` points (inches)."""
    return n * 1.2 * size * _PT


def _tick_gap(axis: str = "x") -> float:
    """Distance from the axes edge to its tick labels: major tick length + pad (inches)."""
    return (max(rcParams[f"{axis}tick.major.size"], 0.0) + rcParams[f"{axis}tick.major.pad"]) * _PT


def _points(axis: str = "x") -> float:
    """Size in points of the default tick labels of an ``axis`` ("x" or "y")."""
    from matplotlib.font_manager import FontProperties

    return FontProperties(size=rcParams[f"{axis}tick.labelsize"]).get_size_in_points()


def _tick_labels(axis) -> list[str]:
    """The major tick labels ``axis`` draws at its current limits and size."""
    lo, hi = sorted(axis.get_view_interval())
    eps = 1e-9 * max(hi - lo, 1e-300)
    locs = [x for x in axis.get_majorticklocs() if lo - eps <= x <= hi + eps]
    return list(axis.get_major_formatter().format_ticks(locs))


def _place(ax, fig: Figure, left: float, bottom: float, width: float, height: float) -> None:
    """Put ``ax`` at the given rectangle, in inches from the lower left corner of ``fig``."""
    w, h = fig.get_size_inches()
    ax.set_position((left / w, bottom / h, width / w, height / h))


def _label_axes(ax, ax_w: float, ax_h: float, xlabel_at: float | None, ylabel_at: float | None) -> None:
    """Fix the axis labels ``xlabel_at`` inches below and ``ylabel_at`` inches left of the axes (None: unlabelled).

    Fixed positions also spare matplotlib measuring every tick label a second time on each draw.
    """
    ax.xaxis.set_label_coords(0.5, -(xlabel_at or 0.0) / ax_h)
    ax.yaxis.set_label_coords(-(ylabel_at or 0.0) / ax_w, 0.5)


def _limits(values: Sequence[np.ndarray], margin: float = 0.05) -> tuple[float, float]:
    """Data limits of all finite ``values`` widened by ``margin`` of the range (matplotlib's autoscale)."""
    finite = [v[np.isfinite(v)] for v in (np.asarray(x, dtype=np.float64).ravel() for x in values)]
    finite = [v for v in finite if v.size]
    lo = min((float(v.min()) for v in finite), default=np.nan)
    hi = max((float(v.max()) for v in finite), default=np.nan)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        lo, hi = -0.05, 0.05
    elif hi - lo < 1e-12 * max(1.0, abs(lo), abs(hi)):
        lo, hi = lo - (0.05 * abs(lo) or 0.05), hi + (0.05 * abs(hi) or 0.05)
    pad = margin * (hi - lo)
    return lo - pad, hi + pad


_HANDLE_EM, _HANDLE_PAD_EM, _ROW_EM, _COLUMN_GAP_EM = 2.0, 0.8, 1.45, 2.0  # legend geometry, in font sizes


def _columns(n: int, ncol: int) -> list[range]:
    """Indices of ``n`` legend entries per column, filled column by column like matplotlib's legend."""
    ncol = max(1, min(ncol, n))
    edges = np.cumsum([0] + [n // ncol + (c < n % ncol) for c in range(ncol)])
    return [range(edges[c], edges[c + 1]) for c in range(ncol)]


def _legend_size(labels: Sequence[str], size: float, ncol: int = 1) -> tuple[float, float]:
    """(width, height) in inches of a ``_legend`` of ``labels`` in ``ncol`` columns at ``size`` points."""
    em, cols = size * _PT, _columns(len(labels), ncol)
    width = sum((_HANDLE_EM + _HANDLE_PAD_EM) * em + _widest([labels[i] for i in c], size) for c in cols)
    return width + (len(cols) - 1) * _COLUMN_GAP_EM * em, max(map(len, cols), default=0) * _ROW_EM * em


def _style(artist) -> dict:
    """How to draw the legend handle of a plotted line (dict of Line2D properties) or filled band ("patch")."""
    from matplotlib.lines import Line2D

    if isinstance(artist, Line2D):
        return {"color": artist.get_color(), "ls": artist.get_linestyle(), "lw": artist.get_linewidth(),
                "alpha": artist.get_alpha()}
    return {"patch": True, "color": artist.get_facecolor()[0], "alpha": artist.get_alpha()}


def _legend(fig: Figure, entries: Sequence[tuple[str, dict]], x: float, y: float, size: float,
            ncol: int = 1) -> list:
    """Draw a frameless legend of ``entries`` (label, ``_style``) with its upper left corner at (x, y) inches.

    Plain lines and texts in figure inches; matplotlib's Legend re-measures its nested boxes several
    times per draw, which made it most of the cost of a line chart. Returns the artists (to remove).
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle
    from matplotlib.text import Text

    em, tr, artists = size * _PT, fig.dpi_scale_trans, []
    for col in _columns(len(entries), ncol):
        for row, i in enumerate(col):
            label, style = entries[i]
            yc = y - (row + 0.5) * _ROW_EM * em
            if style.get("patch"):
                handle = Rectangle((x, yc - 0.35 * em), _HANDLE_EM * em, 0.7 * em, transform=tr, lw=0,
                                   facecolor=style["color"], alpha=style.get("alpha"))
            else:
                handle = Line2D([x, x + _HANDLE_EM * em], [yc, yc], transform=tr, **style)
            text = Text(x + (_HANDLE_EM + _HANDLE_PAD_EM) * em, yc, label, fontsize=size, ha="left",
                        va="center_baseline", transform=tr)
            artists += [fig.add_artist(handle), fig.add_artist(text)]
        x += ((_HANDLE_EM + _HANDLE_PAD_EM + _COLUMN_GAP_EM) * em + _widest([entries[i][0] for i in col], size))
    return artists


def _centre_room(left: float, right: float, width: float, title_w: float) -> tuple[float, float]:
    """Left and right margins widened so a title ``title_w`` wide, centred on an axes ``width`` wide, fits."""
    need = (title_w - width) / 2 + _EDGE
    return max(left, need), max(right, need)


def _font(n: int, big: float = 10.0, small: float = 6.0, at: int = 60) -> float:
    """A font size shrinking from ``big`` (few labels) to ``small`` (``at`` labels or more)."""
    return big if n <= 10 else max(small, big - (big - small) * (n - 10) / max(at - 10, 1))


def _ticks(n: int, length_in: float, font: float) -> np.ndarray:
    """Positions of every k-th of n labels so that labels ``font`` pt tall fit in ``length_in`` inches."""
    step = max(1, math.ceil(n * font * 1.35 / 72 / max(length_in, 0.1)))
    return np.arange(0, n, step)


def _label_rotation(labels: Sequence[str], slot_in: float, font: float) -> int:
    """0 if the widest label fits its slot (inches) horizontally, else 90."""
    return 0 if _widest(labels, font) <= slot_in * 0.9 else 90


def _sym_norm(values: np.ndarray) -> TwoSlopeNorm:
    lim = float(np.nanmax(np.abs(values))) if np.any(np.isfinite(values)) else 1.0
    lim = lim if lim > 0 else 1.0
    return TwoSlopeNorm(vcenter=0.0, vmin=-lim, vmax=lim)


def _cmap():
    from matplotlib import colormaps

    return colormaps["RdBu_r"].with_extremes(bad="#d9d9d9")


def plot_sensitivity_heatmap(s: np.ndarray, tags: Sequence[str], neurons: Sequence[str],
                             out_base: str | os.PathLike, cluster: bool = False) -> list[Path]:
    """Heatmap of sensitivities, units (rows) x tags (columns, ``tag_order``), RdBu_r centred at 0.

    Args:
        s: (n, n_tags) sensitivities (NaN columns drawn grey).
        tags: (n_tags,) names; neurons: (n,) unit names.
        out_base: output path without suffix (.png and .svg are written).
        cluster: order units by average-linkage hierarchical clustering (scipy) with a dendrogram.
    """
    s = np.asarray(s, dtype=np.float64)
    n, n_tags = s.shape
    order = tag_order(tags)
    data = s[:, order]
    rows = np.arange(n)
    col, ax_h = 0.42, float(np.clip(0.16 * n - 0.4, 2.0, 22.0))
    ax_w = col * n_tags
    yfont, xfont = _font(n, 9, 5, 120), _font(n_tags, 10, 7, 30)
    xl = [str(tags[j]) for j in order]
    xrot = _label_rotation(xl, col, xfont)
    gap = _tick_gap()
    xlabel_at = gap + (_widest(xl, xfont) if xrot else _lines(xfont)) + rcParams["axes.labelpad"] * _PT
    bottom = xlabel_at + _lines(10) + _EDGE
    top = _lines(11) + rcParams["axes.titlepad"] * _PT + _EDGE
    height = bottom + ax_h + top

    fig = Figure(figsize=(8.0, height), dpi=DPI)
    ax = fig.add_axes((0, 0, 1, 1))
    dendro = 1.2 if cluster and n >= 2 else 0.0  # width of the dendrogram and its gap
    if dendro:
        from scipy.cluster.hierarchy import dendrogram, linkage

        link = linkage(np.nan_to_num(data), method="average", metric="euclidean")
        dax = fig.add_axes((0, 0, 1, 1))
        tree = dendrogram(link, orientation="left", no_labels=True, ax=dax, color_threshold=0,
                          above_threshold_color="#555555")
        rows = np.asarray(tree["leaves"])[::-1]  # leaf 0 is at the bottom of the dendrogram
        dax.set_axis_off()
    img = ax.imshow(data[rows], aspect="auto", cmap=_cmap(), norm=_sym_norm(data), interpolation="none")
    yt = _ticks(n, ax_h, yfont)
    yl = [str(neurons[i]) for i in rows[yt]]
    ax.set_yticks(yt, yl, fontsize=yfont)
    ax.set_xticks(np.arange(n_tags), xl, fontsize=xfont, rotation=xrot)
    ax.set_xlabel("tag", fontsize=10)
    ax.set_ylabel("unit" + (" (clustered)" if cluster else ""), fontsize=10)
    title = "Unit sensitivity per tag"
    ax.set_title(title, fontsize=11, y=1.0)

    cbar_w, cbar_gap = 0.18, 0.25
    cax = fig.add_axes((0, 0, 1, 1))
    _place(cax, fig, 0.0, bottom, cbar_w, ax_h)  # final height: its ticks depend on it
    cbar = fig.colorbar(img, cax=cax)
    cax.tick_params(labelsize=8)
    cbar_label_at = _tick_gap("y") + _widest(_tick_labels(cax.yaxis), 8) + rcParams["axes.labelpad"] * _PT
    cbar.set_label("sensitivity", fontsize=9)
    cax.yaxis.set_label_coords(1 + cbar_label_at / cbar_w, 0.5)

    ylabel_at = _tick_gap("y") + _widest(yl, yfont) + rcParams["axes.labelpad"] * _PT
    left = _EDGE + dendro + _lines(10) + ylabel_at
    right = cbar_gap + cbar_w + cbar_label_at + _lines(9) + _EDGE
    left, right = _centre_room(left, right, ax_w, _widest([title], 11))
    fig.set_size_inches(left + ax_w + right, height)
    _place(ax, fig, left, bottom, ax_w, ax_h)
    _place(cax, fig, left + ax_w + cbar_gap, bottom, cbar_w, ax_h)
    if dendro:
        _place(dax, fig, _EDGE, bottom, dendro - 0.2, ax_h)
    _label_axes(ax, ax_w, ax_h, xlabel_at, ylabel_at)
    return save_figure(fig, out_base)


def plot_ranking_table(s: np.ndarray, rankings: np.ndarray, tags: Sequence[str], neurons: Sequence[str],
                       out_base: str | os.PathLike, top: int = 10) -> list[Path]:
    """Table of the ``top`` most important units per tag (columns in ``tag_order``), cells coloured by sensitivity.

    Args:
        s: (n, n_tags) sensitivities; rankings: int (n_tags, n) from ``rank_units``.
        tags, neurons: names; out_base: output path without suffix.
    """
    s = np.asarray(s, dtype=np.float64)
    order = tag_order(tags)
    k = min(top, s.shape[0])
    units = np.asarray(rankings)[order, :k].T  # (k, n_tags)
    vals = s[units, np.asarray(order)[None, :]]
    n_tags = len(order)
    col, row = 1.05, 0.42
    ax_w, ax_h = col * n_tags, row * max(k, 1)
    xl = [str(tags[j]) for j in order]
    xfont = 8.0
    xrot = _label_rotation(xl, col, xfont)
    yl = [str(i + 1) for i in range(k)]
    title = f"Top {k} units per tag (unit, sensitivity)"
    title_h = _lines(10)
    top_m = _EDGE + title_h + 0.1 + (_widest(xl, xfont) if xrot else _lines(xfont)) + _tick_gap()
    ylabel_at = _tick_gap("y") + _widest(yl, 8) + rcParams["axes.labelpad"] * _PT
    left, right = _centre_room(_EDGE + _lines(9) + ylabel_at, 0.2, ax_w, _widest([title], 10))
    width, height = left + ax_w + right, _EDGE + ax_h + top_m
    fig = Figure(figsize=(width, height), dpi=DPI)
    ax = fig.add_axes((left / width, _EDGE / height, ax_w / width, ax_h / height))
    norm = _sym_norm(vals)
    ax.imshow(vals, aspect="auto", cmap=_cmap(), norm=norm, interpolation="none")
    font = 7.0 if max((len(str(x)) for x in neurons), default=1) <= 9 else 6.0
    with np.errstate(invalid="ignore"):
        dark = np.isfinite(vals) & (np.abs(np.ma.filled(norm(vals), 0.5) - 0.5) > 0.35)
    for r in range(k):
        for c in range(n_tags):
            ax.text(c, r, f"{neurons[units[r, c]]}\n{vals[r, c]:+.3g}", ha="center", va="center", fontsize=font,
                    color="white" if dark[r, c] else "black")
    ax.xaxis.tick_top()
    ax.set_xticks(np.arange(n_tags), xl, fontsize=xfont, rotation=xrot)
    ax.set_yticks(np.arange(k), yl, fontsize=8)
    ax.set_ylabel("rank", fontsize=9)
    _label_axes(ax, ax_w, ax_h, None, ylabel_at)
    fig.text((left + ax_w / 2) / width, 1 - _EDGE / height, title, ha="center", va="top", fontsize=10)
    return save_figure(fig, out_base)


def _curves(rows: np.ndarray, target: str, selection: str, eval_tag: str) -> np.ndarray:
    """Accuracy (n_k, n_draws) of ``eval_tag`` for one target and selection, k ascending."""
    m = (rows["target_tag"] == target) & (rows["selection"] == selection) & (rows["eval_tag"] == eval_tag)
    r = rows[m]
    if not r.size:
        return np.empty((0, 0))
    r = r[np.lexsort((r["draw"], r["k"]))]
    n_k = np.unique(r["k"]).size
    return r["accuracy"].reshape(n_k, -1)


def _ks(rows: np.ndarray) -> np.ndarray:
    return np.unique(rows["k"])


def _groups(rows: np.ndarray, field: str) -> dict[str, np.ndarray]:
    """``rows`` grouped by the value of ``field`` (groups in order of first appearance, rows in their order).

    A sweep writes its rows grouped by target tag, then selection, so the groups are the runs of equal
    values, found in one vectorised comparison; other orders fall back to one comparison per value.
    """
    col = rows[field]
    if not col.size:
        return {}
    starts = np.flatnonzero(np.r_[True, col[1:] != col[:-1]])
    if starts.size > 4096:
        names, first = np.unique(col, return_index=True)
        return {str(name): rows[col == name] for name in names[np.argsort(first)]}
    parts: dict[str, list[np.ndarray]] = {}
    for a, b in zip(starts.tolist(), np.r_[starts[1:], col.size].tolist()):
        parts.setdefault(str(col[a]), []).append(rows[a:b])
    return {name: p[0] if len(p) == 1 else np.concatenate(p) for name, p in parts.items()}


def _cube(rows: np.ndarray) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(ks, eval tags, accuracy (n_k, n_draws, n_evals), k ascending) of the rows of one target and selection."""
    k, draw = rows["k"].astype(np.int64), rows["draw"].astype(np.int64)
    key = k * (int(draw.max() - draw.min()) + 1) + (draw - draw.min())
    if np.any(key[1:] < key[:-1]):
        order = np.argsort(key, kind="stable")
        rows, k, key = rows[order], k[order], key[order]
    ks = np.unique(k)
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])  # one block of eval tags per (k, draw)
    blocks, width = starts.size, rows.size // starts.size
    evals = rows["eval_tag"][:width]
    if (rows.size == blocks * width and blocks % ks.size == 0 and np.all(np.diff(starts) == width)
            and np.array_equal(k[starts], np.repeat(ks, blocks // ks.size))  # as many draws at every k
            and len(set(evals.tolist())) == width
            and np.array_equal(rows["eval_tag"].reshape(blocks, width), np.broadcast_to(evals, (blocks, width)))):
        return ks, [str(e) for e in evals], rows["accuracy"].reshape(ks.size, -1, width)
    groups = _groups(rows, "eval_tag")  # irregular order: sorted by (k, draw) within each eval tag
    return ks, list(groups), np.stack([g["accuracy"].reshape(ks.size, -1) for g in groups.values()], axis=-1)


def _selections(rows: np.ndarray) -> dict[str, tuple[np.ndarray, list[str], np.ndarray]]:
    """``_cube`` of each selection (top, bottom, random) of one target's rows."""
    return {sel: _cube(r) for sel, r in _groups(rows, "selection").items()}


def _own(cubes: Mapping, selection: str, tag: str) -> tuple[np.ndarray, np.ndarray]:
    """(ks, accuracy (n_k, n_draws)) of ``tag`` under one selection; empty if absent."""
    if selection not in cubes or tag not in cubes[selection][1]:
        return np.empty(0), np.empty((0, 0))
    ks, evals, acc = cubes[selection]
    return ks, acc[:, :, evals.index(tag)]


def _check_target(rows: np.ndarray, target: str, where: str = "rows") -> None:
    if not np.any(rows["target_tag"] == target):
        targets = list(_groups(rows, "target_tag"))
        raise AnalysisInputError(f"{where}: no ablation rows for target tag {target!r}; expected one of {targets}")


def _colours(tags: Sequence[str]) -> dict[str, tuple]:
    """A colour per tag: one hue per entity type (tab10, then tab20b), O and unprefixed tags grey."""
    from matplotlib import colormaps

    types = entity_types(tags)
    tab10 = colormaps["tab10"].colors
    pal = [c for i, c in enumerate(tab10) if i != 7] + list(colormaps["tab20b"].colors)  # no grey: that is O
    hue = {t: pal[i % len(pal)] for i, t in enumerate(types)}
    return {t: hue.get(entity_type(t), (0.45, 0.45, 0.45)) for t in tags}


def _band(rnd: np.ndarray, base: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """2.5 and 97.5 percentiles and mean over draws of the random-selection change (rnd: (n_k, n_draws))."""
    change = rnd - base
    lo, hi = np.percentile(change, [2.5, 97.5], axis=1)
    return lo, hi, change.mean(axis=1)


def _random_band(ax, ks: np.ndarray, rnd: np.ndarray, base: float, label: bool = True) -> list[np.ndarray]:
    """Mean and 2.5-97.5 percentile band of the random-selection change (rnd: (n_k, n_draws)); returns the data."""
    if not rnd.size:
        return []
    lo, hi, mean = _band(rnd, base)
    ax.fill_between(ks, lo, hi, color="0.6", alpha=0.3, lw=0, label="random 95% band" if label else None)
    ax.plot(ks, mean, color="black", ls=":", lw=1.6, label="random mean" if label else None)
    return [lo, hi, mean]


class _TargetChart:
    """The figure of ``plot_ablation_target``, laid out once and redrawn for each target with the same curves.

    All targets share one size and one y range (margins and limits fit every one of them), so the charts of
    one analysis compare at a glance and only the curves, title and legend change between them: the PNG
    redraws just those over a saved image of the rest (Agg blitting); the SVG is drawn in full.
    """

    def __init__(self, ks: np.ndarray, names: list[str], rks: np.ndarray | None):
        """``ks``: k of the curves of ``names`` (eval tags in display order); ``rks``: k of the random band."""
        self.rks = rks
        tags = [t for t in names if t not in ("ALL", "F1")]
        colours = _colours(tags)
        self.fig = Figure(figsize=(8.5, 4.8), dpi=DPI)
        ax = self.ax = self.fig.add_axes((0, 0, 1, 1))
        self.lines = {}
        for name in names:
            colour, ls = {"ALL": ("black", "--"), "F1": ("black", "-.")}.get(
                name, (colours.get(name), _STYLES.get(split_or_outside(name)[0], "-")))
            self.lines[name], = ax.plot(ks, np.zeros(len(ks)), color=colour, ls=ls)
        self.band, self.legend, self.background = None, [], None
        self.mean = None if rks is None else ax.plot(rks, np.zeros(len(rks)), color="black", ls=":", lw=1.6)[0]
        ax.axhline(0, color="0.3", lw=0.6, zorder=0.9)  # under the band: drawn the same way when blitting
        ax.set_xlim(*_limits([ks] + ([] if rks is None else [rks])))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("number of ablated units k (top of the target's ranking)", fontsize=9)
        ax.set_ylabel("accuracy change vs k = 0", fontsize=9)
        self.title = ax.set_title("", fontsize=11, y=1.0)
        self.n_entries = len(names) + (0 if rks is None else 2)
        self.ncol = max(1, math.ceil(self.n_entries / 18))
        self.legend_font = _font(self.n_entries, 8, 6, 30)

    def content(self, target: str, curves: Mapping[str, np.ndarray], rnd: np.ndarray) -> dict:
        """What to draw for ``target``: ``curves`` (eval tag -> accuracy per k), ``rnd`` (random: n_k, n_draws)."""
        changes = {name: curves[name] - curves[name][0] for name in self.lines}
        labels = [f"{name} (target)" if name == target else name for name in self.lines]
        band = None
        if self.mean is not None:
            own = curves.get(target)
            band = _band(rnd, own[0] if own is not None and own.size else 0.0)
            labels += ["random 95% band", "random mean"]
        return {"target": target, "changes": changes, "band": band, "labels": labels}

    def layout(self, contents: Sequence[dict]) -> None:
        """Size the figure, set the y range and place the axes, labels and legend to fit all ``contents``."""
        ax, ax_w, ax_h = self.ax, 5.9, 3.75
        ax.set_ylim(*_limits([np.zeros(1)] + [y for c in contents for y in (*c["changes"].values(),
                                                                              *(c["band"] or ()))]))
        self.fig.set_size_inches(8.5, 4.8)
        _place(ax, self.fig, 1.0, 1.0, ax_w, ax_h)  # final height: the y ticks depend on it
        legend_w = max(_legend_size(c["labels"], self.legend_font, self.ncol)[0] for c in contents)
        ylabel_at = _tick_gap("y") + _widest(_tick_labels(ax.yaxis), _points("y")) + rcParams["axes.labelpad"] * _PT
        xlabel_at = _tick_gap() + _lines(_points()) + rcParams["axes.labelpad"] * _PT
        left = _EDGE + _lines(9) + ylabel_at
        bottom = _EDGE + _lines(9) + xlabel_at
        right = 0.15 + legend_w + _EDGE
        top = _EDGE + _lines(11) + rcParams["axes.titlepad"] * _PT
        self.fig.set_size_inches(left + ax_w + right, bottom + ax_h + top)
        _place(ax, self.fig, left, bottom, ax_w, ax_h)
        _label_axes(ax, ax_w, ax_h, xlabel_at, ylabel_at)
        self.legend_at = (left + ax_w + 0.15, bottom + ax_h - 0.03)
        self.background = None

    def draw(self, c: dict) -> Figure:
        """Show ``c`` (from ``content``) in the figure laid out by ``layout``."""
        ax, target = self.ax, c["target"]
        for name, line in self.lines.items():
            bold = name == target
            line.set(ydata=c["changes"][name], lw=3.0 if bold else 1.0, alpha=1.0 if bold else 0.75,
                     zorder=5 if bold else 2)
        handles = list(self.lines.values())
        for artist in self.legend:
            artist.remove()
        if self.band is not None:
            self.band.remove()
        if self.mean is not None:
            lo, hi, mean = c["band"]
            self.band = ax.fill_between(self.rks, lo, hi, color="0.6", alpha=0.3, lw=0)
            self.mean.set_ydata(mean)
            handles += [self.band, self.mean]
        self.title.set_text(f"Ablating the top units of {target}")
        self.legend = _legend(self.fig, list(zip(c["labels"], map(_style, handles))), *self.legend_at,
                              self.legend_font, self.ncol)
        return self.fig

    def save(self, c: dict, base: str | os.PathLike) -> list[Path]:
        """Draw ``c`` and write it as ``base``.png and ``base``.svg (like ``save_figure``)."""
        self.draw(c)
        png, svg = Path(f"{os.fspath(base)}.png"), Path(f"{os.fspath(base)}.svg")
        with rc_context(_SAVE_RC):
            atomic_save(png, lambda buf: buf.write(self._png()))
            atomic_save(svg, lambda tmp: self.fig.savefig(tmp, format="svg", dpi=DPI, metadata={"Date": None}))
        return [png, svg]

    def _png(self) -> bytes:
        """The PNG of the figure: the parts that change per target drawn over the saved rest."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        changing = [*self.lines.values(), *(a for a in (self.band, self.mean) if a is not None), self.title,
                    *self.legend]
        if self.background is None:
            self.canvas = FigureCanvasAgg(self.fig)
            for artist in changing:
                artist.set_visible(False)
            self.canvas.draw()
            self.background = self.canvas.copy_from_bbox(self.fig.bbox)
            for artist in changing:
                artist.set_visible(True)
        self.canvas.restore_region(self.background)
        renderer = self.canvas.get_renderer()
        for artist in sorted(changing, key=lambda a: a.get_zorder()):  # stable: the order of a full draw
            artist.draw(renderer)
        return _png(np.asarray(self.canvas.buffer_rgba()), DPI)


def plot_ablation_targets(rows: np.ndarray, targets: Sequence[str],
                          out_bases: Sequence[str | os.PathLike]) -> list[Path]:
    """``plot_ablation_target`` for each of ``targets`` (written to the matching ``out_bases``), in one figure.

    Raises:
        ValueError: if lengths differ, or a target has no rows or no top-k rows.
    """
    if len(targets) != len(out_bases):
        raise AnalysisInputError(f"expected one output path per target, got {len(out_bases)} for {len(targets)}")
    by_target = _groups(rows, "target_tag")
    for target in targets:
        if target not in by_target:
            _check_target(rows, target)
    charts: dict[tuple, tuple[_TargetChart, list]] = {}  # one chart per set of curves (normally one in all)
    for target, base in zip(targets, out_bases):
        cubes = _selections(by_target[target])
        if "top" not in cubes:
            raise AnalysisInputError(f"rows: no top-k ablation rows for target tag {target!r}")
        ks, evals, top = cubes["top"]
        tags = [t for t in evals if t not in ("ALL", "F1")]
        names = [tags[i] for i in tag_order(tags)] + [e for e in ("ALL", "F1") if e in evals]
        rks, rnd = _own(cubes, "random", target)
        key = (tuple(ks.tolist()), tuple(names), tuple(rks.tolist()) if rnd.size else None)
        if key not in charts:
            charts[key] = (_TargetChart(ks, names, rks if rnd.size else None), [])
        chart, jobs = charts[key]
        jobs.append((chart.content(target, {e: top[:, 0, j] for j, e in enumerate(evals)}, rnd), base))
    written: dict[str, list[Path]] = {}
    for chart, jobs in charts.values():
        chart.layout([c for c, _ in jobs])
        for c, base in jobs:
            written[os.fspath(base)] = chart.save(c, base)
    return [p for base in out_bases for p in written[os.fspath(base)]]


def plot_ablation_target(rows: np.ndarray, target: str, out_base: str | os.PathLike) -> list[Path]:
    """Accuracy change vs k = 0 when ablating the target's top-k units, for every eval tag.

    The target tag is drawn bold; the random selection's mean change of the target's
    accuracy is dotted, with its 2.5-97.5 percentile band over draws shaded.

    Args:
        rows: ablation rows (``ablation_sweep`` or ``read_ablation_csv``).
        target: target tag; out_base: output path without suffix.
    """
    return plot_ablation_targets(rows, [target], [out_base])


def plot_ablation_grid(rows: np.ndarray, out_base: str | os.PathLike) -> list[Path]:
    """Small multiples, one panel per target tag: its own accuracy change for top, bottom and random selections."""
    by_target = _groups(rows, "target_tag")
    targets = list(by_target)
    targets = [targets[i] for i in tag_order(targets)]
    ncol = max(1, math.ceil(math.sqrt(len(targets) * 1.4)))
    nrow = max(1, math.ceil(len(targets) / ncol))
    panel_w, panel_h, hgap = 2.2, 1.55, 0.18
    tfont, gap = 7.0, _tick_gap()
    title_h = _lines(9) + 4 * _PT
    vgap = title_h + gap + _lines(tfont) + 0.08
    bottom = _EDGE + _lines(9) + 0.08 + _lines(tfont) + gap
    top = _EDGE + _ROW_EM * 8 * _PT + 0.12 + title_h
    height = bottom + nrow * panel_h + (nrow - 1) * vgap + top
    fig = Figure(figsize=(8.0, height), dpi=DPI)
    axes, xdata, ydata = [], [], [np.zeros(1)]
    for i, t in enumerate(targets):
        ax = fig.add_axes((0, 0, 1, 1))
        axes.append(ax)
        cubes = _selections(by_target[t])
        (ks, top_c), (bks, bottom_c), (rks, rnd) = (_own(cubes, sel, t) for sel in ("top", "bottom", "random"))
        base = top_c[0, 0] if top_c.size else 0.0
        xdata += [ks, bks, rks]
        if top_c.size:
            ax.plot(ks, top_c[:, 0] - base, color="tab:red", lw=2.0, label="top")
            ydata.append(top_c[:, 0] - base)
        if bottom_c.size:
            ax.plot(bks, bottom_c[:, 0] - base, color="tab:blue", lw=1.2, ls="--", label="bottom")
            ydata.append(bottom_c[:, 0] - base)
        ydata += _random_band(ax, rks, rnd, base, label=True)
        ax.axhline(0, color="0.3", lw=0.5)
        ax.set_title(t, fontsize=9, y=1.0, pad=4)
        ax.tick_params(labelsize=tfont, labelleft=i % ncol == 0, labelbottom=i + ncol >= len(targets))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
        _label_axes(ax, panel_w, panel_h, None, None)
    xlim, ylim = _limits(xdata), _limits(ydata)
    for i, ax in enumerate(axes):
        ax.set(xlim=xlim, ylim=ylim)
        r, c = divmod(i, ncol)
        _place(ax, fig, 0.0, bottom + (nrow - 1 - r) * (panel_h + vgap), panel_w, panel_h)
    ytick_w = _widest(_tick_labels(axes[0].yaxis), tfont) if axes else 0.0
    left = _EDGE + _lines(9) + 0.08 + ytick_w + _tick_gap("y")
    grid_w = ncol * panel_w + (ncol - 1) * hgap
    width = left + grid_w + 0.25
    fig.set_size_inches(width, height)
    for i, ax in enumerate(axes):
        r, c = divmod(i, ncol)
        _place(ax, fig, left + c * (panel_w + hgap), bottom + (nrow - 1 - r) * (panel_h + vgap), panel_w, panel_h)
    if axes:
        handles, labels = axes[0].get_legend_handles_labels()
        legend_w = _legend_size(labels, 8, len(labels))[0]
        _legend(fig, list(zip(labels, map(_style, handles))), left + (grid_w - legend_w) / 2, height - _EDGE, 8,
                len(labels))
    grid_h = height - bottom - top
    fig.text((left + grid_w / 2) / width, _EDGE / height, "number of ablated units k", ha="center", va="bottom",
             fontsize=9)
    fig.text(_EDGE / width, (bottom + grid_h / 2) / height, "accuracy change of the target tag", ha="left",
             va="center", rotation=90, fontsize=9)
    return save_figure(fig, out_base)


def plot_per_tag_accuracy(accuracy: Mapping[str, float], out_base: str | os.PathLike) -> list[Path]:
    """Bar chart of per-tag accuracy (``tag_order``), then ``ALL`` and ``F1`` if present; NaN bars marked n/a."""
    tags = [t for t in accuracy if t not in ("ALL", "F1")]
    names = [tags[i] for i in tag_order(tags)] + [t for t in ("ALL", "F1") if t in accuracy]
    vals = np.array([np.nan if accuracy[t] is None else float(accuracy[t]) for t in names])
    colours = _colours(tags)
    cols = [colours.get(t, "black") for t in names]
    ax_w, ax_h = max(3.8, 0.2 + 0.38 * len(names)), 2.6
    slot = ax_w / max(len(names), 1)
    xfont = _font(len(names), 9, 6.5, 40)
    xrot = _label_rotation(names, slot, xfont)
    bottom = _EDGE + (_widest(names, xfont) if xrot else _lines(xfont)) + _tick_gap()
    top = _EDGE + _lines(11) + rcParams["axes.titlepad"] * _PT
    height = bottom + ax_h + top
    fig = Figure(figsize=(8.0, height), dpi=DPI)
    ax = fig.add_axes((0, 0, 1, 1))
    x = np.arange(len(names))
    ax.bar(x, np.nan_to_num(vals), color=cols, alpha=0.85)
    font = _font(len(names), 8, 5.5, 40)
    for xi, v in zip(x, vals):
        ax.text(xi, (v if np.isfinite(v) else 0) + 0.01, f"{v:.2f}" if np.isfinite(v) else "n/a", ha="center",
                va="bottom", fontsize=font, rotation=90 if len(names) > 14 else 0)
    ax.set_xticks(x, names, fontsize=xfont, rotation=xrot)
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("accuracy (F1 for F1)", fontsize=9)
    title = "Per-tag accuracy"
    ax.set_title(title, fontsize=11, y=1.0)
    fig.set_size_inches(8.0, height)
    _place(ax, fig, 1.0, bottom, ax_w, ax_h)  # final height: the y ticks depend on it
    ylabel_at = _tick_gap("y") + _widest(_tick_labels(ax.yaxis), _points("y")) + rcParams["axes.labelpad"] * _PT
    left, right = _centre_room(_EDGE + _lines(9) + ylabel_at, 0.3, ax_w, _widest([title], 11))
    fig.set_size_inches(left + ax_w + right, height)
    _place(ax, fig, left, bottom, ax_w, ax_h)
    _label_axes(ax, ax_w, ax_h, None, ylabel_at)
    return save_figure(fig, out_base)


def plot_ablation_overlay(csv_paths: Sequence[str | os.PathLike], labels: Sequence[str], tag: str,
                          out_path: str | os.PathLike) -> list[Path]:
    """Overlay one target tag's own accuracy under top-k ablation (solid) and random mean (dotted) from several runs.

    Args:
        csv_paths: ablation.csv files, one per run; labels: legend label per run.
        tag: target tag (must appear in every file).
        out_path: output file; with a .png or .svg suffix both formats are written beside each other,
            otherwise ``out_path``.png and ``out_path``.svg.

    Raises:
        ValueError: if lengths differ or a file has no rows for ``tag``.
    """
    if len(csv_paths) != len(labels) or not csv_paths:
        raise AnalysisInputError(
            f"expected one label per ablation.csv, got {len(labels)} labels for {len(csv_paths)} files")
    ax_w, ax_h = 4.8, 3.5
    fig = Figure(figsize=(8.0, 4.6), dpi=DPI)
    ax = fig.add_axes((0, 0, 1, 1))
    from matplotlib import colormaps

    pal = colormaps["tab10"].colors
    xdata, ydata, names = [], [], []
    for i, (path, label) in enumerate(zip(csv_paths, labels)):
        rows = read_ablation_csv(path)
        _check_target(rows, tag, str(path))
        rows = rows[rows["target_tag"] == tag]
        ks = _ks(rows)
        top = _curves(rows, tag, "top", tag)[:, 0]
        ax.plot(ks, top, color=pal[i % len(pal)], lw=2.0, label=f"{label}: top")
        xdata.append(ks)
        ydata.append(top)
        names.append(f"{label}: top")
        rnd = _curves(rows, tag, "random", tag)
        if rnd.size:
            ax.plot(ks, rnd.mean(axis=1), color=pal[i % len(pal)], lw=1.2, ls=":", label=f"{label}: random mean")
            ydata.append(rnd.mean(axis=1))
            names.append(f"{label}: random mean")
    ax.set(xlim=_limits(xdata), ylim=_limits(ydata))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("number of ablated units k", fontsize=9)
    ax.set_ylabel(f"accuracy of {tag}", fontsize=9)
    title = f"Ablation of {tag}'s top units across runs"
    ax.set_title(title, fontsize=11, y=1.0)
    ncol = max(1, math.ceil(len(names) / 16))
    xlabel_at = _tick_gap() + _lines(_points()) + rcParams["axes.labelpad"] * _PT
    bottom = _EDGE + _lines(9) + xlabel_at
    top = _EDGE + _lines(11) + rcParams["axes.titlepad"] * _PT
    height = bottom + ax_h + top
    fig.set_size_inches(8.0, height)
    _place(ax, fig, 1.0, bottom, ax_w, ax_h)  # final height: the y ticks depend on it
    ylabel_at = _tick_gap("y") + _widest(_tick_labels(ax.yaxis), _points("y")) + rcParams["axes.labelpad"] * _PT
    right = 0.15 + _legend_size(names, 8, ncol)[0] + _EDGE
    left, right = _centre_room(_EDGE + _lines(9) + ylabel_at, right, ax_w, _widest([title], 11))
    fig.set_size_inches(left + ax_w + right, height)
    _place(ax, fig, left, bottom, ax_w, ax_h)
    _label_axes(ax, ax_w, ax_h, xlabel_at, ylabel_at)
    _legend(fig, list(zip(names, map(_style, ax.get_lines()))), left + ax_w + 0.15, bottom + ax_h - 0.03, 8, ncol)
    p = Path(out_path)
    return save_figure(fig, p.with_suffix("") if p.suffix.lower() in (".png", ".svg") else p)
