"""A sparse autoencoder of a site's activations (Bricken et al. 2023, "Towards Monosemanticity"): the ``sae`` basis.

    a = ReLU((h − b_dec)·W_enc + b_enc)        # shape: (N, m), m = SAE_WIDTH × n features
    ĥ = a·D + b_dec                            # D (m, n), each row of unit norm
    loss = mean_t ‖h_t − ĥ_t‖² / s² + λ · mean_t Σ_i a_ti · ‖D_i‖ / s

with s² the activations' mean squared distance to their mean (so that λ means the same for every model), Adam,
seeded batches, D's rows renormalised after each step. bench/bench_sae.py measures it against scikit-learn's
``MiniBatchDictionaryLearning`` (reconstruction, sparsity, fit time): the reason it is hand-written.
"""

from __future__ import annotations

import numpy as np

SAE_WIDTH = 4  # features per unit of the site
SAE_OPTIONS = {"width": SAE_WIDTH, "l1": 0.1, "lr": 1e-3, "epochs": 40, "batch_size": 512}


def fit_sae(h: np.ndarray, seed: int = 0, options: dict | None = None) -> dict:
    """Fit the SAE to the (N, n) activations h: {"b_dec" (n,), "W_enc" (n, m), "b_enc" (m,), "D" (m, n), "r2",
    "l0", "dead"} — float64 arrays; r2 the variance of h explained by ĥ, l0 the mean number of active features a
    token, dead the features never active. One torch thread's result is reproducible by ``seed``."""
    import torch

    opt = {**SAE_OPTIONS, **(options or {})}
    x = torch.as_tensor(np.asarray(h, np.float32))
    N, n = x.shape
    m = int(opt["width"]) * n
    gen = torch.Generator().manual_seed(int(seed))
    mean = x.mean(dim=0)
    scale = float(((x - mean) ** 2).sum(dim=1).mean().sqrt()) or 1.0
    b_dec = torch.nn.Parameter(mean.clone())
    D = torch.randn(m, n, generator=gen)
    D = torch.nn.Parameter(D / D.norm(dim=1, keepdim=True))
    W_enc = torch.nn.Parameter(D.detach().T.clone())  # tied at the start (a common initialisation)
    b_enc = torch.nn.Parameter(torch.zeros(m))
    optim = torch.optim.Adam([b_dec, D, W_enc, b_enc], lr=float(opt["lr"]))
    bs = int(opt["batch_size"])
    for _ in range(int(opt["epochs"])):
        for idx in torch.randperm(N, generator=gen).split(bs):
            xb = (x[idx] - b_dec) / scale  # shape: (B, n)
            a = torch.relu(xb @ W_enc + b_enc)  # shape: (B, m)
            rec = a @ D
            loss = ((rec - xb) ** 2).sum(dim=1).mean() + float(opt["l1"]) * (a * D.norm(dim=1)).sum(dim=1).mean()
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            with torch.no_grad():
                D /= D.norm(dim=1, keepdim=True).clamp_min(1e-12)
    out = {"b_dec": b_dec.detach().double().numpy(), "W_enc": (W_enc.detach().double() / scale).numpy(),
           "b_enc": b_enc.detach().double().numpy(), "D": (D.detach().double() * scale).numpy()}
    a = encode_sae(out, h)
    rec = a @ out["D"] + out["b_dec"]
    h64 = np.asarray(h, np.float64)
    out["r2"] = float(1 - ((h64 - rec) ** 2).sum() / ((h64 - h64.mean(axis=0)) ** 2).sum())
    out["l0"] = float((a > 0).sum(axis=1).mean())
    out["dead"] = int(((a > 0).sum(axis=0) == 0).sum())
    return out


def encode_sae(p: dict, h: np.ndarray) -> np.ndarray:
    """float64 (N, m): the SAE features ReLU((h − b_dec)·W_enc + b_enc) of (N, n) activations."""
    return np.maximum((np.asarray(h, np.float64) - p["b_dec"]) @ p["W_enc"] + p["b_enc"], 0.0)
