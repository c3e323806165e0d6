"""The analysis stage of a run or of several runs: tables from ``nerve.analysis``, figures from
``nerve.report``, in a locked folder whose completion marker is written last."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

from nerve.analysis.bases import BASIS_FILE, project_arrays, save_basis
from nerve.analysis.basis_summary import summarise_folder
from nerve.analysis.capture import analysis_identity, capture_activations
from nerve.analysis.checks import check_activations
from nerve.analysis.compare import CompareSpec, analysis_is_current, compare_runs
from nerve.analysis.core import BASES, AnalysisSpec
from nerve.analysis.heldout import rank_input
from nerve.analysis.leace import write_leace
from nerve.analysis.pipeline import ACTIVATIONS, SUMMARY, analyze, save_activations
from nerve.errors import NerveError
from nerve.folder import (
    changed_files,
    clear_complete,
    completed,
    fingerprint,
    mark_complete,
    read_marker,
    remove_files,
    sha256_file,
    writer_lock,
)
from nerve.io import atomic_write_json, atomic_write_text
from nerve.method_stage import write_methods
from nerve.report.formats import FORMATS, check_formats, figure_formats


def analyze_arrays(arrays: dict, out_dir: str | os.PathLike, spec: AnalysisSpec, *, identity: dict | None = None,
                   about: dict | None = None, extra=None, progress: bool = True) -> dict:
    """The whole analysis of an activations archive (Xin, Lin & Yu 2019) under the folder's writer lock.

    Writes the arrays as ``activations.npz``, the tables (``nerve.analysis.pipeline.analyze``), the figures
    (``nerve.report.plots.draw_analysis``) in ``spec.figures``' formats (none: tables only), the summary (plus
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
        previous = list((read_marker(out, "complete.json") or {}).get("files", {}))  # an earlier analysis' files
        clear_complete(out)
        save_activations(out / ACTIVATIONS, arrays)
        result = analyze(arrays, out, spec, progress)
        with figure_formats(spec.figures):
            drawn = _draw_analysis(result, out, spec.cluster, str((about or {}).get("split_name", ""))) \
                if spec.figures else []
            more = extra(out) if extra is not None else []
        summary = {**result.summary, **(about or {})}
        atomic_write_text(out / SUMMARY, json.dumps({k: v for k, v in summary.items() if k != "files"}, indent=2,
                                                    default=str) + "\n")
        summary["files"] = [ACTIVATIONS, *summary["files"], *(p.name for p in drawn), *more, SUMMARY]
        if identity is None:
            identity = {"kind": "analysis", "arrays": sha256_file(out / ACTIVATIONS), "options": spec.options()}
        remove_files(out, [f for f in previous if f not in summary["files"]])  # e.g. a basis or sweep dropped since
        mark_complete(out, identity, summary["files"])
    return summary


