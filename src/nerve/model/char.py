"""Character-level word representations: CNN with max pooling, or a bidirectional LSTM/GRU."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nerve.model.layers import Dropout

from nerve.model.rnn import reverse_padded


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
        B, L, C = chars.shape
        x = self.drop(self.emb(chars.view(B * L, C)))  # shape: (B*L, C, emb)
        # The convolution as one matmul over 3-character windows: much faster than Conv1d for short words on CPU.
        xp = F.pad(x, (0, 0, 1, 1))  # shape: (B*L, C+2, emb)
        windows = torch.cat([xp[:, :-2], xp[:, 1:-1], xp[:, 2:]], dim=-1)  # shape: (B*L, C, 3*emb)
        w = self.conv.weight.permute(2, 1, 0).reshape(-1, self.conv.out_channels)  # shape: (3*emb, hidden)
        y = torch.addmm(self.conv.bias, windows.reshape(-1, windows.shape[-1]), w).view(B * L, C, -1)
        pad = torch.arange(C, device=chars.device)[None, :] >= char_lens.view(B * L, 1).clamp(min=1)
        y = y.masked_fill(pad[:, :, None], float("-inf")).amax(dim=1)
        return y.view(B, L, -1)


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
        B, L, C = chars.shape
        lens = char_lens.view(B * L).clamp(min=1)
        x = self.drop(self.emb(chars.view(B * L, C)))
        f, _ = self.fwd(x)
        last = f[torch.arange(B * L, device=chars.device), lens - 1]
        r, _ = self.bwd(reverse_padded(x, lens))
        first = r[torch.arange(B * L, device=chars.device), lens - 1]
        return torch.cat([last, first], dim=-1).view(B, L, -1)
