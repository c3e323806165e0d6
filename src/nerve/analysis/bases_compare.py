"""Neurons or directions? The bases compared over runs (issue 33): each run's basis_summary.csv, per basis, method,
intervention and tag, as a mean over the runs with a 95 % t interval (scipy), and per tag the difference of each
basis from the neurons, paired by run, judged against a smallest effect of interest δ (``DELTAS``) with Holm's
correction over the tags of a (basis, method, intervention, metric) family.

The paired statistics are the method comparison's (``paired``, docs/STATISTICS.md §3–4): the per-run differences
combined by ``meta.random_effects`` with no within-run variance (exactly the paired t-test over runs), each case
decided by ``meta.holm_decide`` at its Holm level: "higher than neurons" / "lower than neurons" when the interval
lies beyond ±δ, "negligible" inside (−δ, +δ), else "inconclusive"; "cannot be tested" with fewer than 2 runs or no
spread. Population: models of this configuration trained with other seeds."""

from __future__ import annotations

import csv
import math
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from nerve.analysis.basis_summary import BASIS_SUMMARY
from nerve.analysis.judging import dicts_csv
from nerve.analysis.meta import CONTRADICTED, HOLDS, NEGLIGIBLE, Estimate, holm_decide, random_effects
from nerve.io import atomic_write_text

METRICS = ("units_to_halve", "necessity_auc", "sufficiency_auc", "selectivity", "top_share", "monosemanticity",
           "reconstruction_f1_drop")
ACROSS_FIELDS = ("basis", "method", "ablate", "target_tag", "metric", "n_runs", "mean", "ci_low", "ci_high",
                 "n_missing")
PAIRED_FIELDS = ("basis", "method", "ablate", "target_tag", "metric", "n_runs", "mean_difference", "se", "df",
                 "alpha", "ci_low", "ci_high", "t", "p_zero", "p", "p_holm", "m", "delta", "verdict", "test", "reason")
ALPHA = 0.05  # family-wise, after Holm
# δ per metric, in its own unit: one unit for the number of units that halves a recall (a basis needing one unit
# fewer is the smallest difference a reader counts); for every share or score (areas of recall drops, selectivity,
# tag shares, F1) two in a hundred, STATISTICS.md's δ for an accuracy drop.
DELTAS = {"units_to_halve": 1.0, "necessity_auc": 0.02, "sufficiency_auc": 0.02, "selectivity": 0.02,
          "top_share": 0.02, "monosemanticity": 0.02, "reconstruction_f1_drop": 0.02}
HIGHER, LOWER = "higher than neurons", "lower than neurons"
TEST = "paired t over runs (random-effects HKSJ with no within-run variance)"


