"""Figures of ablation sweeps: per target tag the drop of every tag's recall as its top units are removed,
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
from nerve.report.figures import (
    DROP_SIGN,
    GREY,
    LINE_STYLES,
    TERMS,
    colours,
    distinct_styles,
    drop_label,
    font_size,
    limits,
    new_figure,
)
from nerve.report.formats import when_drawn
from nerve.tags import split_or_outside, tag_order

SUMMARIES = ("ALL", "F1")
_SUMMARY_STYLE = {"F1": ("black", "-"), "ALL": ("black", "--")}
RANDOM_BAND = "random units: 95% of draws"
RANDOM_MEAN = "random units: mean"


def _is_summary(name: str) -> bool:
    """ALL, F1 and F1:TYPE: scores of the whole split, not of one tag."""
    return name in SUMMARIES or name.startswith("F1:")


def _target_curves(rows: np.ndarray, target: str) -> dict:
    """What the chart of ``target`` shows: eval tags in display order, the drop of each from k = 0, the band."""
    cubes = selections(rows)
    if "top" not in cubes:
        raise AnalysisInputError(f"rows: no top-k ablation rows for target tag {target!r}")
    ks, evals, top = cubes["top"]
    tags = [t for t in evals if not _is_summary(t)]
    types = sorted(t for t in evals if t.startswith("F1:"))
    names = [tags[i] for i in tag_order(tags)] + types + [e for e in SUMMARIES if e in evals]
    drops = {e: top[0, 0, evals.index(e)] - top[:, 0, evals.index(e)] for e in names}
    rks, rnd = own(cubes, "random", target)
    own_top = top[:, 0, evals.index(target)] if target in evals else np.zeros(1)
    band = random_band(rnd, own_top[0]) if rnd.size else None
    return {"target": target, "ks": ks, "names": names, "drops": drops, "rks": rks, "band": band,
            "draws": rnd.shape[1] if rnd.size else 0}


@when_drawn
def plot_ablation_targets(rows: np.ndarray, targets: Sequence[str],
                          out_bases: Sequence[str | os.PathLike], where: str = "") -> list[Path]:
    """``plot_ablation_target`` for each of ``targets`` (written to the matching ``out_bases``); every chart has
    the same size and y range, so that the charts of one analysis compare at a glance. ``where``: the split the
    units were ranked and ablated on, named in each title and caption.

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
    ylim = limits([np.zeros(1)] + [y for c in charts for y in (*c["drops"].values(), *(c["band"] or ()))])
    return [p for c, base in zip(charts, out_bases) for p in _draw_target(c, ylim, base, where)]


def _tag_styles(names: Sequence[str], target: str) -> dict[str, dict]:
    """Each tag its entity type's colour and its prefix's line style; F1:TYPE the type's colour with markers;
    F1 and ALL black; every series distinct (``distinct_styles``)."""
    palette = colours([n for n in names if not _is_summary(n)] + [n[3:] for n in names if n.startswith("F1:")])
    wanted = []
    for name in names:
        if name in _SUMMARY_STYLE:
            colour, ls = _SUMMARY_STYLE[name]
        elif name.startswith("F1:"):
            colour, ls = palette.get(f"B-{name[3:]}", GREY), "-."
        else:
            colour, ls = palette.get(name, GREY), LINE_STYLES.get(split_or_outside(name)[0], "-")
        wanted.append((name, colour, ls))
    return distinct_styles(wanted)


def _draw_target(c: dict, ylim: tuple[float, float], base: str | os.PathLike, where: str = "") -> list[Path]:
    target, ks = c["target"], c["ks"]
    styles = _tag_styles(c["names"], target)
    tags = [n for n in c["names"] if not _is_summary(n)]
    summaries = [n for n in c["names"] if _is_summary(n)]
    fig = new_figure(9.0, 6.4 if summaries else 4.2)
    axes = fig.subplots(2 if summaries else 1, 1, sharex=True, sharey=True, squeeze=False)[:, 0]
    for name in tags:
        bold = name == target
        axes[0].plot(ks, c["drops"][name], **styles[name], lw=3.0 if bold else 1.1, alpha=1.0 if bold else 0.85,
                     zorder=5 if bold else 2, label=f"{name} (ablated tag)" if bold else name)
    if c["band"] is not None:
        lo, hi, mean = c["band"]
        axes[0].fill_between(c["rks"], -hi, -lo, color="0.6", alpha=0.3, lw=0,
                             label=f"{RANDOM_BAND} ({target})")
        axes[0].plot(c["rks"], -mean, color="black", ls=":", lw=1.6, label=f"{RANDOM_MEAN} ({target})")
    for name in summaries:
        what = {"ALL": "token accuracy (ALL)", "F1": "entity F1 (F1)"}.get(name, f"entity F1 of {name[3:]}")
        axes[-1].plot(ks, c["drops"][name], **styles[name], lw=1.4, label=what)
    labels = [drop_label("recall", "each tag")]
    if summaries:
        labels.append(f"{TERMS['entity_f1']} / {TERMS['token_accuracy']}\n({DROP_SIGN})")
    for ax, label in zip(axes, labels):
        ax.axhline(0, color="0.3", lw=0.6, zorder=0.9)
        ax.set_ylabel(label, fontsize=8.5)
        ax.tick_params(labelsize=8)
        n = len(ax.get_legend_handles_labels()[1])
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=font_size(n, 8, 6, 30),
                  ncols=max(1, math.ceil(n / 16)), frameon=False)
    axes[0].set_xlim(*limits([ks] + [c["rks"]]))
    axes[0].set_ylim(*ylim)
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1].set_xlabel(f"number of ablated units k (the top k of {target}'s ranking, set to 0)", fontsize=9)
    fig.suptitle(f"Ablating the top units of {target}" + (f" ({where})" if where else ""), fontsize=11)
    on = f" on the {where.split()[-1]} split" if where else ""
    caption = (f"Ablating the k units that rank highest for {target} (set to 0){on}: the {TERMS['recall']} of "
               f"every tag (top panel; {target} bold)"
               + (f", and the {TERMS['entity_f1']} and {TERMS['token_accuracy']} of the whole split (bottom panel)"
                  if summaries else "")
               + f", each from k = 0 ({DROP_SIGN}). "
               + (f"Grey: {target}'s drop for {c['draws']} draws of k random units (mean dotted, 95% of draws "
                  "shaded). " if c["band"] is not None else "")
               + "All the charts of one analysis share this y range.")
    return figures.save_figure(fig, base, caption=caption)


