"""``nerve depth``: the layer-by-layer analysis of fine-tuned transformer runs, one folder per run (reused only when
its recorded fingerprint matches: the run's files, the splits and the spec), and the summary over runs.

Summary (``depth_summary.csv``): per site and method, each run's mean over tags of the own drop minus the random
sets' mean drop (the method's excess over random units at that site); over runs its mean, a t interval (95 %, df =
runs − 1), a one-sample t test against 0 with Holm's correction over every (site, method); and the share of
(run, tag) cases whose p against the random sets is ≤ 0.05 (floor 1/(draws + 1) stated). The population is the
runs given (seeds of one recipe): the statements speak for that recipe's runs, not for transformers."""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from nerve.errors import NerveError
from nerve.folder import COMPLETE, changed_files, fingerprint, mark_complete, read_marker, sha256_file, writer_lock
from nerve.hf.depth import DEPTH_FIELDS, DepthSpec, depth_rows
from nerve.io import atomic_write_text

ROWS, SUMMARY = "depth.csv", "depth_summary.csv"
SUMMARY_FIELDS = ("site", "depth", "method", "runs", "excess_mean", "ci_low", "ci_high", "t", "p", "p_holm",
                  "own_drop", "random_drop", "selectivity", "share_p05", "p_floor")


def _csv(rows: list[dict], fields: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (repr(float(v)) if isinstance(v, (float, np.floating)) else v) for k, v in r.items()})
    return buf.getvalue()


def read_rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k in r:
            if k not in ("site", "method", "tag"):
                r[k] = float(r[k])
    return rows


def analyse_run(run_dir: str | os.PathLike, out: Path, spec: DepthSpec, progress=None) -> list[dict]:
    """The rows of one run in ``out`` (``depth.csv``), computed or, when ``out`` holds them under the same
    fingerprint, read back."""
    from nerve.hf.run import CONFIG, MODEL, VOCAB, is_hf_run, load_hf_run
    from nerve.run import read_split

    if not is_hf_run(run_dir):
        raise NerveError(f"{run_dir}: not a fine-tuned Hugging Face run (nerve depth reads those; nerve analyze reads "
                         "nerve's own taggers)")
    run = load_hf_run(run_dir)
    rank, score = read_split(run, "dev"), read_split(run, "test")
    identity = {"kind": "depth", "run": {n: run.hashes[n] for n in (CONFIG, VOCAB, MODEL)},
                "splits": {"dev": sha256_file(rank[0]), "test": sha256_file(score[0])}, "spec": asdict(spec)}
    with writer_lock(out, "nerve depth"):
        done = read_marker(out, COMPLETE)
        if done is not None and done.get("fingerprint") == fingerprint(identity) and not changed_files(out, done):
            return read_rows(out / ROWS)
        (out / COMPLETE).unlink(missing_ok=True)
        rows = depth_rows(run, spec, rank, score, progress)
        atomic_write_text(out / ROWS, _csv(rows, DEPTH_FIELDS))
        mark_complete(out, identity, [ROWS])
    return rows


def _holm(p: np.ndarray) -> np.ndarray:
    from statsmodels.stats.multitest import multipletests

    ok = ~np.isnan(p)
    out = np.full(p.shape, np.nan)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out


def summarise(runs: dict[str, list[dict]]) -> list[dict]:
    """``SUMMARY_FIELDS`` rows over runs (see the module)."""
    from scipy import stats

    keys = sorted({(r["depth"], r["site"], r["method"]) for rows in runs.values() for r in rows})
    out = []
    for depth, site, method in keys:
        per_run, own, rnd, sel, hits, cases, floor = [], [], [], [], 0, 0, 0.0
        for rows in runs.values():
            mine = [r for r in rows if r["site"] == site and r["method"] == method]
            if not mine:
                continue
            per_run.append(np.mean([r["own_drop"] - r["random_drop"] for r in mine]))
            own.append(np.mean([r["own_drop"] for r in mine]))
            rnd.append(np.mean([r["random_drop"] for r in mine]))
            sel.append(np.nanmean([r["selectivity"] for r in mine]))
            hits += sum(r["p_random"] <= 0.05 for r in mine)
            cases += len(mine)
            floor = max(floor, 1.0 / (mine[0]["draws"] + 1))
        x = np.array(per_run)
        n = len(x)
        mean = float(x.mean())
        if n > 1 and x.std(ddof=1) > 0:
            se = x.std(ddof=1) / math.sqrt(n)
            half = stats.t.ppf(0.975, n - 1) * se
            t = mean / se
            p = float(2 * stats.t.sf(abs(t), n - 1))
        else:
            half, t, p = float("nan"), float("nan"), float("nan")
        out.append({"site": site, "depth": int(depth), "method": method, "runs": n, "excess_mean": mean,
                    "ci_low": mean - half, "ci_high": mean + half, "t": t, "p": p, "own_drop": float(np.mean(own)),
                    "random_drop": float(np.mean(rnd)), "selectivity": float(np.mean(sel)),
                    "share_p05": hits / cases if cases else float("nan"), "p_floor": floor})
    adjusted = _holm(np.array([r["p"] for r in out], dtype=float))
    for r, q in zip(out, adjusted):
        r["p_holm"] = float(q)
    return out


def depth_study(run_dirs: Sequence[str], out_dir: str | os.PathLike, spec: DepthSpec, log=None) -> list[dict]:
    """``nerve depth``: each run into ``OUT/runs/NAME`` (resumed when its fingerprint matches), then
    ``depth_summary.csv`` over the runs in ``OUT``; returns the summary rows."""
    out = Path(out_dir)
    names = [Path(r).resolve().name for r in run_dirs]
    if len(set(names)) != len(names):
        raise NerveError(f"nerve depth: two runs share a folder name ({', '.join(names)}); their results would "
                         "collide in OUT/runs")
    models = [sha256_file(Path(r) / "model.pt") if (Path(r) / "model.pt").is_file() else r for r in run_dirs]
    if len(set(models)) != len(models):
        raise NerveError("nerve depth: two of the run folders hold the same model (one model is one run; it would "
                         "be counted twice)")
    runs = {}
    for run_dir, name in zip(run_dirs, names):
        folder = out / "runs" / name
        folder.mkdir(parents=True, exist_ok=True)
        say = (lambda site, name=name: log(f"{name}: {site}")) if log else None
        runs[name] = analyse_run(run_dir, folder, spec, say)
    summary = summarise(runs)
    atomic_write_text(out / SUMMARY, _csv(summary, SUMMARY_FIELDS))
    return summary
