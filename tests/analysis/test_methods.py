"""Ranking methods equal independent re-computations: plain numpy loops, scikit-learn's own fit."""

from __future__ import annotations

import numpy as np
import pytest

from nerve.analysis import methods as M
from nerve.analysis.checks import AnalysisInputError
from nerve.analysis.sensitivity import sensitivity
from nerve.model.crf import crf_context


@pytest.fixture
def x() -> M.RankInput:
    rng = np.random.default_rng(3)
    h = rng.normal(size=(300, 7))
    labels = rng.integers(0, 4, size=300)
    labels[labels == 3] = 2  # tag 3 has no token
    h[:, 2] += 2.0 * (labels == 1)  # unit 2 fires on tag 1
    return M.RankInput(h, labels, rng.normal(size=(4, 7)), 4)


def test_probeless_equals_a_loop_over_tag_pairs(x):
    got = M.probeless_scores(x)
    for z in range(3):
        for i in range(7):
            mz = x.h[x.labels == z, i].mean()
            want = sum(abs(mz - x.h[x.labels == o, i].mean()) for o in range(3) if o != z)
            assert got[i, z] == pytest.approx(want, abs=1e-12)
    assert np.isnan(got[:, 3]).all()


def test_selectivity_equals_a_loop_over_units(x):
    got = M.selectivity_scores(x)
    for z in range(3):
        for i in range(7):
            col = x.h[:, i]
            want = (col[x.labels == z].mean() - col[x.labels != z].mean()) / (col.max() - col.min())
            assert got[i, z] == pytest.approx(want, abs=1e-12)
    assert np.isnan(got[:, 3]).all()


def test_selectivity_of_a_constant_unit_is_zero(x):
    h = x.h.copy()
    h[:, 0] = 1.5
    assert (M.selectivity_scores(M.RankInput(h, x.labels, x.W, 4))[0, :3] == 0).all()


def _standardised(h: np.ndarray) -> np.ndarray:
    return (h - h.mean(axis=0)) / h.std(axis=0)


