"""Batched CRF Viterbi decoding in numpy, all sentences at once (for ablation sweeps of CRF taggers)."""

from __future__ import annotations

import numpy as np

from nerve.analysis.checks import AnalysisInputError


def viterbi_numpy(
    emissions: np.ndarray, lengths: np.ndarray, start: np.ndarray, transitions: np.ndarray, end: np.ndarray
) -> np.ndarray:
    """Best tag path of every sentence under a linear-chain CRF.

    A path y of length L scores start[y0] + sum_t emissions[t, y_t]
    + sum_t transitions[y_{t-1}, y_t] + end[y_{L-1}]. Sentences are sorted by length
    so that step t only touches the sentences still running. Ties go to the lowest
    tag index (first max, as numpy's argmax).

    Args:
        emissions: float (n_sentences, L_max, n_tags), padded past each length.
        lengths: int (n_sentences,) in [0, L_max].
        start: float (n_tags,) start scores.
        transitions: float (n_tags, n_tags) scores indexed [from, to].
        end: float (n_tags,) end scores.

    Returns:
        intp (n_sentences, L_max) tag ids, -1 past each sentence's length.

    Raises:
        ValueError: on inconsistent shapes or lengths out of range.
    """
    em = np.asarray(emissions, dtype=np.float64)
    if em.ndim != 3:
        raise AnalysisInputError(f"emissions: expected shape (n_sentences, L_max, n_tags), got {em.shape}")
    n_sent, l_max, n_tags = em.shape
    lengths = np.asarray(lengths)
    if lengths.shape != (n_sent,) or (lengths.size and (lengths.min() < 0 or lengths.max() > l_max)):
        raise AnalysisInputError(f"lengths: expected {n_sent} ints in [0, {l_max}]")
    start = np.asarray(start, dtype=np.float64)
    trans = np.asarray(transitions, dtype=np.float64)
    end = np.asarray(end, dtype=np.float64)
    if start.shape != (n_tags,) or end.shape != (n_tags,) or trans.shape != (n_tags, n_tags):
        raise AnalysisInputError(
            f"start, transitions, end: expected shapes ({n_tags},), ({n_tags}, {n_tags}), ({n_tags},), "
            f"got {start.shape}, {trans.shape}, {end.shape}"
        )
    paths = np.full((n_sent, l_max), -1, dtype=np.intp)
    if n_sent == 0 or l_max == 0:
        return paths
    order = np.argsort(-lengths, kind="stable")
    em_s = em[order]
    len_s = lengths[order]
    # active[t]: how many sentences (a prefix of the sorted order) are longer than t
    active = (len_s[None, :] > np.arange(l_max)[:, None]).sum(axis=1)
    trans_to_from = np.ascontiguousarray(trans.T)  # [to, from]: argmax over the last axis
    score = start[None, :] + em_s[:, 0]
    back = np.zeros((n_sent, l_max, n_tags), dtype=np.intp if n_tags > 255 else np.uint8)
    for t in range(1, l_max):
        na = active[t]
        if na == 0:
            break
        cand = score[:na, None, :] + trans_to_from[None]  # (na, to, from)
        best = cand.argmax(axis=2)
        back[:na, t] = best
        score[:na] = np.take_along_axis(cand, best[:, :, None], axis=2)[:, :, 0] + em_s[:na, t]
    cur = (score + end[None, :]).argmax(axis=1)
    rows = np.arange(n_sent)
    for t in range(l_max - 1, -1, -1):
        na = active[t]
        if na == 0:
            continue
        paths[order[:na], t] = cur[:na]
        if t > 0:
            cur[:na] = back[rows[:na], t, cur[:na]]
    return paths


def pad_positions(sentence_starts: np.ndarray, n_tokens: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each token of a concatenated corpus goes in a (n_sentences, L_max) padded layout.

    Args:
        sentence_starts: int (n_sentences,) first-token index of each sentence, increasing.
        n_tokens: total number of tokens.

    Returns:
        (sentence, position, lengths): intp (n_tokens,), intp (n_tokens,), intp (n_sentences,).
    """
    starts = np.asarray(sentence_starts, dtype=np.intp)
    lengths = np.diff(np.append(starts, n_tokens))
    sentence = np.repeat(np.arange(starts.size), lengths)
    position = np.arange(n_tokens) - starts[sentence]
    return sentence, position, lengths


def crf_decode(emissions: np.ndarray, sentence_starts: np.ndarray, crf: tuple) -> np.ndarray:
    """Viterbi tag ids of a concatenated corpus.

    Args:
        emissions: float (n_tokens, n_tags), sentences concatenated in order.
        sentence_starts: int (n_sentences,) first-token index of each sentence.
        crf: (start (n_tags,), transitions (n_tags, n_tags) [from, to], end (n_tags,)).

    Returns:
        intp (n_tokens,) tag ids.
    """
    n_tokens, n_tags = emissions.shape
    sentence, position, lengths = pad_positions(sentence_starts, n_tokens)
    padded = np.zeros((lengths.size, int(lengths.max(initial=0)), n_tags))
    padded[sentence, position] = emissions
    return viterbi_numpy(padded, lengths, *crf)[sentence, position]
