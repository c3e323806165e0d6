"""`nerve study`: train and analyse every (config, seed) run, locally or on Ray, then compare and report."""

from __future__ import annotations

import itertools
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from nerve.config import Config, apply_overrides, load_config
from nerve.errors import NerveError
from nerve.io import atomic_write_json

ANALYSIS_DONE = "analysis.json"


@dataclass
class Job:
    """One run of a study: a config variant and a seed."""

    variant: str  # "base" or "key=value,key=value"
    overrides: list[str]  # --set items (study-wide ones first, then the grid values)
    seed: int
    config_path: str
    data_dir: str | None
    run_dir: str
    threads: int = 1

    def to_dict(self) -> dict:
        return dict(self.__dict__)


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
            apply_overrides(Config(), [f"{key.strip()}={v}"])  # type check each value now
        grid.append((key.strip(), vals))
    return grid


def variant_name(assignment: list[tuple[str, str]]) -> str:
    if not assignment:
        return "base"
    return ",".join(f"{k.split('.')[-1]}={v}" for k, v in assignment)


def _folder(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.,=-]+", "_", name)


def plan(config_path: str, data_dir: str | None, seeds: int, out: Path, overrides: list[str],
         grid: list[tuple[str, list[str]]], base_seed: int | None = None) -> list[Job]:
    """Every (variant, seed) job of a study, in a stable order."""
    cfg = load_config(config_path, overrides)  # validates the config and overrides before any work starts
    first = cfg.train.seed if base_seed is None else base_seed
    keys = [k for k, _ in grid]
    jobs = []
    for values in itertools.product(*[v for _, v in grid]) if grid else [()]:
        assignment = list(zip(keys, values))
        name = variant_name(assignment)
        for i in range(seeds):
            seed = first + i
            sets = overrides + [f"{k}={v}" for k, v in assignment] + [f"train.seed={seed}"]
            run_dir = out / "runs" / _folder(name) / f"seed{seed}"
            jobs.append(Job(name, sets, seed, str(Path(config_path).resolve()),
                            str(Path(data_dir).resolve()) if data_dir else None, str(run_dir.resolve())))
    return jobs


def job_complete(job: Job) -> bool:
    run = Path(job.run_dir)
    try:
        done = json.loads((run / "metrics.json").read_text()).get("complete", False)
    except (OSError, ValueError):
        return False
    return bool(done) and (run / "analysis" / ANALYSIS_DONE).is_file()


def run_job(spec: dict) -> dict:
    """Train (or resume) and analyse one run; safe to call in a worker process or a Ray task."""
    job = Job(**spec)
    import torch

    torch.set_num_threads(max(1, job.threads))
    from nerve.analysis.capture import analyze_run
    from nerve.train import resolve_data, train

    run = Path(job.run_dir)
    run.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    log = open(run / "train.log", "a", encoding="utf-8")
    try:
        cfg = resolve_data(load_config(job.config_path, job.overrides), job.data_dir)
        stdout = sys.stdout
        sys.stdout = log
        try:
            train(cfg, run, "cpu", progress=False, log=lambda m: print(m, file=log, flush=True))
        finally:
            sys.stdout = stdout
        if not (run / "analysis" / ANALYSIS_DONE).is_file():
            analyze_run(str(run), str(run / "analysis"), split="dev", progress=False)
    finally:
        log.close()
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