@when_drawn
def plot_ablation_target(rows: np.ndarray, target: str, out_base: str | os.PathLike) -> list[Path]:
    """The drop (k = 0 minus after) of every eval tag's score when ablating the target's top-k units: tags'
    recall in the top panel, entity F1 and token accuracy in the bottom one.

    The target tag is drawn bold; the random selection's mean drop of the target's recall is dotted, with
    its 2.5-97.5 percentile band over draws shaded.
    """
    return plot_ablation_targets(rows, [target], [out_base])


def panel_grid(n: int, extra_height: float = 0.0):
    """A figure of about-square small multiples for n panels, sharing both axes: (figure, flat axes)."""
    ncol = max(1, math.ceil(math.sqrt(n * 1.4)))
    nrow = max(1, math.ceil(n / ncol))
    fig = new_figure(1.0 + 2.3 * ncol, 1.2 + extra_height + 1.9 * nrow)
    return fig, np.atleast_1d(fig.subplots(nrow, ncol, sharex=True, sharey=True, squeeze=False)).ravel()


def style_panel(ax, title: str) -> None:
    """The zero line, title, small ticks and integer k ticks of one small-multiple panel."""
    ax.axhline(0, color="0.3", lw=0.5)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7, labelbottom=True)  # k under every panel: the row below may be short
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))


def panel_legend(fig, axes, used: int) -> None:
    """The legend of small multiples: in the first spare panel, or under the panels when there is none."""
    handles = axes[0].get_legend_handles_labels()
    if len(axes) > used:
        axes[used].legend(*handles, loc="center", fontsize=8, frameon=False, ncols=1)
    else:
        fig.legend(*handles, loc="outside lower center", ncols=min(4, len(handles[0])), fontsize=8, frameon=False)


@when_drawn
def plot_ablation_grid(rows: np.ndarray, out_base: str | os.PathLike, where: str = "") -> list[Path]:
    """Small multiples, one panel per target tag: the drop of its own recall for top, bottom and random selections;
    ``where`` (the split ranked and ablated on) is named under the panels."""
    by_target = groups(rows, "target_tag")
    targets = list(by_target)
    targets = [targets[i] for i in tag_order(targets)]
    fig, axes = panel_grid(len(targets))
    xdata, ydata = [], [np.zeros(1)]
    draws = 0
    for ax, t in zip(axes, targets):
        cubes = selections(by_target[t])
        (ks, top), (bks, bottom), (rks, rnd) = (own(cubes, sel, t) for sel in ("top", "bottom", "random"))
        base = top[0, 0] if top.size else 0.0
        xdata += [ks, bks, rks]
        if top.size:
            ax.plot(ks, base - top[:, 0], color="tab:red", lw=2.0, label="top k units of the tag")
            ydata.append(base - top[:, 0])
        if bottom.size:
            ax.plot(bks, base - bottom[:, 0], color="tab:blue", lw=1.2, ls="--", label="bottom k units of the tag")
            ydata.append(base - bottom[:, 0])
        if rnd.size:
            lo, hi, mean = random_band(rnd, base)
            draws = rnd.shape[1]
            ax.fill_between(rks, -hi, -lo, color="0.6", alpha=0.3, lw=0, label=RANDOM_BAND)
            ax.plot(rks, -mean, color="black", ls=":", lw=1.6, label=RANDOM_MEAN)
            ydata += [-lo, -hi]
        style_panel(ax, t)
    for ax in axes[len(targets):]:
        ax.set_axis_off()
    axes[0].set(xlim=limits(xdata), ylim=limits(ydata))
    fig.supxlabel("number of ablated units k (set to 0)" + (f"; {where}" if where else ""), fontsize=9)
    fig.supylabel(drop_label("recall", "the panel's tag"), fontsize=9)
    fig.suptitle("Ablating each tag's top, bottom and random units" + (f" ({where})" if where else ""), fontsize=10)
    if targets:
        panel_legend(fig, axes, len(targets))
    on = f" on the {where.split()[-1]} split" if where else ""
    caption = (f"One panel per tag: the {TERMS['recall']} of the panel's tag ({DROP_SIGN}) as its k highest-ranked "
               f"(red) or lowest-ranked (blue, dashed) units are set to 0{on}, against k random units (mean dotted, "
               f"95% of {draws} draws shaded). The panels share both axes.")
    return figures.save_figure(fig, out_base, caption=caption)