def read_basis_summary(path: str | os.PathLike) -> list[dict]:
    """basis_summary.csv read back (numbers as floats, empty cells None)."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for m in METRICS + ("baseline", "n_units"):
            r[m] = float(r[m]) if r.get(m) not in (None, "") else None
    return rows


def _recorded_names(folder) -> list[str]:
    """The files the analysis in ``folder`` recorded in its completion marker (none when incomplete)."""
    from nerve.folder import read_marker

    return list((read_marker(Path(folder), "complete.json") or {}).get("files", {}))


def _recorded(folder, name: str) -> Path:
    """``folder/name`` when the analysis recorded that file, else a one-line error: a file the analysis did not
    write (an earlier one's, or copied in) is never read."""
    from nerve.errors import NerveError

    if name not in _recorded_names(folder):
        raise NerveError(f"{Path(folder) / name}: not a file of the analysis in {folder} (analyse it again)")
    return Path(folder) / name


def _interval(x: np.ndarray) -> tuple[float, float, float]:
    from scipy import stats

    mean = float(x.mean())
    if x.size < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    return mean, mean - half, mean + half


def _paired_case(key: tuple, vals: list, ref: dict) -> tuple[dict, Estimate]:
    """One basis − neurons case before Holm: its row (the per-run differences where both have a finite value, why it
    cannot be tested or None) and the estimate (``meta.random_effects`` with no within-run variance)."""
    basis, method, ablate, tag, metric = key
    d = np.array([v - ref[i] for i, v in vals if v is not None and ref.get(i) is not None], dtype=float)
    d = d[np.isfinite(d)]  # a measure a run could not compute (NaN) is no value either
    est = random_effects(d, np.zeros_like(d))
    if est.testable:
        reason = None
    elif d.size < 2:
        why = " (no k up to max_k halves the recall in the others)" if metric == "units_to_halve" else ""
        reason = (f"{d.size} run{'s' * (d.size != 1)} with a value in both {basis} and the neurons{why}: a paired "
                  "comparison across seeds needs at least 2")
    else:
        reason = f"{basis} − neurons is {float(d[0]):.6g} in every run: no spread across runs to measure"
    row = {"basis": basis, "method": method, "ablate": ablate, "target_tag": tag, "metric": metric,
           "n_runs": int(d.size), "delta": DELTAS[metric], "test": f"{TEST}, t({max(d.size - 1, 0)})",
           "reason": reason}
    return row, est


def _judge(cases: list[tuple[dict, Estimate]]) -> None:
    """Decide one family's cases under Holm at ``ALPHA`` against their δ, completing their rows in place
    (``meta.holm_decide``)."""
    rows, ests = [r for r, _ in cases], [e for _, e in cases]
    n = len(rows)
    decisions, adjusted = holm_decide(ests, [0.0] * n, [1] * n, [r["delta"] for r in rows], ALPHA)
    m = sum(e.testable for e in ests)
    for r, est, dec, q in zip(rows, ests, decisions, adjusted):
        ok = est.testable and est.se > 0
        t = est.effect / est.se if ok else math.nan
        r.update({"mean_difference": est.effect, "se": est.se, "df": est.df, "alpha": dec.alpha,
                  "ci_low": dec.interval[0], "ci_high": dec.interval[1], "t": t,
                  "p_zero": min(1.0, 2 * est.sf(abs(t))) if ok else math.nan, "p": dec.p, "p_holm": float(q),
                  "m": m, "verdict": {HOLDS: HIGHER, CONTRADICTED: LOWER}.get(dec.verdict, dec.verdict)})


def verdict_counts(rows: Sequence[dict]) -> tuple[int, int, int, int]:
    """(higher, lower, negligible, the rest: inconclusive or cannot be tested) among paired rows' verdicts."""
    hi, lo, same = (sum(r["verdict"] == v for r in rows) for v in (HIGHER, LOWER, NEGLIGIBLE))
    return hi, lo, same, len(rows) - hi - lo - same


def delta_text() -> str:
    """The δ of each kind of measure in words (from ``DELTAS``)."""
    other = {v for k, v in DELTAS.items() if k != "units_to_halve"}
    return (f"{DELTAS['units_to_halve']:g} unit for the units to halve recall, {'/'.join(map(format, sorted(other)))} "
            "for every other measure")


def bases_across_runs(runs: Mapping[str, Sequence[str | os.PathLike]]) -> tuple[list[dict], list[dict]]:
    """(across, paired) rows from ``runs``: {basis: the analysis folders of its runs, in the same run order for
    every basis}. across: per basis, method, intervention, tag and metric the mean over runs and its 95 % t
    interval (``n_missing``: runs with no value, e.g. no k halving the recall). paired: each basis but neurons
    minus neurons, run by run (runs where both have a value), judged against the metric's δ (``DELTAS``) at its
    Holm level over the tags of its (basis, method, intervention, metric) family (see the module)."""
    values: dict[tuple, list] = defaultdict(list)
    for basis, folders in runs.items():
        for i, folder in enumerate(folders):
            for r in read_basis_summary(_recorded(folder, BASIS_SUMMARY)):
                for m in METRICS:
                    values[(basis, r["method"], r["ablate"], r["target_tag"], m)].append((i, r[m]))
    across = []
    for (basis, method, ablate, tag, metric), vals in values.items():
        x = np.array([v for _, v in vals if v is not None], dtype=float)
        mean, lo, hi = _interval(x) if x.size else (float("nan"),) * 3
        across.append({"basis": basis, "method": method, "ablate": ablate, "target_tag": tag, "metric": metric,
                       "n_runs": len(vals), "mean": mean, "ci_low": lo, "ci_high": hi,
                       "n_missing": len(vals) - int(x.size)})
    cases = [_paired_case(key, vals, dict(values.get(("neurons", *key[1:]), [])))
             for key, vals in values.items() if key[0] != "neurons" and ("neurons", *key[1:]) in values]
    families = defaultdict(list)
    for row, est in cases:
        families[(row["basis"], row["method"], row["ablate"], row["metric"])].append((row, est))
    for family in families.values():
        _judge(family)
    return across, [row for row, _ in cases]


def leace_across_runs(folders: Sequence[str | os.PathLike]) -> list[dict]:
    """Per erased tag and score, LEACE's own drop and selectivity over the runs' leace_summary.csv: mean and 95 % t
    interval (``LEACE_FIELDS``)."""
    values: dict[tuple, list] = defaultdict(list)
    for folder in folders:
        with open(_recorded(folder, "leace_summary.csv"), encoding="utf-8", newline="") as f:
            for r in csv.DictReader(f):
                values[(r["erased_tag"], r["score"])].append((float(r["own_drop"]), float(r["selectivity"])))
    out = []
    for (tag, score), vals in values.items():
        own, sel = (_interval(np.array(x)) for x in zip(*vals))
        out.append({"erased_tag": tag, "score": score, "n_runs": len(vals), "own_drop_mean": own[0],
                    "own_drop_low": own[1], "own_drop_high": own[2], "selectivity_mean": sel[0],
                    "selectivity_low": sel[1], "selectivity_high": sel[2]})
    return out


LEACE_FIELDS = ("erased_tag", "score", "n_runs", "own_drop_mean", "own_drop_low", "own_drop_high", "selectivity_mean",
                "selectivity_low", "selectivity_high")


def write_bases_comparison(out: str | os.PathLike, runs: Mapping[str, Sequence[str | os.PathLike]]) -> list[str]:
    """bases_across_runs.csv and bases_paired.csv in ``out`` (and leace_across_runs.csv when every neurons analysis
    erased the tags with LEACE); returns their names."""
    across, paired = bases_across_runs(runs)
    atomic_write_text(os.path.join(out, "bases_across_runs.csv"), dicts_csv(across, ACROSS_FIELDS))
    atomic_write_text(os.path.join(out, "bases_paired.csv"), dicts_csv(paired, PAIRED_FIELDS))
    files = ["bases_across_runs.csv", "bases_paired.csv"]
    neurons = runs.get("neurons", [])
    if neurons and all("leace_summary.csv" in _recorded_names(f) for f in neurons):
        atomic_write_text(os.path.join(out, "leace_across_runs.csv"), dicts_csv(leace_across_runs(neurons),
                                                                                 LEACE_FIELDS))
        files.append("leace_across_runs.csv")
    return files
