"""The ranking-methods stage: methods.csv, its judgements, the methods' scores and agreement, and their figures
for one analysis (``write_methods``); the same aggregated over runs with unit-matched stability
(``compare_methods``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nerve import causal_stage as causal
from nerve.analysis.checks import check_activations
from nerve.analysis.compare import AnalysedRun
from nerve.analysis.core import AnalysisSpec
from nerve.analysis.heldout import (
    METHOD_SENTENCES,
    MethodScores,
    default_target,
    method_score_matrices,
    method_sweeps_counts,
    rank_input,
    read_methods_csv,
    unranked,
    write_method_scores,
    write_methods_csv,
)
from nerve.analysis.judging import JUDGED_K, dicts_csv, drop_matrix, judge_methods, write_summary_csv
from nerve.analysis.ranking import rank_units
from nerve.analysis.sentence_counts import write_sentence_counts
from nerve.causal_stage import AGREEMENT_K, figure_k
from nerve.errors import warn
from nerve.io import atomic_write_text


def write_methods(rank_arrays, arrays, spec: AnalysisSpec, out: Path, progress: bool = False) -> list[str]:
    """The methods part of ``nerve analyze --methods``: each of ``spec.methods`` scores units on the ranking
    split's arrays (``rank_arrays``) and is judged by top-k intervention sweeps on the scoring split's
    (``arrays``), for each of ``spec.interventions``, into ``out``: methods.csv, methods_sentences.npz (the
    per-sentence counts of its sensitivity and random rows at k = 0 and the ks the ablation findings judge, for
    their bootstrap over sentences), methods_summary.csv, methods_scores.npz, methods_agreement.csv and, with
    ``spec.figures``, their figures (``draw_methods``); ``progress``: bars on stderr for the scoring and the sweeps.
    Returns the names of the files written."""
    rank, score = check_activations(rank_arrays), check_activations(arrays)
    ranked = rank_input(rank, spec.bucket)
    absent = [t for t, a in zip(rank.tags, unranked(ranked)) if a]
    if absent:
        warn(f"{', '.join(absent)}: no token ({spec.bucket} tags) in the ranking split {spec.ranking_split}, so no "
             "method can rank units for it; it is not swept or judged (methods.csv and methods_summary.csv leave "
             "it out as a target)")
    scores = method_score_matrices(ranked, spec.methods, spec.seed, progress=progress)
    rankings = {m: rank_units(s) for m, s in scores.items()}
    from nerve.analysis.findings_ablation import judged_ks

    rows, counts = method_sweeps_counts(ranked, score, spec, rankings, judged_ks(spec.bound_max_k(score.h.shape[1])),
                                        progress)
    write_methods_csv(out / "methods.csv", rows)
    files = ["methods.csv"]
    if counts:
        write_sentence_counts(out / METHOD_SENTENCES, counts)
        files.append(METHOD_SENTENCES)
    agreement = []
    if scores:
        write_method_scores(out / METHOD_SCORES, MethodScores(list(scores), rank.tags, rank.neurons, scores,
                                                              rankings, spec.ranking_split, default_target(ranked)))
        agreement = _write_agreement(scores, rankings, rank.tags, spec.ranking_split, out)
        files += [METHOD_SCORES, *(["methods_agreement.csv"] if agreement else [])]
        files += causal.write_consensus_and_atp(scores, rankings, (ranked, score), spec, out)
    judged = judge_methods(rows, ks=sorted({*JUDGED_K, figure_k(rows)}))
    write_summary_csv(out / "methods_summary.csv", judged)
    files.append("methods_summary.csv")
    if spec.judged_draws or spec.matched_draws:
        files += causal.write_baselines((ranked, score), spec, rankings, judged, out / "methods")
    if spec.sufficiency:
        files += causal.write_sufficiency(ranked, score, spec, rankings, out, progress)
    if spec.translation:
        files += causal.write_translation(ranked, score, spec, rankings, out, progress)
    if spec.figures:
        keep = read_methods_csv(out / "sufficiency.csv") if "sufficiency.csv" in files else None
        files += draw_methods(MethodTables(rows, judged, list(rankings), agreement, keep), score.h.shape[1],
                              f"{score.decoder} decoding, {spec.random_draws} random draws", out)
    return files


@dataclass(frozen=True)
class MethodTables:
    """One analysis' methods tables: methods.csv's ``rows``, methods_summary.csv's ``judged``, the ranked
    methods' ``names`` and methods_agreement.csv's ``agreement`` rows."""

    rows: np.ndarray
    judged: list[dict]
    names: list[str]
    agreement: list[dict]
    sufficiency: np.ndarray | None = None  # sufficiency.csv's rows (``--sufficiency``), drawn as gain curves


METHOD_SCORES = "methods_scores.npz"




def _write_agreement(scores: dict, rankings: dict, tags: list[str], rank_split: str, out: Path) -> list[dict]:
    """``methods_agreement.csv`` (top-k overlap of every two methods per tag) when there are two methods; returns
    its rows (``agreement.agreement_rows``), none with fewer methods."""
    from nerve.analysis.agreement import AGREEMENT_FIELDS, agreement_rows

    if len(rankings) < 2:
        return []
    valid = {m: np.all(np.isfinite(s), axis=0) for m, s in scores.items()}
    rows = agreement_rows(rankings, tags, JUDGED_K, valid)
    atomic_write_text(out / "methods_agreement.csv", dicts_csv([{"rank_split": rank_split, **r} for r in rows],
                                                               ("rank_split", *AGREEMENT_FIELDS)))
    return rows


def draw_methods(tables: MethodTables, n: int, decoding: str, out: Path) -> list[str]:
    """The figures of one analysis' methods, from its tables (of n units; ``decoding`` says how it decodes, e.g.
    "crf decoding, 20 random draws"), into ``out``: the methods x methods agreement, and per intervention the
    drop heatmaps and the own-drop curves. Returns the names of the files written."""
    from nerve.analysis.agreement import pair_matrix
    from nerve.report.method_drop_figures import plot_method_curves, plot_method_drops
    from nerve.report.method_figures import plot_method_agreement

    rows, judged, names, agreement = tables.rows, tables.judged, tables.names, tables.agreement
    rank_split, split = str(rows["rank_split"][0]), str(rows["score_split"][0])
    files = []
    if agreement:
        k = min(AGREEMENT_K, n)
        title = (f"Shared units among the top {k} of two ranking methods\n(mean over tags; ranked on {rank_split}; "
                 f"chance {k * k / n:.1f})")
        files += [p.name for p in plot_method_agreement(names, pair_matrix(agreement, names, k), k,
                                                        out / "methods_agreement", title)]
    k = figure_k(rows)
    for value in dict.fromkeys(rows["ablate"].tolist()):
        for measure, suffix, what in (("accuracy", "", "recall"), ("f1", "_f1", "token F1")):
            methods, tags, M = drop_matrix(judged, value, k, measure)
            if methods:
                title = (f"Drop of each tag's {what} at k = {k}: ranked on {rank_split}, scored on {split}, "
                         f"{value} ablation ({decoding.split(',')[0]})")
                files += [p.name for p in plot_method_drops(methods, tags, M, out / f"methods_drop_{value}{suffix}",
                                                            title)]
        title = (f"Own drop by k: ranked on {rank_split}, scored on {split}, {value} ablation "
                 f"({decoding})")
        files += [p.name for p in plot_method_curves(rows, value, out / f"methods_curves_{value}", title)]
    keep = tables.sufficiency
    for value in dict.fromkeys(keep["ablate"].tolist()) if keep is not None and len(keep) else ():
        title = (f"Gain by k kept: ranked on {rank_split}, scored on {split}, {value} ablation of the others "
                 f"({decoding})")
        files += [p.name for p in plot_method_curves(keep, value, out / f"sufficiency_curves_{value}", title,
                                                     keep=True)]
    return files


def compare_methods(dirs: Sequence[AnalysedRun | str | os.PathLike], out_dir: str | os.PathLike) -> dict | None:
    """The ranking methods over analysed runs (or their folders, ``load_run_analysis``), when every analysis
    judged methods (else None, nothing written):

    - ``methods_across_runs.csv``: each method's held-out judgement aggregated over the runs (``judging.across_runs``);
    - when every analysis saved its methods' scores: ``methods_agreement_across_runs.csv`` (the top-k overlap of
      every two methods per tag, mean and sd over runs) and ``methods_stability.csv`` (each method's top-k overlap
      between every two runs after matching their units by sensitivity profile, ``agreement.stability_rows``),
      with their figures at k = ``AGREEMENT_K``;
    - ``methods_drop_<ablate>_mean.png``: the mean own drop per method and tag at k = 10;
    - ``methods_paired.csv`` (and ``sufficiency_paired.csv`` when every analysis swept sufficiency): every two
      methods compared on the area over k, paired by run (``paired.paired_comparisons``): the overall comparisons
      (the mean over entity tags) as one Holm family, then the per-tag ones as another (column ``m``).

    Returns:
        JSON-ready dict: path (of methods_across_runs.csv), compare_dir, files, across (its rows), k (of the
        figures and verdicts), rank_split, score_split, n_runs, verdicts ({ablate: ``judging.method_verdicts``}),
        best ({"necessity" / "sufficiency": {ablate: ``paired.best_methods`` overall}}).
    """
    from nerve.analysis.compare import as_analysed
    from nerve.analysis.judging import across_csv, across_runs, method_verdicts, read_summary_csv

    runs = [as_analysed(d) for d in dirs]
    if any("methods_summary.csv" not in r.files for r in runs):
        return None
    per_run = [read_summary_csv(Path(r.analysis_dir) / "methods_summary.csv") for r in runs]
    scored = all(METHOD_SCORES in r.files for r in runs)
    out = Path(out_dir)
    path = out / "methods_across_runs.csv"
    across = across_runs(per_run)
    atomic_write_text(path, across_csv(across))
    files = [path.name]
    k = max([r["k"] for r in across if r["k"] <= AGREEMENT_K], default=0)
    verdicts = {}
    for ablate in dict.fromkeys(r["ablate"] for r in across):
        verdicts[ablate] = method_verdicts(across, ablate, k)
        files += _across_drop_figure(across, ablate, k, out)
    if scored:
        files += _compare_agreement(runs, out)
    best = {"necessity": _write_paired(per_run, out / "methods_paired.csv")}
    files.append("methods_paired.csv")
    if all("sufficiency_summary.csv" in r.files for r in runs):
        from nerve.analysis.judging import GAIN_FIELDS

        gains = [read_summary_csv(Path(r.analysis_dir) / "sufficiency_summary.csv", GAIN_FIELDS) for r in runs]
        best["sufficiency"] = _write_paired(gains, out / "sufficiency_paired.csv")
        files.append("sufficiency_paired.csv")
    baselines = {}
    for direction, stem in (("necessity", "methods"), ("sufficiency", "sufficiency")):
        if all(f"{stem}_baselines.csv" in r.files for r in runs):
            baselines[direction] = _baselines_across(runs, stem, out)
            files.append(f"{stem}_baselines_across_runs.csv")
    consensus = _consensus_across(runs, k) if all("consensus.csv" in r.files for r in runs) else {}
    first = across[0] if across else {"rank_split": "", "score_split": ""}
    return {"path": str(path), "compare_dir": str(out), "files": files, "across": across, "k": k,
            "rank_split": first["rank_split"], "score_split": first["score_split"], "n_runs": len(per_run),
            "verdicts": verdicts, "best": best, "baselines": baselines, "consensus": consensus}


def _consensus_across(runs: list, k: int) -> dict:
    """{method: {"overlap": mean over runs and entity tags of its top-k overlap with the others' consensus,
    "spearman": the same of its rank correlation with it, "n": tag-runs}} at ``k`` (consensus.csv)."""
    import csv

    from nerve.tags import entity_type

    cells: dict[str, list] = {}
    for r in runs:
        with open(Path(r.analysis_dir) / "consensus.csv", encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                if int(row["k"]) == k and entity_type(row["target_tag"]):
                    cells.setdefault(row["method"], []).append((float(row["overlap"]), float(row["spearman"])))
    return {m: {"overlap": float(np.mean([o for o, _ in v])), "spearman": float(np.nanmean([s for _, s in v])),
                "n": len(v)} for m, v in cells.items()}


def _baselines_across(runs: list, stem: str, out: Path) -> list[dict]:
    """``<stem>_baselines_across_runs.csv``: ``draws.baseline_summary`` of the runs' ``<stem>_baselines.csv`` over
    the entity tags; returns its rows."""
    from nerve.analysis.draws import SUMMARY_FIELDS, baseline_summary, read_baselines_csv
    from nerve.tags import entity_type

    per_run = [read_baselines_csv(Path(r.analysis_dir) / f"{stem}_baselines.csv") for r in runs]
    tags = sorted({row["target_tag"] for rows in per_run for row in rows if entity_type(row["target_tag"])})
    rows = baseline_summary(per_run, tags)
    atomic_write_text(out / f"{stem}_baselines_across_runs.csv", dicts_csv(rows, SUMMARY_FIELDS))
    return rows


def _write_paired(per_run: list[list[dict]], path: Path) -> dict:
    """Write the paired comparisons of ``per_run`` (overall, then per tag: two Holm families) to ``path``; returns
    ``best_methods`` of the overall ones, JSON-ready."""
    from nerve.analysis.paired import best_methods, paired_comparisons, paired_csv

    overall = paired_comparisons(per_run, tags=[])
    atomic_write_text(path, paired_csv(overall + paired_comparisons(per_run, overall=False)))
    return best_methods(overall, per_run=per_run)


def _across_drop_figure(across: list[dict], ablate: str, k: int, out: Path) -> list[str]:
    from nerve.report.method_drop_figures import plot_method_drops
    from nerve.tags import tag_order

    methods, tags, M = drop_matrix(across, ablate, k, "accuracy", value="own_drop_mean")
    if not methods:
        return []
    order = tag_order(tags)
    sel = [r for r in across if r["ablate"] == ablate and r["k"] == k]
    title = (f"Drop of each tag's recall at k = {k}, mean over {max(r['n_runs'] for r in sel)} runs: ranked on "
             f"{sel[0]['rank_split']}, scored on {sel[0]['score_split']}, {ablate} ablation")
    paths = plot_method_drops(methods, [tags[j] for j in order], M[:, order], out / f"methods_drop_{ablate}_mean",
                              title)
    return [p.name for p in paths]


def _compare_agreement(runs: list[AnalysedRun], out: Path) -> list[str]:
    from nerve.analysis.agreement import (
        STABILITY_FIELDS,
        agreement_across_runs,
        agreement_rows,
        pair_matrix,
        stability_rows,
    )
    from nerve.analysis.heldout import read_method_scores
    from nerve.analysis.matching import assign_units
    from nerve.report.method_figures import plot_method_agreement, plot_method_stability
    from nerve.tags import tag_order

    dirs = [Path(r.analysis_dir) for r in runs]
    saved = [read_method_scores(d / METHOD_SCORES) for d in dirs]
    first = saved[0]
    tags = [first.tags[j] for j in tag_order(first.tags)]
    methods = [m for m in first.methods if all(m in r.methods for r in saved)]
    n = len(first.neurons)
    rankings, valid, sens = [], [], []
    for d, r, run in zip(dirs, saved, runs):
        if sorted(r.tags) != sorted(tags) or len(r.neurons) != n:
            raise ValueError(f"{d / METHOD_SCORES}: expected the tags and number of units of {dirs[0] / METHOD_SCORES}")
        idx = [r.tags.index(t) for t in tags]
        rankings.append({m: r.rankings[m][idx] for m in methods})
        valid.append({m: np.all(np.isfinite(r.scores[m][:, idx]), axis=0) for m in methods})
        sens.append(run.s[:, run.columns(tags)][[run.neurons.index(u) for u in r.neurons]])
    agreement = agreement_across_runs([agreement_rows(rk, tags, JUDGED_K, v) for rk, v in zip(rankings, valid)])
    split = first.rank_split
    matched_on = _split_name(dirs[0])
    atomic_write_text(out / "methods_agreement_across_runs.csv",
                      dicts_csv([{"rank_split": split, **r} for r in agreement],
                                ("rank_split", "method_a", "method_b", "tag", "k", "n_runs", "shared_mean",
                                 "shared_sd", "chance")))
    matchings = {}
    for a in range(len(dirs)):
        for b in range(a + 1, len(dirs)):
            usable = np.all(np.isfinite(sens[a]), axis=0) & np.all(np.isfinite(sens[b]), axis=0)
            if usable.sum() >= 2:
                rows, cols, _ = assign_units(sens[a], sens[b])
                matchings[(a, b)] = (rows, cols)
    stability = stability_rows(rankings, matchings, tags, JUDGED_K, n, valid)
    atomic_write_text(out / "methods_stability.csv",
                      dicts_csv([{"rank_split": split, "matched_on": matched_on, **r} for r in stability],
                                ("rank_split", "matched_on", *STABILITY_FIELDS)))
    files = ["methods_agreement_across_runs.csv", "methods_stability.csv"]
    k = min(AGREEMENT_K, n)
    title = (f"Shared units among the top {k} of two ranking methods\n(mean over tags and {len(dirs)} runs; "
             f"ranked on {split}; chance {k * k / n:.1f})")
    if len(methods) >= 2:  # agreement needs two methods
        M = pair_matrix([{**r, "shared": r["shared_mean"]} for r in agreement], methods, k)
        files += [p.name for p in plot_method_agreement(methods, M, k, out / "methods_agreement_mean", title)]
    if matchings:
        S = np.full((len(methods), len(tags)), np.nan)
        for r in stability:
            if r["k"] == k and r["shared_mean"] is not None:
                S[methods.index(r["method"]), tags.index(r["tag"])] = r["shared_mean"]
        title = (f"Stability over runs: top-{k} units shared by two runs, units matched by sensitivity profile on "
                 f"{matched_on}\n(mean over {len(matchings)} run pairs; ranked on {split}; chance {k * k / n:.1f})")
        files += [p.name for p in plot_method_stability(methods, tags, S, k, out / "methods_stability", title)]
    return files


def _split_name(analysis_dir: Path) -> str:
    """The name of the split an analysis folder analysed (``analysis.json``'s split_name), or "?"."""
    import json

    try:
        return str(json.loads((analysis_dir / "analysis.json").read_text(encoding="utf-8")).get("split_name", "?"))
    except (OSError, ValueError):
        return "?"
