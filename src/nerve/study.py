"""`nerve study`: train and analyse every (config, seed) run, locally or on Ray, then compare and report."""

from __future__ import annotations

import itertools
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from nerve.config import Config, apply_overrides, load_config
from nerve.errors import NerveError
from nerve.folder import IDENTITY, LOCK, changed_files, completed, fingerprint, read_marker, writer_lock
from nerve.io import atomic_write_json, atomic_write_text, make_dirs, os_error
from nerve.run import run_identity
from nerve.workers import run_local


@dataclass
class Job:
    """One run of a study: a config variant and a seed."""

    variant: str  # "base" or "key=value,key=value"
    overrides: list[str]  # --set items (study-wide ones first, then the grid values)
    seed: int
    config_path: str
    data_dir: str | None
    run_dir: str
    fingerprint: str = ""  # of the run this job must produce (``nerve.run.run_identity``)
    threads: int = 1
    device: str = "cpu"
    methods: list[str] = field(default_factory=lambda: list(STUDY_METHODS))  # ranking methods judged held out
    ablate: list[str] = field(default_factory=lambda: list(STUDY_ABLATE))
    max_k: int | None = None  # largest ablation size of the analysis; None: every unit
    figures: bool = True  # the analysis draws its figures (``STUDY_FIGURES``); else tables only
    recipe: list[str] = field(default_factory=list)  # the --cell-set items of its grid cell (also in overrides)

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    def config(self) -> Config:
        """The job's resolved config (data paths made absolute)."""
        from nerve.data.prepare import resolve_data

        return resolve_data(load_config(self.config_path, self.overrides), self.data_dir)


def parse_grid(items: list[str]) -> list[tuple[str, list[str]]]:
    """``key=v1,v2`` strings -> [(key, [v1, v2])], checked against the config schema."""
    grid = []
    for item in items:
        if "=" not in item:
            raise NerveError(f"--grid {item!r}: expected section.key=v1,v2,...")
        key, values = item.split("=", 1)
        vals = [v.strip() for v in values.split(",") if v.strip()]
        if not vals:
            raise NerveError(f"--grid {item!r}: no values")
        for v in vals:
            _check_setting(f"{key.strip()}={v}", f"--grid {item!r}")
        grid.append((key.strip(), vals))
    return grid


def _check_setting(setting: str, where: str) -> None:
    """Type check one ``section.key=value`` now, the error naming the option it came from."""
    try:
        apply_overrides(Config(), [setting])
    except NerveError as e:
        raise NerveError(f"{where}: {str(e).removeprefix('--set: ')}") from None


def parse_cell_sets(items: list[str], grid: list[tuple[str, list[str]]]) -> list[tuple[str, str, str]]:
    """``--cell-set GRIDKEY=VALUE:SECTION.KEY=VALUE`` items as (grid key, grid value, --set item): settings for the
    grid cells where that grid key has that value (e.g. a word-CNN recipe), applied after the grid's values."""
    values = dict(grid)
    out = []
    for item in items:
        cond, sep, setting = item.partition(":")
        key, eq, value = cond.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not eq or "=" not in setting:
            raise NerveError(f"--cell-set {item!r}: expected GRIDKEY=VALUE:SECTION.KEY=VALUE, e.g. "
                             "model.encoder=cnn:train.lr=0.1")
        if key not in values:
            raise NerveError(f"--cell-set {item!r}: {key} is not a --grid key (the grid has "
                             f"{', '.join(values) or 'none'})")
        if value not in values[key]:
            raise NerveError(f"--cell-set {item!r}: {value!r} is not one of the grid's values of {key} "
                             f"({', '.join(values[key])})")
        _check_setting(setting.strip(), f"--cell-set {item!r}")
        out.append((key, value, setting.strip()))
    return out


def variant_name(assignment: list[tuple[str, str]]) -> str:
    if not assignment:
        return "base"
    return ",".join(f"{k.split('.')[-1]}={v}" for k, v in assignment)


