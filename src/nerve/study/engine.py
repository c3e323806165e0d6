"""Running a study's jobs: what is done already, what a folder of another config holds, and the local worker
processes or Ray tasks that train and analyse the rest."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from nerve.analysis.capture import analysis_identity, run_hashes
from nerve.analysis.compare import analysis_is_current
from nerve.analysis.core import AnalysisSpec
from nerve.analyze import analyze_run
from nerve.errors import NerveError
from nerve.folder import IDENTITY, LOCK, changed_files, completed, fingerprint, read_marker, sha256_file, writer_lock
from nerve.io import make_dirs, os_error
from nerve.run import resume_conflicts, run_identity
from nerve.study.plan import ANALYSIS_SPLIT, Job
from nerve.study.workers import run_local, task_error
from nerve.threads import set_threads
from nerve.train import brief, train


@dataclass(frozen=True)
class Engine:
    """How a study's jobs run: ``kind`` "local" (``workers`` processes, default one per core) or "ray" (a cluster
    at ``address``, or a local one); ``progress`` bars on stderr; ``rerun_changed``: retrain runs whose folders
    hold another config's run; ``keep_going``: a failed run does not stop the others; ``node_ip``: the address
    Ray uses for this machine (``ray.init(_node_ip_address=...)``; default 127.0.0.1 when nerve starts a local
    Ray, Ray's own choice with ``address``)."""

    kind: str = "local"
    workers: int | None = None
    address: str | None = None
    progress: bool = True
    rerun_changed: bool = False
    keep_going: bool = False
    node_ip: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("local", "ray"):
            raise NerveError(f"--engine {self.kind!r}: expected local or ray")
        if self.workers is not None and self.workers < 1:
            raise NerveError(f"--workers {self.workers}: expected a number >= 1")


def _analysis_fingerprint(job: Job, spec=None) -> str:
    """Fingerprint the study's analysis (or ``spec``'s) of a finished run must have (``nerve.analysis.capture``)."""
    cfg = job.config()
    spec = spec or job.analysis
    options = spec.options()
    if spec.methods:
        options |= spec.method_options(cfg.data.dev, sha256_file(cfg.data.dev))
    return fingerprint(analysis_identity(run_hashes(job.run_dir), cfg.data.test, ANALYSIS_SPLIT, options))


def run_done(job: Job) -> bool:
    """Whether the job's run folder holds a finished run of exactly this job's config and corpus, with its files
    as training wrote them."""
    marker = completed(job.run_dir, job.fingerprint)
    return marker is not None and not changed_files(job.run_dir, marker)


def analysis_done(job: Job) -> bool:
    """Whether the run's analyses (its own and each basis') are finished, of this model, with the study's options,
    and unchanged."""
    return not pending_analyses(job)


def pending_analyses(job: Job) -> list[tuple[str, AnalysisSpec]]:
    """(folder under the run, spec) of the run's analyses still to do: ``analysis`` itself, then each basis'."""
    run = Path(job.run_dir)
    return [(sub, spec) for sub, spec in [("analysis", job.analysis), *job.basis_analyses()]
            if not (completed(run / sub, _analysis_fingerprint(job, spec)) is not None
                    and analysis_is_current(run / sub))]


def job_complete(job: Job) -> bool:
    return run_done(job) and analysis_done(job)


def stale_reason(job: Job) -> list[str]:
    """Why the job's run folder holds a run this job cannot reuse or resume (empty: it can)."""
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


ATTEMPTS = "attempts.jsonl"  # in a run folder: one line per time a study started its job (Ray may re-run a task)


@dataclass(frozen=True)
class Change:
    """What a study did to one run folder: ``action`` one of trained (a new run), resumed (a run interrupted
    before it finished), extended (a finished run trained for more epochs), retrained (another config's run
    deleted by --rerun-changed and trained afresh), reanalysed (its analysis was missing, stale or of other
    options), retried (Ray ran its task more than once); ``detail`` says why or how much."""

    run_dir: str
    action: str
    detail: str = ""

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def planned_change(job: Job) -> Change | None:
    """What executing ``job`` will do to its folder (None: reused as it is), judged before anything runs."""
    run = Path(job.run_dir)
    if run_done(job):
        return None if analysis_done(job) else Change(job.run_dir, "reanalysed",
                                                      "its analysis was missing, incomplete, stale or of other options")
    why = stale_reason(job)
    if why:
        return Change(job.run_dir, "retrained", "; ".join(why[:3]))
    if not (run / "checkpoint.pt").is_file():
        return Change(job.run_dir, "trained")
    done = _epochs_of(run)
    want = job.config().train.epochs
    if (run / "complete.json").is_file():
        return Change(job.run_dir, "extended", f"from {done} to {want} epochs: the run's config differs only in "
                                               "train.epochs, so training goes on from its last checkpoint")
    return Change(job.run_dir, "resumed", f"from epoch {done} of {want}: the run was interrupted before it finished")


def _epochs_of(run: Path) -> int:
    try:
        with open(run / "epochs.jsonl", encoding="utf-8") as f:
            return sum(1 for line in f if line.strip())
    except OSError:
        return 0


def _attempts(run_dir: str, token: str) -> int:
    """How many times this study invocation (``token``) started the job of ``run_dir``."""
    try:
        with open(Path(run_dir) / ATTEMPTS, encoding="utf-8") as f:
            return sum(1 for line in f if json.loads(line).get("study") == token)
    except (OSError, ValueError, AttributeError):
        return 0


def run_job(spec: dict) -> dict:
    """Train (or resume) and analyse one run; safe to call in a worker process or a Ray task. A spec's ``attempt``
    (the study invocation's token) is recorded in the run folder's attempts.jsonl, with the host and process, so
    that a task Ray re-ran after its worker or node died is counted."""
    spec = dict(spec)
    token = spec.pop("attempt", None)
    job = Job.from_dict(spec)
    set_threads(max(1, job.threads))

    run = make_dirs(job.run_dir)
    t0 = time.perf_counter()
    if token is not None:
        try:
            with open(run / ATTEMPTS, "a", encoding="utf-8") as f:
                print(json.dumps({"study": token, "host": socket.gethostname(), "pid": os.getpid(),
                                  "time": time.time()}), file=f, flush=True)
        except OSError as err:
            raise os_error(err) from None
    try:
        if not run_done(job):
            with open(run / "train.log", "a", encoding="utf-8") as log:
                train(job.config(), run, job.device, progress=False, log=lambda m: print(m, file=log, flush=True),
                      on_epoch=lambda record: print(json.dumps(brief(record)), file=log, flush=True))
        for sub, spec in pending_analyses(job):
            analyze_run(str(run), str(run / sub), spec, device=job.device, progress=False)
    except NerveError as err:
        raise NerveError(f"run {job.variant}/seed{job.seed}: {err}") from None
    except OSError as err:
        raise os_error(err) from None
    return {"run_dir": job.run_dir, "seconds": time.perf_counter() - t0}


def _epochs_done(jobs: list[Job]) -> int:
    return sum(_epochs_of(Path(job.run_dir)) for job in jobs)


def check_stale(jobs: list[Job], rerun_changed: bool = False) -> list[Job]:
    """The jobs whose folders hold a run of another config, corpus or nerve version.

    Without ``rerun_changed`` they stop the study with a message naming each folder and what changed; with
    it, their folders are deleted so that the runs are trained afresh.
    """
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


@dataclass(frozen=True)
class Outcome:
    """What ``execute`` did: the ``failed`` runs as (job spec, one-line error) and the ``changes`` to run folders
    (``Change``; a run reused as it was has none)."""

    failed: list[tuple[dict, str]]
    changes: list[Change]


def execute(jobs: list[Job], engine: Engine, epochs: int = 1, idle=None) -> Outcome:
    """Run every incomplete job with the ``engine``, showing runs and ``epochs`` (per run) done; ``idle(finished
    specs)`` is called while a local worker has no job left (the study reads finished analyses then).

    The first failing run stops the others and its error is raised; with ``engine.keep_going`` the other runs go
    on and the failures are returned. What will change in each existing run folder (``planned_change``) is
    printed on stderr before anything runs (a finished run trained for more epochs is said to be extended), and
    every change, the tasks Ray ran more than once too, is returned."""
    planned = [c for c in map(planned_change, jobs) if c is not None]
    if not engine.rerun_changed:
        planned = [c for c in planned if c.action != "retrained"]  # check_stale refuses them below
    check_stale(jobs, engine.rerun_changed)
    _say(planned, len(jobs))
    token = uuid.uuid4().hex
    todo = [j for j in jobs if not job_complete(j)]
    cores = os.cpu_count() or 1
    workers = max(1, min(engine.workers or cores, len(todo) or 1))
    runs = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc="runs", unit="run",
                disable=not engine.progress, file=sys.stderr, position=0)
    eps = tqdm(total=len(jobs) * epochs, initial=_epochs_done(jobs), desc="epochs", unit="epoch",
               disable=not engine.progress, file=sys.stderr, position=1)

    def tick(done: int) -> None:
        runs.update(done)
        eps.update(max(0, _epochs_done(jobs) - eps.n))

    failed: list[tuple[dict, str]] | None = [] if engine.keep_going else None
    specs = [{**j.to_dict(), "attempt": token} for j in todo]
    try:
        if engine.kind == "ray":
            _execute_ray(specs, engine, tick, failed)
        else:
            run_local(run_job, specs, workers, tick, idle, failed)
    finally:
        runs.close()
        eps.close()
        counts = [(j, _attempts(j.run_dir, token)) for j in todo]
        retried = [Change(j.run_dir, "retried", f"started {n} times: a worker or node died and Ray re-ran the task; "
                                                f"{ATTEMPTS} in the run folder says where")
                   for j, n in counts if n > 1]
        _say(retried, len(jobs))
    return Outcome([(_without_attempt(s), m) for s, m in failed or []], planned + retried)


