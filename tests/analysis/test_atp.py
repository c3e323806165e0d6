"""AtP gap: the exact single-unit effects equal a brute-force loop (set the unit, recompute, sum); the AtP
estimate equals torch autograd's gradient × delta; a linear target has no gap; the rows' correlations and
overlaps equal plain re-computations."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from nerve.analysis import atp as A
from nerve.analysis.checks import AnalysisInputError

T, N, n = 4, 60, 7


@pytest.fixture
def x() -> A.AtPInput:
    rng = np.random.default_rng(2)
    h = rng.normal(size=(N, n))
    labels = rng.integers(0, 3, size=N)  # tag 3 has no token
    return A.AtPInput(h, labels, rng.normal(size=(T, n)), rng.normal(size=T), rng.normal(size=n))


def _f(logits: np.ndarray, target: str) -> np.ndarray:
    if target == "logit":
        return logits
    return logits - np.log(np.exp(logits - logits.max()).sum()) - logits.max()


def _brute_effects(x: A.AtPInput, target: str, context=None) -> np.ndarray:
    """(n, T) by loops: each token, each unit set alone to its value, the token's own tag's score recomputed."""
    out = np.zeros((n, T))
    values = np.zeros(n) if x.values is None else np.asarray(x.values)
    b = np.zeros(T) if x.b is None else x.b
    for t in range(len(x.h)):
        c = np.zeros(T) if context is None else context[t]
        z = x.labels[t]
        base = _f(x.h[t] @ x.W.T + b + c, target)[z]
        for i in range(n):
            v = values[i] if values.ndim == 1 else values[t, i]
            edited = x.h[t].copy()
            edited[i] = v
            out[i, z] += _f(edited @ x.W.T + b + c, target)[z] - base
    out[:, np.bincount(x.labels, minlength=T) == 0] = np.nan
    return out


@pytest.mark.parametrize("values", ["mean", "zero", "per_token"])
def test_exact_effects_equal_a_brute_force_loop(x, values):
    rng = np.random.default_rng(3)
    v = {"mean": x.h.mean(axis=0), "zero": None, "per_token": x.h[rng.permutation(N)]}[values]
    x = A.AtPInput(x.h, x.labels, x.W, x.b, v)
    exact, _, counts = A.unit_effects(x)
    np.testing.assert_allclose(exact, _brute_effects(x, "logprob"), atol=1e-12, equal_nan=True)
    assert counts.tolist() == np.bincount(x.labels, minlength=T).tolist()


def test_exact_effects_of_the_crf_marginal_hold_the_context(x):
    context = np.random.default_rng(4).normal(size=(N, T))
    xm = A.AtPInput(x.h, x.labels, x.W, x.b, x.values, "marginal", context)
    np.testing.assert_allclose(A.unit_effects(xm)[0], _brute_effects(x, "logprob", context), atol=1e-12,
                               equal_nan=True)


def test_exact_effects_in_small_chunks_are_the_same(x, monkeypatch):
    whole = A.unit_effects(x)[0]
    monkeypatch.setattr(A, "CHUNK_ELEMENTS", 3 * n * T)  # three tokens a chunk
    np.testing.assert_allclose(A.unit_effects(x)[0], whole, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("target", ["logprob", "marginal"])
def test_the_atp_estimate_equals_autograds_gradient_times_delta(x, target):
    import torch

    context = np.random.default_rng(5).normal(size=(N, T)) if target == "marginal" else np.zeros((N, T))
    xt = A.AtPInput(x.h, x.labels, x.W, x.b, x.values, target, context if target == "marginal" else None)
    h = torch.tensor(x.h, requires_grad=True)
    lp = torch.log_softmax(h @ torch.as_tensor(x.W).T + torch.as_tensor(x.b) + torch.as_tensor(context), dim=1)
    lp[torch.arange(N), torch.as_tensor(x.labels)].sum().backward()  # each token's gradient is its own
    attr = (h.grad * (torch.as_tensor(x.values) - h)).detach().numpy()  # gradient × (value − activation)
    want = np.stack([attr[x.labels == z].sum(axis=0) if np.any(x.labels == z) else np.full(n, np.nan)
                     for z in range(T)], axis=1)
    np.testing.assert_allclose(A.unit_effects(xt)[1], want, atol=1e-12, equal_nan=True)


def test_a_linear_target_has_no_gap(x):
    xl = A.AtPInput(x.h, x.labels, x.W, x.b, x.values, "logit")
    exact, estimate, _ = A.unit_effects(xl)
    np.testing.assert_allclose(exact, _brute_effects(x, "logit"), atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(estimate, exact, atol=1e-12, equal_nan=True)
    rows = [r for r in A.atp_rows(xl, list("ABCD"), {}) if r["method"] == A.ATP]
    assert [r["target_tag"] for r in rows] == ["A", "B", "C"]
    assert all(r["mean_abs_gap"] < 1e-12 and r["spearman"] == pytest.approx(1.0) and r["top_overlap"] == 1.0
               for r in rows)


def test_the_gap_is_second_order_in_the_distance(x):
    rng = np.random.default_rng(6)
    gaps = []
    for eps in (1e-2, 1e-3):
        xe = A.AtPInput(x.h, x.labels, x.W, x.b, x.h + eps * rng.normal(size=x.h.shape))
        exact, estimate, _ = A.unit_effects(xe)
        gaps.append(np.nanmax(np.abs(exact - estimate)))
    assert gaps[1] < gaps[0] / 50  # O(eps²): a tenth of the distance, a hundredth of the gap


def test_rows_equal_plain_recomputations(x):
    from scipy.stats import spearmanr

    rng = np.random.default_rng(7)
    scores = {"good": None, "noise": rng.normal(size=(n, T)), "blind": np.full((n, T), np.nan)}
    exact, estimate, counts = A.unit_effects(x)
    scores["good"] = -exact + 1e-9 * rng.normal(size=(n, T))  # ranks by the exact drop
    scores["good"][:, 3] = np.nan
    rows = A.atp_rows(x, list("ABCD"), scores, ablate="mean", top=3)
    assert [(r["target_tag"], r["method"]) for r in rows] == [(t, m) for t in "ABC" for m in ("atp", "good", "noise")]
    for r in rows:
        z = "ABCD".index(r["target_tag"])
        s = -estimate[:, z] if r["method"] == "atp" else scores[r["method"]][:, z]
        assert r["spearman"] == pytest.approx(spearmanr(s, -exact[:, z]).statistic, abs=1e-12)
        truth = set(np.argsort(exact[:, z])[:3])  # the three largest drops
        assert r["top_overlap"] == len(set(np.argsort(-s)[:3]) & truth) / 3
        assert (r["ablate"], r["target"], r["top_k"], r["n_tokens"]) == ("mean", "logprob", 3, counts[z])
        assert r["mean_abs_effect"] == pytest.approx(np.abs(exact[:, z]).mean())
        want_gap = np.abs(estimate[:, z] - exact[:, z]).mean() if r["method"] == "atp" else None
        assert r["mean_abs_gap"] == (pytest.approx(want_gap) if want_gap is not None else None)
    assert all(r["spearman"] == pytest.approx(1.0) and r["top_overlap"] == 1.0 for r in rows if r["method"] == "good")


def test_atp_input_of_a_crf_splits_activations_holds_the_marginals_context(crf_arrays):
    from nerve.analysis.checks import check_activations
    from nerve.model.crf import crf_context

    acts = check_activations(crf_arrays)
    x = A.atp_input(acts, None)
    assert x.target == "marginal" and np.array_equal(x.labels, acts.gold)
    em = acts.h.astype(np.float64) @ acts.W.T.astype(np.float64) + acts.b
    np.testing.assert_allclose(x.context, np.maximum(crf_context(em, acts.sentence_starts, acts.crf), -1e4))
    rows = A.atp_rows(x, acts.tags, {}, "zero")
    assert rows and all(r["target"] == "marginal" and r["method"] == A.ATP for r in rows)


@pytest.mark.parametrize("change", [{"values": np.zeros(3)}, {"target": "marginal"}, {"target": "prob"},
                                    {"labels": np.full(N, T)}])
def test_inputs_that_do_not_fit_are_errors(x, change):
    import dataclasses

    with pytest.raises(AnalysisInputError, match="atp"):
        A.unit_effects(dataclasses.replace(x, **change))


def test_the_csv_has_one_line_per_row(x, tmp_path):
    rows = A.atp_rows(x, list("ABCD"), {"noise": np.random.default_rng(8).normal(size=(n, T))}, "zero")
    text = A.atp_csv(rows)
    back = list(csv.DictReader(io.StringIO(text)))
    assert tuple(back[0]) == A.ATP_FIELDS and len(back) == len(rows)
    assert back[1]["mean_abs_gap"] == ""  # a ranking method has no gap
    A.write_atp_csv(tmp_path / "atp.csv", rows)
    assert (tmp_path / "atp.csv").read_text() == text
