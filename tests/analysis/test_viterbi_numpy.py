"""Tests for nerve.analysis.viterbi and the CRF ablation sweep, against brute-force enumeration."""

import itertools

import numpy as np
import pytest
from analysis_synthetic import as_table, assert_scores_equal, brute_force, sweep

from nerve.analysis.viterbi import viterbi_numpy


def enumerate_best(em, start, trans, end):
    """Best path of one sentence by scoring every tag sequence."""
    L, T = em.shape

    def score(p):
        return start[p[0]] + sum(em[t, p[t]] for t in range(L)) + sum(trans[p[t - 1], p[t]] for t in range(1, L)) + end[p[-1]]

    return list(max(itertools.product(range(T), repeat=L), key=score))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_viterbi_numpy_equals_enumeration(seed):
    rng = np.random.default_rng(seed)
    T, lengths = 3, np.array([4, 1, 3, 2, 4])
    em = rng.normal(size=(lengths.size, 4, T))
    start, trans, end = rng.normal(size=T), rng.normal(size=(T, T)), rng.normal(size=T)
    paths = viterbi_numpy(em, lengths, start, trans, end)
    for s, L in enumerate(lengths):
        assert paths[s, :L].tolist() == enumerate_best(em[s, :L], start, trans, end)


def test_viterbi_numpy_pads_with_minus_one():
    paths = viterbi_numpy(np.zeros((2, 3, 2)), np.array([1, 3]), np.zeros(2), np.zeros((2, 2)), np.zeros(2))
    assert paths.tolist() == [[0, -1, -1], [0, 0, 0]]


def test_viterbi_numpy_respects_forbidden_transitions():
    em = np.array([[[0.0, 5.0], [5.0, 0.0]]])
    trans = np.array([[0.0, 0.0], [-10000.0, 0.0]])  # 1 -> 0 forbidden
    assert viterbi_numpy(em, np.array([2]), np.zeros(2), trans, np.zeros(2)).tolist() == [[0, 0]]


def test_crf_sweep_rows_equal_brute_force(crf_arrays):
    a = crf_arrays
    crf = tuple(a[k] for k in ("crf_start", "crf_transitions", "crf_end"))
    rows, rankings = sweep(a, draws=2, crf=crf)
    table = as_table(rows)
    n = a["h"].shape[1]
    for j, tag in enumerate(a["tags"]):
        for k in range(n + 1):
            assert_scores_equal(table[(str(tag), "top", k, 0)], brute_force(a, rankings[j, :k], crf=True))
            assert_scores_equal(table[(str(tag), "bottom", k, 0)], brute_force(a, rankings[j, ::-1][:k], crf=True))