def analyze_run(run_dir: str, out_dir: str, spec: AnalysisSpec = AnalysisSpec(), *, device: str = "cpu",
                progress: bool = True, reuse: bool = False) -> dict:
    """``nerve analyze``: capture the activations of ``spec.split`` and analyse them into ``out_dir``, with figures
    in ``spec.figures``' formats (png, svg; none: tables only, ``plot_analysis`` draws them later). With ``reuse``,
    a finished analysis in ``out_dir`` of the same model, splits and options (its fingerprint) is read back instead.

    With ``spec.methods``, also ``methods.csv``: each ranking method computed on ``spec.ranking_split`` and judged
    by top-k intervention sweeps on ``spec.split``, for each of ``spec.interventions``
    (``heldout.method_sweeps``).
    """
    from nerve.run import read_split
    from nerve.runs import load_any_run

    t0 = time.perf_counter()
    run = load_any_run(run_dir, device)
    if hasattr(run, "capture"):  # a Hugging Face tagger: analysed at its tag layer's input (``nerve.hf``)
        if spec.site not in ("encoder_out", "classifier_in"):
            raise NerveError(f"site {spec.site}: a Hugging Face run is analysed at classifier_in, the one site whose "
                             "downstream is linear (its other sites: Run.activations)")
        spec = spec.replace(site="classifier_in")
    spec.bound_max_k(run.model.n_units)
    split, rank_split = spec.split, spec.ranking_split
    path, sents = read_split(run, split)
    options = spec.options()
    about = {"run": str(run_dir), "split": path, "split_name": split}
    if spec.methods:
        rank_path, rank_sents = read_split(run, rank_split, "--rank-split") if rank_split != split else (path, sents)
        options |= spec.method_options(rank_path, sha256_file(rank_path))
        about |= {"methods": list(spec.methods), "rank_split": rank_path, "rank_split_name": rank_split,
                  "ablate": list(spec.interventions), "sufficiency": bool(spec.sufficiency)}
    identity = analysis_identity(run.hashes, path, split, options)
    with writer_lock(out_dir, "nerve analyze"):
        done = completed(out_dir, fingerprint(identity))
        if reuse and done is not None and not changed_files(out_dir, done):  # this model, splits and options
            return json.loads((Path(out_dir) / SUMMARY).read_text(encoding="utf-8")) | {"reused": True}
        arrays, _ = capture_activations(run, sents, path)
        rank_arrays = arrays
        if spec.methods and rank_split != split:
            rank_arrays = capture_activations(run, rank_sents, rank_path)[0]
        site, rank_site = arrays, rank_arrays  # the neurons' coordinates (LEACE edits the site itself)
        basis = BASES.get(spec.basis).fit(rank_arrays["h"], spec.seed)  # None: the neurons
        if basis is not None:
            same = rank_arrays is arrays
            arrays = project_arrays(arrays, basis)
            rank_arrays = arrays if same else project_arrays(rank_arrays, basis)
            about |= {"basis": {"name": basis.name, "units": basis.n_units, "file": BASIS_FILE, **basis.about}}

        def extra(out: Path) -> list[str]:
            files = []
            if basis is not None:
                save_basis(out / BASIS_FILE, basis)
                files.append(BASIS_FILE)
            if spec.leace:
                files += write_leace(out, rank_input(check_activations(rank_site), spec.bucket),
                                     check_activations(site))
            if not spec.methods:
                return files
            files += write_methods(rank_arrays, arrays, spec, out, progress)
            rank = check_activations(rank_arrays)
            return files + [summarise_folder(out, rank, check_activations(site), rank_input(rank, spec.bucket).labels,
                                             basis)]
        summary = analyze_arrays(arrays, out_dir, spec, identity=identity, about=about, extra=extra,
                                 progress=progress)
    summary["seconds"] = time.perf_counter() - t0
    return summary


def _draw_analysis(result, out: Path, cluster: bool, split: str) -> list[Path]:
    """``nerve.report.plots.draw_analysis`` (matplotlib is imported only where a figure is drawn)."""
    from nerve.report.plots import draw_analysis

    return draw_analysis(result, out, cluster=cluster, split=split)


def plot_analysis(analysis_dir: str | os.PathLike, out_dir: str | os.PathLike,
                  figures: Sequence[str] = FORMATS) -> list[Path]:
    """``nerve plot analysis``: every figure of an analysed folder (as ``analyze_run`` draws them) from its saved
    tables — sensitivity.npy, ranking.tsv, ablation.csv, per_tag_accuracy.json and the methods' tables —
    into ``out_dir``, in the ``figures`` formats (some of png, svg, pdf; default all three), recomputing nothing.

    Raises:
        NerveError: an incomplete, changed or stale analysis, or one without those tables.
    """
    import numpy as np

    from nerve.analysis.compare import load_run_analysis
    from nerve.analysis.pipeline import Analysis
    from nerve.folder import read_marker
    from nerve.io import make_dirs

    names = figures.split(",") if isinstance(figures, str) else figures
    try:
        figures = check_formats([f.strip() for f in names if f.strip()])  # png, svg and pdf
    except ValueError as err:
        raise NerveError(str(err)) from None
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
    with figure_formats(figures):
        result = Analysis(run.tags, run.neurons, s, run.rankings, run.ablation, run.accuracy, about)
        paths = _draw_analysis(result, out, bool(options.get("cluster", False)), str(about.get("split_name", "")))
        if run.methods is not None and "methods_summary.csv" in run.files:
            paths += [out / name for name in _saved_method_figures(run, about, out)]
    return paths


