"""The architecture grid of a study: each cell's runs summarised over seeds (NaN-aware, with counts), the study's
char × word × inference layout, and the published baselines it is set beside."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

CHAR, WORD, INFERENCE = "model.char", "model.encoder", "model.decoder"
# CoNLL-2003 test entity F1 (%) of the study this project follows (its Table 1: NCRF++, Yang et al. 2018) and of
# NCRF++'s README (GloVe 100d, 100 epochs, BiLSTM 200, SGD lr 0.015), keyed (char, word, inference).
PUBLISHED = {
    ("none", "lstm", "softmax"): (86.46, 88.57), ("lstm", "lstm", "softmax"): (89.88, 90.84),
    ("cnn", "lstm", "softmax"): (89.74, 90.73), ("none", "lstm", "crf"): (87.82, 89.45),
    ("lstm", "lstm", "crf"): (90.20, 91.20), ("cnn", "lstm", "crf"): (90.33, 91.35),
    ("none", "cnn", "softmax"): (86.33, 88.56), ("lstm", "cnn", "softmax"): (90.42, 90.46),
    ("cnn", "cnn", "softmax"): (88.39, 90.30), ("none", "cnn", "crf"): (86.67, 88.90),
    ("lstm", "cnn", "crf"): (89.75, 90.70), ("cnn", "cnn", "crf"): (89.42, 90.43),
}
PUBLISHED_SOURCES = ("the study (NCRF++, its Table 1)", "NCRF++ README (GloVe 100d)")


def _finite(xs) -> list[float]:
    return [float(x) for x in xs if x is not None and math.isfinite(float(x))]


def mean_sd(xs) -> tuple[float | None, float | None, int]:
    """(mean, sample sd, n) of the finite values of ``xs``; mean None when there are none, sd None below 2."""
    v = _finite(xs)
    if not v:
        return None, None, 0
    return statistics.fmean(v), (statistics.stdev(v) if len(v) > 1 else None), len(v)


def cell_summary(runs: Sequence[dict]) -> dict:
    """One grid cell over its runs (``study.run_row`` dicts): n_runs; dev_f1, test_f1, train_seconds and each
    tag's test accuracy as (mean, sd, n) over the runs that have a finite value (a run without a tag's value —
    the tag never occurred, or was never predicted — is left out of that tag's mean, never counted as 0)."""
    tags = list(dict.fromkeys(t for r in runs for t in r.get("per_tag_accuracy", {})))
    return {"n_runs": len(runs),
            "dev_f1": mean_sd(r.get("dev_f1") for r in runs),
            "test_f1": mean_sd(r.get("test_f1") for r in runs),
            "train_seconds": mean_sd(r.get("train_seconds") for r in runs),
            "per_tag": {t: mean_sd(r.get("per_tag_accuracy", {}).get(t) for r in runs) for t in tags}}


def assignment(variant: str) -> dict[str, str]:
    """The grid values of a variant name ("char=cnn,encoder=lstm" -> {"char": "cnn", "encoder": "lstm"})."""
    if variant == "base":
        return {}
    return dict(part.split("=", 1) for part in variant.split(","))


def short_label(variant: str) -> str:
    """A column label for a grid variant of the study's axes: "char=cnn,encoder=lstm,decoder=crf" -> "char CNN /
    LSTM + CRF" ("no char" for none); any other variant keeps its name."""
    if variant == "base" or any("=" not in part for part in variant.split(",")):
        return variant
    a = assignment(variant)
    if not {"char", "encoder", "decoder"} <= set(a):
        return variant
    char = "no char" if a["char"] == "none" else f"char {a['char'].upper()}"
    return f"{char} / {a['encoder'].upper()}" + (" + CRF" if a["decoder"] == "crf" else "")


def study_layout(grid: Sequence[tuple[str, Sequence[str]]]) -> bool:
    """Whether the grid varies exactly the study's three axes (char, word encoder, inference layer)."""
    return sorted(k for k, _ in grid) == sorted((CHAR, WORD, INFERENCE))


def failed_counts(failed: Sequence[dict]) -> dict[str, int]:
    """Failed runs per variant name (``study.json``'s ``failed`` records)."""
    counts: dict[str, int] = {}
    for f in failed:
        counts[f["variant"]] = counts.get(f["variant"], 0) + 1
    return counts


def _cell_key(variant: str) -> tuple:
    """(char, encoder, decoder) of a variant name (None for an axis it does not set)."""
    a = assignment(variant)
    return a.get("char"), a.get("encoder"), a.get("decoder")


