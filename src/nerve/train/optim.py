"""Optimisers behind one small interface: dense SGD (torch.optim.SGD's arithmetic without importing torch._dynamo,
~1.5 s), row-sparse SGD for word embeddings, Adam/AdamW, and gradient clipping over all of them."""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn


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


class RowSparseSGD:
    """SGD with L2 (and optionally momentum) for an embedding matrix whose gradient touches few rows.

    Without momentum it gives the same update as dense ``torch.optim.SGD(weight_decay=l2)``: every row decays by
    ``1 - lr*l2`` and the looked-up rows also move by ``-lr * grad`` — without materialising a dense gradient.

    With momentum ``mu`` a row that is not looked up keeps moving by its decaying buffer; those pending steps are
    applied in closed form (``w -= lr * buf * mu(1-mu^k)/(1-mu)``, ``buf *= mu^k`` after ``k`` steps) when the row
    is next looked up, when the learning rate changes and on ``flush()``. This equals dense
    ``torch.optim.SGD(momentum=mu, weight_decay=l2)`` up to float rounding when ``lr*l2/(1-mu) < 2**-25``: then
    dense float32 SGD leaves rows without gradient unmoved by the L2 term, which is what we do
    (see ``sparse_momentum_ok``).
    """

    def __init__(self, embedding: nn.Embedding, momentum: float = 0.0):
        self.emb = embedding
        self.momentum = float(momentum)
        self.rows: torch.Tensor | None = None
        self.index: torch.Tensor | None = None
        n = embedding.num_embeddings
        self.buf = torch.zeros_like(embedding.weight.detach()) if self.momentum else None  # shape: (n_words, dim)
        self.done = np.zeros(n, dtype=np.int64)  # steps applied to each row (momentum only)
        self.t = 0  # steps taken
        self.lr: float | None = None  # learning rate of the steps taken so far without a flush

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """Embed ``ids`` (any shape) so that the gradient lands on the unique rows only."""
        if ids.device.type == "cpu":
            uniq, inv = np.unique(ids.numpy(), return_inverse=True)
            uniq, inv = torch.from_numpy(uniq), torch.from_numpy(inv.reshape(ids.shape))
        else:
            uniq, inv = torch.unique(ids, return_inverse=True)
        if self.buf is not None:
            self._catch_up(uniq)
        self.index = uniq
        self.rows = self.emb.weight.detach()[uniq].requires_grad_()
        return self.rows[inv]

    @torch.no_grad()
    def _catch_up(self, index: torch.Tensor) -> None:
        """Apply the momentum-only steps that rows ``index`` missed since their last update."""
        idx = index.cpu().numpy()
        k = self.t - self.done[idx]
        if self.lr is None or not k.any():
            return
        mu = self.momentum
        decay = mu ** k.astype(np.float64)
        moved = self.lr * mu * (1.0 - decay) / (1.0 - mu)
        w, buf = self.emb.weight, self.buf
        b = buf[index]
        w.index_add_(0, index, b * torch.from_numpy(-moved).to(b)[:, None])
        buf.index_copy_(0, index, b * torch.from_numpy(decay).to(b)[:, None])
        self.done[idx] = self.t

    @torch.no_grad()
    def flush(self) -> None:
        """Bring every row up to date (before the weights are read outside training: evaluation, saving)."""
        if self.buf is not None:
            self._catch_up(torch.arange(self.emb.num_embeddings, device=self.buf.device))

    @torch.no_grad()
    def step(self, lr: float, l2: float) -> None:
        if self.rows is None:
            return
        grad = self.rows.grad
        if grad is not None and self.emb.padding_idx is not None:
            grad[self.index == self.emb.padding_idx] = 0.0
        if self.buf is not None:
            self._momentum_step(lr, l2, torch.zeros_like(self.rows) if grad is None else grad)
        else:
            self._plain_step(lr, l2, grad)
        self.rows = self.index = None

    def _plain_step(self, lr: float, l2: float, grad: torch.Tensor | None) -> None:
        w = self.emb.weight
        if grad is not None and l2:
            if lr * l2 < 2.0 ** -25:
                # float32 SGD leaves rows without gradient unchanged: p - lr*l2*p rounds to p. Only the
                # looked-up rows feel the decay, through grad + l2 * p, exactly as in torch.optim.SGD.
                grad = grad + l2 * w[self.index]
            else:
                w.mul_(1.0 - lr * l2)
        if grad is not None:
            w.index_add_(0, self.index, grad, alpha=-lr)

    def _momentum_step(self, lr: float, l2: float, grad: torch.Tensor) -> None:
        if self.lr is not None and lr != self.lr:
            self.flush()  # the pending steps were taken at the old rate
        self.lr = lr
        w, index = self.emb.weight, self.index
        if l2:
            grad = grad + l2 * w[index]
        b = self.buf[index].mul_(self.momentum).add_(grad)
        self.buf.index_copy_(0, index, b)
        w.index_add_(0, index, b, alpha=-lr)
        self.t += 1
        self.done[index.cpu().numpy()] = self.t

    def grad_norm_sq(self) -> torch.Tensor:
        """Squared norm of the pending row gradient (for clipping)."""
        if self.rows is None or self.rows.grad is None:
            return torch.zeros(())
        return self.rows.grad.pow(2).sum()

    def scale_grad(self, factor: float) -> None:
        if self.rows is not None and self.rows.grad is not None:
            self.rows.grad.mul_(factor)

    def state_dict(self) -> dict:
        """Momentum state, to be taken after ``flush()``."""
        return {"buf": self.buf, "t": self.t, "lr": self.lr}

    def load_state_dict(self, state: dict) -> None:
        if "t" not in state or (state.get("buf") is None) != (self.buf is None):
            raise ValueError("row-sparse optimizer state does not match the momentum setting")
        if self.buf is not None:
            self.buf.copy_(state["buf"])
        self.t, self.lr = int(state["t"]), state["lr"]
        self.done[:] = self.t


