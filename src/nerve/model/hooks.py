"""Named activation sites (identity modules) and context managers that capture or ablate them."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn


class HookPoint(nn.Module):
    """An identity module that names an activation site, like TransformerLens' HookPoint."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def hook_point(model: nn.Module, name: str) -> HookPoint:
    """The HookPoint called ``name`` in ``model`` (ValueError listing the known ones if absent)."""
    points = {n: m for n, m in model.named_modules() if isinstance(m, HookPoint)}
    if name not in points:
        raise ValueError(f"no hook point {name!r}; expected one of {sorted(points)}")
    return points[name]


@contextlib.contextmanager
def hooks(model: nn.Module, fwd_hooks: Sequence[tuple[str, Callable]]) -> Iterator[None]:
    """Attach forward hooks ``fn(module, input, output) -> output | None`` to named hook points; always removed."""
    handles = []
    try:
        for name, fn in fwd_hooks:
            handles.append(hook_point(model, name).register_forward_hook(fn))
        yield
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def capture(model: nn.Module, name: str = "encoder_out") -> Iterator[list[torch.Tensor]]:
    """Record every output of a hook point (detached) into the yielded list."""
    store: list[torch.Tensor] = []

    def fn(module, inputs, output):
        store.append(output.detach())

    with hooks(model, [(name, fn)]):
        yield store


@contextlib.contextmanager
def ablate(model: nn.Module, units: Sequence[int], name: str = "encoder_out",
           values: Sequence[float] | torch.Tensor | Callable | None = None) -> Iterator[None]:
    """Set the given units (last dimension) of a hook point to 0, or to ``values[unit]`` (one value per unit of
    the site, e.g. its mean), or, with a callable ``values(shape)`` (per-token values, e.g. resampled), to
    ``values(output.shape[:-1])[..., unit]`` (an array of ``shape + (n,)``), for every forward pass inside the
    block."""
    idx = torch.as_tensor(list(units), dtype=torch.long)
    per_token = callable(values)
    fill = None if values is None or per_token else torch.as_tensor(values, dtype=torch.float32)

    def fn(module, inputs, output):
        if idx.numel() == 0:
            return output
        out = output.clone()
        i = idx.to(out.device)
        if per_token:
            out[..., i] = torch.as_tensor(values(tuple(out.shape[:-1])), dtype=out.dtype).to(out.device)[..., i]
        else:
            out[..., i] = 0.0 if fill is None else fill.to(out.device, out.dtype)[i]
        return out

    with hooks(model, [(name, fn)]):
        yield
