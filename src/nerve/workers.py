"""Study worker processes: they die with the study, and stop cleanly when the study stops them."""

from __future__ import annotations

import os
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