def _folder(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.,=-]+", "_", name)


def plan(config_path: str, data_dir: str | None, seeds: int, out: Path, overrides: list[str],
         grid: list[tuple[str, list[str]]], base_seed: int | None = None,
         cell_sets: list[tuple[str, str, str]] = ()) -> list[Job]:
    """Every (variant, seed) job of a study, in a stable order; ``cell_sets`` (``parse_cell_sets``) add settings
    to the cells they match, after the grid's values."""
    cfg = load_config(config_path, overrides)  # validates the config and overrides before any work starts
    first = cfg.train.seed if base_seed is None else base_seed
    keys = [k for k, _ in grid]
    jobs = []
    for values in itertools.product(*[v for _, v in grid]) if grid else [()]:
        assignment = list(zip(keys, values))
        name = variant_name(assignment)
        recipe = [setting for key, value, setting in cell_sets if dict(assignment).get(key) == value]
        for i in range(seeds):
            seed = first + i
            sets = overrides + [f"{k}={v}" for k, v in assignment] + recipe + [f"train.seed={seed}"]
            run_dir = out / "runs" / _folder(name) / f"seed{seed}"
            job = Job(name, sets, seed, str(Path(config_path).resolve()),
                      str(Path(data_dir).resolve()) if data_dir else None, str(run_dir.resolve()))
            job.fingerprint = fingerprint(run_identity(job.config()))
            job.figures = i == 0  # the first seed of each variant; `nerve plot analysis` draws any other's
            job.recipe = recipe
            jobs.append(job)
    seen: dict[str, Job] = {}
    for job in jobs:
        other = seen.setdefault(job.run_dir, job)
        if other is not job:
            raise NerveError(f"--grid: variants {other.variant!r} and {job.variant!r} would share the run folder "
                             f"{job.run_dir} (their values differ only in characters a folder name cannot hold)")
    return jobs


ANALYSIS_SPLIT = "test"  # the scoring split: the base analysis and the methods' held-out ablation sweeps
RANK_SPLIT = "dev"  # the split the ranking methods rank on
# Every method but the probe (20 s a run on xin2019: docs/RESULTS.md); `--methods` adds it.
STUDY_METHODS = ("sensitivity", "probeless", "selectivity", "gradxact", "ig", "random")
STUDY_ABLATE = ("zero", "mean")
STUDY_FIGURES = ("png",)  # the report embeds PNG; `nerve plot analysis --formats svg` draws SVG for a paper


def figure_formats(job: Job) -> tuple[str, ...]:
    """The formats of the figures the job's analysis draws (none: tables only)."""
    return STUDY_FIGURES if job.figures else ()


def _analysis_fingerprint(job: Job) -> str:
    """Fingerprint the study's analysis of a finished run must have (``nerve.analysis.capture``)."""
    from nerve.analysis.capture import analysis_identity, run_hashes
    from nerve.analysis.pipeline import analysis_options
    from nerve.analyze import method_options

    cfg = job.config()
    options = analysis_options("predicted", job.max_k, 20, 0, False, figure_formats(job))
    if job.methods:
        options |= method_options(job.methods, RANK_SPLIT, cfg.data.dev, job.ablate)
    return fingerprint(analysis_identity(run_hashes(job.run_dir), cfg.data.test, ANALYSIS_SPLIT, options))


def run_done(job: Job) -> bool:
    """Whether the job's run folder holds a finished run of exactly this job's config and corpus, with its files
    as training wrote them."""
    marker = completed(job.run_dir, job.fingerprint)
    return marker is not None and not changed_files(job.run_dir, marker)


def analysis_done(job: Job) -> bool:
    """Whether the run's analysis is finished, of this model, with the study's options, and unchanged."""
    from nerve.analysis.compare import analysis_is_current

    d = Path(job.run_dir) / "analysis"
    return completed(d, _analysis_fingerprint(job)) is not None and analysis_is_current(d)


def job_complete(job: Job) -> bool:
    return run_done(job) and analysis_done(job)


