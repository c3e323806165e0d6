"""The ablation findings of one run: the sweeps they read (held out from methods.csv, or ablation.csv), and per
target tag the top-k drop against the random draws or against the other tags, with the draws as the null."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nerve.analysis.heldout import COUNTED, METHOD_SENTENCES, RANDOM
from nerve.analysis.stats import null_fields
from nerve.analysis.within import SentenceCase, ablation_variance, sentence_variance

SENTENCE_BOOTSTRAP, BINOMIAL = "sentence bootstrap", "binomial"  # a case's variance_method
ABLATION_KINDS = ("ablation_vs_random", "ablation_selectivity")


def judged_ks(max_k: int, rules_path=None) -> list[int]:
    """The ks at which the rules (default: the packaged rules.toml) judge ablation findings on a sweep of
    k = 0..max_k (each ablation clause's k, at most max_k, as ``findings.evaluate_clause`` takes it; none with
    max_k 0): the ks whose per-sentence counts an analysis saves."""
    from nerve.analysis.findings import load_rules

    ks = {int(c["k"]) for r in load_rules(rules_path)[0] for c in r["clause"] if c["kind"] in ABLATION_KINDS}
    return sorted({min(k, int(max_k)) for k in ks}) if max_k >= 1 else []


def _split_names(run) -> tuple[str, str]:
    try:
        about = json.loads((Path(run.analysis_dir) / "analysis.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return "", ""
    split = str(about.get("split_name", ""))
    return str(about.get("rank_split_name", split)), split


def _held_out(run) -> np.ndarray | None:
    """methods.csv's rows the findings read (the sensitivity ranking and the random draws), None without any."""
    rows = getattr(run, "methods", None)
    if rows is None or not len(rows):
        return None
    rows = rows[np.isin(rows["method"], [COUNTED, RANDOM])]
    return rows if len(rows) else None


def run_sentences(run) -> dict:
    """{ablation value: ``sentence_counts.SweepCounts``}: the per-sentence counts of the sweeps ``run_sweeps`` reads
    (methods_sentences.npz beside methods.csv, ablation_sentences.npz beside ablation.csv), {} when the analysis
    recorded none (older analyses, or a run built by hand)."""
    from nerve.analysis.sentence_counts import SENTENCES, read_sentence_counts

    name = METHOD_SENTENCES if _held_out(run) is not None else SENTENCES
    if name not in (getattr(run, "files", None) or ()) or not getattr(run, "analysis_dir", None):
        return {}
    return read_sentence_counts(Path(run.analysis_dir) / name)


def run_sweeps(run) -> tuple[dict, str, str]:
    """(ablation value -> rows, rank split, score split) of an analysed run (see ``RunEvidence.of``)."""
    from nerve.analysis.ablation import FIELDS, row_dtype

    rows = _held_out(run)
    if rows is not None:
        out = {}
        width = max(len(t) for t in rows["eval_tag"].tolist())
        for ablate in dict.fromkeys(rows["ablate"].tolist()):
            r = rows[rows["ablate"] == ablate]
            a = np.empty(len(r), dtype=row_dtype(max(width, max(len(t) for t in r["target_tag"].tolist()))))
            for f in FIELDS:
                a[f] = r[f]
            a["selection"] = np.where(r["method"] == RANDOM, "random", "top")
            out[str(ablate)] = a
        return out, str(rows["rank_split"][0]), str(rows["score_split"][0])
    rank, score = _split_names(run)
    ablation = getattr(run, "ablation", None)
    return ({"zero": ablation} if ablation is not None else {}), score, score


def _acc(rows: np.ndarray, target: str, selection: str, k: int, eval_tag: str | None = None) -> np.ndarray:
    """Accuracies of ``eval_tag`` (default: the target) at k, ordered by draw."""
    m = (rows["target_tag"] == target) & (rows["selection"] == selection) & (rows["k"] == k)
    m &= rows["eval_tag"] == (target if eval_tag is None else eval_tag)
    r = rows[m]
    return r["accuracy"][np.argsort(r["draw"], kind="stable")]


@dataclass(frozen=True)
class RunWithin:
    """What a run holds for the within-run variance of its ablation cases: the tags' token counts ``support`` on
    the scoring split (binomial variance), the sweep's per-sentence counts ``sentences``
    (``sentence_counts.SweepCounts``, for the sentence bootstrap) and the rules' ``stats`` (resamples, seed)."""

    support: dict | None = None
    sentences: object = None
    stats: dict | None = None


