"""`nerve study`: train and analyse every (config, seed) run, locally or on Ray, then compare and report
(``plan``: the jobs; ``engine``: running them; here: the study, its summary and report)."""

from __future__ import annotations

import json
from pathlib import Path

from nerve.config import load_config
from nerve.errors import NerveError
from nerve.folder import stored_paths, writer_lock
from nerve.grid import contrasts_csv, findings_csv, grid_csv
from nerve.io import atomic_write_json, atomic_write_text
from nerve.study.engine import Engine, analysis_done, execute, job_complete, run_done, run_job
from nerve.study.plan import (
    ANALYSIS_SPLIT,
    RANK_SPLIT,
    STUDY_ABLATE,
    STUDY_FIGURES,
    STUDY_METHODS,
    Job,
    StudySpec,
    folder_name,
    parse_cell_sets,
    parse_grid,
    plan,
    study_analysis,
    variant_name,
)

__all__ = ["ANALYSIS_SPLIT", "RANK_SPLIT", "STUDY_ABLATE", "STUDY_FIGURES", "STUDY_METHODS", "Engine", "Job",
           "STUDY_SCHEMA", "StudySpec", "analysis_done", "execute", "job_complete", "parse_cell_sets", "parse_grid",
           "plan", "preload", "run_done", "run_job", "run_row", "study", "study_analysis", "summarise", "variant_name"]


STUDY_SCHEMA = 3  # study.json's layout (docs/OUTPUTS.md); 2: the schema key, analyses named by AnalysisSpec;
# 3: paths inside the study folder stored relative to it (``paths.stored``)


def summarise(jobs: list[Job], out: Path, loaded: dict | None = None, failed: list[dict] | None = None,
              setup: dict | None = None, changes: list[dict] | None = None) -> dict:
    """Compare the runs of each variant, evaluate the findings, and collect the run table (written to study.json,
    with the ``failed`` runs' records, the study's ``setup``: config, corpus, seeds, the settings of every run,
    grid, cell settings, and the ``changes`` this invocation made to run folders: ``engine.Change``);
    ``loaded``: analysed runs already read, by run folder (``preload``)."""
    from nerve.analysis.bases_compare import write_bases_comparison
    from nerve.analysis.compare import CompareSpec, load_run_analysis
    from nerve.analysis.verdicts import evaluate_findings, write_findings
    from nerve.analyze import compare
    from nerve.io import make_dirs
    from nerve.method_stage import compare_methods
    from nerve.report.formats import figure_formats as formats

    variants: dict[str, list[Job]] = {}
    for j in jobs:
        variants.setdefault(j.variant, []).append(j)
    result = {"schema": STUDY_SCHEMA, "setup": dict(setup or {}), "variants": {}}
    for name, vjobs in variants.items():
        vdir = out / "compare" / folder_name(name)
        runs = [(loaded or {}).get(j.run_dir) or load_run_analysis(Path(j.run_dir) / "analysis")
                for j in vjobs]  # each analysis read once
        with formats(vjobs[0].analysis.figures):  # the means' figures (none without figures); each run's as CSV
            comparison = compare(runs, vdir, CompareSpec(run_figures=False))
            methods = compare_methods(runs, vdir)
        findings = evaluate_findings(runs)
        write_findings(vdir / "findings.json", findings)
        if vjobs[0].bases:  # neurons or directions: each basis' runs, compared with the neurons run by run
            folders = {"neurons": [Path(j.run_dir) / "analysis" for j in vjobs]}
            folders |= {b: [Path(j.run_dir) / "analysis" / "bases" / b for j in vjobs] for b in vjobs[0].bases}
            comparison["bases_files"] = write_bases_comparison(vdir, folders)
            for b in vjobs[0].bases:  # each basis' methods over the runs: stability of matched units, paired methods
                with formats(vjobs[0].analysis.figures):
                    compare_methods(folders[b], make_dirs(vdir / "bases" / b))
        result["variants"][name] = {"runs": [run_row(j) for j in vjobs], "compare_dir": str(vdir),
                                    "recipe": vjobs[0].recipe,
                                    "comparison": comparison, "methods": methods, "findings": findings,
                                    "analysis_split": ANALYSIS_SPLIT}
    result["failed"] = list(failed or [])
    result["changes"] = list(changes or [])
    atomic_write_json(out / "study.json", stored_paths(result, out))  # paths relative to the study folder
    return result


