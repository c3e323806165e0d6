"""Figures of ranking-method agreement: shared top-k units of two methods, and each method's stability over runs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nerve.report import figures
from nerve.report.figures import new_figure
from nerve.report.formats import when_drawn


def _heatmap(M: np.ndarray, rows: Sequence[str], cols: Sequence[str], vmax: float, out_base: str | os.PathLike,
             title: str, label: str, width: float, height: float, caption: str) -> list[Path]:
    """A sequential (Blues, 0..vmax) heatmap with its values printed in the cells; NaN cells grey."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    data = np.asarray(M, dtype=np.float64)
    norm = Normalize(0.0, max(float(vmax), 1e-9))
    fig = new_figure(width, height)
    ax = fig.subplots()
    img = ax.imshow(data, cmap=colormaps["Blues"].with_extremes(bad="#d9d9d9"), norm=norm, interpolation="nearest",
                    aspect="auto")
    ax.set_xticks(np.arange(len(cols)), list(cols), fontsize=8, rotation=90)
    ax.set_yticks(np.arange(len(rows)), list(rows), fontsize=8)
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            if np.isfinite(data[i, j]):
                ax.text(j, i, f"{data[i, j]:.1f}", ha="center", va="center", fontsize=7,
                        color="white" if norm(data[i, j]) > 0.6 else "black")
    cbar = fig.colorbar(img, ax=ax, fraction=0.05, pad=0.03)
    cbar.set_label(label, fontsize=7)
    cbar.ax.tick_params(labelsize=7)
    ax.set_title(figures.wrap(title, fig.get_figwidth() - 0.3, 9), fontsize=9)
    return figures.save_figure(fig, out_base, caption=caption)


@when_drawn
def plot_method_agreement(methods: Sequence[str], M: np.ndarray, k: int, out_base: str | os.PathLike,
                          title: str) -> list[Path]:
    """Heatmap of the shared units among the top ``k`` of every two ranking methods (methods × methods).

    Args:
        M: (M, M) shared counts (e.g. the mean over tags, ``agreement.pair_matrix``), the diagonal k.
    """
    n = len(methods)
    flat = " ".join(title.split())
    caption = (f"{flat}: every two ranking methods, each cell the number of units their top-{k} lists of a tag "
               f"share (0..{k}, darker: more; the diagonal is {k}).")
    return _heatmap(M, methods, methods, k, out_base, title, f"shared units of the top {k}", 2.9 + 0.5 * n,
                    1.9 + 0.42 * n, caption)


@when_drawn
def plot_method_stability(methods: Sequence[str], tags: Sequence[str], M: np.ndarray, k: int,
                          out_base: str | os.PathLike, title: str) -> list[Path]:
    """Heatmap of each method's matched top-``k`` overlap between runs, per tag (methods × tags).

    Args:
        M: (len(methods), len(tags)) mean over run pairs of the shared units after unit matching.
    """
    flat = " ".join(title.split())
    caption = (f"{flat}: for each ranking method (row) and tag (column), the units two runs' top-{k} lists share "
               f"once the runs' units are matched by their sensitivity profiles, mean over every two runs (0..{k}, "
               "darker: more stable).")
    return _heatmap(M, methods, tags, k, out_base, title, f"matched units shared of the top {k}",
                    2.9 + 0.55 * len(tags), 1.9 + 0.42 * len(methods), caption)