def layout_cells(variants: dict, grid: Sequence[tuple[str, Sequence[str]]], failed: Sequence[dict] = ()) -> list[dict]:
    """The study's 4×3 layout: one row per (word encoder, inference) and one cell per char value, each with its
    summary (``cell_summary``; None for a cell with no finished run), its failed runs (``failed``: study.json's
    records), the published numbers for it and its recipe (the study's ``--cell-set`` settings for that cell)."""
    values = dict(grid)
    by_key = {_cell_key(name): v for name, v in variants.items()}
    n_failed = {_cell_key(name): n for name, n in failed_counts(failed).items()}
    recipes = {_cell_key(f["variant"]): list(f.get("recipe", [])) for f in failed}
    rows = []
    for word in values[WORD]:
        for inference in values[INFERENCE]:
            cells = []
            for char in values[CHAR]:
                key = (char, word, inference)
                v = by_key.get(key)
                cells.append({"char": char, "summary": cell_summary(v["runs"]) if v and v["runs"] else None,
                              "published": PUBLISHED.get(key), "n_failed": n_failed.get(key, 0),
                              "recipe": list(v.get("recipe", [])) if v else recipes.get(key, [])})
            rows.append({"word": word, "inference": inference, "cells": cells})
    return rows


GRID_FIELDS = ("variant", "char", "encoder", "decoder", "n_runs", "n_failed", "test_f1_mean", "test_f1_sd", "test_f1_n",
               "dev_f1_mean", "dev_f1_sd", "train_seconds_mean", "study_f1", "ncrfpp_f1", "recipe")
FINDINGS_FIELDS = ("variant", "finding", "id", "ablate", "verdict", "n_holding", "n_cases", "holds_runs",
                   "applicable_runs")


def _csv(fields: Sequence[str], rows: list[dict]) -> str:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if r.get(k) is None else r[k]) for k in fields} for r in rows)
    return buf.getvalue()


def grid_csv(variants: dict, failed: Sequence[dict] = ()) -> str:
    """grid.csv: one row per variant (``GRID_FIELDS``): its grid values, finished and failed runs, test and dev F1
    (fractions, mean and sample sd over the runs with a finite value, and how many), mean training seconds, the
    published F1 (%) of the study's cell where there is one, and the cell's --cell-set settings (";"-joined);
    empty where none. A variant whose every run failed (``failed``: study.json's records) has a row too."""
    rows = []
    n_failed = failed_counts(failed)
    variants = dict(variants)
    for f in failed:
        variants.setdefault(f["variant"], {"runs": [], "recipe": list(f.get("recipe", []))})
    for name, v in variants.items():
        a, c = assignment(name), cell_summary(v["runs"])
        pub = PUBLISHED.get(_cell_key(name))
        rows.append({"variant": name, "char": a.get("char"), "encoder": a.get("encoder"),
                     "decoder": a.get("decoder"), "n_runs": c["n_runs"], "n_failed": n_failed.get(name, 0),
                     "test_f1_mean": c["test_f1"][0],
                     "test_f1_sd": c["test_f1"][1], "test_f1_n": c["test_f1"][2], "dev_f1_mean": c["dev_f1"][0],
                     "dev_f1_sd": c["dev_f1"][1], "train_seconds_mean": c["train_seconds"][0],
                     "study_f1": pub[0] if pub else None, "ncrfpp_f1": pub[1] if pub else None,
                     "recipe": ";".join(v.get("recipe", []))})
    return _csv(GRID_FIELDS, rows)


def findings_csv(variants: dict) -> str:
    """findings_by_variant.csv: one row per (variant, finding) (``FINDINGS_FIELDS``), the verdict, the cases
    holding / tested and the runs in which it held on its own, as in the findings × architecture table."""
    rows = [{"variant": name, "finding": f["number"], "id": f["id"], "ablate": f.get("ablate"),
             "verdict": f["verdict"], "n_holding": f.get("n_holding"), "n_cases": f.get("n_cases"),
             "holds_runs": f.get("holds_runs"), "applicable_runs": f.get("applicable_runs")}
            for name, v in variants.items() for f in v.get("findings", [])]
    return _csv(FINDINGS_FIELDS, rows)


def findings_by_label(variants: dict) -> dict[str, dict[str, dict]]:
    """Each finding's label ("9 (mean)") -> {variant name: that variant's finding}, in the findings' order."""
    from nerve.analysis.verdicts import finding_label

    table: dict[str, dict[str, dict]] = {}
    for name, v in variants.items():
        for f in v.get("findings", []):
            table.setdefault(finding_label(f), {})[name] = f
    return table


