"""Curves out of ablation rows (``ablation_sweep`` or ``read_ablation_csv``): per target tag and selection, the
accuracy of every eval tag at every k and draw."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from nerve.analysis.checks import AnalysisInputError

Cube = tuple[np.ndarray, list[str], np.ndarray]  # (ks, eval tags, accuracy (n_k, n_draws, n_evals))


def groups(rows: np.ndarray, field: str) -> dict[str, np.ndarray]:
    """``rows`` grouped by the value of ``field`` (groups in order of first appearance, rows in their order)."""
    col = rows[field]
    if not col.size:
        return {}
    names, first, inverse = np.unique(col, return_index=True, return_inverse=True)
    return {str(names[i]): rows[inverse == i] for i in np.argsort(first)}


def cube(rows: np.ndarray) -> Cube:
    """The accuracies of the rows of one target and selection, k ascending, draws ascending, eval tags in the
    order of their first row."""
    order = np.lexsort((rows["draw"], rows["k"]))
    by_eval = groups(rows[order], "eval_tag")
    ks = np.unique(rows["k"])
    acc = np.stack([g["accuracy"].reshape(ks.size, -1) for g in by_eval.values()], axis=-1)
    return ks, list(by_eval), acc


def selections(rows: np.ndarray) -> dict[str, Cube]:
    """``cube`` of each selection (top, bottom, random) of one target's rows."""
    return {sel: cube(r) for sel, r in groups(rows, "selection").items()}


def own(cubes: Mapping[str, Cube], selection: str, tag: str) -> tuple[np.ndarray, np.ndarray]:
    """(ks, accuracy (n_k, n_draws)) of ``tag`` itself under one selection; empty if absent."""
    if selection not in cubes or tag not in cubes[selection][1]:
        return np.empty(0), np.empty((0, 0))
    ks, evals, acc = cubes[selection]
    return ks, acc[:, :, evals.index(tag)]


def check_target(rows: np.ndarray, target: str, where: str = "rows") -> None:
    """Raise AnalysisInputError naming the targets present when ``target`` has no rows."""
    if not np.any(rows["target_tag"] == target):
        raise AnalysisInputError(f"{where}: no ablation rows for target tag {target!r}; expected one of "
                                 f"{list(groups(rows, 'target_tag'))}")


def random_band(rnd: np.ndarray, base: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """2.5 and 97.5 percentiles and mean over draws of the random selection's change (rnd: (n_k, n_draws))."""
    change = rnd - base
    lo, hi = np.percentile(change, [2.5, 97.5], axis=1)
    return lo, hi, change.mean(axis=1)
