"""Judging ranking methods from their held-out sweeps: own drop, selectivity, area under the curve, and where a
method's drop lies among the random draws (an empirical p-value, not an interval of the random mean)."""

from __future__ import annotations

import bisect
import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nerve.analysis.checks import AnalysisInputError
from nerve.analysis.heldout import RANDOM
from nerve.io import atomic_write_text

JUDGED_K = (1, 5, 10, 20)
JUDGED_SCORES = ("accuracy", "f1")  # a tag's recall (Xin et al.'s accuracy) and its token F1 (sees false positives)
SUMMARY_FIELDS = ("method", "ablate", "score", "rank_split", "score_split", "target_tag", "k", "baseline", "own_drop",
                  "others_mean_drop", "selectivity", "auc", "random_mean_drop", "random_p", "n_draws")


class _Scores:
    """The scores of sweep rows by (method, ablate, target tag, eval tag, k), in row order (the draws of the
    random rows), indexed once (sorted key codes) so that judging finds each by a binary search."""

    def __init__(self, rows: np.ndarray, field: str = "accuracy"):
        codes, self._index = np.zeros(len(rows), np.int64), []
        for f in ("method", "ablate", "target_tag", "eval_tag", "k"):
            values, inverse = np.unique(rows[f], return_inverse=True)
            codes = codes * len(values) + inverse.ravel()
            self._index.append({v: i for i, v in enumerate(values.tolist())})
        order = np.argsort(codes, kind="stable")  # row order within a key
        codes = codes[order]
        starts = np.flatnonzero(np.r_[True, np.diff(codes) != 0]) if len(rows) else np.zeros(0, np.intp)
        self._codes, self._starts = codes[starts].tolist(), starts.tolist() + [len(rows)]
        self._values = np.asarray(rows[field], dtype=np.float64)[order]
        self._empty = np.zeros(0)

    def __call__(self, method: str, ablate: str, target: str, eval_tag: str, k: int) -> np.ndarray:
        code = 0
        for index, value in zip(self._index, (method, ablate, target, eval_tag, k)):
            if value not in index:
                return self._empty
            code = code * len(index) + index[value]
        i = bisect.bisect_left(self._codes, code)
        if i == len(self._codes) or self._codes[i] != code:
            return self._empty
        return self._values[self._starts[i]:self._starts[i + 1]]


def judge_methods(rows: np.ndarray, ks: Sequence[int] = JUDGED_K, scores: Sequence[str] = JUDGED_SCORES,
                  sign: int = 1) -> list[dict]:
    """Per method, ablation value, score (``accuracy``: the recall of z's gold tokens, as Xin et al.; ``f1``:
    z's token F1, which also falls when ablation makes the model over-predict z), target tag z and k (those of
    ``ks`` that were swept):

    - ``own_drop``: z's score at k = 0 minus its score with the method's top k units of z ablated;
    - ``others_mean_drop`` and ``selectivity`` = own drop − the mean drop of the other tags (NaN-free ones);
    - ``auc``: the mean own drop over k = 0..K (the trapezoid area of the curve divided by K, K the largest
      swept k), the same for every k of a tag;
    - ``random_mean_drop`` and ``random_p`` = (1 + #draws whose own drop ≥ the method's) / (1 + #draws), from
      the random draws' rows at the same k and ablation value (None without draws).

    With ``sign`` = −1 (sufficiency sweeps, ``heldout.method_sufficiency``: k = 0 has every unit intervened, k
    keeps the top k) every difference is reversed: ``own_drop`` is then z's score with its top k units kept
    minus its score with none kept (the gain), and ``random_p`` counts the draws whose gain is ≥ the method's.

    Args:
        rows: ``heldout.method_sweeps`` rows (or methods.csv read back).

    Returns:
        one dict per (method, ablate, score, target tag, k), fields ``SUMMARY_FIELDS``.
    """
    tags = _tags(rows)
    max_k = int(rows["k"].max()) if len(rows) else 0
    out = []
    splits = (str(rows["rank_split"][0]), str(rows["score_split"][0])) if len(rows) else ("", "")
    for field in scores:
        score = _Scores(rows, field)
        for ablate in dict.fromkeys(rows["ablate"].tolist()):
            for method in dict.fromkeys(rows["method"].tolist()):
                if method == RANDOM:
                    continue
                for z in tags:
                    base = {t: score(method, ablate, z, t, 0) for t in tags}
                    if not base[z].size or np.isnan(base[z][0]):
                        continue
                    curve = [sign * float(base[z][0] - score(method, ablate, z, z, k)[0])
                             for k in range(max_k + 1)]
                    auc = float(np.trapezoid(curve, dx=1.0) / max_k) if max_k else 0.0
                    cell = _Cell(method, ablate, z, tags, base, auc, splits, sign)
                    for k in [k for k in ks if k <= max_k]:
                        out.append({"score": field, **_judged(score, cell, k)})
    return out


