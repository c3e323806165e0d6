"""CRF Viterbi over sentences concatenated token after token: compiled by numba (``viterbi``, the paths of
``CRF.decode`` in float64, many times faster: bench/bench_viterbi.py) and through the model's own ``CRF.decode``
(``torch_viterbi``)."""

from __future__ import annotations

import numpy as np
import torch

from nerve.model.crf.module import CRF
from nerve.model.crf.padding import padded_tokens, sentence_lengths


def torch_viterbi(emissions: np.ndarray, sentence_starts: np.ndarray, crf: tuple, batch_size: int = 256) -> np.ndarray:
    """Best tag of every token under a linear-chain CRF, decoded by ``nerve.model.crf.CRF.decode`` in float64.

    Args:
        emissions: float (n_tokens, T), the sentences one after another.
        sentence_starts: int (n_sentences,) first token of each sentence (strictly increasing, from 0).
        crf: (start (T,), transitions (T, T) [from, to], end (T,)), constraints already added (as the
            activations archive stores them).
        batch_size: sentences per call, sorted by length.

    Returns:
        intp (n_tokens,) tag ids.
    """
    start, trans, end = (torch.as_tensor(np.asarray(x, dtype=np.float64)) for x in crf)
    model = CRF(len(start)).double()
    with torch.no_grad():
        model.start_transitions.copy_(start)
        model.transitions.copy_(trans)
        model.end_transitions.copy_(end)
    em = np.asarray(emissions, dtype=np.float64)
    starts = np.asarray(sentence_starts, dtype=np.intp)
    lengths = sentence_lengths(starts, em.shape[0])
    out = np.empty(em.shape[0], dtype=np.intp)
    order = np.argsort(lengths, kind="stable")
    for b in range(0, order.size, batch_size):
        idx = order[b: b + batch_size]
        mask, token = padded_tokens(starts[idx], lengths[idx])  # shape: (batch, width) each
        padded = torch.from_numpy(em[token])  # shape: (batch, width, T); padding reads token 0, masked out
        paths = model.decode(padded, torch.from_numpy(mask)).numpy()
        out[token[mask]] = paths[mask]
    return out


_KERNEL = None


def _kernel():
    """The numba-compiled Viterbi kernel (compiled on first use, cached on disk where numba can write)."""
    global _KERNEL
    if _KERNEL is None:
        from numba import njit

        @njit(cache=True, nogil=True)
        def backtrack(base, m, L, trans, end, sc, out):
            """Best paths of one group from its stored scores: the first best predecessor on ties, as ``CRF.decode``."""
            T = trans.shape[0]
            for s in range(m):
                a = base[s]
                last = (L - 1) * T * m + s
                arg, best = 0, sc[last] + end[0]
                for j in range(1, T):
                    v = sc[last + j * m] + end[j]
                    if v > best:
                        arg, best = j, v
                out[a + L - 1] = arg
                for p in range(L - 1, 0, -1):
                    prev = (p - 1) * T * m + s
                    j, arg, best = arg, 0, sc[prev] + trans[0, arg]
                    for i in range(1, T):
                        v = sc[prev + i * m] + trans[i, j]
                        if v > best:
                            arg, best = i, v
                    out[a + p - 1] = arg

        @njit(cache=True, nogil=True)
        def decode(em, first, bounds, length, start, trans, end, preds, npred, rest, sc, top, best, out):
            """Viterbi paths of the sentences starting at first[bounds[g]:bounds[g+1]] (all of length length[g]) side
            by side, group by group: the score of position p, tag j, sentence s at sc[(p * T + j) * m + s]."""
            T = em.shape[1]
            for g in range(bounds.size - 1):
                m, L = bounds[g + 1] - bounds[g], length[g]
                base = first[bounds[g]: bounds[g + 1]]
                for j in range(T):
                    row = sc[j * m: (j + 1) * m]
                    for s in range(m):
                        row[s] = start[j] + em[base[s], j]
                for p in range(1, L):
                    prev = (p - 1) * T * m
                    top[:m] = sc[prev: prev + m]
                    for i in range(1, T):
                        row = sc[prev + i * m: prev + (i + 1) * m]
                        for s in range(m):
                            top[s] = row[s] if row[s] > top[s] else top[s]
                    for j in range(T):
                        i = preds[j, 0]
                        row, tr = sc[prev + i * m: prev + (i + 1) * m], trans[i, j]
                        for s in range(m):
                            best[s] = row[s] + tr
                        for q in range(1, npred[j]):
                            i = preds[j, q]
                            row, tr = sc[prev + i * m: prev + (i + 1) * m], trans[i, j]
                            for s in range(m):
                                v = row[s] + tr
                                best[s] = v if v > best[s] else best[s]
                        cur = sc[prev + (T + j) * m: prev + (T + j + 1) * m]
                        for s in range(m):
                            if top[s] + rest[j] >= best[s]:  # a predecessor not scanned might reach the max
                                v = sc[prev + s] + trans[0, j]
                                for i in range(1, T):
                                    w = sc[prev + i * m + s] + trans[i, j]
                                    v = w if w > v else v
                                best[s] = v
                            cur[s] = best[s] + em[base[s] + p, j]
                backtrack(base, m, L, trans, end, sc, out)

        _KERNEL = decode
    return _KERNEL


