"""The bases' comparison within one analysis (issue 33): per method, intervention and tag, what a basis' units do.

    units_to_halve     the smallest k whose top-k intervention brings z's recall to half its k = 0 value or below
                       (empty when no k up to max_k does)
    necessity_auc      the mean own drop of z's recall over k = 0..K (methods_summary.csv's auc)
    sufficiency_auc    the mean own gain with only the top k kept (sufficiency_summary.csv's auc; empty without)
    selectivity        own drop − the other tags' mean drop at k = 10 (or the largest judged k below)
    top_share          the mean, over z's top 10 units, of the share of each unit's 100 most active tokens
                       (largest |value| on the ranking split) that carry z
    monosemanticity    the basis' mean over all units of the largest share of one tag among its 100 most active
                       tokens (the same for every row of a basis)
    reconstruction_f1_drop  entity F1 of the scoring split minus its F1 with every token's h replaced by the basis'
                       reconstruction center + a·D (the error term's own effect; 0 for exact bases)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from nerve.analysis.ablation import score_predictions
from nerve.analysis.checks import Activations
from nerve.analysis.decoders import decode_emissions
from nerve.analysis.judging import dicts_csv
from nerve.io import atomic_write_text

TOP_TOKENS = 100  # a unit's most active tokens
TOP_UNITS = 10  # a tag's top units
BASIS_SUMMARY = "basis_summary.csv"
BASIS_FIELDS = ("basis", "n_units", "method", "ablate", "target_tag", "baseline", "units_to_halve", "necessity_auc",
                "sufficiency_auc", "selectivity", "selectivity_k", "top_share", "monosemanticity",
                "reconstruction_f1_drop")


def tag_shares(h: np.ndarray, labels: np.ndarray, n_tags: int, top: int = TOP_TOKENS) -> np.ndarray:
    """float64 (m, T): per unit, the share of its ``top`` most active tokens (largest |h|, ties by token order)
    that carry each tag."""
    h = np.abs(np.asarray(h, np.float64))
    top = min(top, len(h))
    idx = np.argsort(-h, axis=0, kind="stable")[:top]  # shape: (top, m)
    lab = np.asarray(labels, np.intp)[idx]  # shape: (top, m)
    return np.stack([np.bincount(lab[:, u], minlength=n_tags) for u in range(h.shape[1])]) / top


def units_to_halve(rows: np.ndarray, method: str, ablate: str, z: str) -> int | None:
    """The smallest k whose top-k rows of ``method`` (methods.csv) bring z's recall to ≤ half its k = 0 value."""
    sel = rows[(rows["method"] == method) & (rows["ablate"] == ablate) & (rows["target_tag"] == z)
               & (rows["selection"] == "top") & (rows["eval_tag"] == z)]
    if not sel.size:
        return None
    sel = sel[np.argsort(sel["k"], kind="stable")]
    base = float(sel["accuracy"][sel["k"] == 0][0])
    hit = sel["k"][(sel["k"] > 0) & (sel["accuracy"] <= base / 2)]
    return int(hit.min()) if hit.size else None


def reconstruction_f1_drop(site: Activations, basis) -> float:
    """Entity F1 of ``site`` (the scoring split in neurons) minus its F1 with h replaced by center + a·D."""
    if basis is None:
        return 0.0
    h = np.asarray(site.h, np.float64)
    rec = basis.center + basis.decode(basis.encode(h))
    W, b = np.asarray(site.W, np.float64), np.asarray(site.b, np.float64)
    preds = [decode_emissions(x @ W.T + b, site) for x in (h, rec)]
    names, table = score_predictions(np.stack(preds), site)
    f1 = table[:, names.index("F1"), 0]
    return float(f1[0] - f1[1])


