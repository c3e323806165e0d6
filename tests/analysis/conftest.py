"""Fixtures of the analysis tests: small synthetic activations archives."""

import pytest
from analysis_synthetic import make_arrays


@pytest.fixture
def arrays():
    return make_arrays()


@pytest.fixture
def crf_arrays():
    return make_arrays(n_tokens=120, n=6, n_sentences=15, seed=3, decoder="crf")