def _tags(rows: np.ndarray) -> list[str]:
    """The model's tags: the eval tags before ``ALL`` (``ablation.eval_tags``), so that a tag no method ranked
    (no target rows) still counts among the other tags of a selectivity."""
    evals = list(dict.fromkeys(rows["eval_tag"].tolist()))
    return evals[:evals.index("ALL")] if "ALL" in evals else [t for t in dict.fromkeys(rows["target_tag"].tolist())]


@dataclass(frozen=True)
class _Cell:
    """One (method, ablation value, target tag z) of a judgement: the tags, each tag's score at k = 0 (``base``),
    the curve's area and the (ranking, scoring) split names."""

    method: str
    ablate: str
    z: str
    tags: list[str]
    base: dict
    auc: float
    splits: tuple[str, str]
    sign: int = 1


def _judged(score: _Scores, cell: _Cell, k: int) -> dict:
    method, ablate, z, tags, base, auc, splits = (cell.method, cell.ablate, cell.z, cell.tags, cell.base, cell.auc,
                                                  cell.splits)
    sign = cell.sign
    own = sign * float(base[z][0] - score(method, ablate, z, z, k)[0])
    others = [sign * float(base[t][0] - score(method, ablate, z, t, k)[0]) for t in tags
              if t != z and base[t].size and not np.isnan(base[t][0])]
    others_mean = float(np.mean(others)) if others else float("nan")
    rnd_base = score(RANDOM, ablate, z, z, 0)
    rnd = sign * (rnd_base - score(RANDOM, ablate, z, z, k)) if rnd_base.size else np.zeros(0)
    return {"method": method, "ablate": ablate, "rank_split": splits[0], "score_split": splits[1], "target_tag": z,
            "k": int(k), "baseline": float(base[z][0]), "own_drop": own, "others_mean_drop": others_mean,
            "selectivity": own - others_mean, "auc": auc,
            "random_mean_drop": float(rnd.mean()) if rnd.size else None,
            "random_p": float((1 + np.sum(rnd >= own - 1e-12)) / (1 + rnd.size)) if rnd.size else None,
            "n_draws": int(rnd.size)}


def summary_csv(judged: list[dict]) -> str:
    """Text of ``methods_summary.csv`` (fields ``SUMMARY_FIELDS``; empty cells for None)."""
    return dicts_csv(judged, SUMMARY_FIELDS)


