"""Re-decoding with units removed one by one: incremental softmax argmax, and CRF Viterbi compiled by numba (the
same paths as the model's own ``CRF.decode`` in float64, about 9 times faster: bench/bench_viterbi.py)."""

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


_VITERBI = None


def _compiled_viterbi():
    """The numba-compiled Viterbi kernel (compiled on first use, cached on disk by numba where it can write)."""
    global _VITERBI
    if _VITERBI is None:
        from numba import njit

        @njit(cache=True, nogil=True)
        def kernel(em, starts, ends, start, trans, end):  # pragma: no cover - runs compiled
            n_tokens, T = em.shape
            out = np.empty(n_tokens, np.int64)
            back = np.empty((n_tokens, T), np.int64)
            score = np.empty(T)
            new = np.empty(T)
            for s in range(starts.size):
                a, z = starts[s], ends[s]
                for j in range(T):
                    score[j] = start[j] + em[a, j]
                for t in range(a + 1, z):
                    for j in range(T):
                        best, arg = score[0] + trans[0, j], 0
                        for i in range(1, T):  # the first best on ties, as torch's max
                            v = score[i] + trans[i, j]
                            if v > best:
                                best, arg = v, i
                        new[j] = best + em[t, j]
                        back[t, j] = arg
                    score[:] = new
                best, arg = score[0] + end[0], 0
                for j in range(1, T):
                    v = score[j] + end[j]
                    if v > best:
                        best, arg = v, j
                out[z - 1] = arg
                for t in range(z - 1, a, -1):
                    arg = back[t, arg]
                    out[t - 1] = arg
            return out

        _VITERBI = kernel
    return _VITERBI


def viterbi(emissions: np.ndarray, sentence_starts: np.ndarray, crf: tuple) -> np.ndarray:
    """Best tag of every token under a linear-chain CRF, in float64, sentence by sentence.

    The recursion is ``CRF.decode``'s, operation for operation: score_t(j) = max_i (score_{t-1}(i) + trans[i, j])
    + e_t(j), the first best on ties; its paths equal ``torch_viterbi``'s (tests) and it runs 5–9 times faster on
    one core (bench/bench_viterbi.py), which is what makes CRF ablation sweeps affordable. (Scanning only the legal
    predecessors of a constrained CRF, with an exact bound for the others, measured slower: 11.7 ms a decode
    against 6.8–9 ms on CoNLL-2003 test.)

    Args:
        emissions: float (n_tokens, T), the sentences one after another.
        sentence_starts: int (n_sentences,) first token of each sentence (strictly increasing, from 0).
        crf: (start (T,), transitions (T, T) [from, to], end (T,)), constraints already added.

    Returns:
        intp (n_tokens,) tag ids.
    """
    em = np.ascontiguousarray(emissions, dtype=np.float64)
    starts = np.asarray(sentence_starts, dtype=np.int64)
    ends = np.r_[starts[1:], em.shape[0]].astype(np.int64)
    start, trans, end = (np.ascontiguousarray(x, dtype=np.float64) for x in crf)
    return _compiled_viterbi()(em, starts, ends, start, trans, end).astype(np.intp)


class CrfDecoder:
    """Viterbi paths of h_masked @ W.T + b (float64) while units are removed in sequence.

    The emissions are kept in float64 and removing unit u is the rank-1 update E -= outer(h[:, u], W[:, u]);
    each decode runs the compiled ``viterbi``."""

    def __init__(self, h: np.ndarray, W: np.ndarray, b: np.ndarray, sentence_starts: np.ndarray, crf: tuple):
        """h: (n_tokens, n); W: (n_tags, n); b: (n_tags,); crf: (start, transitions [from, to], end)."""
        self.h64 = np.asarray(h, dtype=np.float64)
        self.W64 = np.asarray(W, dtype=np.float64)
        self.b64 = np.asarray(b, dtype=np.float64)
        self.E0 = self.h64 @ self.W64.T + self.b64  # shape: (n_tokens, n_tags)
        self.E = self.E0.copy()
        self._tmp = np.empty_like(self.E0)
        self.crf = crf
        self.starts = np.asarray(sentence_starts, dtype=np.intp)

    def reset(self) -> None:
        """Start a new removal sequence with every unit present."""
        np.copyto(self.E, self.E0)

    def remove(self, u: int) -> None:
        """Remove unit u from the current emissions."""
        np.multiply.outer(self.h64[:, u], self.W64[:, u], out=self._tmp)
        self.E -= self._tmp

    def decode(self, mask: np.ndarray) -> np.ndarray:
        """Tag ids (n_tokens,) for the current emissions (``mask``, the removed units, is implied by them)."""
        return viterbi(self.E, self.starts, self.crf)
