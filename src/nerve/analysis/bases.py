"""Bases of a site: the coordinates the analysis reads units in (neurons, or directions fitted on the ranking split).

A fitted basis writes each token's activations h (n,) as h = a·D + e: its units a (m,) = encode(h), its directions
D (m, n), and the rest e = h − a·D (the mean and the reconstruction error), which an intervention on basis units
leaves as it is. The tag scores W·h + b are then (W·Dᵀ)·a + (b + W·e): a model whose units are a, whose tag
projection is W·Dᵀ and whose bias, b + W·e, is fixed per token (``project``). Every analysis (rankings, the
interventions, sweeps, draws) runs on that model unchanged: intervening on unit u of a is editing h along D[u].

    neurons  the identity: a = h, D = I, e = 0 (today's analysis, bit for bit)
    pca      principal components of the ranking split (scikit-learn ``PCA``, all of them: e is the mean)
    ica      independent components (scikit-learn ``FastICA``, all of them, unit-variance whitening, fitted on at most
             ``ICA_TOKENS`` tokens; e the mean)
    sae      a sparse autoencoder's features, 4× as many as units (``analysis/sae.py``); e = b_dec + its error
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np

from nerve.analysis.checks import Activations, AnalysisInputError, float_matrix

BASIS_FILE = "basis.npz"  # the fitted basis in an analysis folder (``save_basis``)
ICA_OPTIONS = {"whiten": "unit-variance", "max_iter": 1000, "tol": 1e-4, "algorithm": "parallel", "fun": "logcosh"}
ICA_TOKENS = 20_000  # FastICA fits on at most this many tokens of the ranking split (a seeded sample): on the grid's
# 200 units, all 51,362 dev tokens took 219 s and 1,000 iterations without converging; 20,000 converged in 173
# iterations, 15.6 s (docs/RESULTS.md, issue 33)


@dataclass(frozen=True)
class FittedBasis:
    """A basis fitted to one split: units a = (h − center)·encoder + bias (m units; with ``relu``, max(0, ·)),
    directions D (m, n).

    name: the basis (``BASES``); center: float64 (n,); encoder: float64 (n, m); D: float64 (m, n); about: what the
    fit reports (iterations, convergence, explained variance); bias: float64 (m,) or None (0); relu: the units are
    ReLU features (the SAE's)."""

    name: str
    center: np.ndarray
    encoder: np.ndarray
    D: np.ndarray
    about: dict
    bias: np.ndarray | None = None
    relu: bool = False

    @property
    def n_units(self) -> int:
        return int(self.D.shape[0])

    def encode(self, h: np.ndarray) -> np.ndarray:
        """float64 (N, m) the basis units of (N, n) activations."""
        a = (np.asarray(h, np.float64) - self.center) @ self.encoder
        if self.bias is not None:
            a += self.bias
        return np.maximum(a, 0.0) if self.relu else a

    def decode(self, a: np.ndarray) -> np.ndarray:
        """float64 (N, n): a·D, the part of h the units carry (without the rest e)."""
        return np.asarray(a, np.float64) @ self.D

    def unit_names(self) -> list[str]:
        """The units' names in tables: the basis name and the index (``pca0``, ``pca1``, ...)."""
        return [f"{self.name}{i}" for i in range(self.n_units)]


def fit_basis(name: str, h: np.ndarray, seed: int = 0) -> FittedBasis | None:
    """The basis ``name`` fitted to the (N, n) activations ``h`` of the ranking split; None for ``neurons``.

    Raises:
        AnalysisInputError: an unknown basis, or fewer tokens than units."""
    h = float_matrix(h, "h", (None, None)).astype(np.float64)
    if name == "neurons":
        return None
    if name not in FITTERS:
        raise AnalysisInputError(f"basis {name!r}: expected one of neurons, {', '.join(FITTERS)}")
    if h.shape[0] <= h.shape[1]:
        raise AnalysisInputError(f"basis {name}: needs more tokens than units to fit, got {h.shape[0]} tokens for "
                                 f"{h.shape[1]} units")
    return FITTERS[name](h, seed)


def _pca(h: np.ndarray, seed: int) -> FittedBasis:
    from sklearn.decomposition import PCA

    pca = PCA(n_components=h.shape[1], svd_solver="full", random_state=seed).fit(h)
    V = pca.components_.astype(np.float64)  # shape: (m, n), orthonormal rows
    return FittedBasis("pca", pca.mean_.astype(np.float64), V.T.copy(), V,
                       {"explained_variance_ratio": pca.explained_variance_ratio_.round(6).tolist()})


def _ica(h: np.ndarray, seed: int) -> FittedBasis:
    from sklearn.decomposition import FastICA
    from sklearn.exceptions import ConvergenceWarning

    rows = np.sort(np.random.default_rng(seed).permutation(len(h))[:ICA_TOKENS])  # all of them when fewer
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        ica = FastICA(n_components=h.shape[1], random_state=seed, **ICA_OPTIONS).fit(h[rows])
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    if not converged:
        warnings.warn(f"basis ica: FastICA did not converge in {ICA_OPTIONS['max_iter']} iterations "
                      f"(tol {ICA_OPTIONS['tol']}); its components are still a basis (reconstruction exact)",
                      RuntimeWarning, stacklevel=3)
    return FittedBasis("ica", ica.mean_.astype(np.float64), ica.components_.T.astype(np.float64).copy(),
                       ica.mixing_.T.astype(np.float64).copy(),
                       {"iterations": int(ica.n_iter_), "converged": converged, "tokens": int(rows.size),
                        **ICA_OPTIONS})


def _sae(h: np.ndarray, seed: int) -> FittedBasis:
    from nerve.analysis.sae import SAE_OPTIONS, fit_sae

    p = fit_sae(h, seed)
    return FittedBasis("sae", p["b_dec"], p["W_enc"], p["D"],
                       {"r2": round(p["r2"], 6), "l0": round(p["l0"], 3), "dead": p["dead"], **SAE_OPTIONS},
                       bias=p["b_enc"], relu=True)


FITTERS = {"pca": _pca, "ica": _ica, "sae": _sae}


def project(acts: Activations, basis: FittedBasis | None) -> Activations:
    """``acts`` in the basis' coordinates: h → a, W → W·Dᵀ, b → b + W·e per token, unit names → the basis'
    (the model's tag scores unchanged up to rounding); ``acts`` itself for None (neurons)."""
    if basis is None:
        return acts
    if acts.h.shape[1] != basis.D.shape[1]:
        raise AnalysisInputError(f"basis {basis.name}: fitted to {basis.D.shape[1]} units, the activations have "
                                 f"{acts.h.shape[1]}")
    a = basis.encode(acts.h)  # shape: (N, m)
    rest = np.asarray(acts.h, np.float64) - basis.decode(a)  # shape: (N, n): the mean and the error, kept
    W = np.asarray(acts.W, np.float64)
    b = np.asarray(acts.b, np.float64) + rest @ W.T  # shape: (N, T)
    return replace(acts, h=a, W=W @ basis.D.T, b=b, neurons=basis.unit_names())


def project_arrays(arrays: dict, basis: FittedBasis | None) -> dict:
    """An activations archive (``capture_activations``' dict) in the basis' coordinates (``project``): h, W, b
    and neurons replaced, the rest as it is; ``arrays`` itself for None (neurons)."""
    if basis is None:
        return arrays
    from nerve.analysis.checks import check_activations

    p = project(check_activations(arrays), basis)
    return {**arrays, "h": p.h, "W": p.W, "b": p.b, "neurons": np.asarray(p.neurons)}


def save_basis(path, basis: FittedBasis) -> None:
    """Write the fitted basis (center, encoder, D) as an .npz file, atomically."""
    from nerve.io import atomic_save

    bias = np.zeros(basis.n_units) if basis.bias is None else basis.bias
    atomic_save(path, lambda f: np.savez(f, name=basis.name, center=basis.center, encoder=basis.encoder, D=basis.D,
                                         bias=bias, relu=basis.relu), suffix=".npz")


def load_basis(path) -> FittedBasis:
    """A basis written by ``save_basis``."""
    with np.load(path, allow_pickle=False) as z:
        bias = z["bias"]
        return FittedBasis(str(z["name"]), z["center"], z["encoder"], z["D"], {},
                           bias=bias if np.any(bias) else None, relu=bool(z["relu"]))


def recorded_basis(analysis_dir) -> FittedBasis | None:
    """The basis an analysis folder was made in, as its analysis.json records it (None: neurons). A basis.npz that an
    earlier analysis left in the folder, unrecorded, is not read."""
    import json
    from pathlib import Path

    d = Path(analysis_dir)
    about = json.loads((d / "analysis.json").read_text(encoding="utf-8")).get("basis")
    return load_basis(d / about["file"]) if about else None


def basis_edit(basis: FittedBasis, units, values):
    """A forward hook body ``fn(module, inputs, output)`` that sets the basis ``units`` of every token to
    ``values`` (None: 0; (m,) one per unit; callable(shape) -> shape + (m,): per token) by editing the site's
    output along their directions: h + (v_S − a_S)·D_S, the rest of h kept."""
    import torch

    idx = np.asarray(list(units), dtype=np.intp)

    def fn(module, inputs, output):
        if idx.size == 0:
            return output
        h = output.detach().cpu().numpy().astype(np.float64)  # shape: (..., n)
        a = basis.encode(h.reshape(-1, h.shape[-1]))[:, idx]  # shape: (N, |S|)
        if values is None:
            v = np.zeros_like(a)
        elif callable(values):
            v = np.asarray(values(tuple(h.shape[:-1])), np.float64).reshape(-1, basis.n_units)[:, idx]
        else:
            v = np.broadcast_to(np.asarray(values, np.float64)[idx], a.shape)
        edited = h.reshape(-1, h.shape[-1]) + (v - a) @ basis.D[idx]
        return torch.as_tensor(edited.reshape(h.shape), dtype=output.dtype, device=output.device)

    return fn
