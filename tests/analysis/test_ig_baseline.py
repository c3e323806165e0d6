"""Integrated gradients from a baseline (the intervention's value): equal to Captum's own IntegratedGradients with
that baseline, on the tag head and through the model's hook point; complete (attributions sum to f(h) − f(β));
the default (zero baseline) unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from nerve.analysis import methods as M
from nerve.analysis.checks import AnalysisInputError
from nerve.analysis.interventions import Mean


@pytest.fixture
def x() -> M.RankInput:
    rng = np.random.default_rng(11)
    h = rng.normal(size=(80, 6)) + 0.5
    labels = rng.integers(0, 3, size=80)  # tag 3 has no token
    h[:, 1] += 1.5 * (labels == 2)
    return M.RankInput(h, labels, rng.normal(size=(4, 6)), 4, rng.normal(size=4))


def _crf_input(seed: int = 5) -> M.RankInput:
    rng = np.random.default_rng(seed)
    T, n, lengths = 3, 4, [1, 3, 4, 2]
    h = rng.normal(size=(sum(lengths), n))
    crf = (rng.normal(size=T), rng.normal(size=(T, T)), rng.normal(size=T))
    return M.RankInput(h, np.array([0, 1, 2, 0, 1, 1, 2, 0, 2, 1]), rng.normal(size=(T, n)), T,
                       rng.normal(size=T), crf, np.cumsum([0, *lengths[:-1]]))


def _captum_ig(x: M.RankInput, target: str, beta: np.ndarray):
    """Captum's IntegratedGradients of each token's score of its own tag, from ``beta``: (N, n) attributions."""
    import torch
    from captum.attr import IntegratedGradients

    f = M._tag_head(x, target)
    h = torch.as_tensor(x.h)
    base = torch.as_tensor(beta, dtype=h.dtype).expand_as(h).contiguous()
    return IntegratedGradients(f).attribute(h, baselines=base, target=torch.as_tensor(x.labels),
                                            n_steps=M.IG_STEPS).numpy(), f, h, base


def _per_tag(attr: np.ndarray, labels: np.ndarray, n_tags: int) -> np.ndarray:
    """(n, T): each tag's mean attribution over its tokens (NaN without tokens)."""
    return np.stack([attr[labels == z].mean(axis=0) if np.any(labels == z) else np.full(attr.shape[1], np.nan)
                     for z in range(n_tags)], axis=1)


@pytest.mark.parametrize("target", ["logprob", "logit"])
def test_ig_from_the_mean_equals_captums_integrated_gradients_with_that_baseline(x, target):
    beta = Mean().values(x.h)
    attr, _, _, _ = _captum_ig(x, target, beta)
    got = M.ig_scores(x, target, baseline=beta)
    np.testing.assert_allclose(got, _per_tag(attr, x.labels, 4), atol=1e-10, equal_nan=True)
    assert np.isnan(got[:, 3]).all() and np.isfinite(got[:, :3]).all()


def test_ig_from_a_baseline_of_the_crf_marginal_equals_captum_with_the_context_held():
    x = _crf_input()
    import torch
    from captum.attr import IntegratedGradients

    beta = np.array([0.3, -1.0, 0.7, 2.0])
    head = M._tag_head(x, "marginal")  # the context a_t from x's own emissions, held at every path point
    rows, labels = torch.arange(len(x.labels)), torch.as_tensor(x.labels)
    H = torch.as_tensor(x.h)[None]  # one example of every token: the context is per token

    def f(paths):  # (S, N, n) -> (S,)
        return head(paths)[:, rows, labels].sum(dim=1)

    base = torch.as_tensor(beta).expand_as(H).contiguous()
    attr = IntegratedGradients(f).attribute(H, baselines=base, n_steps=M.IG_STEPS)[0].numpy()
    np.testing.assert_allclose(M.ig_scores(x, "marginal", baseline=beta), _per_tag(attr, x.labels, 3), atol=1e-9)


