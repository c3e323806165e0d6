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
from nerve.analysis.pipeline import ACTIVATIONS, FIGURES, SUMMARY, analysis_options, analyze, save_activations
from nerve.errors import NerveError
from nerve.folder import clear_complete, mark_complete, sha256_file, writer_lock
from nerve.io import atomic_write_text
from nerve.method_stage import write_methods
from nerve.report import plots


def analyze_arrays(arrays: dict, out_dir: str | os.PathLike, *, bucket: str = "predicted", max_k: int | None = None,
                   random_draws: int = 20, seed: int = 0, cluster: bool = False, progress: bool = True,
                   identity: dict | None = None, about: dict | None = None, extra=None,
                   figures: Sequence[str] = FIGURES) -> dict:
    """The whole analysis of an activations archive (Xin, Lin & Yu 2019) under the folder's writer lock.

    Writes the arrays as ``activations.npz``, the tables (``nerve.analysis.pipeline.analyze``), the figures
    (``nerve.report.plots.draw_analysis``) in the ``figures`` formats (none: tables only), the summary (plus
    ``about``) as ``analysis.json`` and, last, ``complete.json``: the fingerprint of ``identity`` (default: the
    options and the archive's SHA-256) and the SHA-256 of every file, which readers check before they use any of
    them. ``extra(out)``, when given, writes more tables (and their figures, in the same formats) into the folder
    before the marker and returns their file names.

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
        with plots.figure_formats(figures):
            drawn = plots.draw_analysis(result, out, cluster=cluster,
                                        split=str((about or {}).get("split_name", ""))) if figures else []
            more = extra(out) if extra is not None else []
        summary = {**result.summary, **(about or {})}
        atomic_write_text(out / SUMMARY, json.dumps({k: v for k, v in summary.items() if k != "files"}, indent=2,
                                                    default=str) + "\n")
        summary["files"] = [ACTIVATIONS, *summary["files"], *(p.name for p in drawn), *more, SUMMARY]
        if identity is None:
            identity = {"kind": "analysis", "arrays": sha256_file(out / ACTIVATIONS),
                        "options": analysis_options(bucket, max_k, random_draws, seed, cluster, figures)}
        mark_complete(out, identity, summary["files"])
    return summary


def analyze_run(run_dir: str, out_dir: str, *, split: str = "dev", bucket: str = "predicted",
                max_k: int | None = None, random_draws: int = 20, seed: int = 0, cluster: bool = False,
                device: str = "cpu", progress: bool = True, methods: Sequence[str] = (),
                rank_split: str | None = None, ablate: Sequence[str] = ("zero",),
                figures: Sequence[str] = FIGURES) -> dict:
    """``nerve analyze``: capture the activations of ``split`` and analyse them into ``out_dir``, with figures
    in the ``figures`` formats (png, svg; none: tables only, ``plot_analysis`` draws them later).

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
    check_formats(figures)
    options = analysis_options(bucket, max_k, random_draws, seed, cluster, figures)
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
                                      rank_split, split, out, figures=bool(figures))
        summary = analyze_arrays(arrays, out_dir, bucket=bucket, max_k=max_k, random_draws=random_draws, seed=seed,
                                 cluster=cluster, progress=progress, identity=identity, about=about, extra=extra,
                                 figures=figures)
    summary["seconds"] = time.perf_counter() - t0
    return summary


def plot_analysis(analysis_dir: str | os.PathLike, out_dir: str | os.PathLike,
                  figures: Sequence[str] = FIGURES) -> list[Path]:
    """``nerve plot analysis``: every figure of an analysed folder (as ``analyze_run`` draws them) from its saved
    tables — sensitivity.npy, ranking.tsv, ablation.csv, per_tag_accuracy.json and the methods' tables —
    into ``out_dir``, in the ``figures`` formats, recomputing nothing.

    Raises:
        NerveError: an incomplete, changed or stale analysis, or one without those tables.
    """
    import numpy as np

    from nerve.analysis.compare import load_run_analysis
    from nerve.analysis.pipeline import Analysis
    from nerve.folder import read_marker
    from nerve.io import make_dirs

    check_formats(figures)
    run = load_run_analysis(analysis_dir)
    d = Path(run.analysis_dir)
    missing = [f for f in ("sensitivity.npy", "ranking.tsv", "ablation.csv", "per_tag_accuracy.json")
               if f not in run.files]
    if missing:
        raise NerveError(f"{d}: the analysis recorded no {', '.join(missing)}; re-run `nerve analyze`")
    s = np.load(d / "sensitivity.npy", allow_pickle=False)
    about = json.loads((d / SUMMARY).read_text(encoding="utf-8"))
    options = (read_marker(d, "complete.json") or {}).get("components", {}).get("options", {})
    out = make_dirs(out_dir)
    with plots.figure_formats(figures):
        result = Analysis(run.tags, run.neurons, s, run.rankings, run.ablation, run.accuracy, about)
        paths = plots.draw_analysis(result, out, cluster=bool(options.get("cluster", False)),
                                    split=str(about.get("split_name", "")))
        if run.methods is not None and "methods_summary.csv" in run.files:
            paths += [out / name for name in _saved_method_figures(run, about, out)]
    return paths


def _saved_method_figures(run, about: dict, out: Path) -> list[str]:
    from nerve.analysis.agreement import read_agreement_csv
    from nerve.analysis.heldout import read_method_scores
    from nerve.analysis.judging import read_summary_csv
    from nerve.method_stage import METHOD_SCORES, draw_methods

    d = Path(run.analysis_dir)
    names = read_method_scores(d / METHOD_SCORES)["methods"] if METHOD_SCORES in run.files else []
    agreement = read_agreement_csv(d / "methods_agreement.csv") if "methods_agreement.csv" in run.files else []
    return draw_methods(run.methods, read_summary_csv(d / "methods_summary.csv"), names, agreement,
                        len(run.neurons), str(about.get("decoder", "?")), int(about.get("random_draws", 0)), out)


def method_options(methods: Sequence[str], rank_split: str, rank_path: str, ablate: Sequence[str]) -> dict:
    """The options of a methods analysis that its fingerprint records, beside ``analysis_options``."""
    return {"methods": list(methods), "rank_split": rank_split, "rank_file": str(rank_path),
            "rank_sha256": sha256_file(rank_path), "ablate": list(ablate)}


def check_formats(figures: Sequence[str]) -> None:
    bad = [f for f in figures if f not in FIGURES]
    if bad:
        raise NerveError(f"figure formats {','.join(figures)}: expected some of {','.join(FIGURES)}")


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
