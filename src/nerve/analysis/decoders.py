"""Re-decoding with units removed one by one: incremental softmax argmax, and CRF Viterbi compiled by numba (the
same paths as the model's own ``CRF.decode`` in float64, many times faster: bench/bench_viterbi.py)."""

from __future__ import annotations

import numpy as np
import torch

_U32 = float(np.finfo(np.float32).eps)  # 2 * unit roundoff of float32: a safe per-operation bound


class SoftmaxDecoder:
    """Argmax of h_masked @ W.T + b (float64 semantics) while units are removed in sequence.

    Logits are kept in float32, tags-major (n_tags, n_tokens), and removing unit u is
    the rank-1 update logits -= outer(W[:, u], h[:, u]). The float32 result differs from
    the float64 reference by at most delta_t = (n + max_k + 2) * eps32 * S_t per logit,
    where S_t = max_j sum_i |h[t, i] W[j, i]| + |b_j|. A token whose best logit beats
    every other by more than the tolerance 4 * (n + max_k + 4) * eps32 * S_t (over 2 delta_t)
    has the same argmax as the reference; the remaining tokens (near or exact ties) are
    recomputed as h[rows] @ (W * keep).T + b in float64, first max on ties. Zeroing W's
    columns instead of h's gives bit-identical emissions (the products are exact zeros).
    """

    def __init__(self, h: np.ndarray, W: np.ndarray, b: np.ndarray, max_k: int):
        """h: float (n_tokens, n); W: float (n_tags, n); b: float (n_tags,); max_k: longest removal sequence."""
        self.h = h
        self.W64 = np.asarray(W, dtype=np.float64)
        self.b64 = np.asarray(b, dtype=np.float64)
        n_tags, n = self.W64.shape
        self.hT = np.ascontiguousarray(np.asarray(h, dtype=np.float32).T)  # (n, n_tokens)
        self.W32 = self.W64.astype(np.float32)
        self.L0 = self.W32 @ self.hT + self.b64.astype(np.float32)[:, None]  # (n_tags, n_tokens)
        scale = (np.abs(self.W32) @ np.abs(self.hT)).max(axis=0) + np.abs(self.b64).max(initial=0.0)
        self.tol = (4 * (n + max_k + 4) * _U32 * scale).astype(np.float32)
        self.index_dtype = np.uint8 if n_tags <= 255 else np.uint16
        self.weights = np.arange(n_tags, dtype=self.index_dtype)[:, None]
        self.L = np.empty_like(self.L0)
        self._tmp = np.empty_like(self.L0)
        self._ge = np.empty(self.L0.shape, dtype=bool)
        self.n_fallback = 0

    def reset(self) -> None:
        """Start a new removal sequence with every unit present."""
        np.copyto(self.L, self.L0)

    def remove(self, u: int) -> None:
        """Remove unit u from the current logits."""
        np.multiply.outer(self.W32[:, u], self.hT[u], out=self._tmp)
        self.L -= self._tmp

    def decode(self, mask: np.ndarray) -> np.ndarray:
        """Tag ids (n_tokens,) for the current logits; ``mask`` (n,) bool marks the removed units."""
        L = self.L
        top = L.max(axis=0)
        np.greater_equal(L, top - self.tol, out=self._ge)
        ge = self._ge.view(np.uint8)
        count = ge.sum(axis=0, dtype=self.index_dtype)
        pred = (ge * self.weights).sum(axis=0, dtype=self.index_dtype)
        rows = np.flatnonzero(count != 1)
        if rows.size:
            self.n_fallback += rows.size
            keep = self.W64 * ~mask
            exact = np.asarray(self.h[rows], dtype=np.float64) @ keep.T + self.b64
            pred[rows] = exact.argmax(axis=1)
        return pred


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
    from nerve.model.crf import CRF

    start, trans, end = (torch.as_tensor(np.asarray(x, dtype=np.float64)) for x in crf)
    model = CRF(len(start)).double()
    with torch.no_grad():
        model.start_transitions.copy_(start)
        model.transitions.copy_(trans)
        model.end_transitions.copy_(end)
    em = np.asarray(emissions, dtype=np.float64)
    starts = np.asarray(sentence_starts, dtype=np.intp)
    lengths = np.diff(np.r_[starts, em.shape[0]])
    out = np.empty(em.shape[0], dtype=np.intp)
    order = np.argsort(lengths, kind="stable")
    for b in range(0, order.size, batch_size):
        idx = order[b: b + batch_size]
        width = int(lengths[idx].max())
        pos = np.arange(width)
        mask = pos[None, :] < lengths[idx][:, None]  # shape: (batch, width)
        token = np.where(mask, starts[idx][:, None] + pos[None, :], 0)
        padded = torch.from_numpy(em[token])  # shape: (batch, width, T); padding reads token 0, masked out
        paths = model.decode(padded, torch.from_numpy(mask)).numpy()
        out[token[mask]] = paths[mask]
    return out


