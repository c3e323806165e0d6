"""Tests for nerve.analysis.sensitivity: contributions and per-tag sensitivity (Xin, Lin & Yu 2019)."""

import numpy as np
import pytest

from nerve.analysis.sensitivity import contributions, sensitivity


def loop_sensitivity(h, W, labels):
    """The definition, literally: mean contribution over tokens labelled j minus over the others."""
    c = contributions(h, W)
    n_tags, n = W.shape
    s = np.full((n, n_tags), np.nan)
    for j in range(n_tags):
        inside, outside = labels == j, labels != j
        for i in range(n):
            if inside.any() and outside.any():
                s[i, j] = c[inside, j, i].mean() - c[outside, j, i].mean()
    return s


def test_contributions_are_weight_times_activation(arrays):
    h, W = arrays["h"][:5], arrays["W"]
    c = contributions(h, W)
    assert c.shape == (5, W.shape[0], W.shape[1])
    assert c[3, 2, 1] == pytest.approx(float(W[2, 1]) * float(h[3, 1]))


def test_sensitivity_equals_loop_over_contributions(arrays):
    s = sensitivity(arrays["h"], arrays["W"], arrays["pred"])
    np.testing.assert_allclose(s, loop_sensitivity(arrays["h"], arrays["W"], arrays["pred"]), rtol=1e-10, atol=1e-12)


def test_gold_bucket_uses_the_given_labels(arrays):
    s = sensitivity(arrays["h"], arrays["W"], arrays["gold"])
    np.testing.assert_allclose(s, loop_sensitivity(arrays["h"], arrays["W"], arrays["gold"]), rtol=1e-10, atol=1e-12)


def test_tag_without_tokens_gives_nan_column(arrays):
    labels = np.where(arrays["pred"] == 1, 0, arrays["pred"])
    s = sensitivity(arrays["h"], arrays["W"], labels)
    assert np.isnan(s[:, 1]).all()
    assert np.isfinite(np.delete(s, 1, axis=1)).all()


def test_tag_on_every_token_gives_nan_column(arrays):
    s = sensitivity(arrays["h"], arrays["W"], np.full(len(arrays["h"]), 4))
    assert np.isnan(s[:, 4]).all()


def test_labels_out_of_range_raise(arrays):
    with pytest.raises(ValueError, match=r"tag ids in \[0, 5\)"):
        sensitivity(arrays["h"], arrays["W"], np.full(len(arrays["h"]), 5))


def test_shape_mismatch_raises(arrays):
    with pytest.raises(ValueError, match="W: expected shape"):
        sensitivity(arrays["h"], arrays["W"][:, :3], arrays["pred"])
