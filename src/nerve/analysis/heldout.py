"""Ranking methods judged by ablation on held-out data: rank on one split, ablate and score on another."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from nerve.analysis.ablation import FIELDS, SCORES, Sweep, ablation_sweep_counts, row_dtype
from nerve.analysis.checks import Activations, AnalysisInputError
from nerve.analysis.core import INTERVENTIONS, METHODS, AnalysisSpec
from nerve.analysis.methods import RankInput
from nerve.analysis.ranking import rank_units
from nerve.analysis.sentence_counts import SweepCounts
from nerve.analysis.tables import read_csv_columns, structured_csv, text_width
from nerve.io import atomic_save, atomic_write_text

RANDOM = "random"  # the method whose rows are the random draws (the baseline), selection "random"
COUNTED = "sensitivity"  # the method whose top-k sweeps the ablation findings judge (and whose sentences are counted)
METHOD_SENTENCES = "methods_sentences.npz"  # per-sentence counts of methods.csv's sensitivity and random rows
METHOD_FIELDS = ("method", "ablate", "rank_split", "score_split", *FIELDS)


def rank_input(acts: Activations, bucket: str = "predicted") -> RankInput:
    """What the ranking methods read of one split's activations (labels: predictions or gold by ``bucket``)."""
    return RankInput(acts.h, acts.pred if bucket == "predicted" else acts.gold, acts.W, len(acts.tags), acts.b,
                     acts.crf, acts.sentence_starts)


def default_target(rank: RankInput) -> str:
    """The attribution methods' token score: the CRF marginal for CRF taggers, else the log-probability."""
    return "marginal" if rank.crf is not None else "logprob"


def unranked(rank: RankInput) -> np.ndarray:
    """bool (T,): the tags with no token among ``rank``'s labels. No method can rank units for such a tag (its
    scores would only reflect the other tags, and its ranking fall back to unit order), so its scores are NaN and
    its rankings are neither swept nor judged."""
    # shape: (T,)
    return np.bincount(np.asarray(rank.labels, dtype=np.intp), minlength=rank.n_tags)[:rank.n_tags] == 0


def method_score_matrices(rank: RankInput, methods: Sequence[str], seed: int = 0,
                          target: str | None = None, progress: bool = False) -> dict[str, np.ndarray]:
    """Per method of ``core.METHODS`` (the random draws excluded: their rows are draws, not a ranking), the
    (n, T) scores from ``rank`` only; ``target``: the attribution methods' token score ("logprob" softmax,
    "marginal" or "logit" CRF; default ``default_target``). A tag without a token in ``rank`` (``unranked``)
    has NaN scores: it cannot be ranked. ``progress``: a bar on stderr, one step a method."""
    target = target or default_target(rank)
    chosen = [METHODS.get(m) for m in methods]
    absent = unranked(rank)
    out = {}
    from tqdm.auto import tqdm

    bar = tqdm(total=sum(not m.draws for m in chosen), desc="methods: scoring", unit="method", disable=not progress,
               leave=False)
    for m in chosen:
        if not m.draws:
            bar.set_postfix_str(m.name)
            bar.update(0)
            scores = np.array(m.scores(rank, seed, target), dtype=np.float64)  # shape: (n, T)
            scores[:, absent] = np.nan
            out[m.name] = scores
            bar.update(1)
    bar.close()
    return out


def method_rankings(rank: RankInput, methods: Sequence[str], seed: int = 0,
                    target: str | None = None) -> dict[str, np.ndarray]:
    """Per method (the random draws excluded), the (T, n) rankings from ``rank`` only
    (``method_score_matrices``)."""
    return {m: rank_units(s) for m, s in method_score_matrices(rank, methods, seed, target).items()}


@dataclass(frozen=True)
class MethodScores:
    """The content of ``methods_scores.npz``: methods (M,), tags (T,), neurons (n,), scores {method: float64
    (n, T)}, rankings {method: intp (T, n)} (each tag's units, most important first: ``rank_units`` of the
    scores), rank_split (the split ranked on) and target (the attribution methods' token score)."""

    methods: list[str]
    tags: list[str]
    neurons: list[str]
    scores: dict[str, np.ndarray]
    rankings: dict[str, np.ndarray]
    rank_split: str
    target: str


def write_method_scores(path: str | os.PathLike, saved: MethodScores) -> None:
    """``methods_scores.npz``, loadable with ``numpy.load``: methods (M,), tags (T,), neurons (n,), scores float64
    (M, n, T), rankings intp (M, T, n), rank_split and target as 0-d strings."""
    names = list(saved.methods)
    S = np.stack([np.asarray(saved.scores[m], dtype=np.float64) for m in names])
    R = np.stack([np.asarray(saved.rankings[m]) for m in names])
    arrays = {"methods": np.array(names), "tags": np.array(list(saved.tags)), "neurons": np.array(list(saved.neurons)),
              "scores": S, "rankings": R, "rank_split": np.array(saved.rank_split), "target": np.array(saved.target)}
    atomic_save(path, lambda buf: np.savez_compressed(buf, **arrays))


