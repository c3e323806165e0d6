"""Small layers tuned for CPU training speed: dropout with numpy-drawn masks, row-sparse embedding updates."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class Dropout(nn.Module):
    """Inverted dropout like ``nn.Dropout``, drawing its mask with one ``torch.rand`` (about 2x faster on CPU)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = float(p)
        self.rng: np.random.Generator | None = None  # CPU masks come from this seeded generator when set

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.rng is not None and x.device.type == "cpu":
            keep = self.rng.random(x.shape, dtype=np.float32) >= self.p
            mask = torch.from_numpy(keep.astype(np.float32) * np.float32(1.0 / (1.0 - self.p)))
            return x * mask
        keep = torch.rand(x.shape, device=x.device) >= self.p
        return x * keep.to(x.dtype) * (1.0 / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"


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