def preload(specs: list[dict], loaded: dict) -> None:
    """Read the analyses of finished jobs not read yet into ``loaded`` (by run folder), and import what the summary
    needs, on a core no job uses; one that cannot be read is left to ``summarise``, which says why."""
    import nerve.analysis.verdicts
    import nerve.report.html  # noqa: F401
    from nerve.analysis.compare import load_run_analysis

    for spec in specs:
        if spec["run_dir"] not in loaded:
            try:
                loaded[spec["run_dir"]] = load_run_analysis(Path(spec["run_dir"]) / "analysis")
            except (NerveError, ValueError, OSError):
                loaded[spec["run_dir"]] = None


def run_row(job: Job) -> dict:
    """The report's row for one run: F1s, accuracy, per-tag accuracy, training time."""
    run = Path(job.run_dir)
    m = json.loads((run / "metrics.json").read_text())
    return {"variant": job.variant, "seed": job.seed, "run_dir": job.run_dir, "best_epoch": m["best_epoch"],
            "dev_f1": m["dev"]["f1"], "test_f1": m["test"]["f1"], "test_accuracy": m["test"]["accuracy"],
            "per_tag_accuracy": m["test"]["per_tag_accuracy"], "train_seconds": m["train_seconds"]}


def study(spec: StudySpec, engine: Engine = Engine(), placement: tuple[str, int] = ("cpu", 1)) -> Path:
    """The whole study; returns the path of report.html. One study writes in a folder at a time.

    Every run trains and is analysed on ``placement`` (device, torch threads per worker) with ``spec.analysis``.
    The first failing run stops the study; with ``engine.keep_going`` the other runs finish, the report covers
    them and lists the failed ones, and then a ``NerveError`` names the failures (so the exit status is not 0).
    """
    from nerve.report.html import write_report

    jobs = plan(spec, placement)  # makes nothing
    out = Path(spec.out).resolve()
    with writer_lock(out, "nerve study"):
        setup = spec.setup()
        atomic_write_json(out / "plan.json", {**setup, "jobs": [j.to_dict() for j in jobs]})
        loaded: dict = {}
        epochs = load_config(spec.config, list(spec.settings)).train.epochs
        outcome = execute(jobs, engine, epochs, idle=lambda specs: preload(specs, loaded))
        failed = outcome.failed
        order = {j.run_dir: i for i, j in enumerate(jobs)}
        failed = sorted(failed, key=lambda f: order[f[0]["run_dir"]])  # plan order, not the order they ended in
        lost = {job_spec["run_dir"] for job_spec, _ in failed}
        records = [{"variant": j["variant"], "seed": j["seed"], "run_dir": j["run_dir"],
                    "recipe": j.get("recipe", []), "error": message} for j, message in failed]
        summary = summarise([j for j in jobs if j.run_dir not in lost], out, loaded, records, setup,
                            [c.to_dict() for c in outcome.changes])
        if spec.grid:
            atomic_write_text(out / "grid.csv", grid_csv(summary["variants"], summary["failed"]))
            atomic_write_text(out / "findings_by_variant.csv", findings_csv(summary["variants"]))
            atomic_write_text(out / "contrasts.csv", contrasts_csv(summary["variants"]))
        report = write_report(out, summary, grid=setup["grid"])
    if failed:
        more = f"; and {len(failed) - 1} more" if len(failed) > 1 else ""
        raise NerveError(f"{len(failed)} of {len(jobs)} runs failed (the report {report} covers the other "
                         f"{len(jobs) - len(failed)} and lists the failed ones; re-running the same command retries "
                         f"them, after the cause is fixed): {failed[0][1]}{more}")
    return report