def grid_cells(variants: dict) -> dict[str, dict[str, str]]:
    """The grid cells with findings and their factor levels: the variant's grid values ({"char": "cnn", ...}) and
    its recipe (``contrasts.recipe_level`` of its --cell-set items: "none" when it has none)."""
    from nerve.analysis.contrasts import RECIPE, recipe_level

    return {name: assignment(name) | {RECIPE: recipe_level(v.get("recipe", []))}
            for name, v in variants.items()
            if v.get("findings") and name != "base" and all("=" in part for part in name.split(","))}


def contrast_tests(variants: dict) -> list:
    """The architecture contrasts of a grid study (``nerve.analysis.contrasts.study_contrasts``): per finding,
    clause and pair of levels of each varying factor (recipe included), the OLS contrast of the cell means with its
    Holm-level interval, p (Holm over every contrast) and verdict; [] without two grid cells."""
    from nerve.analysis.contrasts import study_contrasts

    cells = grid_cells(variants)
    alpha = next((f.get("alpha") for v in variants.values() for f in v.get("findings", []) if f.get("alpha")), 0.05)
    return study_contrasts(cells, {n: variants[n]["findings"] for n in cells}, float(alpha))


def contrasts_csv(variants: dict, contrasts: list | None = None) -> str:
    """contrasts.csv: one row per tested contrast (``nerve.analysis.contrasts.CSV_FIELDS``; docs/OUTPUTS.md)."""
    from nerve.analysis.contrasts import CSV_FIELDS, csv_rows

    return _csv(CSV_FIELDS, csv_rows(contrast_tests(variants) if contrasts is None else contrasts))


def _num(x: float) -> str:
    return f"{x:+.2f}" if abs(x) >= 0.01 or x == 0 else f"{x:+.1e}"


def contrast_text(c) -> str:
    """One tested contrast in words: "decoder crf − softmax: −0.30 [−0.45, −0.15] (OLS on cell means, t(6),
    p (Holm) 0.003; δ = 0.1): holds"."""
    from nerve.analysis.meta import p_text

    head = f"{c.factor} {c.high} − {c.low}"
    if c.reason:
        return f"{head}: cannot be tested ({c.reason})"
    return (f"{head}: {_num(c.effect)} [{_num(c.ci[0])}, {_num(c.ci[1])}] ({c.test}, p (Holm) {p_text(c.p_holm)}; "
            f"δ = {c.sesoi:g}): {c.verdict}" + (f" — {c.note}" if c.note else ""))


def finding_contrasts(variants: dict, contrasts: list | None = None) -> list[tuple[str, str, str]]:
    """What changes between architectures, per finding: (label, description, text), the text giving first each
    tested contrast (``contrast_tests``: effect [interval at its Holm level], test, p (Holm), verdict), then, as
    description, in how many architectures it holds and in how many runs it held in every run, and where it is
    contradicted, negligible, inconclusive, cannot be tested or does not apply (architectures named up to four,
    counted beyond)."""
    names = [n for n, v in variants.items() if v.get("findings")]
    tests = contrast_tests(variants) if contrasts is None else contrasts
    out = []
    for label, by_name in findings_by_label(variants).items():
        by: dict[str, list[str]] = {}
        for n in names:
            f = by_name.get(n)
            by.setdefault(f["verdict"] if f else "not evaluated", []).append(short_label(n))
        applicable = len(names) - len(by.get("not applicable", [])) - len(by.get("not evaluated", []))
        every = [short_label(n) for n, f in by_name.items()
                 if f.get("applicable_runs") and f.get("holds_runs") == f["applicable_runs"]]
        counts = (f"holds in {len(by.get('holds', []))} of {applicable} architectures where it applies, and held "
                  f"in every run of {len(every)}" + (f" ({', '.join(every)})" if 0 < len(every) <= 4 else ""))
        for verdict in ("holds for most", "contradicted", "negligible", "inconclusive", "cannot be tested",
                        "not applicable"):
            cells = by.get(verdict, [])
            if cells:  # named when few, else counted
                counts += f"; {verdict} in " + (", ".join(cells) if len(cells) <= 4 else f"{len(cells)}")
        mine = [c for c in tests if c.label == label]
        clauses = len({c.clause for c in mine})
        tested = "; ".join((f"clause {c.clause} " if clauses > 1 else "") + contrast_text(c) for c in mine)
        text = (f"tested: {tested}; run counts (a description): " if tested else "") + counts
        out.append((label, next(iter(by_name.values())).get("description", ""), text))
    return out
