"""Tidy long tables of analyses and studies for pandas: one row per measured number, every column declared
(docs/API.md, "Output files and columns")."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from nerve.analysis.ablation import SCORES, read_ablation_csv
from nerve.analysis.compare import load_run_analysis
from nerve.analysis.heldout import read_methods_csv
from nerve.errors import NerveError
from nerve.folder import study_run_folder as run_folder
from nerve.study import STUDY_SCHEMA

# The columns of ``sweep_table`` and (after variant and seed) ``study_table``, in order.
SWEEP_COLUMNS = ("table", "method", "intervention", "rank_split", "score_split", "tag", "eval_tag", "k", "selection",
                 "draw", "metric", "value")
STUDY_COLUMNS = ("variant", "seed", *SWEEP_COLUMNS)
_CATEGORIES = ("table", "method", "intervention", "rank_split", "score_split", "selection", "metric")


def _categorical(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """Label columns as categories; tag and eval_tag share one category set, so that they compare."""
    frame = frame.astype({c: "category" for c in columns})
    names = pd.unique(pd.concat([frame["tag"].astype(str), frame["eval_tag"].astype(str)]))
    shared = pd.CategoricalDtype(names)
    return frame.astype({"tag": shared, "eval_tag": shared})


def _melt(frame: pd.DataFrame, fixed: dict) -> pd.DataFrame:
    """Sweep rows (target_tag, selection, k, draw, eval_tag, SCORES...) as long rows, one per metric."""
    frame = frame.rename(columns={"target_tag": "tag"})
    for name, value in fixed.items():
        frame[name] = value
    keys = [c for c in SWEEP_COLUMNS if c not in ("metric", "value")]
    return frame.melt(id_vars=keys, value_vars=list(SCORES), var_name="metric", value_name="value")


def sweep_table(analysis_dir: str | os.PathLike) -> pd.DataFrame:
    """Every sweep of one analysis folder as one long table, columns ``SWEEP_COLUMNS``:

    - table: the file the row comes from: "ablation" (the base sweep: sensitivity ranked on the analysed split,
      zero ablation, selections top, bottom and random), "methods" (methods.csv: each method ranked on
      rank_split, judged on score_split) or "sufficiency" (sufficiency.csv, with ``--sufficiency``: the same, but
      k counts the units kept, every other unit intervened on);
    - method, intervention, rank_split, score_split: as methods.csv names them (method "random" with selection
      "random" is the random baseline);
    - tag: the target tag whose units were intervened on; eval_tag: the tag (or ALL, F1, F1:type) scored;
    - k: units intervened on (table "sufficiency": units kept); selection: top, bottom or random; draw: the random
      draw (0 otherwise);
    - metric: accuracy (recall on the tag's gold tokens; token accuracy for ALL; entity F1 for F1 and F1:type),
      precision, recall or f1; value: its value (NaN where undefined).

    Raises:
        NerveError: an incomplete or changed analysis folder (its files are checked against complete.json)."""
    try:
        analysed = load_run_analysis(analysis_dir)  # checks every file's SHA-256
    except ValueError as err:  # a folder that is no analysis, or whose files disagree
        raise NerveError(str(err)) from None
    d = Path(analysed.analysis_dir)
    about = json.loads((d / "analysis.json").read_text(encoding="utf-8"))
    split = str(about.get("split_name", "?"))
    parts = [_melt(pd.DataFrame(read_ablation_csv(d / "ablation.csv")),
                   {"table": "ablation", "method": "sensitivity", "intervention": "zero", "rank_split": split,
                    "score_split": split})]
    if "methods.csv" in analysed.files:
        methods = pd.DataFrame(read_methods_csv(d / "methods.csv")).rename(columns={"ablate": "intervention"})
        parts.append(_melt(methods, {"table": "methods"}))
    if "sufficiency.csv" in analysed.files:
        kept = pd.DataFrame(read_methods_csv(d / "sufficiency.csv")).rename(columns={"ablate": "intervention"})
        parts.append(_melt(kept, {"table": "sufficiency"}))
    return _categorical(pd.concat(parts, ignore_index=True)[list(SWEEP_COLUMNS)], _CATEGORIES)


def study_runs(study_dir: str | os.PathLike) -> list[tuple[str, int, Path]]:
    """(variant, seed, run folder) of every run a study's study.json reports, found in the study's own folder
    (a copied or moved study reads its own runs)."""
    root = Path(study_dir)
    try:
        summary = json.loads((root / "study.json").read_text(encoding="utf-8"))
        variants = summary["variants"]
        schema = int(summary.get("schema", 1))
    except (OSError, ValueError, KeyError, TypeError):
        raise NerveError(f"{root / 'study.json'}: cannot be read as a study summary (expected the study.json of "
                         "`nerve study`)") from None
    if schema > STUDY_SCHEMA:
        raise NerveError(f"{root / 'study.json'}: schema {schema}; this nerve reads study.json schemas up to "
                         f"{STUDY_SCHEMA} (a newer nerve wrote it)")
    out = []
    for name, v in variants.items():
        for row in v.get("runs", []):
            out.append((name, int(row["seed"]), run_folder(root, row["run_dir"], v)))
    return out


def study_table(study_dir: str | os.PathLike) -> pd.DataFrame:
    """Every run's ``sweep_table`` of a study, with its variant and seed first (columns ``STUDY_COLUMNS``)."""
    parts = []
    for variant, seed, run in study_runs(study_dir):
        t = sweep_table(run / "analysis")
        t.insert(0, "seed", seed)
        t.insert(0, "variant", variant)
        parts.append(t)
    if not parts:
        raise NerveError(f"{study_dir}: the study has no analysed run")
    return _categorical(pd.concat(parts, ignore_index=True), ("variant", *_CATEGORIES))
