"""Figures of the neuron analysis (Xin, Lin & Yu, EMNLP 2019): heatmap, rankings, ablation curves, accuracies."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from nerve.analysis.ablation import read_ablation_csv
from nerve.analysis.checks import AnalysisInputError
from nerve.io import atomic_save

DPI = 150
_PREFIX_RANK = {p: i for i, p in enumerate("BIELSU")}
_STYLES = {"B": "-", "I": "--", "E": ":", "L": ":", "S": "-.", "U": "-."}


def _split(tag: str) -> tuple[str, str]:
    """(prefix, type) of a tag; "O" and unprefixed tags give ("", tag)."""
    if len(tag) > 2 and tag[1] == "-" and tag[0] in _PREFIX_RANK:
        return tag[0], tag[2:]
    return "", tag


def tag_order(tags: Sequence[str]) -> list[int]:
    """Display order of tags as indices into ``tags``.

    Grouped by entity type (types alphabetical), within a type B, I, E, L, S, U; tags
    without a prefix (e.g. padding) after the typed ones, then O last.
    """
    def key(i: int):
        prefix, type_ = _split(str(tags[i]))
        if tags[i] == "O":
            return (2, "", 0, i)
        return (0 if prefix else 1, type_, _PREFIX_RANK.get(prefix, 0), i)

    return sorted(range(len(tags)), key=key)


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


def save_figure(fig: Figure, base: str | os.PathLike) -> list[Path]:
    """Save ``fig`` as ``base``.png (dpi 150) and ``base``.svg, each atomically; return both paths.

    The saved area is the tight bounding box of every artist, so long rotated labels are never cut off.
    """
    paths = []
    for fmt in ("png", "svg"):
        path = Path(f"{os.fspath(base)}.{fmt}")

        def save(tmp: Path, fmt: str = fmt) -> None:
            meta = {"Date": None} if fmt == "svg" else None  # reproducible SVG
            fig.savefig(tmp, format=fmt, dpi=DPI, metadata=meta, bbox_inches="tight", pad_inches=0.15)

        atomic_save(path, save)
        paths.append(path)
    return paths


def _font(n: int, big: float = 10.0, small: float = 6.0, at: int = 60) -> float:
    """A font size shrinking from ``big`` (few labels) to ``small`` (``at`` labels or more)."""
    return big if n <= 10 else max(small, big - (big - small) * (n - 10) / max(at - 10, 1))


def _ticks(n: int, length_in: float, font: float) -> np.ndarray:
    """Positions of every k-th of n labels so that labels ``font`` pt tall fit in ``length_in`` inches."""
    step = max(1, math.ceil(n * font * 1.35 / 72 / max(length_in, 0.1)))
    return np.arange(0, n, step)


def _label_rotation(labels: Sequence[str], slot_in: float, font: float) -> int:
    """0 if the widest label fits its slot (inches) horizontally, else 90."""
    widest = max((len(str(x)) for x in labels), default=0) * font * 0.62 / 72
    return 0 if widest <= slot_in * 0.95 else 90


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
    width = 2.8 + 0.42 * n_tags + (1.2 if cluster else 0.0)
    height = float(np.clip(1.6 + 0.16 * n, 4.0, 24.0))
    fig = Figure(figsize=(width, height))
    left = 1.2 / width + (1.2 / width if cluster else 0.0)
    ax = fig.add_axes((left, 1.3 / height, 1 - left - 1.5 / width, 1 - 2.0 / height))
    if cluster and n >= 2:
        from scipy.cluster.hierarchy import dendrogram, linkage

        link = linkage(np.nan_to_num(data), method="average", metric="euclidean")
        dax = fig.add_axes((1.0 / width * 0.2, ax.get_position().y0, 1.1 / width, ax.get_position().height))
        tree = dendrogram(link, orientation="left", no_labels=True, ax=dax, color_threshold=0,
                          above_threshold_color="#555555")
        rows = np.asarray(tree["leaves"])[::-1]  # leaf 0 is at the bottom of the dendrogram
        dax.set_axis_off()
    img = ax.imshow(data[rows], aspect="auto", cmap=_cmap(), norm=_sym_norm(data), interpolation="nearest")
    yfont = _font(n, 9, 5, 120)
    yt = _ticks(n, ax.get_position().height * height, yfont)
    ax.set_yticks(yt, [str(neurons[i]) for i in rows[yt]], fontsize=yfont)
    xfont = _font(n_tags, 10, 7, 30)
    xl = [str(tags[j]) for j in order]
    ax.set_xticks(np.arange(n_tags), xl, fontsize=xfont, rotation=_label_rotation(xl, 0.42, xfont))
    ax.set_xlabel("tag", fontsize=10)
    ax.set_ylabel("unit" + (" (clustered)" if cluster else ""), fontsize=10)
    cax = fig.add_axes((1 - 1.2 / width, ax.get_position().y0, 0.18 / width, ax.get_position().height))
    fig.colorbar(img, cax=cax).set_label("sensitivity", fontsize=9)
    cax.tick_params(labelsize=8)
    ax.set_title("Unit sensitivity per tag", fontsize=11)
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
    col_in = 1.05
    width, height = 1.2 + col_in * n_tags, 1.6 + 0.42 * k
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0.9 / width, 0.3 / height, 1 - 1.1 / width, 1 - 1.3 / height))
    ax.imshow(vals, aspect="auto", cmap=_cmap(), norm=_sym_norm(vals), interpolation="nearest")
    font = 7.0 if max((len(str(x)) for x in neurons), default=1) <= 9 else 6.0
    for r in range(k):
        for c in range(n_tags):
            v = vals[r, c]
            ax.text(c, r, f"{neurons[units[r, c]]}\n{v:+.3g}", ha="center", va="center", fontsize=font,
                    color="white" if np.isfinite(v) and abs(_sym_norm(vals)(v) - 0.5) > 0.35 else "black")
    xl = [str(tags[j]) for j in order]
    xfont = 8.0
    ax.xaxis.tick_top()
    ax.set_xticks(np.arange(n_tags), xl, fontsize=xfont, rotation=_label_rotation(xl, col_in, xfont))
    ax.set_yticks(np.arange(k), [str(i + 1) for i in range(k)], fontsize=8)
    ax.set_ylabel("rank", fontsize=9)
    ax.set_title(f"Top {k} units per tag (unit, sensitivity)", fontsize=10, pad=30)
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


def _check_target(rows: np.ndarray, target: str, where: str = "rows") -> None:
    targets = list(dict.fromkeys(rows["target_tag"].tolist()))
    if target not in targets:
        raise AnalysisInputError(f"{where}: no ablation rows for target tag {target!r}; expected one of {targets}")


def _colours(tags: Sequence[str]) -> dict[str, tuple]:
    """A colour per tag: one hue per entity type (tab10, then tab20b), O and unprefixed tags grey."""
    from matplotlib import colormaps

    types = sorted({_split(t)[1] for t in tags if _split(t)[0]})
    tab10 = colormaps["tab10"].colors
    pal = [c for i, c in enumerate(tab10) if i != 7] + list(colormaps["tab20b"].colors)  # no grey: that is O
    hue = {t: pal[i % len(pal)] for i, t in enumerate(types)}
    return {t: hue.get(_split(t)[1], (0.45, 0.45, 0.45)) if _split(t)[0] else (0.45, 0.45, 0.45) for t in tags}


def _random_band(ax, ks: np.ndarray, rnd: np.ndarray, base: float, label: bool = True) -> None:
    """Mean and 2.5-97.5 percentile band of the random-selection change (rnd: (n_k, n_draws))."""
    if not rnd.size:
        return
    change = rnd - base
    ax.fill_between(ks, np.percentile(change, 2.5, axis=1), np.percentile(change, 97.5, axis=1),
                    color="0.6", alpha=0.3, lw=0, label="random 95% band" if label else None)
    ax.plot(ks, change.mean(axis=1), color="black", ls=":", lw=1.6, label="random mean" if label else None)


def plot_ablation_target(rows: np.ndarray, target: str, out_base: str | os.PathLike) -> list[Path]:
    """Accuracy change vs k = 0 when ablating the target's top-k units, for every eval tag.

    The target tag is drawn bold; the random selection's mean change of the target's
    accuracy is dotted, with its 2.5-97.5 percentile band over draws shaded.

    Args:
        rows: ablation rows (``ablation_sweep`` or ``read_ablation_csv``).
        target: target tag; out_base: output path without suffix.
    """
    _check_target(rows, target)
    ks = _ks(rows[rows["target_tag"] == target])
    evals = list(dict.fromkeys(rows["eval_tag"][rows["target_tag"] == target].tolist()))
    tags = [t for t in evals if t not in ("ALL", "F1")]
    colours = _colours(tags)
    n_entries = len(evals) + 2
    ncol = max(1, math.ceil(n_entries / 18))
    fig = Figure(figsize=(7.0 + 1.5 * ncol, 4.8))
    ax = fig.add_axes((0.09, 0.12, 0.86 - 1.5 * ncol / (7.0 + 1.5 * ncol), 0.78))
    for name in [tags[i] for i in tag_order(tags)] + [e for e in ("ALL", "F1") if e in evals]:
        acc = _curves(rows, target, "top", name)[:, 0]
        bold = name == target
        style = {"ALL": ("black", "--"), "F1": ("black", "-.")}.get(name, (colours.get(name), _STYLES.get(_split(name)[0], "-")))
        ax.plot(ks, acc - acc[0], color=style[0], ls=style[1], lw=3.0 if bold else 1.0, alpha=1.0 if bold else 0.75,
                zorder=5 if bold else 2, label=f"{name} (target)" if bold else name)
    own = _curves(rows, target, "top", target)
    _random_band(ax, ks, _curves(rows, target, "random", target), own[0, 0] if own.size else 0.0)
    ax.axhline(0, color="0.3", lw=0.6)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("number of ablated units k (top of the target's ranking)", fontsize=9)
    ax.set_ylabel("accuracy change vs k = 0", fontsize=9)
    ax.set_title(f"Ablating the top units of {target}", fontsize=11)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=_font(n_entries, 8, 6, 30), ncol=ncol,
              frameon=False)
    return save_figure(fig, out_base)


def plot_ablation_grid(rows: np.ndarray, out_base: str | os.PathLike) -> list[Path]:
    """Small multiples, one panel per target tag: its own accuracy change for top, bottom and random selections."""
    targets = list(dict.fromkeys(rows["target_tag"].tolist()))
    targets = [targets[i] for i in tag_order(targets)]
    ncol = max(1, math.ceil(math.sqrt(len(targets) * 1.4)))
    nrow = max(1, math.ceil(len(targets) / ncol))
    fig = Figure(figsize=(2.6 * ncol + 0.6, 2.1 * nrow + 1.0))
    axes = fig.subplots(nrow, ncol, sharex=True, sharey=True, squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        if i >= len(targets):
            ax.set_axis_off()
            continue
        if i + ncol >= len(targets):  # lowest panel of its column: show the k labels
            ax.tick_params(labelbottom=True)
        t = targets[i]
        ks = _ks(rows[rows["target_tag"] == t])
        top, bottom = _curves(rows, t, "top", t), _curves(rows, t, "bottom", t)
        base = top[0, 0] if top.size else 0.0
        if top.size:
            ax.plot(ks, top[:, 0] - base, color="tab:red", lw=2.0, label="top")
        if bottom.size:
            ax.plot(ks, bottom[:, 0] - base, color="tab:blue", lw=1.2, ls="--", label="bottom")
        _random_band(ax, ks, _curves(rows, t, "random", t), base, label=True)
        ax.axhline(0, color="0.3", lw=0.5)
        ax.set_title(t, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=4, fontsize=8, frameon=False)
    fig.supxlabel("number of ablated units k", fontsize=9)
    fig.supylabel("accuracy change of the target tag", fontsize=9)
    fig.subplots_adjust(top=1 - 0.75 / (2.1 * nrow + 1.0), hspace=0.45, wspace=0.12)
    return save_figure(fig, out_base)


def plot_per_tag_accuracy(accuracy: Mapping[str, float], out_base: str | os.PathLike) -> list[Path]:
    """Bar chart of per-tag accuracy (``tag_order``), then ``ALL`` and ``F1`` if present; NaN bars marked n/a."""
    tags = [t for t in accuracy if t not in ("ALL", "F1")]
    names = [tags[i] for i in tag_order(tags)] + [t for t in ("ALL", "F1") if t in accuracy]
    vals = np.array([np.nan if accuracy[t] is None else float(accuracy[t]) for t in names])
    colours = _colours(tags)
    cols = [colours.get(t, "black") for t in names]
    width = max(5.0, 1.4 + 0.38 * len(names))
    fig = Figure(figsize=(width, 4.2))
    ax = fig.add_axes((0.9 / width, 0.28, 1 - 1.2 / width, 0.62))
    x = np.arange(len(names))
    ax.bar(x, np.nan_to_num(vals), color=cols, alpha=0.85)
    font = _font(len(names), 8, 5.5, 40)
    for xi, v in zip(x, vals):
        ax.text(xi, (v if np.isfinite(v) else 0) + 0.01, f"{v:.2f}" if np.isfinite(v) else "n/a", ha="center",
                va="bottom", fontsize=font, rotation=90 if len(names) > 14 else 0)
    ax.set_xticks(x, names, fontsize=_font(len(names), 9, 6.5, 40),
                  rotation=_label_rotation(names, 0.38, _font(len(names), 9, 6.5, 40)))
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("accuracy (F1 for F1)", fontsize=9)
    ax.set_title("Per-tag accuracy", fontsize=11)
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
        raise AnalysisInputError(f"expected one label per ablation.csv, got {len(labels)} labels for {len(csv_paths)} files")
    fig = Figure(figsize=(7.5, 4.6))
    ax = fig.add_axes((0.1, 0.12, 0.62, 0.78))
    from matplotlib import colormaps

    pal = colormaps["tab10"].colors
    for i, (path, label) in enumerate(zip(csv_paths, labels)):
        rows = read_ablation_csv(path)
        _check_target(rows, tag, str(path))
        ks = _ks(rows[rows["target_tag"] == tag])
        top = _curves(rows, tag, "top", tag)[:, 0]
        ax.plot(ks, top, color=pal[i % len(pal)], lw=2.0, label=f"{label}: top")
        rnd = _curves(rows, tag, "random", tag)
        if rnd.size:
            ax.plot(ks, rnd.mean(axis=1), color=pal[i % len(pal)], lw=1.2, ls=":", label=f"{label}: random mean")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("number of ablated units k", fontsize=9)
    ax.set_ylabel(f"accuracy of {tag}", fontsize=9)
    ax.set_title(f"Ablation of {tag}'s top units across runs", fontsize=11)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    p = Path(out_path)
    return save_figure(fig, p.with_suffix("") if p.suffix.lower() in (".png", ".svg") else p)
