"""Ablation sweeps: zero the top, bottom or random k units and re-decode (Xin, Lin & Yu, EMNLP 2019)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nerve.analysis.checks import (
    AnalysisInputError,
    bias_array,
    crf_arrays,
    float_matrix,
    labels_array,
    sentence_starts_array,
)
from nerve.analysis.decoders import CrfDecoder, SoftmaxDecoder
from nerve.analysis.sentence_counts import SentenceCounter, SweepCounts, sweep_counts
from nerve.analysis.tables import read_csv_columns, structured_csv, text_width
from nerve.analysis.tag_counts import TagCounter, per_tag_accuracy_arrays  # noqa: F401 (re-exported)
from nerve.io import atomic_write_text
from nerve.metrics import ChunkScorer

SELECTIONS = ("top", "bottom", "random")
SCORES = ("accuracy", "precision", "recall", "f1")
FIELDS = ("target_tag", "selection", "k", "draw", "eval_tag", *SCORES)
ENTITY_PREFIX = "F1:"  # eval tag of one entity type's scores, e.g. "F1:PER"
_SCORE_BLOCK = 16  # predictions per ChunkScorer call: keeps its intp copies small


def row_dtype(max_tag_len: int) -> np.dtype:
    """Structured dtype of ablation rows, fields ``FIELDS``; tag fields hold ``max_tag_len`` characters."""
    w = max(int(max_tag_len), 3)
    return np.dtype([("target_tag", f"U{w}"), ("selection", "U6"), ("k", np.int32), ("draw", np.int32),
                     ("eval_tag", f"U{w}"), *[(f, np.float64) for f in SCORES]])


def _check_rankings(rankings, n_tags: int, n: int) -> np.ndarray:
    r = np.asarray(rankings)
    if r.shape != (n_tags, n) or not np.issubdtype(r.dtype, np.integer):
        raise AnalysisInputError(f"rankings: expected int shape ({n_tags}, {n}), got {r.dtype} {r.shape}")
    if n and not np.array_equal(np.sort(r, axis=1), np.broadcast_to(np.arange(n), r.shape)):
        raise AnalysisInputError(f"rankings: expected each row to be a permutation of 0..{n - 1}")
    return r.astype(np.intp)


MAX_RANDOM_DRAWS = 1000  # the sweep holds n_tags * (2 + draws) * (max_k + 1) * n_eval rows in memory


def random_orders(n: int, draws: int, seed: int) -> np.ndarray:
    """R seeded unit permutations (R, n); the first k of a row is a uniform random k-subset.

    The same permutations serve as the random baseline of every target tag.
    """
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(n) for _ in range(draws)]) if draws else np.empty((0, n), np.intp)


@dataclass(frozen=True)
class SweepInput:
    """The scoring split as a sweep reads it (``checks.Activations`` has the same fields and serves too).

    h: float (n_tokens, n) unit values, sentences concatenated; W: float (n_tags, n), b: float (n_tags,): the tag
    projection; gold: int (n_tokens,) gold tag ids; sentence_starts: int (n_sentences,) first token of each
    sentence; tags: (n_tags,) names; crf: None (softmax) or (start (n_tags,), transitions (n_tags, n_tags)
    [from, to], end (n_tags,))."""

    h: np.ndarray
    W: np.ndarray
    b: np.ndarray
    gold: np.ndarray
    sentence_starts: np.ndarray
    tags: Sequence[str]
    crf: tuple | None = None


@dataclass(frozen=True)
class Sweep:
    """What one sweep does: k = 0..``max_k`` units per target tag and selection (``SELECTIONS``; e.g. ("top",)
    for judging a ranking alone), ``random_draws`` seeded random unit orders (``seed``) shared by every target,
    ``values``: the value an intervened unit takes, float (n,) one per unit or (n_tokens, n) one per token and
    unit (``interventions.Intervention.token_values``; None: 0), and ``keep``: necessity (False: the k units are
    intervened, the others kept) or sufficiency (True: the k units are kept, every other unit intervened)."""

    max_k: int
    random_draws: int = 20
    seed: int = 0
    values: np.ndarray | None = None
    selections: tuple[str, ...] = SELECTIONS
    keep: bool = False


def ablation_sweep(data, rankings, sweep: Sweep, progress: bool = False) -> np.ndarray:
    """The rows of ``ablation_sweep_counts`` alone (see there)."""
    return ablation_sweep_counts(data, rankings, sweep, (), progress)[0]


def ablation_sweep_counts(data, rankings, sweep: Sweep, counts_at: Sequence[int] = (),
                          progress: bool = False) -> tuple[np.ndarray, SweepCounts | None]:
    """Accuracy after ablating k = 0..max_k units per target tag and selection (Xin, Lin & Yu 2019), or, with
    ``sweep.keep``, after ablating every unit but those k (sufficiency: k = 0 has every unit ablated).

    Ablating a set S sets h[:, S] = 0 (or to ``sweep.values[S]``, or per token ``sweep.values[t, S]``),
    recomputes the emissions h @ W.T + b in float64 precision and decodes them (argmax, first max on ties, or
    CRF Viterbi). Selections per target tag j:
    ``top`` (first k of rankings[j]), ``bottom`` (first k of rankings[j] reversed) and ``random`` (first k of
    each of ``random_draws`` seeded permutations, shared by every target, so random rows repeat across targets).
    Each distinct unit set is decoded once. Eval tags (``eval_tags``): every tag (accuracy = recall on its gold
    tokens, plus token precision, recall and F1, so that over-predicting a tag shows), ``ALL`` (token accuracy),
    ``F1`` (conlleval entity micro F1 as a fraction, with entity precision and recall, via ``ChunkScorer``) and
    ``F1:type`` per entity type (that type's entity scores). The k = 0 rows re-decode too, so they can differ
    from the archived float32 ``pred`` on near-ties. Setting h[:, S] = m[S] is zero-ablating h − m with the bias
    b + W·m (per token: h − M with the bias b + M·Wᵀ of each token), which is how it is computed.

    Args:
        data: the scoring split (``SweepInput`` or ``checks.Activations``).
        rankings: int (n_tags, n) from ``rank_units``.
        sweep: max_k (0..n), random draws and seed, the intervened units' values, the selections.
        counts_at: the ks (each in 1..max_k) at which to count, per sentence and tag, the gold tokens predicted
            right (``SweepCounts``, what a bootstrap over sentences needs); none: no counts.
        progress: show a tqdm bar on stderr.

    Returns:
        (rows, counts): rows, a structured array (``row_dtype``) of the rows of ablation.csv ordered by target
        tag, selection, k, draw, eval tag; n_tags * (n_selections + random_draws) * (max_k + 1) * n_eval rows,
        n_eval = n_tags + 2 + the number of entity types; columns ``SCORES`` (see ``_score``). counts: the
        ``SweepCounts`` at k = 0 and ``counts_at`` (None without ``counts_at``).

    Raises:
        ValueError: on inconsistent shapes, labels or rankings, or max_k outside 0..n.
    """
    h = float_matrix(data.h, "h", (None, None))
    n_tokens, n = h.shape
    tags = [str(t) for t in data.tags]
    n_tags = len(tags)
    W = float_matrix(data.W, "W", (n_tags, n))
    b = bias_array(data.b, n_tokens, n_tags)
    gold = labels_array(data.gold, "gold", n_tokens, n_tags)
    starts = sentence_starts_array(data.sentence_starts, n_tokens)
    rankings = _check_rankings(rankings, n_tags, n)
    max_k, random_draws, seed = sweep.max_k, sweep.random_draws, sweep.seed
    if isinstance(max_k, bool) or not isinstance(max_k, (int, np.integer)) or not 0 <= max_k <= n:
        raise AnalysisInputError(f"max_k: expected an integer in 0..{n} (number of units), got {max_k!r}")
    if (isinstance(random_draws, bool) or not isinstance(random_draws, (int, np.integer))
            or not 0 <= random_draws <= MAX_RANDOM_DRAWS):
        raise AnalysisInputError(f"random_draws: expected an integer in 0..{MAX_RANDOM_DRAWS:,}, got {random_draws!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise AnalysisInputError(f"seed: expected an integer >= 0, got {seed!r}")
    crf = crf_arrays(data.crf, n_tags)
    selections = tuple(sweep.selections)
    bad = [x for x in selections if x not in SELECTIONS]
    if bad or not selections:
        raise AnalysisInputError(f"selections: expected some of {', '.join(SELECTIONS)}, got {list(selections)}")
    if "random" not in selections:
        random_draws = 0
    if sweep.values is not None:
        m = float_matrix(sweep.values, "values", (n_tokens, n) if np.ndim(sweep.values) == 2 else (n,))
        m = m.astype(np.float64)  # shape: (n,) or (n_tokens, n)
        h, b = h - m, b + m @ W.astype(np.float64).T  # shapes: (n_tokens, n), (n_tags,) or (n_tokens, n_tags)
    if sweep.keep and counts_at:
        raise AnalysisInputError("counts_at: the sentences are counted in necessity sweeps only (keep=False)")
    decoder = SoftmaxDecoder(h, W, b, max_k) if crf is None else CrfDecoder(h, W, b, starts, crf)
    orders = {("top", j): rankings[j, :max_k] for j in range(n_tags)} if "top" in selections else {}
    if "bottom" in selections:
        orders.update({("bottom", j): rankings[j, ::-1][:max_k] for j in range(n_tags)})
    orders.update({("random", r): o[:max_k] for r, o in enumerate(random_orders(n, int(random_draws), seed))})
    ks = _counts_at(counts_at, max_k)
    sentences = SentenceCounter(gold, starts, n_tags) if counts_at else None
    walker = _Walker(decoder, n, ChunkScorer(tags, gold, starts), TagCounter(gold, n_tags), sentences, {0, *ks})
    ids = {}
    bar = _progress(len(orders), progress)
    for key, order in orders.items():
        ids[key] = walker.walk(order, sweep.keep)
        bar.update(1)
    bar.close()
    names = eval_tags(tags, walker.scorer.types)
    scores = np.concatenate(walker.table) if walker.table else np.empty((0, len(names), len(SCORES)))
    laid = Sweep(max_k, int(random_draws), seed, None, tuple(x for x in SELECTIONS[:2] if x in selections),
                 keep=sweep.keep)
    rows = _rows(scores, ids, names, tags, laid)
    if sentences is None:
        return rows, None
    base = walker.walk(np.zeros(0, np.intp))[0]  # the unit set of k = 0 (decoded already unless nothing was walked)
    return rows, sweep_counts(walker, ids, ks, tags, int(random_draws), base)


def _counts_at(counts_at: Sequence[int], max_k: int) -> list[int]:
    ks = sorted({int(k) for k in counts_at})
    bad = [k for k in ks if not 1 <= k <= max_k]
    if bad:
        raise AnalysisInputError(f"counts_at: expected ks in 1..{max_k} (max_k), got {bad}")
    return ks


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="ablation", unit="sweep", disable=not enabled, leave=False)


class _Walker:
    """Walks unit orders through a decoder, decoding each distinct unit set once (``cache``: packed mask ->
    row of the score table)."""

    def __init__(self, decoder, n: int, scorer: ChunkScorer, counter: TagCounter,
                 sentences: SentenceCounter | None = None, counts_at: set[int] = frozenset()):
        self.decoder, self.n, self.scorer, self.counter = decoder, n, scorer, counter
        self.cache: dict[bytes, int] = {}
        self.table: list[np.ndarray] = []
        self.sentences, self.counts_at = sentences, counts_at
        self.right: dict[int, np.ndarray] = {}  # row of the score table -> (S, T) right tokens (at counts_at)

    def walk(self, order: np.ndarray, keep: bool = False) -> np.ndarray:
        """Evaluate the prefixes 0..len(order) of ``order`` (removed, or with ``keep`` the only units kept);
        return their row ids in the score table."""
        mask = np.full(self.n, keep)  # the removed units
        self.decoder.clear() if keep else self.decoder.reset()
        ids = np.empty(order.size + 1, dtype=np.intp)
        preds = []
        base = sum(t.shape[0] for t in self.table)
        for k in range(order.size + 1):
            if k:
                mask[order[k - 1]] = not keep
                self.decoder.restore(order[k - 1]) if keep else self.decoder.remove(order[k - 1])
            key = np.packbits(mask).tobytes()
            if key not in self.cache:
                preds.append(self.decoder.decode(mask))
                self.cache[key] = base + len(preds) - 1
                if self.sentences is not None and k in self.counts_at:
                    self.right[self.cache[key]] = self.sentences.right(preds[-1])
            ids[k] = self.cache[key]
        if preds:
            self.table.append(_score(np.stack(preds), self.scorer, self.counter))
        return ids


def _prf(right: np.ndarray, predicted: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """float64 (..., 3) precision, recall, F1 = 2·right / (predicted + gold) from counts (NaN where a
    denominator is 0: F1 is NaN only with neither a predicted nor a gold item)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.stack([right / predicted, right / gold, 2 * right / (predicted + gold)], axis=-1)


def _score(preds: np.ndarray, scorer: ChunkScorer, counter: TagCounter) -> np.ndarray:
    """float64 (m, n_eval, 4) scores of preds (m, n_tokens), columns ``SCORES``, eval tags as ``eval_tags``.

    A tag: accuracy = recall of its gold tokens, then token precision, recall, F1. ALL: token accuracy in every
    column (micro P = R = F1 = accuracy). F1 and each ``F1:type``: accuracy = entity F1 (conlleval), then
    entity precision, recall, F1, with 0 where conlleval writes 0 (no predicted or no gold chunk).
    """
    m, n_tags = preds.shape[0], counter.support.size
    right, predicted = counter.counts(preds)
    counts = np.concatenate([scorer.type_counts_many(preds[i:i + _SCORE_BLOCK])
                             for i in range(0, len(preds), _SCORE_BLOCK)])  # (m, n_types + 1, 3)
    out = np.empty((m, n_tags + 2 + len(scorer.types), 4))
    tag = _prf(right, predicted, np.broadcast_to(counter.support, right.shape))
    out[:, :n_tags, 1:] = tag
    out[:, :n_tags, 0] = tag[..., 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        out[:, n_tags, :] = (right.sum(axis=1) / counter.gold.size)[:, None] if counter.gold.size else np.nan
    ent = np.nan_to_num(_prf(counts[..., 0], counts[..., 1], counts[..., 2]), nan=0.0)  # conlleval's 0s
    ent = np.concatenate([ent[:, -1:], ent[:, :-1]], axis=1)  # micro first (eval tag F1), then the types
    out[:, n_tags + 1:, 1:] = ent
    out[:, n_tags + 1:, 0] = ent[..., 2]
    return out


def score_predictions(preds: np.ndarray, data) -> tuple[list[str], np.ndarray]:
    """(eval tags, float64 (m, n_eval, 4) scores, columns ``SCORES``) of m predictions (m, n_tokens) of the split
    ``data`` (gold, tags, sentence starts), scored as every sweep row is."""
    tags = [str(t) for t in data.tags]
    gold = labels_array(data.gold, "gold", len(data.gold), len(tags))
    starts = sentence_starts_array(data.sentence_starts, len(gold))
    scorer = ChunkScorer(tags, gold, starts)
    return eval_tags(tags, scorer.types), _score(np.asarray(preds), scorer, TagCounter(gold, len(tags)))


def eval_tags(tags: Sequence[str], types: Sequence[str]) -> list[str]:
    """The eval tags of ablation rows: every tag, ``ALL``, ``F1``, then ``F1:type`` for each entity type."""
    return [*tags, "ALL", "F1", *(ENTITY_PREFIX + t for t in types)]


def _rows(table: np.ndarray, ids: dict, names: list[str], tags: list[str], laid: Sweep) -> np.ndarray:
    """Lay the score table (m, n_eval, 4) out as ablation rows (see ``ablation_sweep``); names: the eval tags;
    ``laid.selections``: the selections of the ranking that were swept, then the ``laid.random_draws`` random
    ones."""
    max_k, draws, ranked = laid.max_k, laid.random_draws, laid.selections
    n_tags, n_k = len(tags), max_k + 1
    eval_names = np.array(names)
    n_eval = eval_names.size
    rand = np.stack([ids[("random", r)] for r in range(draws)], axis=1) if draws else np.empty((n_k, 0), np.intp)
    n_ranked = len(ranked)
    per_target = (n_ranked + draws) * n_k * n_eval
    out = np.empty(n_tags * per_target, dtype=row_dtype(max(map(len, eval_names))))
    sel = np.repeat(np.array([*ranked, "random"]), [n_k * n_eval] * n_ranked + [n_k * draws * n_eval])
    ks = np.concatenate([np.repeat(np.arange(n_k), n_eval)] * n_ranked + [np.repeat(np.arange(n_k), draws * n_eval)])
    dr = np.concatenate([np.zeros(n_ranked * n_k * n_eval, np.int32),
                         np.tile(np.repeat(np.arange(draws), n_eval), n_k)])
    for j, tag in enumerate(tags):
        block = out[j * per_target:(j + 1) * per_target]
        block["target_tag"] = tag
        block["selection"] = sel
        block["k"] = ks
        block["draw"] = dr
        block["eval_tag"] = np.tile(eval_names, per_target // n_eval)
        scores = np.concatenate([*(table[ids[(x, j)]] for x in ranked), table[rand.ravel()]])
        scores = scores.reshape(-1, len(SCORES))
        for c, f in enumerate(SCORES):
            block[f] = scores[:, c]
    return out


def ablation_csv(rows: np.ndarray) -> str:
    """Text of ``ablation.csv``: header ``FIELDS`` then one line per row.

    Accuracies are written as Python's shortest round-trip repr ("nan" for NaN).
    """
    return structured_csv(rows, FIELDS)


def write_ablation_csv(path: str | os.PathLike, rows: np.ndarray) -> None:
    """Write ``ablation_csv(rows)`` to ``path`` atomically."""
    atomic_write_text(path, ablation_csv(rows))


def read_ablation_csv(path: str | os.PathLike) -> np.ndarray:
    """Rows of an ``ablation.csv`` as a structured array (``row_dtype``), parsed by pyarrow.

    Raises:
        ValueError: if the file lacks the ablation.csv header or a line does not parse.
    """
    cols = read_csv_columns(path, FIELDS, {"k": np.int32, "draw": np.int32, **dict.fromkeys(SCORES, np.float64)},
                            "an ablation.csv")
    out = np.empty(len(cols["k"]), dtype=row_dtype(max(text_width(cols["target_tag"]), text_width(cols["eval_tag"]))))
    for f in FIELDS:
        out[f] = cols[f]
    return out
