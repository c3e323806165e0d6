"""Per-tag importance rankings of units by sensitivity (Xin, Lin & Yu, EMNLP 2019) and their text files."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from nerve.analysis.checks import AnalysisInputError
from nerve.io import atomic_write_text


def rank_units(s: np.ndarray) -> np.ndarray:
    """Units of every tag ordered from most to least important.

    Follows Xin, Lin & Yu (2019): a tag's importance ranking sorts units by their
    sensitivity to it, highest first. Ties keep unit-index order (stable sort). A NaN
    sensitivity sorts after every number, so an all-NaN column (a tag with no token in
    the bucket) ranks units by index.

    Args:
        s: (n, n_tags) sensitivities, as returned by ``sensitivity``.

    Returns:
        intp (n_tags, n): row j lists unit indices, most important for tag j first.

    Raises:
        ValueError: if ``s`` is not 2-d.
    """
    s = np.asarray(s, dtype=np.float64)
    if s.ndim != 2:
        raise AnalysisInputError(f"s: expected shape (n_units, n_tags), got {s.shape}")
    return np.ascontiguousarray(np.argsort(-s, axis=0, kind="stable").T)


def _check(s: np.ndarray, rankings: np.ndarray, tags: Sequence[str], neurons: Sequence[str]) -> None:
    n, n_tags = np.shape(s)
    if len(tags) != n_tags or len(neurons) != n:
        raise AnalysisInputError(
            f"expected {n_tags} tags and {n} neuron names for s of shape {np.shape(s)}, "
            f"got {len(tags)} and {len(neurons)}"
        )
    if np.shape(rankings) != (n_tags, n):
        raise AnalysisInputError(f"rankings: expected shape ({n_tags}, {n}), got {np.shape(rankings)}")


def ranking_tsv(s: np.ndarray, rankings: np.ndarray, tags: Sequence[str], neurons: Sequence[str]) -> str:
    """Text of ``ranking.tsv``: header ``tag, rank, neuron, sensitivity``, every unit for every tag.

    Args:
        s: (n, n_tags) sensitivities.
        rankings: int (n_tags, n) from ``rank_units``.
        tags: (n_tags,) tag names; neurons: (n,) unit names.

    Returns:
        Tab-separated text, tags in index order, ranks from 1, sensitivities as %.9g ("nan" if NaN).
    """
    _check(s, rankings, tags, neurons)
    lines = ["tag\trank\tneuron\tsensitivity"]
    for j, tag in enumerate(tags):
        for r, u in enumerate(rankings[j], start=1):
            lines.append(f"{tag}\t{r}\t{neurons[u]}\t{s[u, j]:.9g}")
    return "\n".join(lines) + "\n"


def ranking_txt(rankings: np.ndarray, tags: Sequence[str], neurons: Sequence[str], top: int | None = None) -> str:
    """Text of ``ranking.txt``: one line per tag, ``B-PER: 12 7 33 ...``, unit names best first.

    Args:
        rankings: int (n_tags, n) from ``rank_units``.
        tags: (n_tags,) tag names; neurons: (n,) unit names.
        top: number of units per line; default every unit.
    """
    rankings = np.asarray(rankings)
    if rankings.ndim != 2 or rankings.shape[0] != len(tags):
        raise AnalysisInputError(f"rankings: expected shape ({len(tags)}, n_units), got {rankings.shape}")
    if top is not None and top < 0:
        raise AnalysisInputError(f"top: expected a number >= 0, got {top}")
    lines = [f"{tag}: " + " ".join(str(neurons[u]) for u in rankings[j][:top]) for j, tag in enumerate(tags)]
    return "\n".join(lines) + "\n"


def write_ranking_tsv(path: str | os.PathLike, s, rankings, tags, neurons) -> None:
    """Write ``ranking_tsv(...)`` to ``path`` atomically."""
    atomic_write_text(path, ranking_tsv(s, rankings, tags, neurons))


def write_ranking_txt(path: str | os.PathLike, rankings, tags, neurons, top: int | None = None) -> None:
    """Write ``ranking_txt(...)`` to ``path`` atomically."""
    atomic_write_text(path, ranking_txt(rankings, tags, neurons, top))