def _scikit_learn_optimum(z: np.ndarray, labels: np.ndarray):
    """scikit-learn's elastic-net LogisticRegression (the probe's objective) run to a tight tolerance."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(solver="saga", l1_ratio=M.PROBE_L1_RATIO, C=M.PROBE_C, tol=1e-12, max_iter=100_000,
                              random_state=0).fit(z, labels)


COEF_ATOL = 1e-5  # the probe (tol 1e-4 on the subgradient) against saga to tol 1e-12, on 300 tokens


def test_the_probe_converges_to_scikit_learns_elastic_net_optimum(x):
    z = _standardised(x.h)
    want = _scikit_learn_optimum(z, x.labels)
    got = M.probe_fit(z, x.labels)
    np.testing.assert_allclose(got.coef, want.coef_, atol=COEF_ATOL)
    np.testing.assert_allclose(got.intercept, want.intercept_, atol=COEF_ATOL)
    assert ((got.coef == 0) == (want.coef_ == 0)).all()  # the L1 part zeroes the same coefficients


def test_the_two_tag_probe_is_scikit_learns_binomial_fit(x):
    z, labels = _standardised(x.h), (x.labels == 1).astype(int)
    want = _scikit_learn_optimum(z, labels)
    got = M.probe_fit(z, labels)
    assert got.coef.shape == want.coef_.shape == (1, 7)
    np.testing.assert_allclose(got.coef, want.coef_, atol=COEF_ATOL)


def test_the_probe_reports_its_iterations_and_reaching_its_tolerance(x):
    fit = M.probe_fit(_standardised(x.h), x.labels)
    assert fit.converged and fit.gradient <= fit.tol == M.PROBE_TOL
    assert 0 < fit.n_iter <= fit.n_evals
    assert fit.n_iter < M.PROBE_MAX_ITER


def test_the_probe_warns_when_it_stops_at_max_iter_short_of_its_tolerance(x):
    from nerve.errors import NerveWarning

    with pytest.warns(NerveWarning, match=r"probe: not converged after 2 L-BFGS-B iterations \(max_iter 2\)"):
        fit = M.probe_fit(_standardised(x.h), x.labels, max_iter=2)
    assert not fit.converged and fit.n_iter == 2


def test_the_converged_probe_does_not_warn(x, recwarn):
    M.probe_fit(_standardised(x.h), x.labels)
    assert not recwarn.list


def test_probe_scores_are_the_coefficient_magnitudes_of_the_fit_on_standardised_units(x):
    fit = M.probe_fit(_standardised(x.h), x.labels)
    got = M.probe_scores(x, seed=0)
    np.testing.assert_array_equal(got[:, :3], np.abs(fit.coef).T)
    assert np.isnan(got[:, 3]).all()
    assert np.argmax(got[:, 1]) == 2  # the unit planted on tag 1 ranks first for it


def test_the_probe_converges_on_separable_labels_to_a_lower_objective_than_saga_reaches():
    import warnings

    from scipy.special import log_softmax
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)  # labels as a model predicts them: linear in the units, so separable
    z = rng.normal(size=(5000, 30))
    y = np.argmax(z @ rng.normal(size=(30, 5)), axis=1)

    def objective(W, b):  # scikit-learn's: C · Σ log-loss + l1_ratio·|W|₁ + (1 − l1_ratio)/2·|W|²
        logp = log_softmax(z @ W.T + b, axis=1)[np.arange(len(y)), y]
        r = M.PROBE_L1_RATIO
        return -M.PROBE_C * logp.sum() + r * np.abs(W).sum() + (1 - r) / 2 * (W ** 2).sum()

    fit = M.probe_fit(z, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        saga = LogisticRegression(solver="saga", l1_ratio=M.PROBE_L1_RATIO, C=M.PROBE_C, max_iter=100,
                                  random_state=0).fit(z, y)
    assert fit.converged
    assert objective(fit.coef, fit.intercept) < objective(saga.coef_, saga.intercept_)


def test_an_analysis_with_the_probe_is_fingerprinted_with_the_probe_settings():
    from nerve.analysis.core import AnalysisSpec

    spec = AnalysisSpec(methods="sensitivity,probe")
    assert spec.method_options("dev.txt", "0" * 64)["probe"] == M.PROBE_OPTIONS
    assert "probe" not in spec.replace(methods="sensitivity").method_options("dev.txt", "0" * 64)


def test_probe_with_two_tags_scores_both_from_the_one_coefficient_row(x):
    labels = (x.labels == 1).astype(int)
    got = M.probe_scores(M.RankInput(x.h, labels, x.W[:2], 2))
    np.testing.assert_allclose(got[:, 0], got[:, 1])


def test_sensitivity_scores_are_xin_lin_yu_sensitivity(x):
    np.testing.assert_array_equal(M.sensitivity_scores(x), sensitivity(x.h, x.W, x.labels))


def test_random_scores_repeat_by_seed_and_differ_across_seeds(x):
    assert np.array_equal(M.random_scores(x, 5), M.random_scores(x, 5))
    assert not np.array_equal(M.random_scores(x, 5), M.random_scores(x, 6))


def test_an_unknown_method_lists_the_known_ones(x):
    with pytest.raises(AnalysisInputError, match="expected one of sensitivity, probeless"):
        M.method_scores("lasso", x)


def test_gradxact_of_the_raw_logit_is_the_contribution_w_times_h(x):
    got = M.gradxact_scores(x, target="logit")
    for z in range(3):
        want = (x.W[z][None, :] * x.h[x.labels == z]).mean(axis=0)
        np.testing.assert_allclose(got[:, z], want, atol=1e-12)
    assert np.isnan(got[:, 3]).all()


def test_gradxact_of_the_log_probability_equals_the_analytic_gradient(x):
    b = np.linspace(-0.5, 0.5, 4)
    xb = M.RankInput(x.h, x.labels, x.W, 4, b)
    logits = x.h @ x.W.T + b
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    grad = x.W[x.labels] - p @ x.W  # d log p_z / d h = W_z - sum_j p_j W_j
    attr = grad * x.h
    got = M.gradxact_scores(xb)
    for z in range(3):
        np.testing.assert_allclose(got[:, z], attr[x.labels == z].mean(axis=0), atol=1e-10)


def test_integrated_gradients_of_a_linear_score_equal_gradient_times_activation(x):
    # for a linear function of h, IG from 0 is exactly (h - 0) * gradient
    np.testing.assert_allclose(M.ig_scores(x, target="logit"), M.gradxact_scores(x, target="logit"), atol=1e-9)


def test_integrated_gradients_satisfy_completeness_for_the_log_probability(x):
    import torch
    from captum.attr import IntegratedGradients

    xb = M.RankInput(x.h[:40], x.labels[:40], x.W, 4, np.zeros(4))
    f = M._tag_head(xb, "logprob")
    h = torch.as_tensor(xb.h)
    labels = torch.as_tensor(xb.labels)
    attr = IntegratedGradients(f).attribute(h, baselines=torch.zeros_like(h), target=labels, n_steps=M.IG_STEPS)
    gap = f(h)[torch.arange(40), labels] - f(torch.zeros_like(h))[torch.arange(40), labels]
    np.testing.assert_allclose(attr.sum(dim=1).numpy(), gap.detach().numpy(), atol=1e-3)
    got = M.ig_scores(xb)
    for z in range(3):
        np.testing.assert_allclose(got[:, z], attr.numpy()[xb.labels == z].mean(axis=0), atol=1e-9)


def _crf_input(seed: int = 5) -> M.RankInput:
    rng = np.random.default_rng(seed)
    T, n, lengths = 3, 4, [1, 3, 4, 2]
    h = rng.normal(size=(sum(lengths), n))
    crf = (rng.normal(size=T), rng.normal(size=(T, T)), rng.normal(size=T))
    starts = np.cumsum([0, *lengths[:-1]])
    return M.RankInput(h, rng.integers(0, T, size=len(h)), rng.normal(size=(T, n)), T, rng.normal(size=T),
                       crf, starts)


def _enumerated_log_marginals(em, starts, crf):
    """torch (n_tokens, T) log p(y_t = j | x) by summing over every tag path of each sentence."""
    import itertools

    import torch

    start, trans, end = (torch.as_tensor(v) for v in crf)
    bounds = [*starts.tolist(), em.shape[0]]
    out = []
    for a, z in zip(bounds[:-1], bounds[1:]):
        e = em[a:z]
        paths = list(itertools.product(range(e.shape[1]), repeat=z - a))
        scores = torch.stack([start[p[0]] + end[p[-1]] + sum(e[i, p[i]] for i in range(len(p)))
                              + sum(trans[p[i - 1], p[i]] for i in range(1, len(p))) for p in paths])
        log_z = torch.logsumexp(scores, dim=0)
        for i in range(z - a):
            out.append(torch.stack([torch.logsumexp(scores[[k for k, p in enumerate(paths) if p[i] == j]], dim=0)
                                    for j in range(e.shape[1])]) - log_z)
    return torch.stack(out)


def test_crf_context_gives_the_marginals_of_brute_force_enumeration():
    import torch

    x = _crf_input()
    em = x.h @ x.W.T + x.b
    want = _enumerated_log_marginals(torch.as_tensor(em), x.sentence_starts, x.crf).numpy()
    a = crf_context(em, x.sentence_starts, x.crf)
    np.testing.assert_allclose(torch.log_softmax(torch.as_tensor(em + a), dim=1).numpy(), want, atol=1e-10)


def test_gradxact_of_the_crf_marginal_is_the_gradient_at_each_tokens_own_units_times_its_units():
    import torch

    x = _crf_input()
    h = torch.as_tensor(x.h).requires_grad_()
    logm = _enumerated_log_marginals(h @ torch.as_tensor(x.W).T + torch.as_tensor(x.b), x.sentence_starts, x.crf)
    attr = np.empty_like(x.h)
    for t in range(len(x.h)):
        (grad,) = torch.autograd.grad(logm[t, x.labels[t]], h, retain_graph=True)
        attr[t] = grad[t].numpy() * x.h[t]  # the token's own units; the rest of the sentence held fixed
    got = M.gradxact_scores(x, target="marginal")
    for z in range(3):
        np.testing.assert_allclose(got[:, z], attr[x.labels == z].mean(axis=0), atol=1e-10)


def test_integrated_gradients_of_the_crf_marginal_satisfy_completeness_per_token():
    import torch

    x = _crf_input()
    f = M._tag_head(x, "marginal")
    h = torch.as_tensor(x.h)
    rows, labels = torch.arange(len(h)), torch.as_tensor(x.labels)
    gap = (f(h)[rows, labels] - f(torch.zeros_like(h))[rows, labels]).numpy()
    ig = M.ig_scores(x, target="marginal")  # per-tag means of per-token attributions
    for z in range(3):
        np.testing.assert_allclose(ig[:, z].sum(), gap[x.labels == z].mean(), atol=1e-3)


def test_the_marginal_target_needs_a_crf():
    x = _crf_input()
    with pytest.raises(AnalysisInputError, match="marginal"):
        M.gradxact_scores(M.RankInput(x.h, x.labels, x.W, 3, x.b), target="marginal")