def ablation_case(clause: dict, rows: np.ndarray, tags: list[str], target: str, k: int,
                  within: RunWithin | None = None) -> dict:
    """Evidence of one target tag of an ablation clause (drop = accuracy at k = 0 minus at k).

    ablation_vs_random: statistic = top-k drop − mean drop of the random draws; its null: each random draw's
    drop minus that mean (the top-k set taken as one more random draw). ablation_selectivity: statistic =
    the target's top-k drop − the mean drop of the other tags; its null: the same difference for each random
    draw. null_p = (1 + #draws at least as extreme) / (1 + #draws), never below its floor null_floor =
    1 / (1 + #draws). variance: the statistic's within-run variance (``within``: ``RunWithin``), by a bootstrap
    over the scoring split's sentences (``within.sentence_variance``, the stats' resamples and seed) from the
    sweep's per-sentence counts when they hold k and the target and reproduce the rows' recalls, else binomial
    (``within.ablation_variance``) from the tags' token counts; absent without either.
    variance_method: which ("sentence bootstrap" or "binomial").
    """
    ev = {"tags": [target], "k": k, "holds": None}
    base = _acc(rows, target, "top", 0)
    base = base if base.size else _acc(rows, target, "random", 0)[:1]
    if not base.size or not np.isfinite(base[0]):
        return ev | {"reason": "no accuracy at k = 0 (tag absent from the gold labels?)"}
    top = _acc(rows, target, "top", k)
    if not top.size:
        return ev | {"reason": f"no top-{k} row"}
    top_drop = float(base[0] - top[0])
    rnd = base[0] - _acc(rows, target, "random", k)
    drops: dict = {}
    if clause["kind"] == "ablation_vs_random":
        rnd = rnd[np.isfinite(rnd)]
        if not rnd.size:
            return ev | {"reason": "no random draws"}
        stat, null = top_drop - float(rnd.mean()), rnd - rnd.mean()
        ev |= {"baseline": float(base[0]), "top_drop": top_drop, "random_mean_drop": float(rnd.mean()),
               "n_draws": int(rnd.size)}
    else:
        rnd_others = []
        for t in tags:
            if t == target:
                continue
            a0, ak = _acc(rows, target, "top", 0, t), _acc(rows, target, "top", k, t)
            if a0.size and ak.size and np.isfinite(a0[0] - ak[0]):
                drops[t] = float(a0[0] - ak[0])
                rk = _acc(rows, target, "random", k, t)
                if rk.size == rnd.size:
                    rnd_others.append(a0[0] - rk)
        if not drops:
            return ev | {"reason": "no other tag with an accuracy"}
        worst = max(drops, key=drops.get)
        mean = float(np.mean(list(drops.values())))
        stat = top_drop - mean
        null = rnd - np.mean(rnd_others, axis=0) if rnd_others and rnd.size else np.zeros(0)
        ev |= {"own_drop": top_drop, "others_mean_drop": mean, "others_max_drop": drops[worst],
               "others_max_tag": worst, "holds_vs_max": bool(top_drop > drops[worst])}
    ev |= {"statistic": stat, "oriented": stat, "holds": bool(stat > 0)}
    rnd = rnd[np.isfinite(rnd)]
    within = within or RunWithin()
    var, method = None, SENTENCE_BOOTSTRAP
    case = SentenceCase(clause["kind"], k, target, tuple(drops))
    if within.sentences is not None and _matches(within.sentences, rows, case, rnd.size):
        from nerve.analysis.findings import STATISTICS

        st = STATISTICS | (within.stats or {})
        var = sentence_variance(case, within.sentences, rnd, int(st["resamples"]), int(st["seed"]))
    if var is None:
        var, method = ablation_variance(clause["kind"], ev, within.support or {}, target, rnd, drops), BINOMIAL
    if var is not None:
        ev |= {"variance": var, "variance_method": method}
    return ev | null_fields(stat, null, stat, null)


def _matches(counts, rows: np.ndarray, case: SentenceCase, n_draws: int) -> bool:
    """Whether per-sentence ``counts`` belong to these rows: they hold k, the target and its tags, as many
    random draws, and their sums give the rows' recalls at k = 0 and after the top-k ablation (the target's
    and the other tags')."""
    target, k, others, kind = case.target, case.k, case.others, case.kind
    if k not in counts.ks or target not in counts.targets or not set([target, *others]) <= set(counts.tags):
        return False
    if kind == "ablation_vs_random" and counts.draws != n_draws:
        return False
    i, z = counts.ks.index(k), counts.targets.index(target)
    for t in [target, *others]:
        j = counts.tags.index(t)
        n = int(counts.gold[:, j].sum())
        for acc, right in ((_acc(rows, target, "top", 0, t), counts.base[:, j]),
                           (_acc(rows, target, "top", k, t), counts.top[i, z][:, j])):
            if not n or not acc.size or not np.isclose(acc[0], int(right.sum()) / n, rtol=1e-12, atol=1e-12):
                return False
    return True