def dicts_csv(rows: list[dict], fields: Sequence[str]) -> str:
    """CSV text of dicts: a header, then one line per dict (floats to 9 significant digits, None empty)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(fields)
    for r in rows:
        w.writerow(["" if r[f] is None else (f"{r[f]:.9g}" if isinstance(r[f], float) else r[f]) for f in fields])
    return buf.getvalue()


def write_summary_csv(path: str | os.PathLike, judged: list[dict]) -> None:
    """Write ``summary_csv(judged)`` to ``path`` atomically."""
    atomic_write_text(path, summary_csv(judged))


GAIN_FIELDS = tuple(f.replace("drop", "gain") for f in SUMMARY_FIELDS)  # sufficiency_summary.csv's header


def write_gain_csv(path: str | os.PathLike, judged: list[dict]) -> None:
    """``sufficiency_summary.csv``: ``judge_methods(..., sign=-1)`` rows with their drops named gains
    (``GAIN_FIELDS``: own_gain, others_mean_gain, random_mean_gain), atomically."""
    renamed = [{g: r[f] for f, g in zip(SUMMARY_FIELDS, GAIN_FIELDS)} for r in judged]
    atomic_write_text(path, dicts_csv(renamed, GAIN_FIELDS))


RANDOM_ROW = "random (mean of draws)"


def drop_matrix(judged: list[dict], ablate: str, k: int, score: str = "accuracy", value: str = "own_drop"
                ) -> tuple[list[str], list[str], np.ndarray]:
    """(methods, tags, (methods × tags) own drop at ``k``) for one ablation value and score; NaN where not
    judged. When random draws were swept, a last row ``RANDOM_ROW`` holds their mean own drop. ``value``: the
    field drawn ("own_drop" of ``judge_methods`` rows, "own_drop_mean" of ``across_runs`` rows)."""
    sel = [r for r in judged if r["ablate"] == ablate and r["k"] == k and r["score"] == score]
    methods = list(dict.fromkeys(r["method"] for r in sel))
    tags = list(dict.fromkeys(r["target_tag"] for r in sel))
    with_random = any(r["random_mean_drop"] is not None for r in sel)
    M = np.full((len(methods) + with_random, len(tags)), np.nan)
    for r in sel:
        M[methods.index(r["method"]), tags.index(r["target_tag"])] = r[value]
        if with_random and r["random_mean_drop"] is not None:
            M[-1, tags.index(r["target_tag"])] = r["random_mean_drop"]
    return methods + [RANDOM_ROW] * with_random, tags, M


def read_summary_csv(path: str | os.PathLike, fields: Sequence[str] = SUMMARY_FIELDS) -> list[dict]:
    """``methods_summary.csv`` read back (numbers as floats, k and n_draws as ints, empty cells as None); with
    ``fields=GAIN_FIELDS``, ``sufficiency_summary.csv``, its gains under the drops' names (``SUMMARY_FIELDS``)."""
    out = []
    names = dict(zip(fields, SUMMARY_FIELDS))
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != tuple(fields):
            raise AnalysisInputError(f"{path}: expected a header {','.join(fields)} "
                                     "(an older nerve wrote other columns: analyse the run again)")
        for r in reader:
            row = {}
            for key, v in ((names[k], v) for k, v in r.items()):
                if key in ("k", "n_draws"):
                    row[key] = int(v)
                elif key in ("method", "ablate", "score", "rank_split", "score_split", "target_tag"):
                    row[key] = v
                else:
                    row[key] = None if v == "" else float(v)
            out.append(row)
    return out


ACROSS_FIELDS = ("method", "ablate", "score", "rank_split", "score_split", "target_tag", "k", "n_runs", "own_drop_mean",
                 "own_drop_sd", "selectivity_mean", "random_mean_drop", "random_p_median", "n_draws", "runs_best")


def across_runs(per_run: Sequence[list[dict]]) -> list[dict]:
    """Per method, ablation value, score, tag and k, over runs (each a ``judge_methods`` list): the mean and sample sd
    of the own drop, the mean selectivity and random mean drop, the median random p, the fewest random draws of a
    run (``n_draws``: the median p's floor is 1/(n_draws + 1)), and ``runs_best``: in how
    many runs this method's own drop was the largest of all methods (ties count for each)."""
    groups: dict[tuple, list[dict]] = {}
    for run in per_run:
        for r in run:
            groups.setdefault((r["method"], r["ablate"], r["score"], r["rank_split"],
                               r["score_split"], r["target_tag"], r["k"]), []).append(r)
    best: dict[tuple, int] = {}
    for run in per_run:
        top: dict[tuple, float] = {}
        for r in run:
            key = (r["ablate"], r["score"], r["target_tag"], r["k"])
            top[key] = max(top.get(key, -np.inf), r["own_drop"])
        for r in run:
            if r["own_drop"] >= top[(r["ablate"], r["score"], r["target_tag"], r["k"])] - 1e-12:
                key = (r["method"], r["ablate"], r["score"], r["target_tag"], r["k"])
                best[key] = best.get(key, 0) + 1
    out = []
    for (method, ablate, sc, rs, ss, tag, k), rows in groups.items():
        drops = np.array([r["own_drop"] for r in rows])
        ps = [r["random_p"] for r in rows if r["random_p"] is not None]
        rnd = [r["random_mean_drop"] for r in rows if r["random_mean_drop"] is not None]
        out.append({"method": method, "ablate": ablate, "score": sc, "rank_split": rs, "score_split": ss,
                    "target_tag": tag, "k": k, "n_runs": len(rows), "own_drop_mean": float(drops.mean()),
                    "own_drop_sd": float(drops.std(ddof=1)) if len(drops) > 1 else None,
                    "selectivity_mean": float(np.mean([r["selectivity"] for r in rows])),
                    "random_mean_drop": float(np.mean(rnd)) if rnd else None,
                    "random_p_median": float(np.median(ps)) if ps else None,
                    "n_draws": min((int(r.get("n_draws") or 0) for r in rows), default=0),
                    "runs_best": best.get((method, ablate, sc, tag, k), 0)})
    return out


