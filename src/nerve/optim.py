"""SGD with momentum and L2, the arithmetic of torch.optim.SGD, without importing torch._dynamo (~1.5 s)."""

from __future__ import annotations

import torch


class SGD:
    """``torch.optim.SGD(params, lr, momentum, weight_decay)`` (dampening 0, no Nesterov) as a small class.

    torch.optim's constructor imports torch._dynamo, which costs about 1.5 s of start-up on a CPU machine.
    """

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        self.param_groups = [{"params": list(params), "lr": lr, "momentum": momentum, "weight_decay": weight_decay}]
        self.buffers: list[torch.Tensor | None] = [None] * len(self.param_groups[0]["params"])

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.param_groups[0]["params"]:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        g = self.param_groups[0]
        lr, mom, wd = g["lr"], g["momentum"], g["weight_decay"]
        live = [i for i, p in enumerate(g["params"]) if p.grad is not None]
        if not live:
            return
        params = [g["params"][i] for i in live]
        grads = [p.grad for p in params]
        steps = grads if wd == 0 else torch._foreach_add(grads, params, alpha=wd)  # one C++ loop, same arithmetic
        if mom != 0:
            for k, i in enumerate(live):
                if self.buffers[i] is None:
                    self.buffers[i] = torch.zeros_like(params[k])  # 0 * mom + d: the first step is d itself
            bufs = [self.buffers[i] for i in live]
            torch._foreach_mul_(bufs, mom)
            torch._foreach_add_(bufs, steps)
            steps = bufs
        torch._foreach_add_(params, steps, alpha=-lr)

    def state_dict(self) -> dict:
        g = self.param_groups[0]
        return {"lr": g["lr"], "momentum": g["momentum"], "weight_decay": g["weight_decay"], "buffers": self.buffers}

    def load_state_dict(self, state: dict) -> None:
        g = self.param_groups[0]
        if len(state["buffers"]) != len(g["params"]):
            raise ValueError(f"optimizer state has {len(state['buffers'])} buffers; expected {len(g['params'])}")
        g["lr"], g["momentum"], g["weight_decay"] = state["lr"], state["momentum"], state["weight_decay"]
        self.buffers = [None if b is None else b.to(p.device) for b, p in zip(state["buffers"], g["params"])]
