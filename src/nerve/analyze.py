"""The analysis stage of a run or of several runs: tables from ``nerve.analysis``, figures from
``nerve.report``, in a locked folder whose completion marker is written last."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

from nerve.analysis.ablation import MAX_RANDOM_DRAWS
from nerve.analysis.capture import analysis_identity, capture_activations
from nerve.analysis.checks import check_activations
from nerve.analysis.compare import compare_runs
from nerve.analysis.pipeline import ACTIVATIONS, SUMMARY, analysis_options, analyze, save_activations
from nerve.errors import NerveError
from nerve.folder import clear_complete, mark_complete, sha256_file, writer_lock
from nerve.io import atomic_write_text
from nerve.method_stage import write_methods
from nerve.report import plots


def analyze_arrays(arrays: dict, out_dir: str | os.PathLike, *, bucket: str = "predicted", max_k: int | None = None,
                   random_draws: int = 20, seed: int = 0, cluster: bool = False, progress: bool = True,
                   identity: dict | None = None, about: dict | None = None, extra=None) -> dict:
    """The whole analysis of an activations archive (Xin, Lin & Yu 2019) under the folder's writer lock.

    Writes the arrays as ``activations.npz``, the tables (``nerve.analysis.pipeline.analyze``), the figures
    (``nerve.report.plots.draw_analysis``), the summary (plus ``about``) as ``analysis.json`` and, last,
    ``complete.json``: the fingerprint of ``identity`` (default: the options and the archive's SHA-256) and the
    SHA-256 of every file, which readers check before they use any of them. ``extra(out)``, when given, writes
    more tables into the folder before the marker and returns their file names.

    Returns:
        the summary dict (``analyze``), its ``files`` listing every file written.
    """
    out = Path(out_dir)
    check_activations(arrays)
    with writer_lock(out, "nerve analyze"):
        clear_complete(out)
        save_activations(out / ACTIVATIONS, arrays)
        result = analyze(arrays, out, bucket=bucket, max_k=max_k, random_draws=random_draws, seed=seed,
                         progress=progress)
        figures = plots.draw_analysis(result, out, cluster=cluster)
        more = extra(out) if extra is not None else []
        summary = {**result.summary, **(about or {})}
        atomic_write_text(out / SUMMARY, json.dumps({k: v for k, v in summary.items() if k != "files"}, indent=2,
                                                    default=str) + "\n")
        summary["files"] = [ACTIVATIONS, *summary["files"], *(p.name for p in figures), *more, SUMMARY]
        if identity is None:
            identity = {"kind": "analysis", "arrays": sha256_file(out / ACTIVATIONS),
                        "options": analysis_options(bucket, max_k, random_draws, seed, cluster)}
        mark_complete(out, identity, summary["files"])
    return summary


def analyze_run(run_dir: str, out_dir: str, *, split: str = "dev", bucket: str = "predicted",
                max_k: int | None = None, random_draws: int = 20, seed: int = 0, cluster: bool = False,
                device: str = "cpu", progress: bool = True, methods: Sequence[str] = (),
                rank_split: str | None = None, ablate: Sequence[str] = ("zero",)) -> dict:
    """``nerve analyze``: capture the activations of ``split`` and analyse them into ``out_dir``.

    With ``methods``, also ``methods.csv``: each ranking method computed on ``rank_split`` (default: ``split``)
    and judged by top-k ablation sweeps on ``split``, for each value in ``ablate`` (``heldout.method_sweeps``).
    """
    from nerve.run import load_run, read_split

    t0 = time.perf_counter()
    run = load_run(run_dir, device)
    n = run.model.n_units
    if max_k is not None and not 0 <= max_k <= n:
        raise NerveError(f"--max-k {max_k}: the model has {n} units; expected 0..{n}")
    if not 0 <= random_draws <= MAX_RANDOM_DRAWS:
        raise NerveError(f"--random-draws {random_draws}: expected a number in 0..{MAX_RANDOM_DRAWS:,}")
    if not 0 <= seed < 2**63:
        raise NerveError(f"--seed {seed}: expected a number >= 0")
    path, sents = read_split(run, split)
    options = analysis_options(bucket, max_k, random_draws, seed, cluster)
    about = {"run": str(run_dir), "split": path, "split_name": split}
    rank_split = rank_split or split
    if methods:
        check_methods(methods, ablate)
        rank_path, rank_sents = read_split(run, rank_split, "--rank-split") if rank_split != split else (path, sents)
        options |= method_options(methods, rank_split, rank_path, ablate)
        about |= {"methods": list(methods), "rank_split": rank_path, "rank_split_name": rank_split,
                  "ablate": list(ablate)}
    identity = analysis_identity(run.hashes, path, split, options)
    with writer_lock(out_dir, "nerve analyze"):
        arrays, _ = capture_activations(run, sents, path)
        extra = None
        if methods:
            rank_arrays = arrays if rank_split == split else capture_activations(run, rank_sents, rank_path)[0]

            def extra(out: Path) -> list[str]:
                return write_methods(rank_arrays, arrays, methods, ablate, bucket, max_k, random_draws, seed,
                                      rank_split, split, out)
        summary = analyze_arrays(arrays, out_dir, bucket=bucket, max_k=max_k, random_draws=random_draws, seed=seed,
                                 cluster=cluster, progress=progress, identity=identity, about=about, extra=extra)
    summary["seconds"] = time.perf_counter() - t0
    return summary


def method_options(methods: Sequence[str], rank_split: str, rank_path: str, ablate: Sequence[str]) -> dict:
    """The options of a methods analysis that its fingerprint records, beside ``analysis_options``."""
    return {"methods": list(methods), "rank_split": rank_split, "rank_file": str(rank_path),
            "rank_sha256": sha256_file(rank_path), "ablate": list(ablate)}


def check_methods(methods: Sequence[str], ablate: Sequence[str]) -> None:
    from nerve.analysis.heldout import ABLATIONS, RANDOM
    from nerve.analysis.methods import METHODS

    known = list(dict.fromkeys([*METHODS, RANDOM]))
    bad = [m for m in methods if m not in known]
    if bad:
        raise NerveError(f"--methods {','.join(methods)}: unknown {', '.join(bad)}; expected some of "
                         f"{','.join(known)}")
    bad = [a for a in ablate if a not in ABLATIONS]
    if bad or not ablate:
        raise NerveError(f"--ablate {','.join(ablate)}: expected zero, mean or zero,mean")


def compare(dirs: Sequence, out_dir: str | os.PathLike, *, k: int = 10, draws: int = 100, seed: int = 0,
            run_figures: bool = True) -> dict:
    """``compare_runs`` (of analysed runs or their folders) with its tag x tag heatmaps drawn by
    ``nerve.report.plots.plot_tag_matrix``: the means', and each run's with ``run_figures``."""
    return compare_runs(dirs, out_dir, k=k, draws=draws, seed=seed, draw=plots.plot_tag_matrix,
                        run_figures=run_figures)
