"""Words to sub-tokens and back: each sentence's sub-token ids with the word every sub-token belongs to, batches
of them, and word-level reading of a sub-token site (the first sub-token, or the mean of a word's sub-tokens)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nerve.errors import NerveError


@dataclass(frozen=True)
class Pieces:
    """One sentence as the model reads it. ids: int64 (S,) sub-token ids, special tokens included; word_of: int64
    (S,) the word of each sub-token (-1 for special tokens); first: int64 (L,) each word's first sub-token."""

    ids: np.ndarray
    word_of: np.ndarray
    first: np.ndarray


def encode_words(tokenizer, sentences: list[list[str]], path: str, lines: list[int], max_len: int) -> list[Pieces]:
    """Sub-tokenise word lists with a fast tokenizer (``is_split_into_words``). A word the tokenizer turns into no
    sub-token (e.g. a lone control or zero-width character) is read as the unknown token, so every word has a
    first sub-token.

    Raises:
        NerveError: a sentence longer than ``max_len`` sub-tokens (naming ``path`` and its line in ``lines``), or a
            tokenizer that cannot map sub-tokens to words (not a "fast" tokenizer).
    """
    if not getattr(tokenizer, "is_fast", False):
        raise NerveError(f"{type(tokenizer).__name__}: expected a fast tokenizer (a tokenizer.json in the model "
                         "folder): nerve maps sub-tokens to words through it")
    out: list[Pieces] = []
    for start in range(0, len(sentences), 1024):
        chunk = [list(s) for s in sentences[start: start + 1024]]
        enc = tokenizer(chunk, is_split_into_words=True, add_special_tokens=True)
        for i, words in enumerate(chunk):
            word_ids = enc.word_ids(i)
            seen = {w for w in word_ids if w is not None}
            if len(seen) < len(words):  # words without sub-tokens: read as the unknown token
                words = [w if j in seen else tokenizer.unk_token for j, w in enumerate(words)]
                one = tokenizer([words], is_split_into_words=True, add_special_tokens=True)
                ids, word_ids = one["input_ids"][0], one.word_ids(0)
            else:
                ids = enc["input_ids"][i]
            if len(ids) > max_len:
                raise NerveError(f"{path}:{lines[start + i]}: the sentence has {len(ids)} sub-tokens, more than the "
                                 f"model's {max_len} positions; split it")
            word_of = np.array([-1 if w is None else w for w in word_ids], dtype=np.int64)
            first = np.full(len(words), -1, dtype=np.int64)
            for pos in range(len(word_of) - 1, -1, -1):
                if word_of[pos] >= 0:
                    first[word_of[pos]] = pos
            out.append(Pieces(np.asarray(ids, dtype=np.int64), word_of, first))
    return out


@dataclass
class WordBatch:
    """Sentences padded side by side. ids, attention: (B, S) sub-tokens; first: (B, L) each word's first sub-token
    (0 at padding); word_of: (B, S) word of each sub-token (-1: special or padding); mask: (B, L) real words;
    tags: (B, L) gold tag ids (0 at padding), or None."""

    ids: torch.Tensor
    attention: torch.Tensor
    first: torch.Tensor
    word_of: torch.Tensor
    mask: torch.Tensor
    tags: torch.Tensor | None = None

    def to(self, device) -> WordBatch:
        move = (lambda t: None if t is None else t.to(device))
        return WordBatch(*(move(getattr(self, f)) for f in ("ids", "attention", "first", "word_of", "mask", "tags")))


def word_batch(pieces: list[Pieces], pad_id: int, tags: list[np.ndarray] | None = None) -> WordBatch:
    """Pad ``pieces`` (and their tag ids) into one ``WordBatch``."""
    B, S, L = len(pieces), max(len(p.ids) for p in pieces), max(len(p.first) for p in pieces)
    ids = np.full((B, S), pad_id, dtype=np.int64)
    attention, word_of = np.zeros((B, S), dtype=np.int64), np.full((B, S), -1, dtype=np.int64)
    first, mask, gold = np.zeros((B, L), dtype=np.int64), np.zeros((B, L), dtype=bool), np.zeros((B, L), np.int64)
    for r, p in enumerate(pieces):
        ids[r, : len(p.ids)], attention[r, : len(p.ids)], word_of[r, : len(p.ids)] = p.ids, 1, p.word_of
        first[r, : len(p.first)], mask[r, : len(p.first)] = p.first, True
        if tags is not None:
            gold[r, : len(p.first)] = tags[r]
    t = torch.from_numpy
    return WordBatch(t(ids), t(attention), t(first), t(word_of), t(mask), None if tags is None else t(gold))


def read_words(h: torch.Tensor, batch: WordBatch, pooling: str) -> torch.Tensor:
    """Word-level values (B, L, n) of a sub-token site h (B, S, n): each word's first sub-token, or (``mean``) the
    mean over its sub-tokens."""
    if pooling == "first":
        return h.gather(1, batch.first.unsqueeze(-1).expand(-1, -1, h.shape[-1]))
    L = batch.first.shape[1]
    member = (batch.word_of.unsqueeze(1) == torch.arange(L, device=h.device).view(1, L, 1)).to(h.dtype)  # (B, L, S)
    return (member @ h) / member.sum(-1, keepdim=True).clamp(min=1)


def word_positions(batch: WordBatch, pooling: str) -> torch.Tensor:
    """bool (B, S): the sub-tokens a word-level edit writes: the words' first sub-tokens, or (``mean``) all of
    theirs."""
    if pooling == "mean":
        return batch.word_of >= 0
    pos = torch.zeros(batch.ids.shape, dtype=torch.bool, device=batch.ids.device)
    rows = torch.arange(batch.first.shape[0], device=pos.device).unsqueeze(1).expand_as(batch.first)
    pos[rows[batch.mask], batch.first[batch.mask]] = True
    return pos