def stale_reason(job: Job) -> list[str]:
    """Why the job's run folder holds a run this job cannot reuse or resume (empty: it can)."""
    from nerve.run import resume_conflicts

    run = Path(job.run_dir)
    marker = completed(run, job.fingerprint)
    if marker is not None and changed_files(run, marker):
        return [f"{name} changed since training finished" for name in changed_files(run, marker)]
    old = read_marker(run, IDENTITY)
    if old is None:
        leftovers = [f for f in ("checkpoint.pt", "model.pt", "metrics.json") if (run / f).exists()]
        return [f"holds {', '.join(leftovers)} but no {IDENTITY}"] if leftovers else []
    if not (run / "checkpoint.pt").is_file():
        return []  # no epoch finished: training starts over
    return resume_conflicts(old.get("components", {}), run_identity(job.config()))


def run_job(spec: dict) -> dict:
    """Train (or resume) and analyse one run; safe to call in a worker process or a Ray task."""
    job = Job(**spec)
    import torch

    torch.set_num_threads(max(1, job.threads))
    from nerve.analyze import analyze_run
    from nerve.train import brief, train

    run = make_dirs(job.run_dir)
    t0 = time.perf_counter()
    try:
        if not run_done(job):
            with open(run / "train.log", "a", encoding="utf-8") as log:
                train(job.config(), run, job.device, progress=False, log=lambda m: print(m, file=log, flush=True),
                      on_epoch=lambda record: print(json.dumps(brief(record)), file=log, flush=True))
        if not analysis_done(job):
            analyze_run(str(run), str(run / "analysis"), split=ANALYSIS_SPLIT, progress=False, device=job.device,
                        methods=job.methods, rank_split=RANK_SPLIT, ablate=job.ablate, figures=figure_formats(job),
                        max_k=job.max_k)
    except NerveError as err:
        raise NerveError(f"run {job.variant}/seed{job.seed}: {err}") from None
    except OSError as err:
        raise os_error(err) from None
    return {"run_dir": job.run_dir, "seconds": time.perf_counter() - t0}


def _epochs_done(jobs: list[Job]) -> int:
    total = 0
    for job in jobs:
        try:
            with open(Path(job.run_dir) / "epochs.jsonl", encoding="utf-8") as f:
                total += sum(1 for _ in f)
        except OSError:
            pass
    return total


def check_stale(jobs: list[Job], rerun_changed: bool = False) -> list[Job]:
    """The jobs whose folders hold a run of another config, corpus or nerve version.

    Without ``rerun_changed`` they stop the study with a message naming each folder and what changed; with
    it, their folders are deleted so that the runs are trained afresh.
    """
    import shutil

    stale = [(j, why) for j in jobs if not run_done(j) for why in [stale_reason(j)] if why]
    if stale and not rerun_changed:
        lines = "; ".join(f"{j.run_dir} ({', '.join(why[:3])})" for j, why in stale[:3])
        more = f" and {len(stale) - 3} more" if len(stale) > 3 else ""
        raise NerveError(f"{len(stale)} run folder(s) of this study hold runs of another config or corpus: "
                         f"{lines}{more}; re-run with --rerun-changed to retrain them, or use another --out")
    for j, _ in stale:
        with writer_lock(j.run_dir, "nerve study --rerun-changed"):  # never under another writer's feet
            for child in Path(j.run_dir).iterdir():
                if child.name == LOCK:
                    continue
                try:
                    shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
                except OSError as err:
                    raise os_error(err, child) from None
    return [j for j, _ in stale]