def read_method_scores(path: str | os.PathLike) -> MethodScores:
    """``methods_scores.npz`` read back."""
    with np.load(path, allow_pickle=False) as z:
        names = [str(m) for m in z["methods"]]
        return MethodScores(names, [str(t) for t in z["tags"]], [str(u) for u in z["neurons"]],
                            {m: z["scores"][i] for i, m in enumerate(names)},
                            {m: z["rankings"][i] for i, m in enumerate(names)},
                            str(z["rank_split"]), str(z["target"]))


def method_sweeps(rank: RankInput, score: Activations, spec: AnalysisSpec,
                  rankings: Mapping[str, np.ndarray] | None = None, progress: bool = False) -> np.ndarray:
    """The rows of ``method_sweeps_counts`` alone (see there)."""
    return method_sweeps_counts(rank, score, spec, rankings, (), progress)[0]


def method_sweeps_counts(rank: RankInput, score: Activations, spec: AnalysisSpec,
                         rankings: Mapping[str, np.ndarray] | None = None, counts_at: Sequence[int] = (),
                         progress: bool = False) -> tuple[np.ndarray, dict[str, SweepCounts] | None]:
    """Top-k intervention sweeps of every method's ranking, and the random draws, for each intervention.

    The rankings come from ``rank`` (the ranking split) alone; the sweeps run on ``score`` (the scoring split)
    with the model's own decoder. Each intervention's unit values come from the ranking split
    (``interventions.Intervention.token_values``: e.g. ``mean`` sets a unit to its mean over the ranking split's
    tokens), or, for ``resample``, from another token of the scoring split (seeded by ``spec.seed``).

    Args:
        rank: the ranking split's unit values and labels (``rank_input``).
        score: the scoring split's activations (gold tags, W, b, CRF).
        spec: the methods (``core.METHODS``), interventions, max_k (None: every unit), random draws and seed,
            and the split names (``split`` scored, ``ranking_split`` ranked on).
        rankings: the methods' (T, n) rankings when already computed from ``rank`` (default: computed here).
        counts_at: the ks (1..max_k) at which to count each sentence's right tokens of the ``COUNTED`` method's
            top-k sweeps and the random draws (``sentence_counts.SweepCounts``); none: no counts.

    Returns:
        (rows, counts): structured rows, fields ``METHOD_FIELDS``: method, ablate, rank_split, score_split, then
        the fields of ``ablation.csv`` (selection "top" for a method, "random" with draw 0..D-1 for the random
        draws). A tag without a token in ``rank`` (``unranked``) has no method rows as a target: there is no
        ranking to sweep. counts: {intervention: ``SweepCounts``} (targets: the ``COUNTED`` method's, none when it
        is not among the methods; draws 0 without the random method), None without ``counts_at``.
    """
    return _sweeps(rank, score, spec, rankings, False, counts_at, progress)


def method_sufficiency(rank: RankInput, score: Activations, spec: AnalysisSpec,
                       rankings: Mapping[str, np.ndarray] | None = None, progress: bool = False) -> np.ndarray:
    """Sufficiency sweeps: as ``method_sweeps``, but each row keeps only the top (or random) k units and
    intervenes on every other unit (k = 0: every unit intervened). Rows of ``sufficiency.csv``, fields
    ``METHOD_FIELDS``, k = the number of units kept."""
    return _sweeps(rank, score, spec, rankings, True, (), progress)[0]


