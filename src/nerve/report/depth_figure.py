"""The layer-by-layer figure of ``nerve depth``: per ranking method, the target tag's recall drop when its top-k
units at a site are intervened on (mean over tags, then over runs, with the runs' 95 % t interval), site by site
from the input to the output, beside the drop random k-unit sets cause at the same site."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from nerve.report.figures import GREY, distinct_styles, drop_label, new_figure, save_figure
from nerve.report.formats import when_drawn

METHOD_COLOURS = {"sensitivity": "#66a61e", "probeless": "#1b9e77", "selectivity": "#d95f02", "gradxact": "#7570b3",
                  "atp_mean": "#e7298a"}


def _kind(site: str) -> str:
    return "FFN activations" if site.startswith("ffn") else "layer outputs"


@when_drawn
def plot_depth(summary: list[dict], base: str | os.PathLike, k: int, intervention: str, runs: int) -> list[Path]:
    """Draw ``depth_summary.csv``'s rows (``nerve.hf.depth_table.summarise``) to ``base``.png/.svg/.pdf: one panel
    for the FFN sites and one for the layer outputs (with ``classifier_in`` last), layer by layer."""
    sites = [s for _, s in sorted({(int(r["depth"]), r["site"]) for r in summary})]
    kinds = [kind for kind in ("FFN activations", "layer outputs") if any(_kind(s) == kind for s in sites)]
    methods = list(dict.fromkeys(r["method"] for r in summary))
    styles = distinct_styles([(m, METHOD_COLOURS.get(m, "black"), "-") for m in methods] + [("random", GREY, ":")])
    fig = new_figure(max(5.5, 0.35 * len(sites) + 3.0), 3.4)
    axes = fig.subplots(1, len(kinds), sharey=True, squeeze=False)[0]
    value = "their dev mean" if intervention == "mean" else "0"
    for ax, kind in zip(axes, kinds):
        mine = [s for s in sites if _kind(s) == kind]
        x = np.arange(len(mine))
        for m in methods:
            rows = {r["site"]: r for r in summary if r["method"] == m}
            own = np.array([rows[s]["own_drop"] if s in rows else np.nan for s in mine])
            lo = np.array([rows[s]["excess_mean"] - rows[s]["ci_low"] if s in rows else np.nan for s in mine])
            hi = np.array([rows[s]["ci_high"] - rows[s]["excess_mean"] if s in rows else np.nan for s in mine])
            err = np.vstack([np.nan_to_num(lo), np.nan_to_num(hi)]) if runs > 1 else None
            ax.errorbar(x, own, yerr=err, capsize=2, lw=1.2, label=m, **styles[m])
        rnd = {r["site"]: r["random_drop"] for r in summary}
        ax.plot(x, [rnd.get(s, np.nan) for s in mine], label=f"random {k} units", lw=1.2, **styles["random"])
        ax.set_xticks(x, mine, rotation=45, ha="right", fontsize=7)
        ax.set_title(kind, fontsize=9)
        ax.axhline(0, color="black", lw=0.5)
    axes[0].set_ylabel(drop_label("recall", "the target tag"), fontsize=8)
    handles, labels = axes[-1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize=7, frameon=False)
    fig.suptitle(f"top {k} units of each tag set to {value} inside the model, {runs} run{'s' if runs != 1 else ''}",
                 fontsize=9)
    caption = (f"Drop in the target tag's recall on held-out sentences ({drop_label('recall').splitlines()[1]}) "
               f"when each method's top {k} units of the tag at a site are set to {value} inside the model, mean over "
               f"tags and {runs} run{'s' if runs != 1 else ''}, layer by layer (left: FFN activations; right: layer "
               "outputs); bars: 95 % t interval over runs of the method's excess over random units; dotted: random "
               "unit sets at the same site.")
    return save_figure(fig, base, caption=caption)


# verdict -> (colour, text colour): holds blue, holds for most light blue, contradicted red, negligible grey,
# inconclusive white; not tested hatched
VERDICT_STYLE = {"holds": ("#4477aa", "white"), "holds for most": ("#99bbdd", "black"),
                 "contradicted": ("#cc3311", "white"), "negligible": ("#bbbbbb", "black"),
                 "inconclusive": ("#ffffff", "black")}


@when_drawn
def plot_depth_findings(rows: list[dict], base: str | os.PathLike, k: int, intervention: str,
                        runs: int) -> list[Path]:
    """Draw ``depth_findings.csv``'s rows (``nerve.hf.depth_findings.findings_rows``) to ``base``.png/.svg/.pdf:
    findings down, sites across (input to output), each cell coloured by the verdict over the runs and labelled
    with the first clause's effect."""
    from matplotlib.patches import Patch

    sites = [s for _, s in sorted({(int(r["depth"]), r["site"]) for r in rows})]
    from nerve.hf.depth_findings import row_label

    labels = list(dict.fromkeys(row_label(r) for r in sorted(rows, key=lambda r: (int(r["finding"]), r["ablate"]))))
    cell = {(row_label(r), r["site"]): r for r in rows}
    width = max(5.5, 0.55 * len(sites) + 3.2)
    fig = new_figure(width, 0.3 * len(labels) + 1.8)
    ax = fig.subplots()
    for i, label in enumerate(labels):
        for j, site in enumerate(sites):
            r = cell.get((label, site))
            colour, ink = VERDICT_STYLE.get(r["verdict"], ("#ffffff", "black")) if r else ("#ffffff", "black")
            hatch = None if r and r["verdict"] in VERDICT_STYLE else "////"
            ax.add_patch(_rect(j, i, colour, hatch))
            effect = _number(r.get("effect")) if r else float("nan")
            if np.isfinite(effect):
                ax.text(j + 0.5, i + 0.5, f"{effect:+.2f}", ha="center", va="center", fontsize=6, color=ink)
    ax.set_xlim(0, len(sites))
    ax.set_ylim(len(labels), 0)
    ax.set_xticks(np.arange(len(sites)) + 0.5, sites, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(np.arange(len(labels)) + 0.5, labels, fontsize=6.5)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    handles = [Patch(facecolor=c, edgecolor="black", lw=0.4, label=v) for v, (c, _) in VERDICT_STYLE.items()]
    handles.append(Patch(facecolor="white", edgecolor="black", hatch="////", lw=0.4, label="not tested"))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), max(2, int(width / 1.6))),
               fontsize=7, frameon=False)
    alpha = next((_number(r["alpha"]) for r in rows if np.isfinite(_number(r.get("alpha")))), float("nan"))
    value = "their dev mean" if intervention == "mean" else "0"
    fig.suptitle(f"Xin et al.'s findings site by site, {runs} run{'s' if runs != 1 else ''}", fontsize=9)
    caption = (f"Each finding of Xin et al. judged at each site over {runs} run{'s' if runs != 1 else ''} "
               "(random-effects meta-analysis, "
               f"Holm over a site's cases at α = {alpha:.4g}: 0.05 over the {len(sites)} sites); colour: the verdict; "
               "number: the first clause's effect (mean statistic over its cases, combined over runs: a correlation, "
               f"a cosine or a recall drop). Sensitivities use the site's local read-out; ablation findings set the "
               f"top {k} sensitivity units of a tag to {value} inside the model against random {k}-unit sets.")
    return save_figure(fig, base, caption=caption)


def _number(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _rect(x: float, y: float, colour: str, hatch: str | None):
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), 1, 1, facecolor=colour, edgecolor="#666666", lw=0.3, hatch=hatch)
