"""The layer-by-layer figure of ``nerve depth``: per ranking method, the target tag's recall drop when its top-k
units at a site are intervened on (mean over tags, then over runs, with the runs' 95 % t interval), site by site
from the input to the output, beside the drop random k-unit sets cause at the same site."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from nerve.report.figures import GREY, distinct_styles, drop_label, new_figure, save_figure

METHOD_COLOURS = {"probeless": "#1b9e77", "selectivity": "#d95f02", "gradxact": "#7570b3", "atp_mean": "#e7298a"}


def plot_depth(summary: list[dict], base: str | os.PathLike, k: int, intervention: str, runs: int) -> list[Path]:
    """Draw ``depth_summary.csv``'s rows (``nerve.hf.depth_table.summarise``) to ``base``.png/.svg/.pdf."""
    sites = [s for _, s in sorted({(int(r["depth"]), r["site"]) for r in summary})]
    methods = list(dict.fromkeys(r["method"] for r in summary))
    x = np.arange(len(sites))
    fig = new_figure(max(5.0, 0.45 * len(sites) + 2.0), 3.4)
    ax = fig.add_subplot()
    styles = distinct_styles([(m, METHOD_COLOURS.get(m, "black"), "-") for m in methods] + [("random", GREY, ":")])
    for m in methods:
        rows = {r["site"]: r for r in summary if r["method"] == m}
        own = np.array([rows[s]["own_drop"] if s in rows else np.nan for s in sites])
        excess_lo = np.array([rows[s]["ci_low"] - rows[s]["excess_mean"] if s in rows else np.nan for s in sites])
        excess_hi = np.array([rows[s]["ci_high"] - rows[s]["excess_mean"] if s in rows else np.nan for s in sites])
        err = np.vstack([-np.nan_to_num(excess_lo), np.nan_to_num(excess_hi)])
        ax.errorbar(x, own, yerr=err if runs > 1 else None, capsize=2, lw=1.2, label=m, **styles[m])
    rnd = {r["site"]: r["random_drop"] for r in summary}
    ax.plot(x, [rnd.get(s, np.nan) for s in sites], label=f"random {k} units", lw=1.2, **styles["random"])
    ax.set_xticks(x, sites, rotation=60, ha="right", fontsize=7)
    ax.set_xlabel("site, input to output")
    ax.set_ylabel(drop_label("recall", "the target tag"), fontsize=8)
    ax.axhline(0, color="black", lw=0.5)
    ax.legend(fontsize=7, frameon=False, ncols=min(3, len(methods) + 1))
    ax.set_title(f"top {k} units of each tag set to {'their dev mean' if intervention == 'mean' else '0'}, "
                 f"{runs} run{'s' if runs != 1 else ''}", fontsize=9)
    value = "their dev mean" if intervention == "mean" else "0"
    caption = (f"Drop in the target tag's recall on held-out sentences ({drop_label('recall').splitlines()[1]}) "
               f"when each method's top {k} units of the tag at a site are set to {value} inside the model, mean over "
               f"tags and {runs} runs, by site from input to output; bars: 95 % t interval over runs of the method's "
               "excess over random units; dotted: random unit sets at the same site.")
    return save_figure(fig, base, caption=caption)
