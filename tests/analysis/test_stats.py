"""The statistics behind the verdicts against plain re-computations: permuted products, empirical p, Holm."""

import itertools

import numpy as np
import pytest

from nerve.analysis.matrices import corr_matrix, unit_vectors
from nerve.analysis.stats import (
    case_rng,
    empirical_p,
    holm,
    permuted_column_products,
    unit_permutations,
)


def test_permuted_column_products_equal_correlations_of_the_permuted_sensitivities():
    rng = np.random.default_rng(0)
    s = rng.normal(size=(12, 4))
    u = unit_vectors((s - s.mean(axis=0)).T, axis=1, ref=s.T)[0].T
    perms = unit_permutations(12, 5, rng)
    got = permuted_column_products(u, 2, perms)
    for p, perm in enumerate(perms):
        t = s.copy()
        t[:, 2] = s[perm, 2]
        np.testing.assert_allclose(got[p], corr_matrix(t)[2], atol=1e-12)


def test_permuted_column_products_are_nan_for_a_constant_column():
    s = np.random.default_rng(1).normal(size=(8, 3))
    s[:, 1] = 2.0
    u = unit_vectors((s - s.mean(axis=0)).T, axis=1, ref=s.T)[0].T
    got = permuted_column_products(u, 0, unit_permutations(8, 3, np.random.default_rng(0)))
    assert np.isnan(got[:, 1]).all() and np.isfinite(got[:, 2]).all()


def test_unit_permutations_are_permutations_reproducible_by_seed():
    a = unit_permutations(10, 4, case_rng(3, "x"))
    assert all(sorted(row) == list(range(10)) for row in a)
    np.testing.assert_array_equal(a, unit_permutations(10, 4, case_rng(3, "x")))
    assert not np.array_equal(a, unit_permutations(10, 4, case_rng(3, "y")))


def test_empirical_p_counts_the_observation_among_the_null():
    assert empirical_p(0.5, np.array([0.1, 0.6, 0.5, np.nan])) == pytest.approx((1 + 2) / (1 + 3))
    assert np.isnan(empirical_p(np.nan, np.array([0.1])))


def _holm_by_definition(p):
    """Holm's step-down test: reject H_(i) while p_(i) <= alpha / (m - i + 1); the adjusted p of H_(i) is the
    smallest alpha at which it is rejected, found by scanning a fine grid of alphas."""
    order = np.argsort(p, kind="stable")
    m = len(p)
    out = np.ones(m)
    for alpha in np.linspace(0, 1, 20_001)[::-1]:
        for i, j in enumerate(order):
            if p[j] > alpha / (m - i):
                break
            out[j] = alpha
    return out


def test_holm_equals_the_step_down_definition():
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.2])
    np.testing.assert_allclose(holm(p), _holm_by_definition(p), atol=1e-4)


def test_holm_skips_nan_and_never_exceeds_one():
    got = holm([0.5, np.nan, 0.4])
    assert np.isnan(got[1]) and got[0] == got[2] == pytest.approx(0.8)
    assert max(holm([0.9, 0.95, 0.99])) == 1.0


@pytest.mark.parametrize("p", list(itertools.permutations([0.001, 0.02, 0.02, 0.5])))
def test_holm_is_monotone_in_p_whatever_the_input_order(p):
    adj = holm(p)
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(adj[order]) >= 0) and np.all(adj >= np.array(p))