def execute(jobs: list[Job], engine: str = "local", workers: int | None = None, address: str | None = None,
            epochs: int = 1, progress: bool = True) -> None:
    """Run every incomplete job with the chosen engine, showing runs and epochs done."""
    from tqdm import tqdm

    todo = [j for j in jobs if not job_complete(j)]
    cores = os.cpu_count() or 1
    workers = max(1, min(workers or cores, len(todo) or 1))
    for j in todo:
        j.threads = max(1, cores // workers)
    runs = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc="runs", unit="run", disable=not progress,
                file=sys.stderr, position=0)
    eps = tqdm(total=len(jobs) * epochs, initial=_epochs_done(jobs), desc="epochs", unit="epoch",
               disable=not progress, file=sys.stderr, position=1)

    def tick(done: int) -> None:
        runs.update(done)
        eps.update(max(0, _epochs_done(jobs) - eps.n))

    try:
        if engine == "ray":
            _execute_ray(todo, address, tick)
        elif engine == "local":
            _execute_local(todo, workers, tick)
        else:
            raise NerveError(f"--engine {engine!r}: expected local or ray")
    finally:
        runs.close()
        eps.close()


def _execute_local(todo: list[Job], workers: int, tick) -> None:
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    if not todo:
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        pending = {pool.submit(run_job, j.to_dict()) for j in todo}
        while pending:
            done, pending = wait(pending, timeout=2.0, return_when=FIRST_COMPLETED)
            for fut in done:
                fut.result()
            tick(len(done))


def _execute_ray(todo: list[Job], address: str | None, tick) -> None:
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
        pending = [task.remote(j.to_dict()) for j in todo]
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=2.0)
            for ref in done:
                ray.get(ref)
            tick(len(done))
    finally:
        if started:
            ray.shutdown()


def summarise(jobs: list[Job], out: Path) -> dict:
    """Compare the runs of each variant, evaluate the findings, and collect the run table."""
    from nerve.analysis.compare import compare_runs, load_run_analysis
    from nerve.analysis.findings import evaluate_findings, write_findings

    variants: dict[str, list[Job]] = {}
    for j in jobs:
        variants.setdefault(j.variant, []).append(j)
    result = {"variants": {}}
    for name, vjobs in variants.items():
        vdir = out / "compare" / _folder(name)
        dirs = [Path(j.run_dir) for j in vjobs]
        comparison = compare_runs([d / "analysis" for d in dirs], vdir) if len(dirs) >= 1 else {}
        findings = evaluate_findings([load_run_analysis(d / "analysis") for d in dirs])
        write_findings(vdir / "findings.json", findings)
        result["variants"][name] = {"runs": [run_row(j) for j in vjobs], "compare_dir": str(vdir),
                                    "comparison": comparison, "findings": findings}
    atomic_write_json(out / "study.json", result)
    return result


def run_row(job: Job) -> dict:
    """The report's row for one run: F1s, accuracy, per-tag accuracy, training time."""
    run = Path(job.run_dir)
    m = json.loads((run / "metrics.json").read_text())
    return {"variant": job.variant, "seed": job.seed, "run_dir": job.run_dir, "best_epoch": m["best_epoch"],
            "dev_f1": m["dev"]["f1"], "test_f1": m["test"]["f1"], "test_accuracy": m["test"]["accuracy"],
            "per_tag_accuracy": m["test"]["per_tag_accuracy"], "train_seconds": m["train_seconds"]}


def study(config_path: str, data_dir: str | None, seeds: int, out_dir: str, overrides: list[str] | None = None,
          grid: list[str] | None = None, engine: str = "local", workers: int | None = None,
          address: str | None = None, progress: bool = True) -> Path:
    """The whole study; returns the path of report.html."""
    from nerve.report.html import write_report

    if seeds < 1:
        raise NerveError(f"--seeds {seeds}: expected a number >= 1")
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    g = parse_grid(grid or [])
    jobs = plan(config_path, data_dir, seeds, out, overrides or [], g)
    epochs = load_config(config_path, overrides or []).train.epochs
    atomic_write_json(out / "plan.json", {"config": str(config_path), "data": data_dir, "seeds": seeds,
                                          "grid": g, "jobs": [j.to_dict() for j in jobs]})
    execute(jobs, engine, workers, address, epochs=epochs, progress=progress)
    summary = summarise(jobs, out)
    return write_report(out, summary, grid=g)
