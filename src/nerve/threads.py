"""One number of CPU threads for everything a process computes with: torch's intra-op pool and the BLAS under
numpy (OpenBLAS spins its threads: two study workers on two cores, each with a BLAS pool of two, ran the draws'
matrix products 3.3× slower than with one thread each — docs/RESULTS.md, issue 31)."""

from __future__ import annotations


def set_threads(n: int) -> None:
    """Use ``n`` threads in torch and in every BLAS library loaded now or later in this process."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    threadpool_limits(limits=n, user_api="blas")  # applied for the rest of the process (not a with-block)
