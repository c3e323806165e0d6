"""Per-sentence token counts of an ablation sweep at k = 0 and the judged ks (``SweepCounts``): what a bootstrap over
sentences of the ablation statistics needs (``within.sentence_variance``), counted as the sweep decodes
(``SentenceCounter``), and their npz file (``write_sentence_counts``, ``read_sentence_counts``)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from nerve.analysis.checks import AnalysisInputError
from nerve.io import atomic_save


@dataclass(frozen=True)
class SweepCounts:
    """Per-sentence token counts of one sweep at k = 0 and at ``ks`` (S sentences, T tags, K ks, Z targets with a
    ``top`` selection, D random draws): what a bootstrap over sentences of the ablation statistics needs.

    gold: (S, T) gold tokens of each tag in each sentence; base: (S, T) of them predicted right at k = 0;
    top: (K, Z, S, T) predicted right after ablating target z's top-k units (every eval tag, for the
    selectivity's other tags); random: (K, S, T) predicted right, summed over the D random draws (their mean
    recall is the sum over sentences / (D · the tag's tokens): the statistics need no more of the draws).
    Integer arrays; accuracy = sum over sentences of right / sum of gold, as in ``ablation.csv``."""

    tags: list[str]
    ks: list[int]
    targets: list[str]
    draws: int
    gold: np.ndarray
    base: np.ndarray
    top: np.ndarray
    random: np.ndarray


class SentenceCounter:
    """Right tokens per sentence and gold tag of one prediction."""

    def __init__(self, gold: np.ndarray, starts: np.ndarray, n_tags: int):
        self.n_sentences, self.n_tags = starts.size, n_tags
        sid = np.zeros(gold.size, np.intp)
        sid[starts[1:]] = 1
        self.cell = np.cumsum(sid) * n_tags + gold  # sentence * T + gold tag, per token
        self.gold = gold
        longest = int(np.diff(np.append(starts, gold.size)).max()) if starts.size else 0
        self.dtype = np.int16 if longest <= np.iinfo(np.int16).max else np.int32  # kept per decoded unit set
        self.support = self.right(gold)

    def right(self, pred: np.ndarray) -> np.ndarray:
        """(S, T) int16 (int32 for a sentence over 32,767 tokens): tokens of each sentence whose gold tag t was
        predicted t."""
        hit = self.cell[np.asarray(pred) == self.gold]
        return np.bincount(hit, minlength=self.n_sentences * self.n_tags).astype(self.dtype).reshape(
            self.n_sentences, self.n_tags)


def sweep_counts(walker, ids: dict, ks: list[int], tags: list[str], draws: int, base: int) -> SweepCounts:
    """The walked sweep's ``SweepCounts`` (from the counts the walker kept per decoded unit set; ``base``: the
    row of k = 0)."""
    right, counter = walker.right, walker.sentences
    shape = (counter.n_sentences, counter.n_tags)
    targets = sorted(j for x, j in ids if x == "top")
    top = np.zeros((len(ks), len(targets), *shape), counter.dtype)
    rand = np.zeros((len(ks), *shape), np.int32)
    for i, k in enumerate(ks):
        for z, j in enumerate(targets):
            top[i, z] = right[ids[("top", j)][k]]
        for r in range(draws):
            rand[i] += right[ids[("random", r)][k]]
    return SweepCounts(list(tags), list(ks), [tags[j] for j in targets], draws, counter.support, right[base], top,
                       rand)


SENTENCES = "ablation_sentences.npz"  # beside ablation.csv; methods.csv's is heldout.METHOD_SENTENCES


def write_sentence_counts(path: str | os.PathLike, parts: dict[str, SweepCounts]) -> None:
    """An npz of per-sentence counts (``SweepCounts``) per ablation value, written atomically (compressed;
    integer arrays: int16 where every value fits, else int32). Keys and shapes (A ablation values, K ks, Z targets,
    S sentences of the scoring split, T tags):

    tags (T,), ablate (A,), ks (K,) int32, targets (Z,), draws (A,) int32;
    gold (S, T): gold tokens of tag t in sentence s;
    base (A, S, T): of those, predicted right at k = 0 (no unit ablated);
    top (A, K, Z, S, T): predicted right after ablating target z's top-k units;
    random (A, K, S, T): predicted right, summed over the draws' random k units."""
    first = next(iter(parts.values()))
    for name, p in parts.items():
        if (p.tags, p.ks, p.targets) != (first.tags, first.ks, first.targets) or p.gold.shape != first.gold.shape:
            raise AnalysisInputError(f"{name}: its counts have other tags, ks, targets or sentences than "
                                     f"{next(iter(parts))}'s")
    values = list(parts.values())

    def small(a: np.ndarray) -> np.ndarray:
        fits = not a.size or (a.min() >= np.iinfo(np.int16).min and a.max() <= np.iinfo(np.int16).max)
        return a.astype(np.int16 if fits else np.int32)

    arrays = {"tags": np.array(first.tags), "ablate": np.array(list(parts)), "ks": np.array(first.ks, np.int32),
              "targets": np.array(first.targets, dtype=f"U{max(map(len, first.tags), default=1)}"),
              "draws": np.array([p.draws for p in values], np.int32),
              "gold": small(first.gold),  # shape: (S, T)
              "base": small(np.stack([p.base for p in values])),  # shape: (A, S, T)
              "top": small(np.stack([p.top for p in values])),  # shape: (A, K, Z, S, T)
              "random": small(np.stack([p.random for p in values]))}  # shape: (A, K, S, T)
    atomic_save(path, lambda buf: np.savez_compressed(buf, **arrays))


def read_sentence_counts(path: str | os.PathLike) -> dict[str, SweepCounts]:
    """``write_sentence_counts``' file read back: {ablation value: ``SweepCounts``}."""
    with np.load(path, allow_pickle=False) as z:
        tags, ks, targets = [str(t) for t in z["tags"]], [int(k) for k in z["ks"]], [str(t) for t in z["targets"]]
        gold = z["gold"]
        return {str(a): SweepCounts(tags, ks, targets, int(z["draws"][i]), gold, z["base"][i], z["top"][i],
                                    z["random"][i]) for i, a in enumerate(z["ablate"])}