def sparse_momentum_ok(lr: float, l2: float, momentum: float) -> bool:
    """True when dense float32 momentum SGD leaves rows without gradient unmoved by L2 alone."""
    return momentum < 1.0 and lr * l2 / (1.0 - momentum) < 2.0 ** -25


class WeightAverage:
    """Running mean of the epoch-end weights (stochastic weight averaging, Izmailov et al. 2018)."""

    def __init__(self, state: dict | None = None):
        self.n = 0 if state is None else int(state["n"])
        self.mean: dict[str, torch.Tensor] | None = None if state is None else state["mean"]

    @torch.no_grad()
    def add(self, model: nn.Module) -> None:
        weights = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
        self.n += 1
        if self.mean is None:
            self.mean = {k: v.detach().clone() for k, v in weights.items()}
            return
        for k, v in weights.items():
            self.mean[k].add_(v - self.mean[k], alpha=1.0 / self.n)

    @contextlib.contextmanager
    def swapped_in(self, model: nn.Module):
        """Load the mean weights into ``model`` for the block, then restore the trained ones."""
        own = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict({**own, **self.mean})
        try:
            yield model
        finally:
            model.load_state_dict(own)

    def state_dict(self) -> dict | None:
        return None if self.mean is None else {"n": self.n, "mean": self.mean}


class Optimizer:
    """What training steps: the dense optimiser of every parameter but (with row-sparse SGD) the word embeddings,
    and the row-sparse one of those. ``word_lookup`` is the embedding lookup the model must use while training
    (None: its own)."""

    def __init__(self, dense, sparse: RowSparseSGD | None = None):
        self.dense = dense
        self.sparse = sparse
        self.params = [p for g in dense.param_groups for p in g["params"]]

    @property
    def word_lookup(self):
        return None if self.sparse is None else self.sparse.lookup

    @property
    def lr(self) -> float:
        return self.dense.param_groups[0]["lr"]

    def set_lr(self, lr: float) -> None:
        for g in self.dense.param_groups:
            g["lr"] = lr

    def zero_grad(self) -> None:
        self.dense.zero_grad(set_to_none=True)

    def clip(self, max_norm: float) -> None:
        """Clip the total gradient norm (embedding rows included) to ``max_norm``, like clip_grad_norm_."""
        grads = [p.grad for p in self.params if p.grad is not None]
        norms = list(torch._foreach_norm(grads)) if grads else []
        if self.sparse is not None:
            norms.append(self.sparse.grad_norm_sq().sqrt())
        if not norms:
            return
        coef = max_norm / (float(torch.stack(norms).norm()) + 1e-6)
        if coef < 1.0:
            if grads:
                torch._foreach_mul_(grads, coef)
            if self.sparse is not None:
                self.sparse.scale_grad(coef)

    def step(self, l2: float) -> None:
        self.dense.step()
        if self.sparse is not None:
            self.sparse.step(self.lr, l2)

    def flush(self) -> None:
        """Bring lazily updated rows up to date (before the weights are read: evaluation, saving)."""
        if self.sparse is not None:
            self.sparse.flush()

    def state_dict(self) -> dict:
        return {"optimizer": self.dense.state_dict(),
                "row_sparse": None if self.sparse is None else self.sparse.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Raises ValueError or KeyError when the state does not fit (another nerve version or config)."""
        self.dense.load_state_dict(state["optimizer"])
        if self.sparse is not None and self.sparse.momentum:
            self.sparse.load_state_dict(state.get("row_sparse") or {})


def make_optimizer(train, model: nn.Module, fine_tune: bool = True) -> Optimizer:
    """The optimiser of ``train`` (a TrainConfig) for ``model``. SGD updates the word embeddings row-sparsely
    (same arithmetic as dense SGD with L2 and momentum up to float rounding, much faster) when they are
    fine-tuned and momentum allows it."""
    sparse = None
    if train.optimizer == "sgd" and fine_tune and (train.momentum == 0 or
                                                    sparse_momentum_ok(train.lr, train.l2, train.momentum)):
        sparse = RowSparseSGD(model.word_emb, train.momentum)
    params = [p for p in model.parameters() if p.requires_grad and not (sparse and p is model.word_emb.weight)]
    if train.optimizer == "sgd":
        return Optimizer(SGD(params, lr=train.lr, momentum=train.momentum, weight_decay=train.l2), sparse)
    cls = torch.optim.Adam if train.optimizer == "adam" else torch.optim.AdamW
    return Optimizer(cls(params, lr=train.lr, weight_decay=train.l2))
