"""The report's "Neurons or directions?" section (issue 33): for one ranking method and intervention, each basis'
units against the neurons' over the runs (``analysis/bases_compare.py``), and a plain-language answer that
claims only what the paired tests across runs (Holm over the tags) support."""

from __future__ import annotations

import csv
import html
from pathlib import Path

import numpy as np

from nerve.analysis.bases_compare import delta_text, verdict_counts
from nerve.analysis.judging import two_decimals

PREFERRED = (("ig_mean", "mean"), ("sensitivity", "mean"), ("sensitivity", "zero"))  # the section's method, ablate
WORDS = {"units_to_halve": ("units to halve a tag's recall", "more", "fewer"),  # (what, higher, lower)
         "necessity_auc": ("necessity area (mean recall drop over k)", "larger", "smaller"),
         "sufficiency_auc": ("sufficiency area (mean recall gain over k)", "larger", "smaller"),
         "selectivity": ("selectivity at k = 10", "higher", "lower"),
         "top_share": ("share of the tag among its top units' most active tokens", "higher", "lower")}


def _read(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _num(x: str) -> float:
    return float(x) if x not in ("", None) else float("nan")


def _choice(rows: list[dict]) -> tuple[str, str]:
    have = {(r["method"], r["ablate"]) for r in rows}
    return next((c for c in PREFERRED if c in have), min(have))


def _stability(d: Path, bases: list[str], method: str, table) -> str:
    rows = []
    for b in bases:
        path = d / "methods_stability.csv" if b == "neurons" else d / "bases" / b / "methods_stability.csv"
        if not path.is_file():
            continue
        sel = [r for r in _read(path) if r["method"] == method and r["shared_mean"] not in ("", "nan")]
        k = max((int(r["k"]) for r in sel if int(r["k"]) <= 10), default=None)
        sel = [r for r in sel if k is not None and int(r["k"]) == k]
        if sel:
            rows.append([html.escape(b), k, two_decimals(float(np.mean([_num(r["shared_mean"]) for r in sel]))),
                         two_decimals(_num(sel[0]["chance"]))])
    if not rows:
        return ""
    return ("<p>Stability across seeds (descriptive): the method's top k units shared by two runs after matching the "
            "runs' units by their sensitivity profiles, mean over pairs of runs and tags, beside chance (k²/n).</p>"
            + table(["basis", "k", "shared", "chance"], rows, left=1))


def _leace(d: Path, table) -> str:
    if not (d / "leace_across_runs.csv").is_file():
        return ""
    rows = [[html.escape(r["erased_tag"]), r["n_runs"],
             f"{two_decimals(_num(r['own_drop_mean']))} [{two_decimals(_num(r['own_drop_low']))}, "
             f"{two_decimals(_num(r['own_drop_high']))}]",
             f"{two_decimals(_num(r['selectivity_mean']))} [{two_decimals(_num(r['selectivity_low']))}, "
             f"{two_decimals(_num(r['selectivity_high']))}]"]
            for r in _read(d / "leace_across_runs.csv") if r["score"] == "accuracy"]
    return ("<p>The supervised reference, LEACE: one rank-1 edit per tag that erases its linear information (fitted "
            "on the ranking split); the tag's recall drop and selectivity, mean over the runs [95 % t interval].</p>"
            + table(["erased tag", "runs", "own recall drop", "selectivity"], rows, left=1))


def bases_section(name: str, compare_dir: str | Path, table, heading) -> str:
    """HTML of the section for one variant, or "" when its comparison has no bases files."""
    d = Path(compare_dir)
    if not (d / "bases_across_runs.csv").is_file():
        return ""
    across, paired = _read(d / "bases_across_runs.csv"), _read(d / "bases_paired.csv")
    method, ablate = _choice(across)
    sel = [r for r in across if r["method"] == method and r["ablate"] == ablate]
    bases = list(dict.fromkeys(r["basis"] for r in sel))
    runs = max((int(r["n_runs"]) for r in sel), default=0)

    def mean_over_tags(basis, metric):
        v = np.array([_num(r["mean"]) for r in sel if r["basis"] == basis and r["metric"] == metric])
        v = v[np.isfinite(v)]
        return two_decimals(float(v.mean())) if v.size else "–"

    def never(basis):
        rows = [r for r in sel if r["basis"] == basis and r["metric"] == "units_to_halve"]
        return f"{sum(int(r['n_missing']) > 0 for r in rows)} / {len(rows)}"

    rows = [[html.escape(b), mean_over_tags(b, "units_to_halve"), never(b), mean_over_tags(b, "necessity_auc"),
             mean_over_tags(b, "sufficiency_auc"), mean_over_tags(b, "selectivity"), mean_over_tags(b, "top_share"),
             mean_over_tags(b, "monosemanticity"), mean_over_tags(b, "reconstruction_f1_drop")] for b in bases]
    head = ["basis", "units to halve recall (mean over tags)", "tags some run never halves", "necessity area",
            "sufficiency area", "selectivity (k = 10)", "top units' tag share", "monosemanticity",
            "F1 lost to the reconstruction"]
    psel = [r for r in paired if r["method"] == method and r["ablate"] == ablate]
    verdict_rows, answer = [], []
    for b in bases[1:] if bases and bases[0] == "neurons" else bases:
        cells, claims = [html.escape(b)], []
        for metric, (what, up, down) in WORDS.items():
            fam = [r for r in psel if r["basis"] == b and r["metric"] == metric]
            hi, lo, same, rest = verdict_counts(fam)
            nb = "\u00a0"  # no line break inside a count
            cells.append(f"{hi}{nb}↑ / {lo}{nb}↓ / {same}{nb}≈ / {rest}{nb}?" if fam else "–")
            parts = [f"{word} for {n} of {len(fam)} tags" for n, word in ((hi, up), (lo, down)) if n]
            if parts:
                claims.append(f"{what}: {' and '.join(parts)}")
        verdict_rows.append(cells)
        answer.append(f"<li><b>{html.escape(b)}</b> against the neurons — "
                      + ("; ".join(claims) if claims else "not shown to differ by more than δ on any tag") + "</li>")
    text = f"<ul>{''.join(answer)}</ul>" if answer else "<p>No basis besides the neurons.</p>"
    text += _stability(d, bases, method, table) + _leace(d, table)
    return (heading(2, f"Neurons or directions? — {name}")
            + f"<p>Each run analysed in every basis (fitted on the ranking split, swept on the scoring split), ranked "
              f"by <b>{html.escape(method)}</b> under the <b>{html.escape(ablate)}</b> intervention, over {runs} "
              "runs. A basis' units are its coordinates: PCA and ICA directions, SAE features (4× as many as "
              "neurons); intervening on one edits the activations along its direction and keeps the rest.</p>"
            + table(head, rows, left=1)
            + "<p>Each basis minus the neurons, tag by tag, paired by run (paired t-test over the runs, Holm over "
              f"the tags of a basis and measure, α = 0.05), judged against a smallest effect of interest δ "
              f"({delta_text()}): tags where the basis is higher by more "
              "than δ ↑, lower by more than δ ↓, within ±δ of the neurons ≈ (negligible), or inconclusive or not "
              "testable (fewer than 2 runs with a value) ?.</p>"
            + table(["basis", *[w[0] for w in WORDS.values()]], verdict_rows, left=1)
            + "<p><b>Answer for these runs</b> (only the tags where the corrected interval lies beyond ±δ from the "
              "neurons; the population: models of this configuration trained with other seeds; fewer units to "
              "halve recall means a tag's evidence is concentrated in fewer units of that basis):</p>" + text)
