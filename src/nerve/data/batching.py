"""Turn sentences into id arrays once, then into padded tensor batches."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nerve.data.conll import Sentence, normalize_number
from nerve.data.vocab import Vocabs
from nerve.errors import NerveError

# Capitalisation classes of the built-in feature.
CAP_LOWER, CAP_UPPER, CAP_TITLE, CAP_MIXED, CAP_NONE = 1, 2, 3, 4, 5
N_CAP = 6  # id 0 is padding


def cap_class(word: str) -> int:
    """Capitalisation class: all lower, all upper, first upper, mixed, or no letters."""
    letters = [c for c in word if c.isalpha()]
    if not letters:
        return CAP_NONE
    if all(c.islower() for c in letters):
        return CAP_LOWER
    if all(c.isupper() for c in letters):
        return CAP_UPPER
    if word[0].isupper() and all(c.islower() for c in letters[1:]):
        return CAP_TITLE
    return CAP_MIXED


CONLL_COLUMNS = {"[POS]": 1, "[CHUNK]": 2}


def feature_columns(sent: Sentence, features: list[str], labelled: bool, path: str = "") -> list[list[str]]:
    """Values of each configured feature column for one sentence.

    A feature is a column index (``"1"`` = the column after the word) or an NCRF++ name (``"[POS]"``, matched
    against values written ``[POS]NN``; in files without such values ``[POS]`` and ``[CHUNK]`` name CoNLL-2003's
    columns 1 and 2).
    """
    out = []
    last = len(sent.columns[0]) - (1 if labelled else 0) if sent.columns else 0
    for feat in features:
        if feat.startswith("["):
            col = None
            for k in range(1, last):
                if sent.columns[0][k].startswith(feat):
                    col = k
            if col is None and feat.upper() in CONLL_COLUMNS and CONLL_COLUMNS[feat.upper()] < last:
                col = CONLL_COLUMNS[feat.upper()]  # plain CoNLL-2003 layout: word POS chunk tag
                out.append([row[col] for row in sent.columns])
                continue
            if col is None:
                raise NerveError(f"{path}:{sent.line}: no column holds feature {feat} (expected values like {feat}X)")
            out.append([row[col][len(feat):] for row in sent.columns])
        else:
            k = int(feat)
            if not 1 <= k < last:
                raise NerveError(f"{path}:{sent.line}: feature column {k} does not exist; the file has "
                                 f"{max(last - 1, 0)} feature columns between word and tag")
            out.append([row[k] for row in sent.columns])
    return out


@dataclass
class Encoded:
    """One sentence as id arrays (all of length n_words)."""

    words: np.ndarray
    chars: list[np.ndarray]
    caps: np.ndarray
    feats: list[np.ndarray]
    tags: np.ndarray | None


class Indexer:
    """Maps sentences to ids with a model's vocabularies; words unseen in training but present in the
    pretrained table get extra ids beyond the training vocabulary (their pretrained vectors are used)."""

    def __init__(self, vocabs: Vocabs, features: list[str], number_normalized: bool, pretrained=None,
                 chars: bool = True, caps: bool = True, normalize: bool = False):
        self.vocabs = vocabs
        self.features = features
        self.number_normalized = number_normalized
        self.pretrained = pretrained
        self.normalize = normalize  # extra vectors scaled to unit length, like the training vocabulary's
        self.chars = chars
        self.caps = caps  # False: capitalisation classes are left 0 (the model has no capitalisation feature)
        self.extra_words: dict[str, int] = {}
        self.extra_rows: list[int] = []
        # per allow_extra: word -> id, word -> char ids, word -> capitalisation class
        self._ids: dict[bool, dict[str, int]] = {False: {}, True: {}}
        self._chars: dict[str, np.ndarray] = {}
        self._caps: dict[str, int] = {}

    def norm(self, word: str) -> str:
        return normalize_number(word) if self.number_normalized else word

    def word_id(self, word: str, allow_extra: bool) -> int:
        w = self.norm(word)
        i = self.vocabs.words.stoi.get(w)
        if i is not None:
            return i
        if allow_extra and self.pretrained is not None:
            j = self.extra_words.get(w)
            if j is not None:
                return j
            row = self.pretrained.row(w)
            if row is not None:
                j = len(self.vocabs.words) + len(self.extra_rows)
                self.extra_words[w] = j
                self.extra_rows.append(row)
                return j
        return 1

    def extra_vectors(self) -> np.ndarray | None:
        """Pretrained vectors of the extra ids, in id order (None when there are none)."""
        if not self.extra_rows:
            return None
        return self.pretrained.rows(self.extra_rows, self.normalize)

    def _add(self, word: str, allow_extra: bool) -> None:
        self._ids[allow_extra][word] = self.word_id(word, allow_extra)
        if word not in self._chars:
            chars = self.vocabs.chars
            self._chars[word] = (np.array([chars.get(c) for c in self.norm(word)[:MAX_WORD_CHARS]],
                                          dtype=np.int64) if self.chars else _NO_CHARS)
            self._caps[word] = cap_class(word) if self.caps else 0

    def encode(self, sent: Sentence, labelled: bool, allow_extra: bool, path: str = "",
               tag_column: bool | None = None) -> Encoded:
        """Ids of one sentence; ``tag_column`` says whether the last column is a tag (default: ``labelled``)."""
        v = self.vocabs
        tag_column = labelled if tag_column is None else tag_column
        ws = sent.words
        ids = self._ids[allow_extra]
        for w in ws:
            if w not in ids:
                self._add(w, allow_extra)
        words = np.fromiter(map(ids.__getitem__, ws), dtype=np.int64, count=len(ws))
        chars = list(map(self._chars.__getitem__, ws))
        caps = np.fromiter(map(self._caps.__getitem__, ws), dtype=np.int64, count=len(ws))
        cols = feature_columns(sent, self.features, tag_column, path) if self.features and sent.words else []
        feats = [np.array([fv.get(x) for x in col], dtype=np.int64) for fv, col in zip(v.features, cols)]
        if len(feats) < len(v.features):
            feats = [np.zeros(len(sent.words), dtype=np.int64) for _ in v.features]
        tags = None
        if labelled and sent.tags:
            try:
                tags = np.fromiter(map(v.tags.stoi.__getitem__, sent.tags), dtype=np.int64, count=len(sent.tags))
            except KeyError as err:
                line = sent.line + sent.tags.index(err.args[0])  # a sentence's tokens are consecutive lines
                raise NerveError(f"{path}:{line}: tag {err.args[0]!r} was never seen in training "
                                 f"(the model knows {', '.join(v.tags.itos)})") from None
        return Encoded(words, chars, caps, feats, tags)


_NO_CHARS = np.zeros(0, dtype=np.int64)
# Character encoders read at most this many characters of a word (its first ones), so that one very long token
# (a URL, a base64 blob) cannot pad a whole batch to its length; the longest word of the four registered corpora
# has 195 characters.
MAX_WORD_CHARS = 200


@dataclass
class Batch:
    """Padded tensors for a batch of non-empty sentences."""

    words: torch.Tensor  # shape: (batch, max_len)
    chars: torch.Tensor  # shape: (batch, max_len, max_word_len)
    char_lens: torch.Tensor  # shape: (batch, max_len), 0 at padding
    caps: torch.Tensor  # shape: (batch, max_len)
    feats: list[torch.Tensor]  # each shape: (batch, max_len)
    tags: torch.Tensor | None  # shape: (batch, max_len), 0 at padding
    mask: torch.Tensor  # shape: (batch, max_len) bool
    lengths: torch.Tensor  # shape: (batch,)

    def to(self, device) -> Batch:
        if str(device) == "cpu":
            return self
        mv = lambda t: None if t is None else t.to(device)
        return Batch(mv(self.words), mv(self.chars), mv(self.char_lens), mv(self.caps), [mv(f) for f in self.feats],
                     mv(self.tags), mv(self.mask), mv(self.lengths))


def make_batch(items: list[Encoded], with_chars: bool = True) -> Batch:
    """Pad a list of encoded (non-empty) sentences into a Batch."""
    n = len(items)
    lengths = np.array([len(e.words) for e in items], dtype=np.int64)
    L = int(lengths.max())
    mask = np.arange(L)[None, :] < lengths[:, None]
    words = np.zeros((n, L), dtype=np.int64)
    caps = np.zeros((n, L), dtype=np.int64)
    feats = [np.zeros((n, L), dtype=np.int64) for _ in items[0].feats]
    has_tags = items[0].tags is not None
    tags = np.zeros((n, L), dtype=np.int64) if has_tags else None
    for i, e in enumerate(items):
        m = len(e.words)
        words[i, :m] = e.words
        caps[i, :m] = e.caps
        for f, src in zip(feats, e.feats):
            f[i, :m] = src
        if has_tags:
            tags[i, :m] = e.tags
    if with_chars:
        char_lens = np.zeros((n, L), dtype=np.int64)
        for i, e in enumerate(items):
            char_lens[i, : len(e.chars)] = [len(c) for c in e.chars]
        C = max(int(char_lens.max()), 1)
        chars = np.zeros((n, L, C), dtype=np.int64)
        for i, e in enumerate(items):
            for j, c in enumerate(e.chars):
                chars[i, j, : len(c)] = c
    else:
        char_lens = np.zeros((n, L), dtype=np.int64)
        chars = np.zeros((n, L, 1), dtype=np.int64)
    t = torch.from_numpy
    return Batch(t(words), t(chars), t(char_lens), t(caps), [t(f) for f in feats],
                 None if tags is None else t(tags), t(mask), t(lengths))


def batches(items: list[Encoded], batch_size: int, order: np.ndarray | None = None, with_chars: bool = True):
    """Yield (indices, Batch) over the non-empty items, in ``order`` (default: as given)."""
    idx = np.arange(len(items)) if order is None else order
    idx = [i for i in idx if len(items[i].words) > 0]
    for s in range(0, len(idx), batch_size):
        chunk = idx[s: s + batch_size]
        yield chunk, make_batch([items[i] for i in chunk], with_chars)


def length_sorted(items: list[Encoded]) -> np.ndarray:
    """Indices sorted by length (longest first): less padding for evaluation batches."""
    return np.argsort([-len(e.words) for e in items], kind="stable")
