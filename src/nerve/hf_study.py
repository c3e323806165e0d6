"""``nerve study MODEL_FOLDER``: a study of a Hugging Face encoder or token classifier over seeds, in one command.

For each seed (the config's ``train.seed`` on): fine-tune into ``OUT/runs/seedS`` (a finished run of the same
config, corpus and model is kept; a killed one resumes), analyse its tag layer's input into ``RUN/analysis`` (kept
when finished with the same options), then compare the runs (``OUT/compare``: matrices (the means' figures), the
methods across runs, Xin et al.'s findings at the tag layer) and analyse them layer by layer (``OUT/depth``: every
site, the methods and the findings site by site, and its ``report.html``). Runs one after another in this
process."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from nerve.analysis.core import AnalysisSpec
from nerve.errors import NerveError


@dataclass(frozen=True)
class HFStudySpec:
    """folder: the model folder; data: the corpus folder; out: the study folder; seeds: runs (1..1000); settings:
    ``--set`` items for every run; analysis: each run's analysis at ``classifier_in``; depth: the ``DepthSpec`` of
    the layer-by-layer analysis (None: none)."""

    folder: str
    data: str | None
    out: str
    seeds: int
    settings: tuple[str, ...]
    analysis: AnalysisSpec
    depth: object = None

    def __post_init__(self):
        if not 1 <= self.seeds <= 1000:
            raise NerveError(f"--seeds {self.seeds}: expected 1 to 1000")


def _config(spec: HFStudySpec, seed: int | None = None):
    from nerve.data.prepare import resolve_data
    from nerve.hf.config import hf_config

    cfg = hf_config(spec.folder, list(spec.settings) + ([f"train.seed={seed}"] if seed is not None else []))
    return resolve_data(cfg, spec.data)


def train_seed(spec: HFStudySpec, seed: int, log) -> Path:
    """The run of ``seed``: fine-tuned into ``OUT/runs/seedS``, or kept when finished under the same identity."""
    from nerve.folder import changed_files, completed, fingerprint
    from nerve.hf.train import fine_tune, hf_identity

    cfg = _config(spec, seed)
    run = Path(spec.out) / "runs" / f"seed{seed}"
    done = completed(run, fingerprint(hf_identity(cfg)))
    if done is not None and not changed_files(run, done):
        log(f"seed {seed}: finished run kept ({run})")
        return run
    log(f"seed {seed}: fine-tuning into {run}")
    fine_tune(cfg, run, log=lambda msg: log(f"seed {seed}: {msg}"))
    return run


def hf_study(spec: HFStudySpec, log=None) -> Path:
    """Run the study (see the module); returns the path of its report (``OUT/depth/report.html``, or without the
    depth analysis ``OUT/compare/findings.json``)."""
    from nerve.analysis.compare import CompareSpec
    from nerve.analyze import analyze_run, compare_analyses

    log = log or (lambda msg: print(f"study: {msg}", file=sys.stderr, flush=True))
    out = Path(spec.out)
    first = _config(spec).train.seed
    runs = []
    for seed in range(first, first + spec.seeds):
        run = train_seed(spec, seed, log)
        summary = analyze_run(str(run), str(run / "analysis"), spec.analysis, progress=False, reuse=True)
        log(f"seed {seed}: analysis {'kept' if summary.get('reused') else 'written'} ({run / 'analysis'})")
        runs.append(run)
    if len(runs) > 1:
        compare_analyses([str(r / "analysis") for r in runs], out / "compare", CompareSpec(run_figures=False))
        log(f"compared {len(runs)} runs -> {out / 'compare'}")
    report = out / "compare" / "findings.json"
    if spec.depth is not None:
        report = depth_stage([str(r) for r in runs], out / "depth", spec.depth, lambda m: log(f"depth: {m}"))
    summary = {"model_folder": str(Path(spec.folder).resolve()), "runs": [str(r) for r in runs],
               "report": str(report)}
    from nerve.io import atomic_write_text

    atomic_write_text(out / "study.json", json.dumps(summary, indent=2) + "\n")
    return report


def depth_stage(run_dirs: list[str], out: Path, spec, log) -> Path:
    """``nerve depth`` over the runs into ``out``: tables, figures and ``report.html`` (its path)."""
    from nerve.folder import remove_files
    from nerve.hf.depth_table import depth_study
    from nerve.report.depth_figure import plot_depth, plot_depth_findings
    from nerve.report.depth_page import write_depth_report

    out.mkdir(parents=True, exist_ok=True)
    study = depth_study(run_dirs, out, spec, log=log)
    plot_depth(study.summary, out / "depth", spec.k, spec.intervention, len(run_dirs))
    if study.findings:
        plot_depth_findings(study.findings, out / "depth_findings", spec.k, spec.intervention, len(run_dirs))
    else:
        remove_files(out, [f"depth_findings.{ext}" for ext in ("png", "svg", "pdf")])  # an earlier call's
    log(f"{len(study.summary)} site x method rows, {len(study.findings)} site x finding rows over {len(run_dirs)} "
        f"runs -> {out / 'depth_summary.csv'}")
    return write_depth_report(out, study, spec, run_dirs)