def across_csv(rows: list[dict]) -> str:
    """Text of ``methods_across_runs.csv`` (fields ``ACROSS_FIELDS``; empty cells for None)."""
    return dicts_csv(rows, ACROSS_FIELDS)


NO_DROP = 0.005  # a mean drop below this (0.00 at two decimals) is no drop in the verdicts


def two_decimals(x: float | None) -> str:
    """Two decimals, without a minus sign on a value that rounds to zero."""
    return "–" if x is None else f"{x + 0.0:.2f}".replace("-0.00", "0.00")


def method_verdicts(across: list[dict], ablate: str, k: int, score: str = "accuracy") -> dict:
    """Which method's top-k units hurt each tag most on the scoring split, in plain words, from
    ``across_runs`` rows (one ablation value, one k, one score).

    Returns:
        {"tags": [{"tag", "best", "text"}, ...] in tag order, "overall": text over the entity tags (O aside: its
        recall does not fall under ablation), "wins": {method: tag-runs where it hurt most, entity tags}}; empty
        lists and text when no row matches.
    """
    from nerve.analysis.verdict_words import p_text
    from nerve.tags import tag_order

    sel = [r for r in across if r["ablate"] == ablate and r["k"] == k and r["score"] == score]
    tags = list(dict.fromkeys(r["target_tag"] for r in sel))
    tags = [tags[j] for j in tag_order(tags)]
    what = "recall" if score == "accuracy" else "token F1"
    out, wins, cases = [], {}, 0
    for tag in tags:
        rows = sorted((r for r in sel if r["target_tag"] == tag), key=lambda r: -r["own_drop_mean"])
        best, n = rows[0], rows[0]["n_runs"]
        if tag != "O":
            cases += n
            for r in rows:
                wins[r["method"]] = wins.get(r["method"], 0) + r["runs_best"]
        rnd, p = best["random_mean_drop"], best["random_p_median"]
        if best["own_drop_mean"] < max(NO_DROP, (rnd if rnd is not None else 0.0) + 1e-9):
            text = (f"{tag}: no method's top {k} lower its {what} by 0.005 or more, or more than {k} random units do "
                    f"(largest mean drop "
                    f"{two_decimals(best['own_drop_mean'])}, {best['method']}; random units {two_decimals(rnd)})")
            out.append({"tag": tag, "best": None, "text": text + "."})
            continue
        sd = f" ± {two_decimals(best['own_drop_sd'])}" if best["own_drop_sd"] is not None else ""
        text = (f"{tag}: {best['method']}'s top {k} lower its {what} most, by "
                f"{two_decimals(best['own_drop_mean'])}{sd} "
                f"(mean over {n} run{'s' * (n != 1)}; the largest drop in {best['runs_best']} of {n})")
        if len(rows) > 1:
            text += f"; next {rows[1]['method']} ({two_decimals(rows[1]['own_drop_mean'])})"
        if rnd is not None:
            floor = 1 / (best["n_draws"] + 1) if best.get("n_draws") else None
            text += f"; {k} random units: {two_decimals(rnd)}, median random-draw p {p_text(p, floor)}"
        out.append({"tag": tag, "best": best["method"], "text": text + "."})
    ranked = sorted(wins.items(), key=lambda kv: -kv[1])
    overall = ""
    if ranked:
        overall = (f"Over the {cases} entity tag × run cases, the method whose top {k} hurt its tag's {what} most: "
                   + ", ".join(f"{m} {w}" for m, w in ranked) + " (ties count for each).")
    return {"tags": out, "overall": overall, "wins": dict(ranked)}
