"""Why the word CNN runs its convolutions as one matmul over shifted views: forward + backward time per batch
against torch's Conv1d, on CoNLL-2003-sized batches (32 sentences x 20 tokens, 200 channels, kernel 3).

Run:  taskset -c 0 python bench/bench_conv.py [--repeats 200]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

torch.set_num_threads(1)

from machine import cpu_name  # noqa: E402  (bench/machine.py: the scripts run as python bench/X.py)

from nerve.model.rnn import conv1d_as_matmul  # noqa: E402


def per_batch(fn, x: torch.Tensor, repeats: int) -> float:
    """Mean seconds of forward + backward of ``fn(x).sum()``."""
    for _ in range(10):
        fn(x).sum().backward()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn(x).sum().backward()
    return (time.perf_counter() - t0) / repeats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=200)
    args = ap.parse_args()
    torch.manual_seed(0)
    conv = nn.Conv1d(200, 200, 3, padding=1)
    x = torch.randn(32, 20, 200, requires_grad=True)
    ref = per_batch(lambda v: conv(v.transpose(1, 2)).transpose(1, 2), x, args.repeats)
    fast = per_batch(lambda v: conv1d_as_matmul(v, conv), x, args.repeats)
    same = torch.allclose(conv1d_as_matmul(x, conv), conv(x.transpose(1, 2)).transpose(1, 2), atol=1e-5)
    print(f"machine: {cpu_name()}, torch {torch.__version__}, 1 thread")
    print(f"Conv1d: {ref * 1e3:.3f} ms / batch; matmul: {fast * 1e3:.3f} ms / batch; "
          f"speed-up {ref / fast:.2f}x; same output: {same}")


if __name__ == "__main__":
    main()