def _sweeps(rank: RankInput, score: Activations, spec: AnalysisSpec, rankings: Mapping[str, np.ndarray] | None,
            keep: bool, counts_at: Sequence[int], progress: bool) -> tuple[np.ndarray, dict | None]:
    if rank.h.shape[1] != score.h.shape[1]:
        raise AnalysisInputError(f"rank and score splits have {rank.h.shape[1]} and {score.h.shape[1]} units")
    if not spec.methods:
        raise AnalysisInputError("method_sweeps: the spec names no --methods")
    if rankings is None:
        rankings = method_rankings(rank, spec.methods, spec.seed)
    chosen = [METHODS.get(m) for m in spec.methods]
    rankings = {m.name: rankings[m.name] for m in chosen if not m.draws}
    n = score.h.shape[1]
    max_k = spec.bound_max_k(n)
    parts = []
    counted: dict[str, dict[str, SweepCounts]] = {}
    for name in spec.interventions:
        values = INTERVENTIONS.get(name).token_values(rank.h, score.h, spec.seed)  # shape: (n,) or (n_tokens, n)
        for method, ranking in rankings.items():
            sweep = Sweep(max_k, spec.random_draws, spec.seed, values, ("top",), keep)
            rows, c = ablation_sweep_counts(score, ranking, sweep, counts_at if method == COUNTED else (), progress)
            parts.append((method, name, rows))
            if c is not None:
                counted.setdefault(name, {})["top"] = c
        if any(m.draws for m in chosen):
            any_ranking = np.tile(np.arange(n), (len(score.tags), 1))
            sweep = Sweep(max_k, spec.random_draws, spec.seed, values, ("random",), keep)
            rows, c = ablation_sweep_counts(score, any_ranking, sweep, counts_at, progress)
            parts.append((RANDOM, name, rows))
            if c is not None:
                counted.setdefault(name, {})["random"] = c
    rows = _label(parts, spec.ranking_split, spec.split)
    absent = [t for t, a in zip(score.tags, unranked(rank)) if a]
    if absent:
        rows = rows[~((rows["method"] != RANDOM) & np.isin(rows["target_tag"], absent))]
    counts = {name: _merge_counts(c.get("top"), c.get("random"), absent) for name, c in counted.items()} or None
    return rows, counts


def _merge_counts(top: SweepCounts | None, rnd: SweepCounts | None, absent: list[str]) -> SweepCounts:
    """One intervention's counts: the targets' top-k from the ``COUNTED`` method's sweep (less the unranked tags),
    the random draws from the random one (the k = 0 counts are the same in both: no unit ablated)."""
    first = top if top is not None else rnd
    keep = [i for i, t in enumerate(first.targets) if t not in absent] if top is not None else []
    top_counts = top.top[:, keep] if top is not None else np.zeros((len(first.ks), 0, *first.gold.shape), np.int16)
    random = rnd.random if rnd is not None else np.zeros((len(first.ks), *first.gold.shape), np.int32)
    return SweepCounts(first.tags, first.ks, [first.targets[i] for i in keep], rnd.draws if rnd is not None else 0,
                       first.gold, first.base, top_counts, random)


def method_dtype(width: int, tag_width: int, ablate_width: int = 4) -> np.dtype:
    """Structured dtype of methods.csv rows (``METHOD_FIELDS``): method and split names of ``width`` characters,
    ablation values of ``ablate_width``, tags of ``tag_width`` (``ablation.row_dtype``)."""
    tags = row_dtype(tag_width)
    return np.dtype([("method", f"U{width}"), ("ablate", f"U{ablate_width}"), ("rank_split", f"U{width}"),
                     ("score_split", f"U{width}"), *[(f, tags[f]) for f in FIELDS]])


def _label(parts, rank_split: str, score_split: str) -> np.ndarray:
    width = max([len(m) for m, _, _ in parts] + [len(rank_split), len(score_split), 6])
    first = parts[0][2].dtype
    dtype = method_dtype(width, text_width(np.empty(0, first["target_tag"])), max(4, *(len(a) for _, a, _ in parts)))
    out = np.empty(sum(len(r) for _, _, r in parts), dtype=dtype)
    i = 0
    for method, ablate, rows in parts:
        block = out[i:i + len(rows)]
        block["method"], block["ablate"] = method, ablate
        block["rank_split"], block["score_split"] = rank_split, score_split
        for f in FIELDS:
            block[f] = rows[f]
        i += len(rows)
    return out


def methods_csv(rows: np.ndarray) -> str:
    """Text of ``methods.csv``: header ``METHOD_FIELDS`` then one line per row (the score column is named as in
    ablation.csv: per-tag accuracy for a tag, token accuracy for ALL, entity F1 for F1)."""
    return structured_csv(rows, METHOD_FIELDS)


def write_methods_csv(path: str | os.PathLike, rows: np.ndarray) -> None:
    """Write ``methods_csv(rows)`` to ``path`` atomically."""
    atomic_write_text(path, methods_csv(rows))


def read_methods_csv(path: str | os.PathLike) -> np.ndarray:
    """Rows of a ``methods.csv`` as ``method_sweeps`` gives them (``method_dtype``), parsed by pyarrow.

    Raises:
        ValueError (AnalysisInputError): another header, or a line that does not parse, naming the file.
    """
    cols = read_csv_columns(path, METHOD_FIELDS, {"k": np.int32, "draw": np.int32, **dict.fromkeys(SCORES, np.float64)},
                            "a methods.csv")
    width = max([6, *(text_width(cols[f]) for f in ("method", "rank_split", "score_split"))])
    tag_width = max(3, text_width(cols["target_tag"]), text_width(cols["eval_tag"]))
    out = np.empty(len(cols["k"]), dtype=method_dtype(width, tag_width, max(4, text_width(cols["ablate"]))))
    for f in METHOD_FIELDS:
        out[f] = cols[f]
    return out
