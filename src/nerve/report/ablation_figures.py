"""Figures of ablation sweeps: per target tag the change of every tag's accuracy as its top units are removed,
small multiples of top / bottom / random for every target, and one target across runs."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator

from nerve.analysis.ablation import read_ablation_csv
from nerve.analysis.checks import AnalysisInputError
from nerve.report import figures
from nerve.report.curves import check_target, groups, own, random_band, selections
from nerve.report.figures import LINE_STYLES, colours, font_size, limits, new_figure
from nerve.tags import split_or_outside, tag_order

SUMMARIES = ("ALL", "F1")
_SUMMARY_STYLE = {"ALL": ("black", "--"), "F1": ("black", "-.")}


def _target_curves(rows: np.ndarray, target: str) -> dict:
    """What the chart of ``target`` shows: eval tags in display order, the change of each vs k = 0, the band."""
    cubes = selections(rows)
    if "top" not in cubes:
        raise AnalysisInputError(f"rows: no top-k ablation rows for target tag {target!r}")
    ks, evals, top = cubes["top"]
    tags = [t for t in evals if t not in SUMMARIES]
    names = [tags[i] for i in tag_order(tags)] + [e for e in SUMMARIES if e in evals]
    changes = {e: top[:, 0, evals.index(e)] - top[0, 0, evals.index(e)] for e in names}
    rks, rnd = own(cubes, "random", target)
    own_top = top[:, 0, evals.index(target)] if target in evals else np.zeros(1)
    band = random_band(rnd, own_top[0]) if rnd.size else None
    return {"target": target, "ks": ks, "names": names, "changes": changes, "rks": rks, "band": band}


def plot_ablation_targets(rows: np.ndarray, targets: Sequence[str],
                          out_bases: Sequence[str | os.PathLike], where: str = "") -> list[Path]:
    """``plot_ablation_target`` for each of ``targets`` (written to the matching ``out_bases``); every chart has
    the same size and y range, so that the charts of one analysis compare at a glance. ``where``: the split the
    units were ranked and ablated on, named in each title.

    Raises:
        ValueError: if lengths differ, or a target has no rows or no top-k rows.
    """
    if len(targets) != len(out_bases):
        raise AnalysisInputError(f"expected one output path per target, got {len(out_bases)} for {len(targets)}")
    by_target = groups(rows, "target_tag")
    for target in targets:
        if target not in by_target:
            check_target(rows, target)
    charts = [_target_curves(by_target[t], t) for t in targets]
    ylim = limits([np.zeros(1)] + [y for c in charts for y in (*c["changes"].values(), *(c["band"] or ()))])
    return [p for c, base in zip(charts, out_bases) for p in _draw_target(c, ylim, base, where)]


def _draw_target(c: dict, ylim: tuple[float, float], base: str | os.PathLike, where: str = "") -> list[Path]:
    target, ks = c["target"], c["ks"]
    palette = colours([n for n in c["names"] if n not in SUMMARIES])
    fig = new_figure(8.5, 4.8)
    ax = fig.subplots()
    for name in c["names"]:
        colour, ls = _SUMMARY_STYLE.get(name, (palette.get(name), LINE_STYLES.get(split_or_outside(name)[0], "-")))
        bold = name == target
        ax.plot(ks, c["changes"][name], color=colour, ls=ls, lw=3.0 if bold else 1.0, alpha=1.0 if bold else 0.75,
                zorder=5 if bold else 2, label=f"{name} (target)" if bold else name)
    if c["band"] is not None:
        lo, hi, mean = c["band"]
        ax.fill_between(c["rks"], lo, hi, color="0.6", alpha=0.3, lw=0, label="random 95% band")
        ax.plot(c["rks"], mean, color="black", ls=":", lw=1.6, label="random mean")
    ax.axhline(0, color="0.3", lw=0.6, zorder=0.9)
    ax.set_xlim(*limits([ks] + [c["rks"]]))
    ax.set_ylim(*ylim)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("number of ablated units k (top of the target's ranking)", fontsize=9)
    ax.set_ylabel("accuracy change vs k = 0", fontsize=9)
    ax.set_title(f"Ablating the top units of {target}" + (f" ({where})" if where else ""), fontsize=11)
    n = len(c["names"]) + 2
    fig.legend(loc="outside right upper", fontsize=font_size(n, 8, 6, 30), ncols=max(1, math.ceil(n / 18)),
               frameon=False)
    return figures.save_figure(fig, base)


def plot_ablation_target(rows: np.ndarray, target: str, out_base: str | os.PathLike) -> list[Path]:
    """Accuracy change vs k = 0 when ablating the target's top-k units, for every eval tag.

    The target tag is drawn bold; the random selection's mean change of the target's accuracy is dotted, with
    its 2.5-97.5 percentile band over draws shaded.
    """
    return plot_ablation_targets(rows, [target], [out_base])


def _panel_grid(n: int, extra_height: float = 0.0):
    """A figure of about-square small multiples for n panels, sharing both axes: (figure, flat axes)."""
    ncol = max(1, math.ceil(math.sqrt(n * 1.4)))
    nrow = max(1, math.ceil(n / ncol))
    fig = new_figure(1.0 + 2.3 * ncol, 1.2 + extra_height + 1.9 * nrow)
    return fig, np.atleast_1d(fig.subplots(nrow, ncol, sharex=True, sharey=True, squeeze=False)).ravel()


def _style_panel(ax, title: str) -> None:
    """The zero line, title, small ticks and integer k ticks of one small-multiple panel."""
    ax.axhline(0, color="0.3", lw=0.5)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))


def plot_ablation_grid(rows: np.ndarray, out_base: str | os.PathLike, where: str = "") -> list[Path]:
    """Small multiples, one panel per target tag: its own accuracy change for top, bottom and random selections;
    ``where`` (the split ranked and ablated on) is named under the panels."""
    by_target = groups(rows, "target_tag")
    targets = list(by_target)
    targets = [targets[i] for i in tag_order(targets)]
    fig, axes = _panel_grid(len(targets))
    xdata, ydata = [], [np.zeros(1)]
    for ax, t in zip(axes, targets):
        cubes = selections(by_target[t])
        (ks, top), (bks, bottom), (rks, rnd) = (own(cubes, sel, t) for sel in ("top", "bottom", "random"))
        base = top[0, 0] if top.size else 0.0
        xdata += [ks, bks, rks]
        if top.size:
            ax.plot(ks, top[:, 0] - base, color="tab:red", lw=2.0, label="top")
            ydata.append(top[:, 0] - base)
        if bottom.size:
            ax.plot(bks, bottom[:, 0] - base, color="tab:blue", lw=1.2, ls="--", label="bottom")
            ydata.append(bottom[:, 0] - base)
        if rnd.size:
            lo, hi, mean = random_band(rnd, base)
            ax.fill_between(rks, lo, hi, color="0.6", alpha=0.3, lw=0, label="random 95% band")
            ax.plot(rks, mean, color="black", ls=":", lw=1.6, label="random mean")
            ydata += [lo, hi]
        _style_panel(ax, t)
    for ax in axes[len(targets):]:
        ax.set_axis_off()
    axes[0].set(xlim=limits(xdata), ylim=limits(ydata))
    fig.supxlabel("number of ablated units k" + (f" ({where})" if where else ""), fontsize=9)
    fig.supylabel("accuracy change of the target tag", fontsize=9)
    if targets:
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside upper center", ncols=4, fontsize=8,
                   frameon=False)
    return figures.save_figure(fig, out_base)


def plot_ablation_overlay(csv_paths: Sequence[str | os.PathLike], labels: Sequence[str], tag: str,
                          out_path: str | os.PathLike) -> list[Path]:
    """Overlay one target tag's own accuracy under top-k ablation (solid) and random mean (dotted) of several runs.

    Args:
        csv_paths: ablation.csv files, one per run; labels: legend label per run.
        tag: target tag (must appear in every file).
        out_path: output file: with a .png or .svg suffix (or none) both formats are written beside each other;
            with .pdf that PDF alone.

    Returns:
        the files written.

    Raises:
        ValueError: if lengths differ or a file has no rows for ``tag``.
    """
    from matplotlib import colormaps

    out = Path(out_path)
    if out.suffix.lower() not in ("", ".png", ".svg", ".pdf"):
        raise AnalysisInputError(f"{out}: expected a .png, .svg or .pdf file name")
    if len(csv_paths) != len(labels) or not csv_paths:
        raise AnalysisInputError(
            f"expected one label per ablation.csv, got {len(labels)} labels for {len(csv_paths)} files")
    fig = new_figure(8.0, 4.6)
    ax = fig.subplots()
    pal = colormaps["tab10"].colors
    xdata, ydata = [], []
    for i, (path, label) in enumerate(zip(csv_paths, labels)):
        rows = read_ablation_csv(path)
        check_target(rows, tag, str(path))
        cubes = selections(rows[rows["target_tag"] == tag])
        (ks, top), (rks, rnd) = own(cubes, "top", tag), own(cubes, "random", tag)
        ax.plot(ks, top[:, 0], color=pal[i % len(pal)], lw=2.0, label=f"{label}: top")
        xdata.append(ks)
        ydata.append(top[:, 0])
        if rnd.size:
            ax.plot(rks, rnd.mean(axis=1), color=pal[i % len(pal)], lw=1.2, ls=":", label=f"{label}: random mean")
            ydata.append(rnd.mean(axis=1))
    ax.set(xlim=limits(xdata), ylim=limits(ydata))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("number of ablated units k", fontsize=9)
    ax.set_ylabel(f"accuracy of {tag}", fontsize=9)
    ax.set_title(f"Ablation of {tag}'s top units across runs", fontsize=11)
    fig.legend(loc="outside right upper", fontsize=8, frameon=False,
               ncols=max(1, math.ceil(2 * len(labels) / 16)))
    if out.suffix.lower() == ".pdf":
        return figures.save_figure(fig, out, formats=("pdf",))
    return figures.save_figure(fig, out.with_suffix("") if out.suffix else out)


def plot_method_drops(methods: Sequence[str], tags: Sequence[str], M: np.ndarray, out_base: str | os.PathLike,
                      title: str) -> list[Path]:
    """Heatmap of each ranking method's own drop per tag (methods × tags), values printed in the cells.

    Args:
        M: (len(methods), len(tags)) own drops (a score at k = 0 minus the score with the top k ablated);
            NaN cells grey.
    """
    from matplotlib import colormaps

    data = np.asarray(M, dtype=np.float64)
    cmap = colormaps["RdBu_r"].with_extremes(bad="#d9d9d9")
    fig = new_figure(2.8 + 0.55 * len(tags), 1.7 + 0.42 * len(methods))
    ax = fig.subplots()
    norm = figures.symmetric_norm(data)
    img = ax.imshow(data, cmap=cmap, norm=norm, interpolation="nearest", aspect="auto")
    ax.set_xticks(np.arange(len(tags)), list(tags), fontsize=8, rotation=90)
    ax.set_yticks(np.arange(len(methods)), list(methods), fontsize=8)
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            v = data[i, j]
            if np.isfinite(v):
                dark = abs(norm(v) - 0.5) > 0.3
                ax.text(j, i, f"{v + 0.0:.2f}".replace("-0.00", "0.00"), ha="center", va="center", fontsize=6.5,
                        color="white" if dark else "black")
    cbar = fig.colorbar(img, ax=ax, fraction=0.05, pad=0.03)
    cbar.set_label("own drop\n(k = 0 minus top k ablated)", fontsize=7)  # two lines: fits a two-method figure
    cbar.ax.tick_params(labelsize=7)
    ax.set_title(title, fontsize=9)
    return figures.save_figure(fig, out_base)


def plot_method_curves(rows: np.ndarray, ablate: str, out_base: str | os.PathLike, title: str,
                       score: str = "accuracy") -> list[Path]:
    """Small multiples, one panel per target tag: each ranking method's own drop over k, and the 2.5–97.5
    percentile band and mean of the random draws' own drop (the null every method is judged against).

    Args:
        rows: ``heldout.method_sweeps`` rows (methods.csv); ablate: "zero" or "mean"; score: the column plotted
            ("accuracy": the tag's recall, "f1": its token F1).
    """
    from nerve.analysis.heldout import RANDOM

    rows = rows[(rows["ablate"] == ablate) & (rows["eval_tag"] == rows["target_tag"])]
    targets = list(dict.fromkeys(rows["target_tag"].tolist()))
    targets = [targets[i] for i in tag_order(targets)]
    methods = [m for m in dict.fromkeys(rows["method"].tolist()) if m != RANDOM]
    fig, axes = _panel_grid(len(targets), extra_height=0.1)
    from matplotlib import colormaps

    cols = [colormaps["tab10"](i % 10) for i in range(len(methods))]
    styles = ["-", "--", "-.", (0, (5, 1, 1, 1, 1, 1))] * len(methods)
    ydata = [np.zeros(1)]
    for ax, t in zip(axes, targets):
        mine = rows[rows["target_tag"] == t]
        rnd = mine[mine["method"] == RANDOM]
        if rnd.size:
            ks = np.unique(rnd["k"])
            order = np.lexsort((rnd["draw"], rnd["k"]))
            acc = rnd[score][order].reshape(ks.size, -1)
            drop = acc[0][None, :] - acc
            lo, hi = np.percentile(drop, [2.5, 97.5], axis=1)
            ax.fill_between(ks, lo, hi, color="0.6", alpha=0.3, lw=0, label="random 95% band")
            ax.plot(ks, drop.mean(axis=1), color="black", ls=":", lw=1.4, label="random mean")
            ydata += [lo, hi]
        for m, c, ls in zip(methods, cols, styles):
            r = mine[mine["method"] == m]
            r = r[np.argsort(r["k"], kind="stable")]
            if r.size:
                ax.plot(r["k"], r[score][0] - r[score], color=c, ls=ls, lw=1.5, label=m)
                ydata.append(r[score][0] - r[score])
        _style_panel(ax, t)
    for ax in axes[len(targets):]:
        ax.set_axis_off()
    axes[0].set_ylim(limits(ydata))
    fig.supxlabel("number of ablated units k (each method's top k for the tag)", fontsize=9)
    fig.supylabel(f"own drop ({'recall' if score == 'accuracy' else 'token F1'})", fontsize=9)
    fig.suptitle(title, fontsize=10)
    if targets:
        handles = axes[0].get_legend_handles_labels()
        if len(axes) > len(targets):  # a spare panel holds the legend
            axes[len(targets)].legend(*handles, loc="center", fontsize=8, frameon=False, ncols=2)
        else:
            fig.legend(*handles, loc="outside right upper", fontsize=8, frameon=False)
    return figures.save_figure(fig, out_base)
