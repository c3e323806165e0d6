"""Character-level word representations: CNN with max pooling, or a bidirectional LSTM/GRU."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from nerve.model.layers import Dropout
from nerve.model.rnn import conv1d_as_matmul, reverse_padded


def unique_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the first occurrence of each distinct row of ``x`` (N, C), and each row's group (N,)."""
    if x.device.type != "cpu":
        uniq, inv = torch.unique(x, dim=0, return_inverse=True)
        first = torch.full((len(uniq),), len(x), dtype=torch.long, device=x.device)
        first.scatter_reduce_(0, inv, torch.arange(len(x), device=x.device), reduce="amin")
        return first, inv
    a = np.ascontiguousarray(x.numpy())
    keys = a.view(np.dtype((np.void, a.dtype.itemsize * a.shape[1]))).ravel()
    _, first, inv = np.unique(keys, return_index=True, return_inverse=True)
    return torch.from_numpy(first), torch.from_numpy(inv.reshape(-1))


def encode_words(encoder: nn.Module, chars: torch.Tensor, char_lens: torch.Tensor) -> torch.Tensor:
    """chars (B, L, C), char_lens (B, L) -> (B, L, out) through ``encoder._encode`` ((N, C), (N,) -> (N, out)).

    In eval mode each distinct word is encoded once (its representation does not depend on context).
    """
    B, L, C = chars.shape
    flat, lens = chars.reshape(B * L, C), char_lens.reshape(B * L)
    if not encoder.training:
        first, inv = unique_rows(flat)
        return encoder._encode(flat[first], lens[first])[inv].view(B, L, -1)
    return encoder._encode(flat, lens).view(B, L, -1)


def char_embedding(n_chars: int, emb_dim: int) -> nn.Embedding:
    """Character embeddings, uniform(±sqrt(3/dim)) as NCRF++, padding row 0 zero."""
    emb = nn.Embedding(n_chars, emb_dim, padding_idx=0)
    nn.init.uniform_(emb.weight, -(3.0 / emb_dim) ** 0.5, (3.0 / emb_dim) ** 0.5)
    with torch.no_grad():
        emb.weight[0].zero_()
    return emb


class CharCNN(nn.Module):
    """Char embeddings -> dropout -> Conv1d(kernel 3) -> max over the word's characters (NCRF++ CharCNN)."""

    def __init__(self, n_chars: int, emb_dim: int, hidden: int, dropout: float):
        super().__init__()
        self.emb = char_embedding(n_chars, emb_dim)
        self.drop = Dropout(dropout)
        self.conv = nn.Conv1d(emb_dim, hidden, kernel_size=3, padding=1)
        self.out_dim = hidden

    def forward(self, chars: torch.Tensor, char_lens: torch.Tensor) -> torch.Tensor:
        """chars (B, L, C), char_lens (B, L) -> (B, L, hidden); padding characters never win the max."""
        return encode_words(self, chars, char_lens)

    def _encode(self, chars: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        """chars (N, C), lens (N,) -> (N, hidden)."""
        N, C = chars.shape
        x = self.drop(self.emb(chars))  # shape: (N, C, emb)
        y = conv1d_as_matmul(x, self.conv)  # shape: (N, C, hidden)
        pad = torch.arange(C, device=chars.device)[None, :] >= lens.view(N, 1).clamp(min=1)
        return y.masked_fill(pad[:, :, None], float("-inf")).amax(dim=1)


class CharRNN(nn.Module):
    """Char embeddings -> dropout -> bidirectional LSTM/GRU; last forward and first backward states (NCRF++)."""

    def __init__(self, n_chars: int, emb_dim: int, hidden: int, dropout: float, cell: str = "lstm"):
        super().__init__()
        self.emb = char_embedding(n_chars, emb_dim)
        self.drop = Dropout(dropout)
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        half = max(hidden // 2, 1)
        self.fwd = rnn(emb_dim, half, batch_first=True)
        self.bwd = rnn(emb_dim, half, batch_first=True)
        self.out_dim = 2 * half

    def forward(self, chars: torch.Tensor, char_lens: torch.Tensor) -> torch.Tensor:
        """chars (B, L, C), char_lens (B, L) -> (B, L, out_dim)."""
        return encode_words(self, chars, char_lens)

    def _encode(self, chars: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        """chars (N, C), lens (N,) -> (N, out_dim): last forward state, first backward state."""
        N = chars.shape[0]
        lens = lens.clamp(min=1)
        x = self.drop(self.emb(chars))  # shape: (N, C, emb)
        f, _ = self.fwd(x)
        last = f[torch.arange(N, device=chars.device), lens - 1]
        r, _ = self.bwd(reverse_padded(x, lens))
        first = r[torch.arange(N, device=chars.device), lens - 1]
        return torch.cat([last, first], dim=-1)