def run_labels(csv_paths: Sequence[str | os.PathLike]) -> list[str]:
    """A distinct legend name per run for ablation.csv files: the run folder's name (the analysis folder's
    parent when the analysis folder is called "analysis"), with as many parent folders as it takes to tell
    the runs apart (``base/seed1``, ``crf/seed1``)."""
    parts = []
    for p in csv_paths:
        folder = Path(p).resolve().parent
        names = list(folder.parts[1:])
        if names and names[-1] == "analysis":
            names.pop()
        parts.append(names or [folder.name or str(p)])
    labels = [n[-1] for n in parts]
    for depth in range(2, max(len(n) for n in parts) + 1):
        if len(set(labels)) == len(labels):
            break
        labels = ["/".join(n[-depth:]) for n in parts]
    if len(set(labels)) < len(labels):  # the same folder twice
        labels = [f"{n[-1]} ({i + 1})" for i, n in enumerate(parts)]
    return labels


@when_drawn
def plot_ablation_overlay(csv_paths: Sequence[str | os.PathLike], labels: Sequence[str] | None, tag: str,
                          out_path: str | os.PathLike) -> list[Path]:
    """Overlay one target tag's own recall under top-k ablation (solid) and random mean (dotted) of several runs.

    Args:
        csv_paths: ablation.csv files, one per run; labels: legend name per run (None: ``run_labels``; they must
            be distinct).
        tag: target tag (must appear in every file).
        out_path: output file name: with a .png, .svg or .pdf suffix that file alone; without one, ``out_path``
            with the suffixes of ``figure_formats`` (PNG, SVG and PDF unless told otherwise).

    Returns the files written. Raises ValueError if lengths differ, labels repeat or a file lacks ``tag``.
    """
    out = Path(out_path)
    if out.suffix.lower() not in ("", ".png", ".svg", ".pdf"):
        raise AnalysisInputError(f"{out}: expected a .png, .svg or .pdf file name")
    labels = run_labels(csv_paths) if labels is None else list(labels)
    if len(csv_paths) != len(labels) or not csv_paths:
        raise AnalysisInputError(
            f"expected one label per ablation.csv, got {len(labels)} labels for {len(csv_paths)} files")
    if len(set(labels)) < len(labels):
        raise AnalysisInputError(f"legend labels must be distinct, got {', '.join(labels)}")
    from matplotlib import colormaps

    fig = new_figure(8.0, 4.6)
    ax = fig.subplots()
    pal = colormaps["tab10"].colors
    styles = distinct_styles([(f"{i} {sel}", pal[i % len(pal)], ls) for i in range(len(labels))
                              for sel, ls in (("top", "-"), ("random", ":"))])
    xdata, ydata = [], []
    for i, (path, label) in enumerate(zip(csv_paths, labels)):
        rows = read_ablation_csv(path)
        check_target(rows, tag, str(path))
        cubes = selections(rows[rows["target_tag"] == tag])
        (ks, top), (rks, rnd) = own(cubes, "top", tag), own(cubes, "random", tag)
        ax.plot(ks, top[:, 0], **styles[f"{i} top"], lw=2.0, label=f"{label}: top k units of {tag}")
        xdata.append(ks)
        ydata.append(top[:, 0])
        if rnd.size:
            ax.plot(rks, rnd.mean(axis=1), **styles[f"{i} random"], lw=1.2,
                    label=f"{label}: k random units (mean of {rnd.shape[1]} draws)")
            ydata.append(rnd.mean(axis=1))
    ax.set(xlim=limits(xdata), ylim=limits(ydata))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("number of ablated units k (set to 0)", fontsize=9)
    ax.set_ylabel(f"recall of {tag}", fontsize=9)
    ax.set_title(f"Ablation of {tag}'s top units across runs", fontsize=11)
    fig.legend(loc="outside right upper", fontsize=8, frameon=False,
               ncols=max(1, math.ceil(2 * len(labels) / 16)))
    caption = (f"The recall of {tag} (not a drop: higher is better) in each of {len(labels)} runs as the k units that "
               f"rank highest for {tag} are set to 0 (solid), and as k random units are (dotted, mean over draws); "
               "each run on the split its analysis scored.")
    return figures.save_figure(fig, out.with_suffix("") if out.suffix else out, caption=caption,
                               formats=(out.suffix.lower()[1:],) if out.suffix else None)
