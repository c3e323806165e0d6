"""Agreement of ranking methods: top-k overlaps and matched overlaps against plain set loops, stability over runs."""

from __future__ import annotations

import numpy as np
import pytest

from nerve.analysis import agreement as A
from nerve.analysis.checks import AnalysisInputError


@pytest.fixture
def rankings() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {m: np.stack([rng.permutation(12) for _ in range(4)]) for m in ("a", "b", "c")}


def test_method_overlap_equals_a_set_intersection_loop(rankings):
    names, S = A.method_overlap(rankings, 5)
    for i, m in enumerate(names):
        for j, o in enumerate(names):
            for t in range(4):
                assert S[i, j, t] == len(set(rankings[m][t, :5]) & set(rankings[o][t, :5]))


def test_agreement_rows_list_each_unordered_pair_once_with_the_chance_overlap(rankings):
    rows = A.agreement_rows(rankings, ["T0", "T1", "T2", "T3"], [1, 5, 20])
    assert {(r["method_a"], r["method_b"]) for r in rows} == {("a", "b"), ("a", "c"), ("b", "c")}
    assert {r["k"] for r in rows} == {1, 5}  # k = 20 exceeds the 12 units
    assert all(r["chance"] == r["k"] ** 2 / 12 for r in rows)


def test_a_tag_a_method_could_not_score_has_no_shared_count(rankings):
    valid = {m: np.array([True, False, True, True]) if m == "b" else np.ones(4, bool) for m in rankings}
    rows = A.agreement_rows(rankings, ["T0", "T1", "T2", "T3"], [5], valid)
    missing = {(r["method_a"], r["method_b"], r["tag"]) for r in rows if r["shared"] is None}
    assert missing == {("a", "b", "T1"), ("b", "c", "T1")}


def test_matched_overlap_equals_a_loop_over_the_mapped_units():
    rng = np.random.default_rng(1)
    rank_a, rank_b = np.stack([rng.permutation(9) for _ in range(3)]), np.stack([rng.permutation(9) for _ in range(3)])
    rows, cols = np.arange(9), rng.permutation(9)
    to_b = dict(zip(rows.tolist(), cols.tolist()))
    got = A.matched_overlap(rank_a, rank_b, rows, cols, 4)
    want = [len({to_b[u] for u in rank_a[t, :4]} & set(rank_b[t, :4].tolist())) for t in range(3)]
    assert got.tolist() == want


def test_an_unmatched_unit_is_never_shared():
    rank = np.array([[0, 1, 2, 3]])
    got = A.matched_overlap(rank, rank, np.array([1, 2, 3]), np.array([1, 2, 3]), 2)  # unit 0 has no partner
    assert got.tolist() == [1]


def test_a_run_relabelled_by_a_permutation_is_perfectly_stable(rankings):
    perm = np.random.default_rng(2).permutation(12)  # run b's unit perm[u] is run a's unit u
    relabelled = {m: perm[r] for m, r in rankings.items()}
    rows = A.stability_rows([rankings, relabelled], {(0, 1): (np.arange(12), perm)}, ["T0", "T1", "T2", "T3"], [5],
                            12)
    assert all(r["shared_mean"] == 5 and r["n_pairs"] == 1 for r in rows)


def test_stability_averages_over_run_pairs():
    a = {"m": np.array([[0, 1, 2, 3]])}
    b = {"m": np.array([[0, 2, 1, 3]])}
    ident = (np.arange(4), np.arange(4))
    rows = A.stability_rows([a, b, a], {(0, 1): ident, (0, 2): ident, (1, 2): ident}, ["T"], [1, 2], 4)
    by_k = {r["k"]: r for r in rows}
    assert by_k[1]["shared_mean"] == 1 and by_k[1]["n_pairs"] == 3  # unit 0 first in every run
    assert by_k[2]["shared_mean"] == pytest.approx(4 / 3) and by_k[2]["shared_min"] == 1  # pairs share 1, 2, 1


def test_pair_matrix_is_symmetric_with_k_on_the_diagonal(rankings):
    rows = A.agreement_rows(rankings, ["T0", "T1", "T2", "T3"], [5])
    M = A.pair_matrix(rows, ["a", "b", "c"], 5)
    np.testing.assert_array_equal(M, M.T)
    assert np.all(np.diag(M) == 5)
    _, S = A.method_overlap(rankings, 5)
    assert M[0, 1] == pytest.approx(S[0, 1].mean())


def test_agreement_across_runs_gives_mean_and_sd():
    run = [{"method_a": "a", "method_b": "b", "tag": "T", "k": 5, "shared": s, "chance": 2.0} for s in (2, 4)]
    (row,) = A.agreement_across_runs([[run[0]], [run[1]]])
    assert row["shared_mean"] == 3 and row["shared_sd"] == pytest.approx(np.std([2, 4], ddof=1))
    assert row["n_runs"] == 2


def test_top_k_mask_refuses_k_beyond_the_units():
    with pytest.raises(AnalysisInputError, match="0 <= k <= n"):
        A.top_k_mask(np.zeros((2, 3), dtype=int), 4)
