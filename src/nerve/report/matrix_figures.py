"""Tag x tag matrices as heatmaps: sensitivity correlations, weight cosines, shared top units."""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nerve.report import figures
from nerve.report.figures import new_figure
from nerve.report.formats import when_drawn
from nerve.tags import tag_order

# What the colour of a tag x tag matrix means, by its colour bar's label (the caption's second sentence).
MEANINGS = {"Pearson r": "Pearson correlation over units of the two tags' sensitivities (red: positive, the same "
                         "units push both tags up; blue: negative)",
            "cosine": "cosine similarity of the two tags' output weight vectors (red: positive; blue: negative)",
            "shared units": "number of units the two tags' top-k rankings share (darker: more)"}


@when_drawn
def plot_tag_matrix(M: np.ndarray, tags: Sequence[str], out_base: str | os.PathLike, title: str,
                    signed: bool = True, vmax: float | None = None, label: str = "") -> list[Path]:
    """Heatmap of a tag x tag matrix, tags in ``tag_order``; values printed in the cells when T <= 12.

    Args:
        M: (T, T) matrix indexed like ``tags``; NaN cells are grey.
        signed: diverging RdBu_r centred at 0 over [-1, 1] (correlations, cosines); else
            sequential Blues over [0, vmax] (overlap counts).
        vmax: upper end of the sequential scale; default the largest finite value.
        label: the colour bar's label.
    """
    from matplotlib import colormaps
    from matplotlib.colors import Normalize, TwoSlopeNorm

    order = tag_order(tags)
    data = np.asarray(M, dtype=np.float64)[np.ix_(order, order)]
    names = [str(tags[j]) for j in order]
    t = len(names)
    if signed:
        cmap, norm = colormaps["RdBu_r"].with_extremes(bad="#d9d9d9"), TwoSlopeNorm(0.0, -1.0, 1.0)
    else:
        top = vmax if vmax is not None else (np.nanmax(data) if np.any(np.isfinite(data)) else 1.0)
        cmap, norm = colormaps["Blues"].with_extremes(bad="#d9d9d9"), Normalize(0.0, max(float(top), 1e-9))
    cell = 0.55 if t <= 12 else 0.32
    fig = new_figure(2.6 + cell * t, 1.9 + cell * t)
    ax = fig.subplots()
    img = ax.imshow(data, cmap=cmap, norm=norm, interpolation="nearest")
    font = 9 if t <= 12 else 7
    ax.set_xticks(np.arange(t), names, fontsize=font, rotation=90)
    ax.set_yticks(np.arange(t), names, fontsize=font)
    if t <= 12:
        integer = np.all(np.isfinite(data)) and np.allclose(data, np.round(data))
        for i, j in itertools.product(range(t), range(t)):
            v = data[i, j]
            txt = "" if not np.isfinite(v) else (f"{v:.0f}" if integer else f"{v:.2f}")
            dark = np.isfinite(v) and (abs(norm(v) - 0.5) > 0.3 if signed else norm(v) > 0.6)
            ax.text(j, i, txt, ha="center", va="center", fontsize=7, color="white" if dark else "black")
    cbar = fig.colorbar(img, ax=ax, fraction=0.05, pad=0.03)
    cbar.set_label(label, fontsize=8)
    cbar.ax.tick_params(labelsize=7)
    ax.set_title(figures.wrap(title, fig.get_figwidth() - 0.3, 9), fontsize=9)
    head, _, rest = title.partition("\n")
    caption = (f"{head}{' (' + rest.replace(chr(10), ', ') + ')' if rest else ''}: every pair of tags in display "
               f"order; each cell the {MEANINGS.get(label, label or 'value')}"
               f"{' over -1..1' if signed else f' on 0..{norm.vmax:g}'}, one scale for every figure of its kind. "
               "Grey: undefined.")
    return figures.save_figure(fig, out_base, caption=caption)
