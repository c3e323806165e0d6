"""Fixtures of the analysis tests: small synthetic activations archives, and a tiny trained CRF run."""

import pytest
from analysis_synthetic import make_arrays

from tests.conftest import TINY, TINY_CFG, run_cli


@pytest.fixture
def arrays():
    return make_arrays()


@pytest.fixture
def crf_arrays():
    return make_arrays(n_tokens=120, n=6, n_sentences=15, seed=3, decoder="crf")


@pytest.fixture(scope="session")
def crf_run(tmp_path_factory):
    """A tiny CRF tagger trained once per session (hidden 12)."""
    out = tmp_path_factory.mktemp("runs") / "crf"
    run_cli("train", TINY_CFG, "--data", TINY, "--out", out, "--no-progress", "--set", "model.decoder=crf",
            "--set", "model.hidden=12", check=True)
    return out