def execute(jobs: list[Job], *, engine: str = "local", workers: int | None = None, address: str | None = None,
            epochs: int = 1, progress: bool = True, rerun_changed: bool = False, idle=None,
            keep_going: bool = False) -> list[tuple[dict, str]]:
    """Run every incomplete job with the chosen engine, showing runs and epochs done; ``idle(finished specs)``
    is called while a local worker has no job left (the study reads finished analyses then).

    The first failing run stops the others and its error is raised; with ``keep_going`` the other runs go on and
    the failures are returned as (job spec, one-line error)."""
    from tqdm import tqdm

    check_stale(jobs, rerun_changed)
    todo = [j for j in jobs if not job_complete(j)]
    cores = os.cpu_count() or 1
    workers = max(1, min(workers or cores, len(todo) or 1))
    runs = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc="runs", unit="run", disable=not progress,
                file=sys.stderr, position=0)
    eps = tqdm(total=len(jobs) * epochs, initial=_epochs_done(jobs), desc="epochs", unit="epoch",
               disable=not progress, file=sys.stderr, position=1)

    def tick(done: int) -> None:
        runs.update(done)
        eps.update(max(0, _epochs_done(jobs) - eps.n))

    failed: list[tuple[dict, str]] | None = [] if keep_going else None
    try:
        if engine == "ray":
            _execute_ray(todo, address, tick, failed)
        elif engine == "local":
            run_local(run_job, [j.to_dict() for j in todo], workers, tick, idle, failed)
        else:
            raise NerveError(f"--engine {engine!r}: expected local or ray")
    finally:
        runs.close()
        eps.close()
    return failed or []


def _execute_ray(todo: list[Job], address: str | None, tick, failed: list | None = None) -> None:
    try:
        import ray
    except ImportError:
        raise NerveError("--engine ray needs Ray: pip install 'nerve[ray]'") from None
    if not todo:
        return
    started = False
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
        started = True
    try:
        task = ray.remote(num_cpus=1)(run_job)
        specs = {}
        for j in todo:
            specs[task.remote(j.to_dict())] = j.to_dict()
        pending = list(specs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=2.0)
            for ref in done:
                try:
                    ray.get(ref)
                except ray.exceptions.RayTaskError as err:
                    cause = getattr(err, "cause", None)
                    if not isinstance(cause, NerveError):
                        raise
                    if failed is None:
                        raise NerveError(str(cause)) from None
                    failed.append((specs[ref], str(cause)))
            tick(len(done))
    finally:
        if started:
            ray.shutdown()


def summarise(jobs: list[Job], out: Path, loaded: dict | None = None) -> dict:
    """Compare the runs of each variant, evaluate the findings, and collect the run table; ``loaded``: analysed
    runs already read, by run folder (``preload``)."""
    from nerve.analysis.compare import load_run_analysis
    from nerve.analysis.verdicts import evaluate_findings, write_findings
    from nerve.analyze import compare
    from nerve.method_stage import compare_methods
    from nerve.report.plots import figure_formats as formats

    variants: dict[str, list[Job]] = {}
    for j in jobs:
        variants.setdefault(j.variant, []).append(j)
    result = {"variants": {}}
    for name, vjobs in variants.items():
        vdir = out / "compare" / _folder(name)
        runs = [(loaded or {}).get(j.run_dir) or load_run_analysis(Path(j.run_dir) / "analysis")
                for j in vjobs]  # each analysis read once
        with formats(STUDY_FIGURES):  # the means' figures; every run's matrices as CSV
            comparison = compare(runs, vdir, run_figures=False)
            methods = compare_methods(runs, vdir)
        findings = evaluate_findings(runs)
        write_findings(vdir / "findings.json", findings)
        result["variants"][name] = {"runs": [run_row(j) for j in vjobs], "compare_dir": str(vdir),
                                    "recipe": vjobs[0].recipe,
                                    "comparison": comparison, "methods": methods, "findings": findings,
                                    "analysis_split": ANALYSIS_SPLIT}
    atomic_write_json(out / "study.json", result)
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


