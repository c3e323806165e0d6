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
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from nerve.errors import NerveError
from nerve.folder import (
    COMPLETE,
    changed_files,
    fingerprint,
    mark_complete,
    read_marker,
    remove_files,
    sha256_file,
    writer_lock,
)
from nerve.hf.depth import DEPTH_FIELDS, DepthResult, DepthSpec, depth_rows
from nerve.io import atomic_save, atomic_write_text

ROWS, EVIDENCE, SUMMARY = "depth.csv", "depth_evidence.npz", "depth_summary.csv"
FINDINGS_CSV, FINDINGS_JSON = "depth_findings.csv", "depth_findings.json"
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


def read_result(out: Path) -> DepthResult:
    """A run's ``DepthResult`` from its folder (``depth.csv``, ``depth_evidence.npz``)."""
    with np.load(out / EVIDENCE, allow_pickle=False) as z:
        evidence = {k: z[k] for k in z.files}
    return DepthResult(read_rows(out / ROWS), evidence)


def analyse_run(run_dir: str | os.PathLike, out: Path, spec: DepthSpec, progress=None) -> DepthResult:
    """One run's ``DepthResult`` in ``out`` (``depth.csv``, ``depth_evidence.npz``), computed or, when ``out``
    holds it under the same fingerprint, read back."""
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
        if done is not None and done.get("fingerprint") == fingerprint(identity) and not changed_files(out, done) \
                and set(done.get("files", {})) == {ROWS, EVIDENCE}:
            return read_result(out)
        (out / COMPLETE).unlink(missing_ok=True)
        result = depth_rows(run, spec, rank, score, progress)
        atomic_write_text(out / ROWS, _csv(result.rows, DEPTH_FIELDS))
        atomic_save(out / EVIDENCE, lambda buf: np.savez_compressed(buf, **result.evidence))
        mark_complete(out, identity, [ROWS, EVIDENCE])
    return result


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


@dataclass(frozen=True)
class DepthStudy:
    """What ``depth_study`` wrote: the summary rows (``SUMMARY_FIELDS``), the findings' rows (``depth_findings``;
    empty without the ``sensitivity`` method) and each run's ``DepthResult`` by folder name."""

    summary: list[dict]
    findings: list[dict]
    runs: dict


def depth_study(run_dirs: Sequence[str], out_dir: str | os.PathLike, spec: DepthSpec, log=None) -> DepthStudy:
    """``nerve depth``: each run into ``OUT/runs/NAME`` (resumed when its fingerprint matches), then
    ``depth_summary.csv`` over the runs in ``OUT`` and, with the ``sensitivity`` method, the findings at every site
    (``depth_findings.csv``, ``depth_findings.json``; an earlier call's are removed otherwise)."""
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
    summary = summarise({name: r.rows for name, r in runs.items()})
    atomic_write_text(out / SUMMARY, _csv(summary, SUMMARY_FIELDS))
    findings = []
    if "sensitivity" in spec.methods:
        findings = write_findings(runs, out, spec)
    else:
        remove_files(out, [FINDINGS_CSV, FINDINGS_JSON])
    return DepthStudy(summary, findings, runs)


def write_findings(runs: dict[str, DepthResult], out: Path, spec: DepthSpec) -> list[dict]:
    """Xin et al.'s findings at every site over the runs (``depth_findings``): ``depth_findings.csv`` (one row per
    site and finding) and ``depth_findings.json`` (every case, run and test); returns the csv's rows."""
    import json

    from nerve.analysis.verdicts import jsonable
    from nerve.hf.depth_findings import FINDINGS_FIELDS, findings_by_site, findings_rows

    tags = {tuple(r.evidence["tags"].tolist()) for r in runs.values()}
    if len(tags) != 1:
        raise NerveError("nerve depth: the runs tag different tag sets; their findings cannot be compared")
    depths = {r["site"]: int(r["depth"]) for res in runs.values() for r in res.rows}
    sites = sorted(depths, key=depths.get)
    by_site = findings_by_site(runs, list(tags.pop()), sites, spec)
    rows = findings_rows(by_site, depths)
    atomic_write_text(out / FINDINGS_CSV, _csv(rows, FINDINGS_FIELDS))
    atomic_write_text(out / FINDINGS_JSON, json.dumps(jsonable({"runs": list(runs), "sites": by_site}), indent=1,
                                                      allow_nan=False) + "\n")
    return rows
