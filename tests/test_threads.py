"""--threads sets torch's pool and the BLAS pool under numpy alike."""

from __future__ import annotations

import subprocess
import sys


def test_set_threads_limits_torch_and_the_blas_pool_of_numpy():
    code = ("import numpy, torch; from threadpoolctl import threadpool_info; from nerve.threads import set_threads; "
            "set_threads(1); blas = [p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas']; "
            "print(torch.get_num_threads(), blas)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "2"})
    threads, blas = proc.stdout.split(" ", 1)
    assert proc.returncode == 0 and threads == "1" and blas.strip() not in ("", "[]"), proc.stderr
    assert set(eval(blas)) == {1}
