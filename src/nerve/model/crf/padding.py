"""Sentences concatenated token after token (a ``sentence_starts`` array) as a padded batch for the CRF."""

from __future__ import annotations

import numpy as np


def sentence_lengths(sentence_starts: np.ndarray, n_tokens: int) -> np.ndarray:
    """Length of each sentence: int (n_sentences,), from its first token (strictly increasing, from 0) to the next."""
    return np.diff(np.r_[sentence_starts, n_tokens])


def padded_tokens(starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(mask, token)``, both (n_sentences, width) with width the longest length: mask bool, True at a sentence's
    positions; token int, the token index of each position (0 at padding, which ``mask`` marks)."""
    width = int(lengths.max(initial=0))
    pos = np.arange(width)
    mask = pos[None, :] < lengths[:, None]  # shape: (n_sentences, width)
    token = np.where(mask, starts[:, None] + pos[None, :], 0)  # shape: (n_sentences, width)
    return mask, token
