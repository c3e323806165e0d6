"""The CRF context of each token: what the rest of its sentence adds to the token's tag scores (numpy)."""

from __future__ import annotations

import numpy as np

from nerve.model.crf.padding import padded_tokens, sentence_lengths


def crf_context(emissions: np.ndarray, sentence_starts: np.ndarray, crf: tuple) -> np.ndarray:
    """What the rest of its sentence adds to each token's tag scores under a linear-chain CRF.

    With forward and backward log-messages α, β (α_t includes e_t, β_t does not), the log-marginal is
    log p(y_t = j | x) = α_t(j) + β_t(j) − log Z. Writing a_t = α_t − e_t + β_t, which depends on the other
    tokens' emissions only, gives log p(y_t = · | x) = log_softmax(e_t + a_t): the CRF marginal of token t as a
    function of its own emission e_t, the rest of the sentence held at its values.

    Args:
        emissions: float (n_tokens, T), sentences concatenated; sentence_starts: int (n_sentences,).
        crf: (start (T,), transitions (T, T) [from, to], end (T,)).

    Returns:
        float64 (n_tokens, T) a_t.
    """
    from scipy.special import logsumexp

    em = np.asarray(emissions, dtype=np.float64)
    start, trans, end = (np.asarray(v, dtype=np.float64) for v in crf)
    starts = np.asarray(sentence_starts, dtype=np.intp)
    lengths = sentence_lengths(starts, em.shape[0])
    mask, token = padded_tokens(starts, lengths)  # shape: (n_sentences, width) each
    width, T = mask.shape[1], em.shape[1]
    e = np.where(mask[..., None], em[token], 0.0)  # shape: (n_sentences, width, T)
    alpha, beta = np.empty_like(e), np.empty_like(e)
    alpha[:, 0] = start + e[:, 0]
    for t in range(1, width):  # past a sentence's end the values are unused
        alpha[:, t] = e[:, t] + logsumexp(alpha[:, t - 1, :, None] + trans, axis=1)
    last = lengths - 1
    for t in range(width - 1, -1, -1):
        if t + 1 < width:
            nxt = logsumexp(trans[None] + (e[:, t + 1] + beta[:, t + 1])[:, None, :], axis=2)
        else:
            nxt = np.zeros((len(lengths), T))
        beta[:, t] = np.where((t == last)[:, None], end, nxt)
    return (alpha - e + beta)[mask]