def test_ig_from_a_baseline_is_complete(x):
    import torch

    beta = Mean().values(x.h)
    _, f, h, base = _captum_ig(x, "logprob", beta)
    rows = torch.arange(len(h))
    labels = torch.as_tensor(x.labels)
    gap = (f(h)[rows, labels] - f(base)[rows, labels]).numpy()  # per token: f(h) − f(β) of its own tag
    got = M.ig_scores(x, baseline=beta)
    for z in range(3):
        assert got[:, z].sum() == pytest.approx(gap[x.labels == z].mean(), abs=1e-6)


def test_ig_from_a_baseline_of_a_linear_score_is_the_weight_times_the_distance(x):
    beta = Mean().values(x.h)
    want = _per_tag(x.W[x.labels] * (x.h - beta), x.labels, 4)  # exact for a linear score
    np.testing.assert_allclose(M.ig_scores(x, "logit", baseline=beta), want, atol=1e-12, equal_nan=True)


def test_the_default_zero_baseline_is_unchanged(x):
    assert np.array_equal(M.ig_scores(x), M._attribution_scores(x, "ig", "logprob"), equal_nan=True)
    np.testing.assert_allclose(M.ig_scores(x, baseline=np.zeros(6)), M.ig_scores(x), atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("bad", [np.zeros(5), np.zeros((2, 6)), np.full(6, np.nan)])
def test_a_baseline_of_another_shape_or_not_finite_is_an_error(x, bad):
    with pytest.raises(AnalysisInputError, match="ig baseline"):
        M.ig_scores(x, baseline=bad)


def test_ig_from_the_mean_equals_captum_through_the_models_hook_point(tiny_run):
    """As ``test_gradxact_equals_captums_layer_gradient_x_activation_on_the_models_hook_point``: Captum's
    IntegratedGradients on the model itself, the hook point's output replaced by the path's points (what
    ``LayerIntegratedGradients`` does inside; it takes its baseline as model inputs, not as a layer value)."""
    import torch
    from captum.attr import IntegratedGradients

    from nerve.analysis.capture import capture_activations
    from nerve.analysis.checks import check_activations
    from nerve.analysis.heldout import rank_input
    from nerve.data.batching import batches
    from nerve.data.conll import read_conll
    from nerve.data.prepare import encode_split
    from nerve.model.hooks import capture, hooks
    from nerve.run import load_run

    run = load_run(tiny_run)
    sents = read_conll(run.cfg.data.dev)
    dev = check_activations(capture_activations(run, sents, run.cfg.data.dev)[0])
    items = [i for i in encode_split(run.indexer(), sents, run.cfg.data.dev) if len(i.words)]
    ((_, batch),) = list(batches(items, len(items), order=np.arange(len(items)), with_chars=False))
    model = run.model.eval().double()
    mask, labels = batch.mask, torch.as_tensor(dev.pred)
    with torch.no_grad(), capture(model) as store:
        model.emissions(batch)
    H = store[0][None]  # shape: (1, B, L, n), the hook point's output

    def f(paths):  # (S, B, L, n) -> (S,): each path point's summed log-probability of the predicted tags
        out = []
        for p in paths:
            with hooks(model, [("encoder_out", lambda m, i, o, p=p: p)]):
                lp = torch.log_softmax(model.emissions(batch), dim=-1)[mask]  # shape: (N, T)
            out.append(lp[torch.arange(len(labels)), labels].sum())
        return torch.stack(out)

    beta = Mean().values(dev.h)
    base = torch.as_tensor(beta).expand_as(H).contiguous()
    attr = IntegratedGradients(f).attribute(H, baselines=base, n_steps=M.IG_STEPS, internal_batch_size=8)
    want = _per_tag(attr[0][mask].detach().numpy(), dev.pred, len(dev.tags))
    np.testing.assert_allclose(M.ig_scores(rank_input(dev), baseline=beta), want, atol=1e-5, equal_nan=True)