@dataclass(frozen=True)
class MethodTables:
    """What basis_summary.csv reads of one analysis' methods: methods.csv ``rows``, methods_summary.csv
    (``judged``), sufficiency_summary.csv (``gains``, None without), each method's (T, n) ``rankings`` and the
    ``tags`` they index."""

    rows: np.ndarray
    judged: list[dict]
    gains: list[dict] | None
    rankings: dict
    tags: list[str]


def basis_summary(tables: MethodTables, shares: np.ndarray, about: dict) -> list[dict]:
    """The rows of basis_summary.csv (fields ``BASIS_FIELDS``) from one analysis' method tables, the units' tag
    shares (m, T) and ``about`` (basis, n_units, reconstruction_f1_drop)."""
    rows, judged, gains, scores, tags = tables.rows, tables.judged, tables.gains, tables.rankings, tables.tags
    mono = float(shares.max(axis=1).mean()) if shares.size else float("nan")
    acc = [j for j in judged if j["score"] == "accuracy"]
    auc = {(j["method"], j["ablate"], j["target_tag"]): j["auc"] for j in acc}
    sauc = {(j["method"], j["ablate"], j["target_tag"]): j["auc"] for j in (gains or []) if j["score"] == "accuracy"}
    sel, base = {}, {}
    for j in sorted(acc, key=lambda j: j["k"]):
        if j["k"] <= 10:
            sel[(j["method"], j["ablate"], j["target_tag"])] = (j["selectivity"], j["k"])
        base[(j["method"], j["ablate"], j["target_tag"])] = j["baseline"]
    out = []
    for (method, ablate, z) in auc:
        ranking = scores.get(method)
        top = (float(shares[ranking[tags.index(z), :TOP_UNITS], tags.index(z)].mean()) if ranking is not None
               else None)
        s, k = sel.get((method, ablate, z), (None, None))
        out.append({"basis": about["basis"], "n_units": about["n_units"], "method": method, "ablate": ablate,
                    "target_tag": z, "baseline": base[(method, ablate, z)],
                    "units_to_halve": units_to_halve(rows, method, ablate, z),
                    "necessity_auc": auc[(method, ablate, z)], "sufficiency_auc": sauc.get((method, ablate, z)),
                    "selectivity": s, "selectivity_k": k, "top_share": top, "monosemanticity": mono,
                    "reconstruction_f1_drop": about["reconstruction_f1_drop"]})
    return out


def write_basis_summary(out: str | os.PathLike, summary: list[dict]) -> str:
    """Write basis_summary.csv; return its name."""
    atomic_write_text(os.path.join(out, BASIS_SUMMARY), dicts_csv(summary, BASIS_FIELDS))
    return BASIS_SUMMARY


def summarise_folder(out, rank: Activations, site: Activations, labels: np.ndarray, basis) -> str:
    """basis_summary.csv of an analysis folder whose methods are written (methods.csv, methods_summary.csv,
    methods_scores.npz, sufficiency_summary.csv when swept): ``rank`` the ranking split in the basis, ``labels``
    its tags (the spec's bucket), ``site`` the scoring split in neurons, ``basis`` the fitted basis (None:
    neurons). Returns the file's name."""
    from pathlib import Path

    from nerve.analysis.heldout import read_method_scores, read_methods_csv
    from nerve.analysis.judging import GAIN_FIELDS, read_summary_csv

    out = Path(out)
    saved = read_method_scores(out / "methods_scores.npz")
    gains = (read_summary_csv(out / "sufficiency_summary.csv", GAIN_FIELDS)
             if (out / "sufficiency_summary.csv").is_file() else None)
    about = {"basis": "neurons" if basis is None else basis.name, "n_units": int(rank.h.shape[1]),
             "reconstruction_f1_drop": reconstruction_f1_drop(site, basis)}
    tables = MethodTables(read_methods_csv(out / "methods.csv"), read_summary_csv(out / "methods_summary.csv"), gains,
                          saved.rankings, saved.tags)
    summary = basis_summary(tables, tag_shares(rank.h, labels, len(saved.tags)), about)
    return write_basis_summary(out, summary)