class ViterbiLayout:
    """Sentences grouped by length for the compiled Viterbi, with its work arrays (reused across decodes)."""

    def __init__(self, sentence_starts: np.ndarray, n_tokens: int, crf: tuple):
        self.crf = tuple(np.ascontiguousarray(x, dtype=np.float64) for x in crf)  # start, transitions, end
        trans = self.crf[1]
        starts = np.asarray(sentence_starts, dtype=np.int64)
        lengths = sentence_lengths(starts, n_tokens).astype(np.int64)
        if lengths.size and lengths.min() < 1:
            raise ValueError("sentence_starts: expected strictly increasing starts below n_tokens, from 0")
        order = np.argsort(lengths, kind="stable")
        self.first = starts[order]  # first token of each sentence, sorted by length
        sorted_lengths = lengths[order]
        cuts = np.flatnonzero(np.diff(sorted_lengths)) + 1
        self.bounds = (np.r_[0, cuts, starts.size] if starts.size else np.zeros(1)).astype(np.int64)
        self.length = sorted_lengths[self.bounds[:-1]]
        T = trans.shape[0]
        self.preds, self.npred, self.rest = _predecessors(trans)
        widest = int(np.diff(self.bounds).max(initial=1))
        self.sc = np.empty(int((self.length * np.diff(self.bounds)).max(initial=1)) * T)  # one group's scores
        self.top, self.best = np.empty(widest), np.empty(widest)


def _predecessors(trans: np.ndarray, gap: float = 1000.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per tag j, the predecessors i the forward pass scans (trans[i, j] within ``gap`` of the column's best: the
    legal ones of a constrained CRF) and the largest transition score of the others, which it bounds instead."""
    T = trans.shape[0]
    preds, npred, rest = np.zeros((T, T), np.int64), np.zeros(T, np.int64), np.full(T, -np.inf)
    for j in range(T):
        keep = trans[:, j] >= trans[:, j].max() - gap
        idx = np.flatnonzero(keep)
        preds[j, :idx.size], npred[j] = idx, idx.size
        if not keep.all():
            rest[j] = trans[~keep, j].max()
    return preds, npred, rest


def viterbi(emissions: np.ndarray, sentence_starts: np.ndarray, crf: tuple, layout: ViterbiLayout | None = None
            ) -> np.ndarray:
    """Best tag of every token under a linear-chain CRF, in float64: the paths of ``CRF.decode``.

    score_t(j) = max_i (score_{t-1}(i) + trans[i, j]) + e_t(j), then the first best predecessor on ties, as
    ``CRF.decode``. Compiled by numba, the sentences of one length side by side (the loops over them vectorise);
    per tag only the predecessors near the column's best transition are scanned — the legal ones of a constrained
    CRF — and the others are bounded: max_i score_{t-1}(i) + their best transition; where that bound reaches the
    scanned maximum, all are scanned. So the scores are exact, and the backtrack re-scans every predecessor of
    the stored scores in order. bench/bench_viterbi.py times it against ``CRF.decode``.

    Args:
        emissions: float (n_tokens, T), the sentences one after another.
        sentence_starts: int (n_sentences,) first token of each sentence (strictly increasing, from 0).
        crf: (start (T,), transitions (T, T) [from, to], end (T,)), constraints already added.
        layout: ``ViterbiLayout(sentence_starts, n_tokens, crf)`` made once for many decodes of the same sentences and
            CRF (its grouping, CRF arrays and work arrays; ``sentence_starts`` and ``crf`` are then not read).

    Returns:
        intp (n_tokens,) tag ids.
    """
    em = np.ascontiguousarray(emissions, dtype=np.float64)
    lay = layout or ViterbiLayout(sentence_starts, em.shape[0], crf)
    start, trans, end = lay.crf
    out = np.empty(em.shape[0], dtype=np.int64)
    _kernel()(em, lay.first, lay.bounds, lay.length, start, trans, end, lay.preds, lay.npred, lay.rest, lay.sc,
                  lay.top, lay.best, out)
    return out.astype(np.intp, copy=False)
