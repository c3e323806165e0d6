"""Entity and token metrics identical to seqeval's default (conlleval) mode, plus a fast chunk scorer."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from nerve.data.schemes import end_of_chunk, read_chunks, start_of_chunk
from nerve.tags import OUTSIDE as _O
from nerve.tags import split_or_outside as _lenient

_BLOCK = 1 << 18  # elements per block in counts_many: work buffers stay cache-sized


def _check_lengths(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> None:
    if len(gold) != len(pred):
        raise ValueError(f"expected {len(gold)} predicted sentences like gold, got {len(pred)}")
    for i, (g, p) in enumerate(zip(gold, pred)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: expected {len(g)} predicted tags like gold, got {len(p)}")


def _prf(n_correct: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    """Precision, recall, F1 from counts; 0.0 where undefined."""
    p = n_correct / n_pred if n_pred else 0.0
    r = n_correct / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def _sentence_entities(sents: Sequence[Sequence[str]]) -> set[tuple[str, int, int, int]]:
    """All entities as (type, sentence, start, end) read by conlleval rules."""
    return {
        (t, i, s, e) for i, sent in enumerate(sents) for t, s, e in read_chunks([_lenient(x) for x in sent])
    }


def entity_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict:
    """Entity-level micro precision/recall/F1 and per-type scores, as seqeval's default mode.

    Tags may be in any scheme (BIO, IOB1, BIOES); tags that are not O and not
    "<P>-<TYPE>" (e.g. padding) count as O. Each sentence is read separately.

    Args:
        gold: (n_sentences, n_tokens_i) gold tag strings.
        pred: (n_sentences, n_tokens_i) predicted tag strings.

    Returns:
        {"precision", "recall", "f1": float (0.0 when undefined),
         "per_type": {type: {"precision", "recall", "f1": float, "support": int}}}
        with types sorted, covering every type in gold or pred; support counts gold entities.

    Raises:
        ValueError: if the numbers of sentences or of tokens in a sentence differ.
    """
    _check_lengths(gold, pred)
    g, p = _sentence_entities(gold), _sentence_entities(pred)
    hit = g & p
    n_gold, n_pred, n_hit = (Counter(e[0] for e in s) for s in (g, p, hit))
    per_type = {}
    for t in sorted(n_gold.keys() | n_pred.keys()):
        pt, rt, ft = _prf(n_hit[t], n_pred[t], n_gold[t])
        per_type[t] = {"precision": pt, "recall": rt, "f1": ft, "support": n_gold[t]}
    prec, rec, f1 = _prf(len(hit), len(p), len(g))
    return {"precision": prec, "recall": rec, "f1": f1, "per_type": per_type}


def token_accuracy(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> float:
    """Share of tokens whose predicted tag equals the gold tag (0.0 with no tokens).

    Args:
        gold: (n_sentences, n_tokens_i) gold tag strings.
        pred: (n_sentences, n_tokens_i) predicted tag strings.
    """
    _check_lengths(gold, pred)
    pairs = [(a, b) for g, p in zip(gold, pred) for a, b in zip(g, p)]
    return sum(a == b for a, b in pairs) / len(pairs) if pairs else 0.0


def per_tag_accuracy(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], tags: Sequence[str] | None = None
) -> dict[str, float]:
    """For each gold tag, the share of its tokens predicted as that tag.

    Args:
        gold: (n_sentences, n_tokens_i) gold tag strings.
        pred: (n_sentences, n_tokens_i) predicted tag strings.
        tags: tags to report, in this order; default: every gold tag, sorted.

    Returns:
        {tag: accuracy}; a tag with no gold token maps to NaN.
    """
    _check_lengths(gold, pred)
    total, right = Counter(), Counter()
    for g, p in zip(gold, pred):
        for a, b in zip(g, p):
            total[a] += 1
            right[a] += a == b
    keys = sorted(total) if tags is None else list(tags)
    return {t: right[t] / total[t] if total[t] else float("nan") for t in keys}


class ChunkScorer:
    """Vectorised conlleval chunk scoring of many predictions against one fixed gold tagging.

    Per call the cost is a few numpy passes over the tokens plus gathers at the gold
    chunks; no Python loop over tokens or chunks. Instances keep work buffers, so
    one instance must not be used from several threads at once.
    """

    def __init__(self, tags: Sequence[str], gold: np.ndarray, sentence_starts: np.ndarray):
        """Precompute the pair lookup table and the gold chunks.

        Args:
            tags: names of tag ids (any scheme: BIO, IOB1 read as conlleval, BIOES); tags
                that are not O and not prefixed (e.g. a padding tag) count as O.
            gold: int (n_tokens,) tag ids, sentences concatenated in order.
            sentence_starts: int (n_sentences,) index of each sentence's first token,
                sorted, first is 0 (repeats, i.e. empty sentences, are allowed).
        """
        self.tags = list(tags)
        self.n_tags = len(self.tags)
        if np.ndim(gold) != 1:
            raise ValueError(f"gold: expected int tag ids of shape (n_tokens,), got shape {np.shape(gold)}")
        self.n_tokens = len(gold)
        gold = self._check_pred(gold, "gold")
        self._tables()
        self._across = self._boundary_codes(sentence_starts)
        self._buf: tuple[np.ndarray, np.ndarray] | None = None
        self._index: dict[int, tuple[np.ndarray, ...]] = {}
        pairs = self._pairs(gold[None])[0]
        self.gold_starts = np.flatnonzero(pairs[:-1] & 1)
        self.gold_ends = np.flatnonzero(pairs[1:] & 2)
        self.gold_types = self._type_of[gold[self.gold_starts]]
        self._interior()

    def _tables(self) -> None:
        """Lookup table over pair codes: ``start(cur) | end(prev) << 1 | (type(cur) + 1) << 2``.

        k = n_tags + 1, id n_tags being a virtual O boundary. Code ``prev * k + cur``
        is a pair inside a sentence; ``k * k + prev * k + cur`` is a pair across a
        sentence boundary (cur's start is read after it, prev's end before it).
        """
        parsed = [_lenient(t) for t in self.tags] + [_O]
        k = len(parsed)
        st = np.array([[start_of_chunk(x, y) for y in parsed] for x in parsed], np.int64)
        en = np.array([[end_of_chunk(x, y) for y in parsed] for x in parsed], np.int64)
        self.types = sorted({t for _, t in parsed if t})
        self._type_of = np.array([self.types.index(t) if t else -1 for _, t in parsed], np.int64)
        cur_type = (self._type_of[None, :] + 1) << 2
        inside = st | en << 1 | cur_type
        across = st[-1][None, :] | en[:, -1][:, None] << 1 | cur_type
        dtype = np.uint8 if len(self.types) < 63 else np.uint32
        self._k = k
        self._table = np.concatenate([inside.ravel(), across.ravel()]).astype(dtype)

    def _boundary_codes(self, sentence_starts: np.ndarray) -> np.ndarray:
        """Code offsets (n_tokens + 1,): k*k at each pair position that crosses a sentence boundary."""
        s = np.asarray(sentence_starts)
        n = self.n_tokens
        if s.ndim != 1 or (s.size and not np.issubdtype(s.dtype, np.integer)):
            raise ValueError(f"sentence_starts: expected a 1-d int array, got shape {s.shape} {s.dtype}")
        if (n and s.size == 0) or (s.size and (s[0] != 0 or np.any(np.diff(s) < 0) or s[-1] > n)):
            raise ValueError(f"sentence_starts: expected sorted indices in [0, {n}] starting with 0")
        across = np.zeros(n + 1, np.intp)
        across[s] = self._k * self._k
        across[n] = self._k * self._k
        return across

    def _interior(self) -> None:
        """Pair positions s+1..e of multi-token gold chunks (s, e), with reduceat offsets."""
        multi = np.flatnonzero(self.gold_ends > self.gold_starts)
        lengths = self.gold_ends[multi] - self.gold_starts[multi]
        offsets = (np.cumsum(lengths) - lengths).astype(np.intp)
        inner = np.arange(int(lengths.sum()), dtype=np.intp) - np.repeat(offsets, lengths)
        self._multi = multi
        self._inner = inner + np.repeat(self.gold_starts[multi] + 1, lengths)
        self._offsets = offsets
        self._want = 3 | (self.gold_types + 1) << 2
        self._type_onehot = np.zeros((self.gold_types.size, len(self.types)), np.int64)  # gold chunk -> its type
        self._type_onehot[np.arange(self.gold_types.size), self.gold_types] = 1

    def _check_pred(self, pred: np.ndarray, name: str = "pred") -> np.ndarray:
        """Validate int (..., n_tokens) tag ids in [0, n_tags)."""
        a = np.asarray(pred)
        if a.ndim < 1 or a.shape[-1] != self.n_tokens or not np.issubdtype(a.dtype, np.integer):
            raise ValueError(
                f"{name}: expected int tag ids of shape (..., {self.n_tokens}), got {a.shape} {a.dtype}"
            )
        if a.size and (a.min() < 0 or a.max() >= self.n_tags):
            raise ValueError(f"{name}: expected tag ids in [0, {self.n_tags}), got {a.min()}..{a.max()}")
        return a if np.can_cast(a.dtype, np.intp) else a.astype(np.intp)

    def _buffers(self, m: int) -> tuple[np.ndarray, np.ndarray]:
        """Reusable (m, n_tokens + 1) work arrays (fresh large arrays cost page faults every call)."""
        if self._buf is None or self._buf[0].shape[0] < m:
            shape = (m, self.n_tokens + 1)
            self._buf = (np.empty(shape, np.intp), np.empty(shape, self._table.dtype))
        return self._buf[0][:m], self._buf[1][:m]

    def _pairs(self, p: np.ndarray) -> np.ndarray:
        """Table values of each token pair for tag ids p (m, n_tokens), shape (m, n_tokens + 1).

        Element j describes the pair (token j - 1, token j), tokens -1 and n_tokens
        being boundaries. The result is a work buffer, overwritten by the next call.
        """
        k = self._k
        codes, pairs = self._buffers(p.shape[0])
        np.multiply(p, k, out=codes[:, 1:])
        codes[:, 0] = (k - 1) * k
        codes[:, :-1] += p
        codes[:, -1] += k - 1
        codes += self._across
        np.take(self._table, codes, out=pairs, mode="clip")
        return pairs

    def _block_index(self, m: int) -> tuple[np.ndarray, ...]:
        """Gold gather indices into m flattened rows of pairs (cached per m)."""
        if m not in self._index:
            stride, g, rows = self.n_tokens + 1, self.gold_starts.size, np.arange(m)[:, None]
            if len(self._index) > 4:
                self._index.clear()
            self._index[m] = (
                (self.gold_starts + rows * stride).ravel(),
                (self.gold_ends + 1 + rows * stride).ravel(),
                np.tile(self._want, m),
                (self._inner + rows * stride).ravel(),
                (self._offsets + rows * self._inner.size).ravel(),
                (self._multi + rows * g).ravel(),
            )
        return self._index[m]

    def _counts_block(self, p: np.ndarray, by_type: bool = False) -> np.ndarray:
        """(m, 3) counts for a block of predictions p (m, n_tokens); with ``by_type``, (m, n_types + 1, 3): the
        counts of each entity type (``self.types`` order), then the micro counts.

        A gold chunk (s, e, x) is correct iff pred starts an x chunk at s, ends a chunk
        at e and flags nothing at pairs s+1..e (no end in [s, e), hence no start in (s, e]).
        """
        m, g = p.shape[0], self.gold_starts.size
        pairs = self._pairs(p)
        flat = pairs.reshape(-1)
        starts, ends, want, inner, offsets, multi = self._block_index(m)
        ok = (np.take(flat, starts) | 2) == want
        ok &= (np.take(flat, ends) & 2) != 0
        if multi.size:
            flagged = np.bitwise_or.reduceat(np.take(flat, inner), offsets) & 3
            ok[multi] &= flagged == 0
        out = np.empty((m, 3), np.int64)
        out[:, 0] = ok.reshape(m, g).sum(axis=1)
        out[:, 1] = (pairs & 1).sum(axis=1, dtype=np.int64)
        out[:, 2] = g
        if not by_type:
            return out
        n_types = len(self.types)
        per = np.empty((m, n_types + 1, 3), np.int64)  # types, then the micro counts
        per[:, -1] = out
        per[:, :-1, 0] = ok.reshape(m, g).astype(np.int64) @ self._type_onehot
        started = (pairs >> 2).astype(np.intp) * (pairs & 1)  # type + 1 where a predicted chunk starts, else 0
        started += (np.arange(m, dtype=np.intp) * (n_types + 1))[:, None]
        per[:, :-1, 1] = np.bincount(started.ravel(), minlength=m * (n_types + 1)).reshape(m, -1)[:, 1:]
        per[:, :-1, 2] = np.bincount(self.gold_types, minlength=n_types)
        return per

    def counts_many(self, preds: np.ndarray) -> np.ndarray:
        """Chunk counts for many predictions, vectorised over rows (in blocks).

        Args:
            preds: int (m, n_tokens) predicted tag ids.

        Returns:
            int64 (m, 3): n_correct, n_pred_chunks, n_gold_chunks per row.
        """
        p = np.asarray(preds)
        if p.ndim != 2:
            raise ValueError(f"preds: expected shape (m, {self.n_tokens}), got {p.shape}")
        step = max(1, _BLOCK // (self.n_tokens + 1))
        blocks = [
            self._counts_block(self._check_pred(p[i : i + step], "preds")) for i in range(0, p.shape[0], step)
        ]
        return np.concatenate(blocks) if blocks else np.empty((0, 3), np.int64)

    def type_counts_many(self, preds: np.ndarray) -> np.ndarray:
        """Chunk counts per entity type for many predictions.

        Args:
            preds: int (m, n_tokens) predicted tag ids.

        Returns:
            int64 (m, n_types + 1, 3): n_correct, n_pred_chunks, n_gold_chunks of each type in ``self.types``
            order (a chunk's type is its first token's), then of all types together (``counts_many``).
        """
        p = np.asarray(preds)
        if p.ndim != 2:
            raise ValueError(f"preds: expected shape (m, {self.n_tokens}), got {p.shape}")
        step = max(1, _BLOCK // (self.n_tokens + 1))
        blocks = [self._counts_block(self._check_pred(p[i : i + step], "preds"), by_type=True)
                  for i in range(0, p.shape[0], step)]
        return np.concatenate(blocks) if blocks else np.empty((0, len(self.types) + 1, 3), np.int64)

    def counts(self, pred: np.ndarray) -> tuple[int, int, int]:
        """Chunk counts for one prediction.

        Args:
            pred: int (n_tokens,) predicted tag ids.

        Returns:
            (n_correct, n_pred_chunks, n_gold_chunks).
        """
        p = self._check_pred(pred)
        if p.ndim != 1:
            raise ValueError(f"pred: expected shape ({self.n_tokens},), got {p.shape}")
        c = self._counts_block(p[None])[0]
        return int(c[0]), int(c[1]), int(c[2])

    def prf(self, pred: np.ndarray) -> tuple[float, float, float]:
        """Micro precision, recall, F1 of one prediction (0.0 where undefined).

        Args:
            pred: int (n_tokens,) predicted tag ids.
        """
        return _prf(*self.counts(pred))