def _without_attempt(spec: dict) -> dict:
    return {k: v for k, v in spec.items() if k != "attempt"}


def _say(changes: list[Change], n_jobs: int) -> None:
    """One line on stderr per kind of change to a run that existed (runs trained afresh are what a study does, and
    go unsaid: study.json and the report list them), naming up to three run folders."""
    by: dict[str, list[Change]] = {}
    for c in changes:
        if c.action == "trained":
            continue
        by.setdefault(c.action, []).append(c)
    for action, cs in by.items():
        named = "; ".join(f"{c.run_dir}{f' ({c.detail})' if c.detail else ''}" for c in cs[:3])
        more = f"; and {len(cs) - 3} more" if len(cs) > 3 else ""
        print(f"nerve study: {len(cs)} of {n_jobs} runs {action}: {named}{more}", file=sys.stderr, flush=True)


def _execute_ray(todo: list[dict], engine: Engine, tick, failed: list | None = None) -> None:
    try:
        import ray
    except ImportError:
        raise NerveError("--engine ray needs Ray: pip install 'nerve[ray]'") from None
    if not todo:
        return
    started = False
    if not ray.is_initialized():
        node_ip = engine.node_ip or (None if engine.address else "127.0.0.1")
        ray.init(address=engine.address, include_dashboard=False, log_to_driver=False,
                 **({"_node_ip_address": node_ip} if node_ip else {}))
        started = True
    try:
        task = ray.remote(num_cpus=1)(run_job)
        specs = {}
        for spec in todo:
            specs[task.remote(spec)] = spec
        pending = list(specs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=2.0)
            for ref in done:
                try:
                    ray.get(ref)
                except ray.exceptions.RayError as err:  # a task's error, or its worker crashed
                    cause = getattr(err, "cause", None)
                    if failed is not None:
                        failed.append((specs[ref], task_error(specs[ref], cause or err)))
                    elif isinstance(cause, NerveError):
                        raise NerveError(str(cause)) from None
                    else:
                        raise
            tick(len(done))
    finally:
        if started:
            ray.shutdown()
