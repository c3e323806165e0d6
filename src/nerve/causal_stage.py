"""The causal benchmark's tables of one analysis beside methods.csv (``method_stage.write_methods`` calls them):
consensus and AtP, sufficiency sweeps, baselines at the judged ks, translation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nerve.analysis.core import AnalysisSpec
from nerve.analysis.heldout import method_sufficiency, write_methods_csv
from nerve.analysis.judging import JUDGED_K, dicts_csv, judge_methods
from nerve.io import atomic_write_text

AGREEMENT_K = 10  # the reported k (method_stage's figures and agreement)


def figure_k(rows: np.ndarray) -> int:
    """The k of one analysis' methods figures: 10, or every unit when there are fewer."""
    return min(AGREEMENT_K, int(rows["k"].max()))


def write_consensus_and_atp(scores: dict, rankings: dict, splits: tuple, spec: AnalysisSpec, out: Path) -> list[str]:
    """``consensus.csv`` (each method against the Borda vote of the others, per tag: ``consensus.consensus_rows``)
    with two methods or more, and ``atp.csv`` (per intervention, how each method's scores and the AtP estimate
    match every unit's exact single-unit effect on the scoring split: ``atp.atp_rows``)."""
    from nerve.analysis.atp import atp_input, atp_rows, write_atp_csv
    from nerve.analysis.consensus import consensus_rows, valid_tags, write_consensus_csv
    from nerve.analysis.core import INTERVENTIONS

    ranked, score = splits
    files = []
    if len(rankings) >= 2:
        write_consensus_csv(out / "consensus.csv", consensus_rows(rankings, score.tags, valid=valid_tags(scores)))
        files.append("consensus.csv")
    rows = []
    for name in spec.interventions:
        values = INTERVENTIONS.get(name).token_values(ranked.h, score.h, spec.seed)
        rows += atp_rows(atp_input(score, values), score.tags, scores, name)
    write_atp_csv(out / "atp.csv", rows)
    return files + ["atp.csv"]




def write_sufficiency(ranked, score, spec: AnalysisSpec, rankings: dict, out: Path, progress: bool) -> list[str]:
    """sufficiency.csv (``heldout.method_sufficiency``: each method's top k kept, every other unit intervened) and
    sufficiency_summary.csv (its judgements: the gain of keeping k units over keeping none)."""
    from nerve.analysis.judging import write_gain_csv

    rows = method_sufficiency(ranked, score, spec, rankings, progress)
    write_methods_csv(out / "sufficiency.csv", rows)
    judged = judge_methods(rows, ks=sorted({*JUDGED_K, figure_k(rows)}), sign=-1)
    write_gain_csv(out / "sufficiency_summary.csv", judged)
    files = ["sufficiency.csv", "sufficiency_summary.csv"]
    if spec.judged_draws or spec.matched_draws:
        files += write_baselines((ranked, score), spec, rankings, judged, out / "sufficiency", keep=True)
    return files




def write_baselines(splits: tuple, spec: AnalysisSpec, rankings: dict, judged: list[dict], stem: Path,
                     keep: bool = False) -> list[str]:
    """``<stem>_draws.npz`` (``draws.write_draws``: ``spec.judged_draws`` random and ``spec.matched_draws``
    variance-matched k-unit sets at the judged ks, per intervention) and ``<stem>_baselines.csv``
    (``draws.baseline_rows``: each judged row against them); ``keep``: the sufficiency sweeps'."""
    from nerve.analysis.core import INTERVENTIONS
    from nerve.analysis.draws import (
        BASELINE_FIELDS,
        Draws,
        DrawSpec,
        baseline_rows,
        matched_draw_scores,
        random_draw_scores,
        variance_deciles,
        write_draws,
    )

    ranked, score = splits
    ks = tuple(k for k in JUDGED_K if k <= spec.bound_max_k(score.h.shape[1]))
    if not ks:
        return []
    draw = DrawSpec(ks, spec.judged_draws, spec.matched_draws, spec.seed, keep, (min(AGREEMENT_K, max(ks)),))
    deciles = variance_deciles(ranked.h)
    out = {}
    for name in spec.interventions:
        values = INTERVENTIONS.get(name).token_values(ranked.h, score.h, spec.seed)
        out[name] = Draws(ks, list(score.tags), list(rankings), random_draw_scores(score, values, draw),
                          matched_draw_scores(score, values, rankings, deciles, draw), draw.matched_ks)
    write_draws(stem.with_name(stem.name + "_draws.npz"), out)
    rows = baseline_rows(judged, out, -1 if keep else 1)
    atomic_write_text(stem.with_name(stem.name + "_baselines.csv"), dicts_csv(rows, BASELINE_FIELDS))
    return [stem.name + "_draws.npz", stem.name + "_baselines.csv"]




def write_translation(ranked, score, spec: AnalysisSpec, rankings: dict, out: Path, progress: bool) -> list[str]:
    """translation.csv and translation_summary.csv (``translation.translation_sweep`` and ``judge_translation``):
    the ordered pairs among the B- tags and O (an entity's first token moved to another type, or out of or into
    an entity), on the gold tokens of the source tag."""
    from nerve.analysis.translation import (
        TranslationSpec,
        judge_translation,
        translation_summary_csv,
        translation_sweep,
        write_translation_csv,
    )

    tags = [t for t in score.tags if t == "O" or t.startswith("B-")]
    have = {t for t, a, s in zip(score.tags, np.bincount(ranked.labels, minlength=len(score.tags)) > 0,
                                 np.bincount(score.gold, minlength=len(score.tags)) > 0) if a and s}
    pairs = tuple((z, t) for z in tags for t in tags if z != t and z in have and t in have)
    if not pairs:
        return []
    rows = translation_sweep(ranked, score, rankings, TranslationSpec(spec.bound_max_k(score.h.shape[1]),
                                                                      spec.random_draws, spec.seed, pairs), progress)
    write_translation_csv(out / "translation.csv", rows)
    atomic_write_text(out / "translation_summary.csv", translation_summary_csv(judge_translation(rows)))
    return ["translation.csv", "translation_summary.csv"]
