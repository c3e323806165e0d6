"""Re-decoding with units removed one by one: incremental softmax argmax, and the CRF's compiled Viterbi
(``nerve.model.crf.viterbi``: the same paths as the model's own ``CRF.decode`` in float64, many times faster:
bench/bench_viterbi.py) over emissions updated unit by unit."""

from __future__ import annotations

import numpy as np

from nerve.model.crf import ViterbiLayout, viterbi

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
        """h: float (n_tokens, n); W: float (n_tags, n); b: float (n_tags,), or (n_tokens, n_tags) a bias per token
        (a per-token intervention's); max_k: longest removal (or restoring) sequence."""
        self.h = h
        self.W64 = np.asarray(W, dtype=np.float64)
        self.b64 = np.asarray(b, dtype=np.float64)
        n_tags, n = self.W64.shape
        self.hT = np.ascontiguousarray(np.asarray(h, dtype=np.float32).T)  # (n, n_tokens)
        self.W32 = self.W64.astype(np.float32)
        bias = self.b64.astype(np.float32)
        self.B0 = np.ascontiguousarray(np.broadcast_to(bias.T if bias.ndim == 2 else bias[:, None],
                                                       (n_tags, self.hT.shape[1])))  # (n_tags, n_tokens)
        self.L0 = self.W32 @ self.hT + self.B0  # (n_tags, n_tokens)
        scale = (np.abs(self.W32) @ np.abs(self.hT)).max(axis=0) + np.abs(self.B0).max(axis=0, initial=0.0)
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

    def clear(self) -> None:
        """Start a new restoring sequence with every unit removed (the logits are the bias alone)."""
        np.copyto(self.L, self.B0)

    def remove(self, u: int) -> None:
        """Remove unit u from the current logits."""
        np.multiply.outer(self.W32[:, u], self.hT[u], out=self._tmp)
        self.L -= self._tmp

    def restore(self, u: int) -> None:
        """Put unit u back into the current logits."""
        np.multiply.outer(self.W32[:, u], self.hT[u], out=self._tmp)
        self.L += self._tmp

    def set_units(self, units: np.ndarray, keep: bool = False) -> None:
        """Logits with exactly ``units`` removed (at most max_k of them), or with ``keep`` only ``units`` kept:
        one (n_tags, k) @ (k, n_tokens) product instead of k rank-1 updates."""
        part = self.W32[:, units] @ self.hT[units]  # shape: (n_tags, n_tokens)
        np.add(self.B0, part, out=self.L) if keep else np.subtract(self.L0, part, out=self.L)

    def add_units(self, units: np.ndarray, keep: bool = False) -> None:
        """Remove ``units`` too (or with ``keep`` put them back too), from the current logits, in one product."""
        part = self.W32[:, units] @ self.hT[units]  # shape: (n_tags, n_tokens)
        np.add(self.L, part, out=self.L) if keep else np.subtract(self.L, part, out=self.L)

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
            exact = np.asarray(self.h[rows], dtype=np.float64) @ keep.T + (self.b64[rows] if self.b64.ndim == 2
                                                                              else self.b64)
            pred[rows] = exact.argmax(axis=1)
        return pred


_REMOVE = None


def _remove_kernel():
    """The numba-compiled rank-1 removal E -= outer(column, weights) (compiled on first use, cached on disk where
    numba can write)."""
    global _REMOVE
    if _REMOVE is None:
        from numba import njit

        @njit(cache=True, nogil=True)
        def remove(E, column, weights):
            """E -= outer(column, weights) in one pass (each product rounded, then subtracted, as numpy's)."""
            for t in range(E.shape[0]):
                x = column[t]
                for j in range(E.shape[1]):
                    E[t, j] -= x * weights[j]

        _REMOVE = remove
    return _REMOVE


class CrfDecoder:
    """Viterbi paths of h_masked @ W.T + b (float64) while units are removed in sequence.

    The emissions are kept in float64 and removing unit u is the rank-1 update E -= outer(h[:, u], W[:, u]);
    each decode runs the compiled ``viterbi``."""

    def __init__(self, h: np.ndarray, W: np.ndarray, b: np.ndarray, sentence_starts: np.ndarray, crf: tuple):
        """h: (n_tokens, n); W: (n_tags, n); b: (n_tags,) or (n_tokens, n_tags) a bias per token; crf: (start,
        transitions [from, to], end)."""
        h64, W64 = np.asarray(h, dtype=np.float64), np.asarray(W, dtype=np.float64)
        self.hT64 = np.ascontiguousarray(h64.T)  # a unit's column, contiguous
        self.WT64 = np.ascontiguousarray(W64.T)
        self.B0 = np.ascontiguousarray(np.broadcast_to(np.asarray(b, dtype=np.float64), (len(h64), len(W64))))
        self.E0 = h64 @ W64.T + self.B0  # shape: (n_tokens, n_tags)
        self.E = self.E0.copy()
        self.layout = ViterbiLayout(sentence_starts, self.E0.shape[0], crf)

    def reset(self) -> None:
        """Start a new removal sequence with every unit present."""
        np.copyto(self.E, self.E0)

    def clear(self) -> None:
        """Start a new restoring sequence with every unit removed (the emissions are the bias alone)."""
        np.copyto(self.E, self.B0)

    def remove(self, u: int) -> None:
        """Remove unit u from the current emissions (compiled: one pass, numpy's rounding)."""
        _remove_kernel()(self.E, self.hT64[u], self.WT64[u])

    def restore(self, u: int) -> None:
        """Put unit u back into the current emissions (E -= outer(h_u, −W_u): numpy's rounding of E + h_u·W_u)."""
        _remove_kernel()(self.E, self.hT64[u], -self.WT64[u])

    def set_units(self, units: np.ndarray, keep: bool = False) -> None:
        """Emissions with exactly ``units`` removed, or with ``keep`` only ``units`` kept (one product)."""
        part = self.hT64[units].T @ self.WT64[units]  # shape: (n_tokens, n_tags)
        np.add(self.B0, part, out=self.E) if keep else np.subtract(self.E0, part, out=self.E)

    def add_units(self, units: np.ndarray, keep: bool = False) -> None:
        """Remove ``units`` too (or with ``keep`` put them back too), from the current emissions, in one product."""
        part = self.hT64[units].T @ self.WT64[units]  # shape: (n_tokens, n_tags)
        np.add(self.E, part, out=self.E) if keep else np.subtract(self.E, part, out=self.E)

    def decode(self, mask: np.ndarray) -> np.ndarray:
        """Tag ids (n_tokens,) for the current emissions (``mask``, the removed units, is implied by them)."""
        return viterbi(self.E, None, None, self.layout)


def decode_emissions(E: np.ndarray, acts) -> np.ndarray:
    """Tag ids (n_tokens,) of the (n_tokens, T) emissions ``E`` of the split ``acts`` (``checks.Activations``): the
    first argmax, or the CRF's Viterbi over its sentences."""
    return E.argmax(axis=1) if acts.crf is None else viterbi(E, acts.sentence_starts, acts.crf)
