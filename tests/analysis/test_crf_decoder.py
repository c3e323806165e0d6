"""The CRF Viterbi of the ablation sweep (compiled) and the model's own CRF.decode (batched over sentences) against
brute-force enumeration and each other, and the CRF sweep against direct recomputation."""

import itertools

import numpy as np
import pytest
from analysis_synthetic import as_table, assert_scores_equal, brute_force, sweep

from nerve.analysis.decoders import CrfDecoder, _remove_kernel
from nerve.model.crf import torch_viterbi, viterbi


def enumerate_best(em, start, trans, end):
    """Best path of one sentence by scoring every tag sequence."""
    L, T = em.shape

    def score(p):
        emitted = sum(em[t, p[t]] for t in range(L))
        return start[p[0]] + emitted + sum(trans[p[t - 1], p[t]] for t in range(1, L)) + end[p[-1]]

    return list(max(itertools.product(range(T), repeat=L), key=score))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("batch_size", [1, 2, 256])
def test_torch_viterbi_equals_enumeration_for_every_batch_size(seed, batch_size):
    rng = np.random.default_rng(seed)
    T, lengths = 3, np.array([4, 1, 3, 2, 4])
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    em = rng.normal(size=(lengths.sum(), T))
    crf = rng.normal(size=T), rng.normal(size=(T, T)), rng.normal(size=T)
    paths = torch_viterbi(em, starts, crf, batch_size=batch_size)
    for a, L in zip(starts, lengths):
        assert paths[a: a + L].tolist() == enumerate_best(em[a: a + L], *crf)


def test_torch_viterbi_respects_forbidden_transitions():
    em = np.array([[0.0, 5.0], [5.0, 0.0]])
    trans = np.array([[0.0, 0.0], [-10000.0, 0.0]])  # 1 -> 0 forbidden
    assert torch_viterbi(em, np.array([0]), (np.zeros(2), trans, np.zeros(2))).tolist() == [0, 0]


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


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_compiled_viterbi_equals_enumeration(seed):
    rng = np.random.default_rng(seed)
    T, lengths = 3, np.array([4, 1, 3, 2, 4])
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    em = rng.normal(size=(lengths.sum(), T))
    crf = rng.normal(size=T), rng.normal(size=(T, T)), rng.normal(size=T)
    paths = viterbi(em, starts, crf)
    for a, L in zip(starts, lengths):
        assert paths[a: a + L].tolist() == enumerate_best(em[a: a + L], *crf)


def test_compiled_viterbi_equals_the_models_decode_on_many_sentences_with_forbidden_transitions():
    rng = np.random.default_rng(5)
    T, lengths = 7, rng.integers(1, 30, size=300)
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    em = rng.normal(scale=3.0, size=(lengths.sum(), T))
    trans = rng.normal(size=(T, T))
    trans[rng.random((T, T)) < 0.4] = -10000.0
    crf = rng.normal(size=T), trans, rng.normal(size=T)
    np.testing.assert_array_equal(viterbi(em, starts, crf), torch_viterbi(em, starts, crf))


def test_compiled_viterbi_breaks_ties_as_the_models_decode():
    rng = np.random.default_rng(6)
    T, lengths = 5, rng.integers(1, 12, size=400)
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    em = rng.integers(0, 2, size=(lengths.sum(), T)).astype(float)  # integer scores: ties everywhere
    crf = rng.integers(0, 2, size=T).astype(float), rng.integers(-1, 2, size=(T, T)).astype(float), np.zeros(T)
    np.testing.assert_array_equal(viterbi(em, starts, crf), torch_viterbi(em, starts, crf))


def test_compiled_viterbi_breaks_ties_as_the_models_decode_where_some_transitions_are_forbidden():
    rng = np.random.default_rng(9)
    T, lengths = 6, rng.integers(1, 12, size=400)
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    em = rng.integers(0, 2, size=(lengths.sum(), T)).astype(float)  # ties everywhere, among the scanned predecessors
    trans = rng.integers(-1, 2, size=(T, T)).astype(float)
    trans[rng.random((T, T)) < 0.4] = -10000.0
    crf = rng.integers(0, 2, size=T).astype(float), trans, np.zeros(T)
    np.testing.assert_array_equal(viterbi(em, starts, crf), torch_viterbi(em, starts, crf))


def test_compiled_viterbi_takes_forbidden_transitions_when_the_emissions_outweigh_the_penalty():
    rng = np.random.default_rng(7)
    T, lengths = 4, rng.integers(1, 6, size=200)
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    em = rng.normal(scale=3e4, size=(lengths.sum(), T))  # the penalty of -10000 no longer decides
    trans = rng.normal(size=(T, T))
    forbidden = rng.random((T, T)) < 0.5
    trans[forbidden] = -10000.0
    crf = np.zeros(T), trans, np.zeros(T)
    paths = viterbi(em, starts, crf)
    np.testing.assert_array_equal(paths, torch_viterbi(em, starts, crf))
    inside = np.setdiff1d(np.arange(1, len(em)), starts)  # positions with a predecessor in the same sentence
    assert forbidden[paths[inside - 1], paths[inside]].any()  # the bounded predecessors were needed
    for a, L in zip(starts[:20], lengths[:20]):
        assert paths[a: a + L].tolist() == enumerate_best(em[a: a + L], *crf)


def test_the_compiled_removal_rounds_as_numpys_outer_subtraction():
    rng = np.random.default_rng(8)
    E, h, w = rng.normal(size=(300, 7)), rng.normal(size=300), rng.normal(size=7)
    expected = E - np.multiply.outer(h, w)
    _remove_kernel()(E, h, w)
    np.testing.assert_array_equal(E, expected)


def test_the_crf_decoder_after_removals_equals_viterbi_of_recomputed_emissions():
    rng = np.random.default_rng(2)
    h, W, b = rng.normal(size=(40, 6)), rng.normal(size=(4, 6)), rng.normal(size=4)
    starts = np.array([0, 7, 19, 30])
    crf = rng.normal(size=4), rng.normal(size=(4, 4)), rng.normal(size=4)
    dec = CrfDecoder(h, W, b, starts, crf)
    mask = np.zeros(6, dtype=bool)
    for u in (3, 0, 5):
        dec.remove(u)
        mask[u] = True
        keep = ~mask
        np.testing.assert_array_equal(dec.decode(mask), viterbi(h[:, keep] @ W[:, keep].T + b, starts, crf))
    dec.reset()
    np.testing.assert_array_equal(dec.decode(np.zeros(6, dtype=bool)), viterbi(h @ W.T + b, starts, crf))
