"""CRF log-partition on CPU by the scaled forward-backward algorithm in float64 numpy, with analytic gradients."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.autograd.function import once_differentiable


class NoLegalPath(ArithmeticError):
    """Every tag sequence of some item has probability zero in float64 (e.g. all of them forbidden)."""


def _forward(em: np.ndarray, mask: np.ndarray, start: np.ndarray, trans: np.ndarray, end: np.ndarray):
    """Scaled forward pass (Rabiner 1989, section V.A) over a left-aligned batch.

    Args:
        em: Emissions ``(batch_size, seq_len, num_tags)``, float64, finite everywhere.
        mask: Bool ``(batch_size, seq_len)``, left-aligned, first column all True.
        start, trans, end: Effective transition scores ``(num_tags,)``, ``(num_tags, num_tags)``
            indexed ``[from, to]``, ``(num_tags,)``.

    Returns:
        ``(log_z, cache)``: float64 ``(batch_size,)`` and what :func:`_backward` needs.

    Raises:
        NoLegalPath: If some item's partition function underflows to zero.
    """
    batch_size, seq_len, num_tags = em.shape
    lengths = mask.sum(axis=1)
    order = np.argsort(-lengths, kind="stable")  # longest first: the items still running at step i are [:n]
    em, lengths = em[order], lengths[order]
    active = (lengths[None, :] > np.arange(seq_len)[:, None]).sum(axis=1)  # shape: (seq_len,)
    shift = em.max(axis=2, keepdims=True)  # shape: (batch_size, seq_len, 1)
    e = np.exp(em - shift)  # shape: (batch_size, seq_len, num_tags), max entry 1 per step
    t_max, s_max, z_max = trans.max(), start.max(), end.max()
    t = np.exp(trans - t_max)
    z = np.exp(end - z_max)
    alpha = np.zeros_like(e)  # alpha[:, i]: scaled forward scores, each real step sums to 1, 0 at padding
    scale = np.ones((batch_size, seq_len))  # scale[:, i]: the normaliser of step i (1 at padding)
    a = np.exp(start - s_max) * e[:, 0]
    scale[:, 0] = a.sum(axis=1)
    alpha[:, 0] = a / scale[:, 0, None]
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero normaliser is caught below
        for i in range(1, seq_len):
            n = active[i]
            a = alpha[:n, i - 1] @ t
            a *= e[:n, i]
            c = a.sum(axis=1)
            scale[:n, i] = c
            alpha[:n, i] = a / c[:, None]
        log_scale = np.log(scale)
    rows = np.arange(batch_size)
    z_end = alpha[rows, lengths - 1] @ z
    if not (np.isfinite(log_scale).all() and (z_end > 0).all()):  # finite normalisers keep alpha finite
        raise NoLegalPath
    shifts = np.where(mask[order], shift[:, :, 0], 0.0).sum(axis=1)
    log_z = log_scale.sum(axis=1) + np.log(z_end) + s_max + z_max + (lengths - 1) * t_max + shifts
    out = np.empty_like(log_z)
    out[order] = log_z
    return out, (order, lengths, active, e, t, z, alpha, scale, z_end)


def _backward(grad: np.ndarray, cache):
    """Marginals times ``grad``: the gradients of ``sum(grad * log_z)``.

    Returns:
        ``(d_emissions, d_start, d_trans, d_end)`` with the shapes of the forward inputs.
    """
    order, lengths, active, e, t, z, alpha, scale, z_end = cache
    batch_size, seq_len, num_tags = e.shape
    rows = np.arange(batch_size)
    beta = np.zeros_like(e)  # scaled backward scores: gamma = alpha * beta sums to 1 at each real step
    beta[rows, lengths - 1] = z[None, :] / z_end[:, None]
    w = np.zeros_like(e)  # w[:, i] = e[:, i] * beta[:, i] / scale[:, i] at real steps i >= 1, else 0
    t_rev = np.ascontiguousarray(t.T)
    for i in range(seq_len - 1, 0, -1):
        n = active[i]
        wi = e[:n, i] * beta[:n, i]
        wi /= scale[:n, i, None]
        w[:n, i] = wi
        beta[:n, i - 1] = wi @ t_rev
    g = grad[order]
    gamma = alpha * beta  # shape: (batch_size, seq_len, num_tags); 0 at padding
    gamma *= g[:, None, None]
    d_em = np.empty_like(gamma)
    d_em[order] = gamma
    d_start = gamma[:, 0].sum(axis=0)
    d_end = gamma[rows, lengths - 1].sum(axis=0)
    # pairwise marginals summed over items and steps: alpha[i-1] (x) w[i], times t
    pair = alpha[:, :-1] * g[:, None, None]
    d_trans = t * (pair.reshape(-1, num_tags).T @ w[:, 1:].reshape(-1, num_tags))
    return d_em, d_start, d_trans, d_end


class LogPartition(torch.autograd.Function):
    """``log Z`` of each item, differentiable in the emissions and the effective transitions (CPU only)."""

    @staticmethod
    def forward(ctx, emissions: Tensor, mask: Tensor, start: Tensor, trans: Tensor, end: Tensor) -> Tensor:
        np_mask = mask.numpy()
        em, s, t, z = (x.detach().numpy().astype(np.float64) for x in (emissions, start, trans, end))
        log_z, cache = _forward(em, np_mask, s, t, z)
        ctx.cache = cache
        ctx.dtypes = (emissions.dtype, start.dtype, trans.dtype, end.dtype)
        return torch.from_numpy(log_z).to(torch.promote_types(emissions.dtype, trans.dtype))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        grads = _backward(grad.numpy().astype(np.float64), ctx.cache)
        d_em, d_start, d_trans, d_end = (torch.from_numpy(np.ascontiguousarray(g)).to(dt)
                                         for g, dt in zip(grads, ctx.dtypes))
        return d_em, None, d_start, d_trans, d_end


def log_partition(emissions: Tensor, mask: Tensor, start: Tensor, trans: Tensor, end: Tensor) -> Tensor:
    """Forward-algorithm ``log Z`` of a batch on CPU, shape ``(batch_size,)``.

    Args:
        emissions: ``(batch_size, seq_len, num_tags)``, finite (zero at padding).
        mask: Bool ``(batch_size, seq_len)``, left-aligned.
        start, trans, end: Effective transition scores (constraint penalties included).

    Raises:
        NoLegalPath: If some item has no path of non-zero probability in float64.
    """
    return LogPartition.apply(emissions, mask, start, trans, end)