_KERNELS = None


def _kernels():
    """The numba-compiled Viterbi and rank-1 kernels (compiled on first use, cached on disk where numba can write)."""
    global _KERNELS
    if _KERNELS is None:
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

        @njit(cache=True, nogil=True)
        def remove(E, column, weights):
            """E -= outer(column, weights) in one pass (each product rounded, then subtracted, as numpy's)."""
            for t in range(E.shape[0]):
                x = column[t]
                for j in range(E.shape[1]):
                    E[t, j] -= x * weights[j]

        _KERNELS = decode, remove
    return _KERNELS


class _Layout:
    """Sentences grouped by length for the compiled Viterbi, with its work arrays (reused across decodes)."""

    def __init__(self, sentence_starts: np.ndarray, n_tokens: int, crf: tuple):
        self.crf = tuple(np.ascontiguousarray(x, dtype=np.float64) for x in crf)  # start, transitions, end
        trans = self.crf[1]
        starts = np.asarray(sentence_starts, dtype=np.int64)
        lengths = np.diff(np.r_[starts, n_tokens]).astype(np.int64)
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


def viterbi(emissions: np.ndarray, sentence_starts: np.ndarray, crf: tuple, layout: _Layout | None = None
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
        layout: ``_Layout(sentence_starts, n_tokens, crf)`` made once for many decodes of the same sentences and
            CRF (its grouping, CRF arrays and work arrays; ``sentence_starts`` and ``crf`` are then not read).

    Returns:
        intp (n_tokens,) tag ids.
    """
    em = np.ascontiguousarray(emissions, dtype=np.float64)
    lay = layout or _Layout(sentence_starts, em.shape[0], crf)
    start, trans, end = lay.crf
    out = np.empty(em.shape[0], dtype=np.int64)
    _kernels()[0](em, lay.first, lay.bounds, lay.length, start, trans, end, lay.preds, lay.npred, lay.rest, lay.sc,
                  lay.top, lay.best, out)
    return out.astype(np.intp, copy=False)


class CrfDecoder:
    """Viterbi paths of h_masked @ W.T + b (float64) while units are removed in sequence.

    The emissions are kept in float64 and removing unit u is the rank-1 update E -= outer(h[:, u], W[:, u]);
    each decode runs the compiled ``viterbi``."""

    def __init__(self, h: np.ndarray, W: np.ndarray, b: np.ndarray, sentence_starts: np.ndarray, crf: tuple):
        """h: (n_tokens, n); W: (n_tags, n); b: (n_tags,); crf: (start, transitions [from, to], end)."""
        h64, W64 = np.asarray(h, dtype=np.float64), np.asarray(W, dtype=np.float64)
        self.hT64 = np.ascontiguousarray(h64.T)  # a unit's column, contiguous
        self.WT64 = np.ascontiguousarray(W64.T)
        self.E0 = h64 @ W64.T + np.asarray(b, dtype=np.float64)  # shape: (n_tokens, n_tags)
        self.E = self.E0.copy()
        self.layout = _Layout(sentence_starts, self.E0.shape[0], crf)

    def reset(self) -> None:
        """Start a new removal sequence with every unit present."""
        np.copyto(self.E, self.E0)

    def remove(self, u: int) -> None:
        """Remove unit u from the current emissions (compiled: one pass, numpy's rounding)."""
        _kernels()[1](self.E, self.hT64[u], self.WT64[u])

    def decode(self, mask: np.ndarray) -> np.ndarray:
        """Tag ids (n_tokens,) for the current emissions (``mask``, the removed units, is implied by them)."""
        return viterbi(self.E, None, None, self.layout)
