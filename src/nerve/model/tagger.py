"""The sequence tagger: word (+char, +features) representation -> encoder -> hook point -> tag layer."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nerve.config import Config
from nerve.data.batching import N_CAP, Batch
from nerve.data.vocab import Vocabs
from nerve.model.char import CharCNN, CharRNN
from nerve.model.crf import CRF, transition_constraints
from nerve.model.hooks import HookPoint
from nerve.model.layers import Dropout
from nerve.model.rnn import CNNEncoder, RNNEncoder

ANALYSIS_SITE = "encoder_out"


class Tagger(nn.Module):
    """NCRF++-style tagger.

    The encoder output, after dropout, passes through the hook point ``encoder_out``; only the tag projection
    ``hidden2tag`` reads it. Emissions are ``hidden2tag(encoder_out)``.
    """

    def __init__(self, cfg: Config, vocabs: Vocabs, word_dim: int, word_matrix: np.ndarray | None = None):
        super().__init__()
        m = cfg.model
        self.cfg = cfg
        self.tags = list(vocabs.tags.itos)
        self.word_emb = nn.Embedding(len(vocabs.words), word_dim, padding_idx=0)
        if word_matrix is not None:
            self.word_emb.weight.data.copy_(torch.from_numpy(word_matrix))
        self.word_emb.weight.requires_grad_(cfg.embeddings.fine_tune)
        in_dim = word_dim
        self.char = None
        if m.char == "cnn":
            self.char = CharCNN(len(vocabs.chars), m.char_emb_dim, m.char_hidden, m.dropout)
        elif m.char in ("lstm", "gru"):
            self.char = CharRNN(len(vocabs.chars), m.char_emb_dim, m.char_hidden, m.dropout, m.char)
        if self.char is not None:
            in_dim += self.char.out_dim
        self.cap_emb = nn.Embedding(N_CAP, m.cap_emb_dim, padding_idx=0) if m.cap_feature else None
        if self.cap_emb is not None:
            in_dim += m.cap_emb_dim
        self.feat_embs = nn.ModuleList(nn.Embedding(len(v), m.feature_emb_dim, padding_idx=0) for v in vocabs.features)
        in_dim += m.feature_emb_dim * len(vocabs.features)
        self.drop_in = Dropout(m.dropout)
        if m.encoder == "cnn":
            self.encoder = CNNEncoder(in_dim, m.hidden, m.cnn_layers or m.layers, m.cnn_kernel, m.dropout,
                                      m.cnn_batchnorm)
        else:
            self.encoder = RNNEncoder(in_dim, m.hidden, m.layers, m.bidirectional, m.encoder)
        self.drop_out = Dropout(m.dropout)
        self.encoder_out = HookPoint()
        self.hidden2tag = nn.Linear(self.encoder.out_dim, len(self.tags))
        self.crf = None
        if m.decoder == "crf":
            allowed = (None, None, None)
            if m.crf_constraints:
                allowed = transition_constraints(self.tags, cfg.data.scheme)
            self.crf = CRF(len(self.tags), *allowed)

    def seed_dropout(self, rng: np.random.Generator | None) -> None:
        """Draw every CPU dropout mask from ``rng`` (a seeded generator whose state checkpoints save)."""
        for mod in self.modules():
            if isinstance(mod, Dropout):
                mod.rng = rng

    @property
    def n_units(self) -> int:
        return self.encoder.out_dim

    def unit_names(self) -> list[str]:
        """Names of the analysis-site units: f0.., b0.. for bidirectional RNNs, else 0..n-1."""
        n = self.n_units
        if isinstance(self.encoder, RNNEncoder) and self.encoder.bidirectional:
            return [f"f{i}" for i in range(n // 2)] + [f"b{i}" for i in range(n // 2)]
        return [str(i) for i in range(n)]

    def embed(self, batch: Batch, extra: torch.Tensor | None = None, word_lookup=None) -> torch.Tensor:
        """Input representation, shape (B, L, in_dim). ``extra`` holds vectors of ids beyond the vocabulary;
        ``word_lookup`` (training only) replaces the word-embedding lookup (row-sparse SGD's)."""
        if extra is not None and extra.numel():
            table = torch.cat([self.word_emb.weight, extra.to(self.word_emb.weight)], dim=0)
            parts = [F.embedding(batch.words, table, padding_idx=0)]
        elif word_lookup is not None and self.training:
            parts = [word_lookup(batch.words)]
        else:
            parts = [self.word_emb(batch.words)]
        if self.char is not None:
            parts.append(self.char(batch.chars, batch.char_lens))
        if self.cap_emb is not None:
            parts.append(self.cap_emb(batch.caps))
        for emb, ids in zip(self.feat_embs, batch.feats):
            parts.append(emb(ids))
        return torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]

    def emissions(self, batch: Batch, extra: torch.Tensor | None = None, word_lookup=None) -> torch.Tensor:
        """Tag scores before softmax/CRF, shape (B, L, n_tags)."""
        x = self.drop_in(self.embed(batch, extra, word_lookup))
        h = self.encoder(x, batch.mask, batch.lengths)
        h = self.encoder_out(self.drop_out(h))
        return self.hidden2tag(h)

    def loss(self, batch: Batch, word_lookup=None) -> torch.Tensor:
        """Summed negative log-likelihood of the gold tags over the batch (NCRF++ convention)."""
        em = self.emissions(batch, word_lookup=word_lookup)
        if self.crf is not None:
            return self.crf.neg_log_likelihood(em, batch.tags, batch.mask, reduction="sum")
        gold = batch.tags.masked_fill(~batch.mask, -100)
        return F.cross_entropy(em.reshape(-1, em.shape[-1]), gold.reshape(-1), ignore_index=-100, reduction="sum")

    @torch.no_grad()
    def decode(self, batch: Batch, extra: torch.Tensor | None = None, nbest: int = 1):
        """Best tag ids (B, L) (0 at padding); with ``nbest`` > 1 (CRF only) also (paths (B,n,L), scores (B,n))."""
        em = self.emissions(batch, extra)
        if self.crf is None:
            if nbest > 1:
                raise ValueError("n-best decoding needs a CRF model (model.decoder = crf)")
            return em.argmax(dim=-1).masked_fill(~batch.mask, 0)
        if nbest > 1:
            paths, scores = self.crf.nbest(em, batch.mask, nbest)
            return paths[:, 0], (paths, scores)
        return self.crf.decode(em, batch.mask)
