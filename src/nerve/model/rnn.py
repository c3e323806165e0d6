"""Word-sequence encoders (LSTM, GRU, CNN) whose outputs at real tokens do not depend on padding."""

from __future__ import annotations

import torch
from torch import nn

from nerve.model.layers import Dropout


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence within its own length; padding stays at the end.

    Args:
        x: shape (batch, max_len, dim).
        lengths: shape (batch,).
    """
    B, L = x.shape[:2]
    t = torch.arange(L, device=x.device)[None, :]
    lens = lengths[:, None]
    idx = torch.where(t < lens, lens - 1 - t, t)  # shape: (batch, max_len)
    return x.gather(1, idx[..., None].expand_as(x))


class RNNEncoder(nn.Module):
    """Stacked uni- or bidirectional LSTM/GRU; the backward direction runs on sequences reversed in place,
    so no packing is needed and padding never reaches a real token."""

    def __init__(self, in_dim: int, hidden: int, layers: int, bidirectional: bool, cell: str):
        super().__init__()
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.bidirectional = bidirectional
        per_dir = hidden // 2 if bidirectional else hidden
        self.fwd = nn.ModuleList()
        self.bwd = nn.ModuleList()
        dim = in_dim
        for _ in range(layers):
            self.fwd.append(rnn(dim, per_dir, batch_first=True))
            if bidirectional:
                self.bwd.append(rnn(dim, per_dir, batch_first=True))
            dim = per_dir * (2 if bidirectional else 1)
        self.out_dim = dim

    def forward(self, x: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x (B, L, in_dim) -> (B, L, out_dim): forward units first, then backward units."""
        for k, f in enumerate(self.fwd):
            out, _ = f(x)
            if self.bidirectional:
                back, _ = self.bwd[k](reverse_padded(x, lengths))
                out = torch.cat([out, reverse_padded(back, lengths)], dim=-1)
            x = out
        return x


class CNNEncoder(nn.Module):
    """NCRF++-style word CNN: linear + tanh to ``hidden``, then ``layers`` x (Conv1d -> ReLU -> dropout)."""

    def __init__(self, in_dim: int, hidden: int, layers: int, kernel: int, dropout: float):
        super().__init__()
        if kernel % 2 == 0:
            kernel += 1
        self.proj = nn.Linear(in_dim, hidden)
        self.convs = nn.ModuleList(nn.Conv1d(hidden, hidden, kernel, padding=kernel // 2) for _ in range(layers))
        self.drop = Dropout(dropout)
        self.out_dim = hidden

    def forward(self, x: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        m = mask[..., None].to(x.dtype)
        h = torch.tanh(self.proj(x)) * m
        for conv in self.convs:
            h = self.drop(torch.relu(conv(h.transpose(1, 2)).transpose(1, 2))) * m
        return h
