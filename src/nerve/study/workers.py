"""Study worker processes: they die with the study, and stop cleanly when the study stops them."""

from __future__ import annotations

import os
import sys
import time


def die_with_parent(parent: int) -> None:
    """Worker initializer: end this process as soon as the study process ``parent`` is gone, even after a
    ``kill -9`` of it, so that no worker finishes a run unseen and races with a re-run. Linux delivers SIGKILL
    through PR_SET_PDEATHSIG; a watchdog thread (every 0.5 s) covers other systems."""
    import signal
    import sys
    import threading

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # exit through finalizers when the study stops us
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def stop_workers(procs: list) -> None:
    """Stop worker processes: SIGTERM first (a worker then exits through its finalizers, releasing what it
    registered, so no "leaked semaphore" warnings follow the error), SIGKILL for any still alive after 3 s."""
    for proc in procs:
        proc.terminate()
    deadline = time.time() + 3.0
    for proc in procs:
        proc.join(max(0.0, deadline - time.time()))
        if proc.is_alive():
            proc.kill()


def task_error(spec: dict, err: BaseException) -> str:
    """One line for a failed task: a ``NerveError``'s own message, else the run, the exception type and the first
    line of its message."""
    from nerve.errors import NerveError

    if isinstance(err, NerveError):
        return str(err)
    first = (str(err).strip().splitlines() or [""])[0]
    return f"run {spec.get('variant')}/seed{spec.get('seed')}: internal error: {type(err).__name__}: {first}"


def run_local(task, specs: list, workers: int, tick, idle=None, failed: list | None = None) -> None:
    """``task(spec)`` for every spec in ``workers`` spawned processes that die with this one; ``tick(n)`` after n
    finish; ``idle(finished specs)``, when given, whenever fewer tasks remain than workers (a core is free).

    A task's error stops every worker and is raised, unless ``failed`` is a list: then (spec, one-line message)
    is appended to it and the other tasks go on. A worker that dies (killed from outside, out of memory) breaks
    the pool and always stops the study."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    from nerve.errors import NerveError

    if not specs:
        return
    # The resource tracker (started with the pool, with this interpreter's -W options) unlinks the semaphores of
    # workers stopped mid-run itself; its "leaked semaphore" warning would only follow the one-line error.
    quiet = "ignore:resource_tracker:UserWarning"
    if quiet not in sys.warnoptions:
        sys.warnoptions.append(quiet)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                               initializer=die_with_parent, initargs=(os.getpid(),))
    ok, finished = False, []
    try:
        pending = {pool.submit(task, spec): spec for spec in specs}
        while pending:
            done, _ = wait(pending, timeout=2.0, return_when=FIRST_COMPLETED)
            for fut in done:
                try:
                    fut.result()
                except BrokenProcessPool:
                    raise NerveError("a study worker died (killed from outside, or out of memory); re-run the same "
                                     "command to resume") from None
                except Exception as err:
                    if failed is None:
                        raise
                    spec = pending.pop(fut)
                    failed.append((spec, task_error(spec, err)))
                    continue
                finished.append(pending.pop(fut))
            tick(len(done))
            if idle is not None and pending and len(pending) < workers:
                idle(finished)
        ok = True
    finally:
        if not ok:  # a run failed or we were interrupted: stop the other workers now, not after their runs
            stop_workers(list(getattr(pool, "_processes", {}).values()))
        pool.shutdown(wait=True, cancel_futures=True)