def _saved_method_figures(run, about: dict, out: Path) -> list[str]:
    from nerve.analysis.agreement import read_agreement_csv
    from nerve.analysis.heldout import read_method_scores
    from nerve.analysis.judging import read_summary_csv
    from nerve.method_stage import METHOD_SCORES, MethodTables, draw_methods

    d = Path(run.analysis_dir)
    names = read_method_scores(d / METHOD_SCORES).methods if METHOD_SCORES in run.files else []
    agreement = read_agreement_csv(d / "methods_agreement.csv") if "methods_agreement.csv" in run.files else []
    from nerve.analysis.heldout import read_methods_csv

    keep = read_methods_csv(d / "sufficiency.csv") if "sufficiency.csv" in run.files else None
    tables = MethodTables(run.methods, read_summary_csv(d / "methods_summary.csv"), names, agreement, keep)
    decoding = f"{about.get('decoder', '?')} decoding, {int(about.get('random_draws', 0))} random draws"
    return draw_methods(tables, len(run.neurons), decoding, out)


def compare(dirs: Sequence, out_dir: str | os.PathLike, spec: CompareSpec = CompareSpec()) -> dict:
    """``compare_runs`` (of analysed runs or their folders) with its tag x tag heatmaps drawn by
    ``nerve.report.plots.plot_tag_matrix``: the means', and each run's with ``spec.run_figures``."""
    from nerve.report.matrix_figures import plot_tag_matrix

    return compare_runs(dirs, out_dir, spec, draw=plot_tag_matrix)


COMPARISON = "comparison.json"  # what ``compare_analyses`` wrote into its folder (so that a rewrite removes the rest)


def analysis_dir(path: Path) -> Path:
    """An analysis folder given itself or the run folder that holds it in ``analysis/``."""
    return path / "analysis" if (path / "model.pt").is_file() or not (path / "sensitivity.csv").is_file() else path


def current_analyses(paths: Sequence[str | os.PathLike], spec: AnalysisSpec, device: str, log) -> list[Path]:
    """The analysis folder of each of ``paths`` (runs or analysis folders) for ``nerve compare``: a run without an
    analysis, or with one out of date, analysed first with ``spec`` (``log`` says which and why)."""
    dirs = []
    for p in paths:
        run = Path(p)
        analysis = analysis_dir(run)
        if (run / "model.pt").is_file() and not analysis_is_current(analysis):
            why = "it has none" if not (analysis / "complete.json").exists() else "its analysis is out of date"
            log(f"analysing {run} ({why}) ...")
            analyze_run(str(run), str(analysis), spec, device=device, progress=False)
        dirs.append(analysis)
    return dirs


def compare_analyses(dirs: Sequence, out_dir: str | os.PathLike, spec: CompareSpec = CompareSpec()):
    """``nerve compare`` of analysis folders: each read once, refused when two hold one model, then ``compare``,
    the ranking methods across runs (``method_stage.compare_methods``) and Xin et al.'s findings across runs
    (``findings.json``), under the folder's writer lock; with ``spec.figures`` False, no figure. Returns (findings,
    the methods' comparison or None)."""
    from nerve.analysis.compare import check_distinct_models, load_run_analysis
    from nerve.analysis.verdicts import evaluate_findings, write_findings
    from nerve.method_stage import compare_methods

    try:
        runs = [load_run_analysis(d) for d in dirs]  # each analysis read once
    except ValueError as err:
        raise NerveError(str(err)) from None
    check_distinct_models(runs)  # before the folder is made: a refused comparison leaves nothing
    out = Path(out_dir)
    with writer_lock(out, "nerve compare"), figure_formats(()) if not spec.figures else nullcontext():
        earlier = list((read_marker(out, COMPARISON) or {}).get("files", {}))
        try:
            summary = compare(runs, out, spec)
            methods = compare_methods(runs, out)
            results = evaluate_findings(runs)
        except ValueError as err:
            raise NerveError(str(err)) from None
        write_findings(out / "findings.json", results)
        files = list(dict.fromkeys([*summary["files"], *(methods["files"] if methods else ()), "findings.json"]))
        remove_files(out, [f for f in earlier if f not in files])  # an earlier comparison's, in this folder
        components = {"kind": "comparison", "runs": [r.analysis_dir for r in runs]}
        atomic_write_json(out / COMPARISON, {"fingerprint": fingerprint(components), "components": components,
                                             "files": {f: sha256_file(out / f) for f in files}})
    return results, methods