def study(config_path: str, data_dir: str | None, seeds: int, out_dir: str, *, overrides: list[str] | None = None,
          grid: list[str] | None = None, cell_sets: list[str] | None = None, engine: str = "local",
          workers: int | None = None,
          address: str | None = None, progress: bool = True, rerun_changed: bool = False, device: str = "cpu",
          threads: int = 1, methods: list[str] | None = None, ablate: list[str] | None = None,
          max_k: int | None = None, keep_going: bool = False) -> Path:
    """The whole study; returns the path of report.html. One study writes in a folder at a time.

    Every run trains and is analysed on ``device`` with ``threads`` torch threads per worker: the base analysis
    on ``ANALYSIS_SPLIT`` and the ranking ``methods`` (default ``STUDY_METHODS``; [] for none) ranked on
    ``RANK_SPLIT`` and judged by ablation on ``ANALYSIS_SPLIT`` with the ``ablate`` values (default both).
    ``cell_sets``: settings of some grid cells (``parse_cell_sets``). The first failing run stops the study;
    with ``keep_going`` the other runs finish, the report covers them and lists the failed ones, and then a
    ``NerveError`` names the failures (so the exit status is not 0).
    """
    from nerve.analyze import check_methods

    methods = list(STUDY_METHODS) if methods is None else list(methods)
    ablate = list(STUDY_ABLATE) if ablate is None else list(ablate)
    if methods:
        check_methods(methods, ablate)
    if not 1 <= seeds <= MAX_SEEDS:
        raise NerveError(f"--seeds {seeds}: expected a number in 1..{MAX_SEEDS}")
    if workers is not None and workers < 1:
        raise NerveError(f"--workers {workers}: expected a number >= 1")
    if max_k is not None and max_k < 0:
        raise NerveError(f"--max-k {max_k}: expected a number >= 0")
    load_config(config_path, overrides or [])  # bad options stop here, before the study folder is made
    g = parse_grid(grid or [])
    cells = parse_cell_sets(cell_sets or [], g)
    out = Path(out_dir).resolve()
    with writer_lock(out, "nerve study"):
        return _study(config_path, data_dir, seeds, out, overrides, g, cells, engine, workers, address, progress,
                      rerun_changed, device, threads, methods, ablate, max_k, keep_going)


MAX_SEEDS = 1000


def _study(config_path, data_dir, seeds, out: Path, overrides, g, cells, engine, workers, address, progress,
           rerun_changed, device, threads, methods, ablate, max_k, keep_going) -> Path:
    from nerve.report.html import write_report

    jobs = plan(config_path, data_dir, seeds, out, overrides or [], g, cell_sets=cells)
    for j in jobs:
        j.device, j.threads, j.methods, j.ablate, j.max_k = device, threads, methods, ablate, max_k
    epochs = load_config(config_path, overrides or []).train.epochs
    atomic_write_json(out / "plan.json", {"config": str(config_path), "data": data_dir, "seeds": seeds,
                                          "grid": g, "cell_sets": cells, "jobs": [j.to_dict() for j in jobs]})
    loaded: dict = {}
    failed = execute(jobs, engine=engine, workers=workers, address=address, epochs=epochs, progress=progress,
                     rerun_changed=rerun_changed, idle=lambda specs: preload(specs, loaded), keep_going=keep_going)
    lost = {spec["run_dir"] for spec, _ in failed}
    summary = summarise([j for j in jobs if j.run_dir not in lost], out, loaded)
    summary["failed"] = [{"variant": spec["variant"], "seed": spec["seed"], "run_dir": spec["run_dir"],
                          "error": message} for spec, message in failed]
    atomic_write_json(out / "study.json", summary)
    if g:
        from nerve.grid import findings_csv, grid_csv

        atomic_write_text(out / "grid.csv", grid_csv(summary["variants"]))
        atomic_write_text(out / "findings_by_variant.csv", findings_csv(summary["variants"]))
    report = write_report(out, summary, grid=g)
    if failed:
        first = failed[0][1]
        raise NerveError(f"{len(failed)} of {len(jobs)} runs failed (the report {report} covers the other "
                         f"{len(jobs) - len(failed)} and lists the failed ones; re-run the same command to retry "
                         f"them): {first}" + (f"; and {len(failed) - 1} more" if len(failed) > 1 else ""))
    return report
