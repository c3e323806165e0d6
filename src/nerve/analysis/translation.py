"""Translation: move a tag's top-ranked units, on that tag's tokens, to another tag's mean and count how often the
model's prediction follows (Antverg & Belinkov, ICLR 2022, "On the pitfalls of analyzing individual neurons in
language models", their translation intervention), against random unit sets of the same size.

For a source tag z and a target tag z′, the tokens of the scoring split labelled z (gold by default) get their
units S = ``rankings[z, :k]`` set to m_{z′}[S], the mean of those units over the ranking split's tokens labelled
z′ (the labels ``RankInput.labels`` the methods ranked on); every other token and unit is untouched. The model's
own decoder re-decodes (argmax of h′ @ Wᵀ + b, or the CRF's Viterbi over every sentence holding a z token: the
edit changes whole paths, but only z's tokens are counted). A ranking that localises z should move z's tokens to
z′ with few units; random k-subsets (``ablation.random_orders``: the same seeded permutations as the ablation
baseline) say how many a unit set of that size moves by chance.

Gold, not predicted, tokens by default: the population edited is then the same for every model and method, and
``rate_stay`` at k = 0 is the model's recall of z (with ``tokens="predicted"`` it is 1, up to near ties).
Antverg & Belinkov shift the units by the difference of the two means, h + α(m_{z′} − m_z); ``mode="shift"``
does that with α = 1 (``"set"``, the default, also removes each token's own deviation from m_z).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from nerve.analysis.ablation import MAX_RANDOM_DRAWS, random_orders
from nerve.analysis.checks import (
    AnalysisInputError,
    bias_array,
    crf_arrays,
    float_matrix,
    labels_array,
    sentence_starts_array,
)
from nerve.analysis.heldout import RANDOM
from nerve.analysis.judging import dicts_csv
from nerve.analysis.methods import RankInput
from nerve.analysis.tables import read_csv_columns, structured_csv, text_width
from nerve.io import atomic_write_text
from nerve.model.crf import ViterbiLayout, viterbi

TOKENS = ("gold", "predicted")  # which label of the scoring split picks the edited tokens of a source tag
MODES = ("set", "shift")  # h[S] := m_{z′}[S], or h[S] += m_{z′}[S] − m_z[S] (Antverg & Belinkov, α = 1)
COUNTS = ("n_tokens", "n_to_target", "n_stay")
RATES = ("rate_to_target", "rate_stay")
FIELDS = ("method", "source_tag", "target_tag", "k", "draw", *COUNTS, *RATES)
JUDGED_FIELDS = ("method", "source_tag", "target_tag", "k", "n_tokens", "rate_to_target", "rate_stay",
                 "random_mean", "random_mean_stay", "random_p", "n_draws")
_EPS64 = float(np.finfo(np.float64).eps)
_BLOCK = 65536  # tokens per float64 emission block


def _count(x, name: str, low: int, high: int | None = None) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < low or (high is not None and x > high):
        raise AnalysisInputError(f"{name}: expected an integer in {low}..{'' if high is None else high}, got {x!r}")
    return int(x)


@dataclass(frozen=True)
class TranslationSpec:
    """One translation sweep: k = 0..``max_k`` units moved, ``random_draws`` seeded random unit orders
    (``seed``) shared by every pair, ``pairs`` ((source, target) tag names; None: every ordered pair of distinct
    tags that have tokens in both splits, ``default_pairs``), ``tokens``: the scoring split's label that picks
    the edited tokens (``TOKENS``), ``mode``: what the moved units become (``MODES``)."""

    max_k: int
    random_draws: int = 20
    seed: int = 0
    pairs: tuple[tuple[str, str], ...] | None = None
    tokens: str = "gold"
    mode: str = "set"

    def __post_init__(self) -> None:
        _count(self.max_k, "max_k", 0)
        _count(self.random_draws, "random_draws", 0, MAX_RANDOM_DRAWS)
        _count(self.seed, "seed", 0, 2**63 - 1)
        if self.tokens not in TOKENS:
            raise AnalysisInputError(f"tokens: expected one of {', '.join(TOKENS)}, got {self.tokens!r}")
        if self.mode not in MODES:
            raise AnalysisInputError(f"mode: expected one of {', '.join(MODES)}, got {self.mode!r}")
        if self.pairs is not None:
            pairs = tuple((str(z), str(t)) for z, t in self.pairs)
            if any(z == t for z, t in pairs) or len(set(pairs)) != len(pairs):
                raise AnalysisInputError(f"pairs: expected distinct pairs of two different tags, got {list(pairs)}")
            object.__setattr__(self, "pairs", pairs)


def default_pairs(tags, ranked: np.ndarray, scored: np.ndarray) -> list[tuple[str, str]]:
    """Every ordered pair (z, z′), z ≠ z′, of the tags with tokens in both splits (``ranked``, ``scored``: bool
    (T,)): z needs a ranking (tokens in the ranking split) and tokens to edit, z′ a mean; a z′ without scored
    tokens could be reached but is left out so that each pair reads both ways. BIO tags included: translating
    B-X to I-Y shows a CRF's constraints at work, and the entity pairs are a subset to filter on."""
    both = [str(t) for t, r, s in zip(tags, ranked, scored) if r and s]
    return [(z, t) for z in both for t in both if z != t]


def translation_sweep(rank: RankInput, score, rankings: Mapping[str, np.ndarray], spec: TranslationSpec,
                      progress: bool = False) -> np.ndarray:
    """Translation success of each method's ranking and of random unit sets, per pair and k.

    Args:
        rank: the ranking split (``heldout.rank_input``): its labels pick the tokens of each tag's mean.
        score: the scoring split (``checks.Activations`` or ``ablation.SweepInput`` with ``pred``): h, W, b,
            gold (and pred), sentence_starts, tags, crf.
        rankings: {method: int (T, n)} each tag's units, most important first (``heldout.method_rankings``);
            the method name ``heldout.RANDOM`` is the draws'.
        spec: max_k, draws, seed, pairs, tokens and mode (``TranslationSpec``).
        progress: a bar on stderr, one step a pair.

    Returns:
        structured rows, fields ``FIELDS``, ordered by pair (``spec.pairs`` or ``default_pairs``), method (the
        order of ``rankings``, then ``RANDOM``), k, draw (0 for a method): n_tokens, the source's tokens;
        n_to_target, n_stay, those predicted z′ or z after the edit; the rates, those counts / n_tokens (NaN
        without tokens). k = 0 re-decodes the unedited split (float64: it can differ from the archived float32
        predictions on near ties).

    Raises:
        AnalysisInputError: inconsistent shapes, labels or rankings, unknown tags, a pair's tag without tokens in
            the ranking split, max_k outside 0..n.
    """
    h = float_matrix(score.h, "h", (None, None))
    n_tokens, n = h.shape
    tags = [str(t) for t in score.tags]
    T = len(tags)
    W = float_matrix(score.W, "W", (T, n)).astype(np.float64)
    b = bias_array(score.b, n_tokens, T)
    starts = sentence_starts_array(score.sentence_starts, n_tokens)
    crf = crf_arrays(score.crf, T)
    edited = labels_array(score.gold if spec.tokens == "gold" else score.pred, spec.tokens, n_tokens, T)
    rank_h = float_matrix(rank.h, "rank.h", (None, n))
    labels = labels_array(rank.labels, "rank.labels", len(rank_h), T)
    K = _count(spec.max_k, "max_k", 0, n)
    orders = _orders(rankings, T, n, K)
    ranked = np.bincount(labels, minlength=T) > 0
    pairs = _pairs(spec.pairs, tags, ranked, np.bincount(edited, minlength=T) > 0)
    means = {z: rank_h[labels == z].astype(np.float64).mean(axis=0) for z in {tags.index(x) for p in pairs for x in p}}
    rand = random_orders(n, spec.random_draws, spec.seed)[:, :K]  # shape: (D, K)
    E0 = np.concatenate([np.asarray(h[i:i + _BLOCK], np.float64) @ W.T + (b[i:i + _BLOCK] if b.ndim == 2 else b)
                         for i in range(0, n_tokens, _BLOCK)]
                        or [np.empty((0, T))])  # shape: (n_tokens, T)
    from tqdm.auto import tqdm

    bar = tqdm(total=len(pairs), desc="translation", unit="pair", disable=not progress, leave=False)
    parts, sources = [], {}
    for zs, zt in pairs:
        z, t = tags.index(zs), tags.index(zt)
        if z not in sources:
            sources = {z: _Source(h, E0, np.flatnonzero(edited == z), starts, crf, (W, b))}
        src = sources[z]
        src.target(z, t, means[t] - (means[z] if spec.mode == "shift" else 0.0), spec.mode == "shift", K)
        for method, order in orders.items():
            parts.append(_block(method, zs, zt, src.walk(order[z])[None], src.n))
        if len(rand):
            parts.append(_block(RANDOM, zs, zt, np.stack([src.walk(o) for o in rand]), src.n))
        bar.update(1)
    bar.close()
    return _rows(parts, K)


def _orders(rankings: Mapping[str, np.ndarray], T: int, n: int, K: int) -> dict[str, np.ndarray]:
    out = {}
    for method, r in rankings.items():
        r = np.asarray(r)
        if str(method) == RANDOM:
            raise AnalysisInputError(f"rankings: {RANDOM!r} names the random draws (spec.random_draws), not a ranking")
        if r.shape != (T, n) or not np.issubdtype(r.dtype, np.integer):
            raise AnalysisInputError(f"rankings[{method!r}]: expected int shape ({T}, {n}), got {r.dtype} {r.shape}")
        if n and not np.array_equal(np.sort(r, axis=1), np.broadcast_to(np.arange(n), r.shape)):
            raise AnalysisInputError(f"rankings[{method!r}]: expected each row to be a permutation of 0..{n - 1}")
        out[str(method)] = r[:, :K].astype(np.intp)  # shape: (T, K)
    return out


def _pairs(pairs, tags: list[str], ranked: np.ndarray, scored: np.ndarray) -> list[tuple[str, str]]:
    if pairs is None:
        return default_pairs(tags, ranked, scored)
    for z, t in pairs:
        unknown = [x for x in (z, t) if x not in tags]
        if unknown:
            raise AnalysisInputError(f"pairs: unknown tag {unknown[0]!r}; expected some of {', '.join(tags)}")
        absent = [x for x in (z, t) if not ranked[tags.index(x)]]
        if absent:
            raise AnalysisInputError(f"pairs ({z}, {t}): {absent[0]} has no token in the ranking split, so it has "
                                     "no ranking and no mean")
    return list(pairs)


class _Source:
    """The tokens of one source tag z, re-decoded with the units of growing prefixes of an order moved (for the
    current target, ``target``). The emissions of z's tokens, tags-major, are updated by rank-1 steps in
    float64: moving unit u adds outer(W[:, u], d_u), d_u the change of u on each token. Softmax: argmax, and
    tokens within a rounding bound of a tie are recomputed exactly (h′ @ Wᵀ + b, first max); CRF: the compiled
    Viterbi over the sentences holding a z token (``nerve.model.crf.viterbi``, as ``decoders.CrfDecoder``)."""

    def __init__(self, h, E0: np.ndarray, idx: np.ndarray, starts: np.ndarray, crf, projection: tuple):
        W, b = projection  # shapes: (T, n), (T,) or (N, T)
        self.n = idx.size
        self.hzT = np.ascontiguousarray(np.asarray(h[idx], np.float64).T)  # shape: (n, n_z): a unit's column
        self.W, self.WT = W, np.ascontiguousarray(W.T)  # shapes: (T, n), (n, T)
        self.b = b[idx] if b.ndim == 2 else b  # shape: (T,) or (n_z, T)
        self.E0 = np.ascontiguousarray(E0[idx].T)  # shape: (T, n_z): tags-major, so a row is a tag's logits
        self.E, self._tmp = np.empty_like(self.E0), np.empty_like(self.E0)
        self.weights = np.arange(len(W))[:, None]  # shape: (T, 1)
        self.layout = None
        if crf is not None and self.n:
            ends = np.r_[starts[1:], len(E0)]
            sid = np.unique(np.searchsorted(starts, idx, side="right") - 1)  # the sentences holding a z token
            lengths = ends[sid] - starts[sid]
            first = np.r_[0, np.cumsum(lengths)[:-1]].astype(np.intp)
            tokens = np.repeat(starts[sid] - first, lengths) + np.arange(lengths.sum())
            self.pos = np.searchsorted(tokens, idx)  # shape: (n_z,): z's tokens among those sentences' tokens
            self.Esub = E0[tokens]  # shape: (n_sub, T)
            self.layout = ViterbiLayout(first, len(tokens), crf)

    def target(self, z: int, t: int, value: np.ndarray, shift: bool, K: int) -> None:
        """Moves towards tag t: a moved unit u becomes value[u] (shift: gains value[u]); z is the source."""
        self.z, self.t, self.value, self.shift = z, t, value, shift  # value shape: (n,)
        bound = np.abs(self.W) @ (np.abs(self.hzT) + np.abs(value)[:, None])  # shape: (T, n_z)
        scale = bound.max(axis=0, initial=0.0) + np.abs(self.b).max(axis=-1, initial=0.0)
        self.tol = 4 * (self.hzT.shape[0] + K + 4) * _EPS64 * scale  # shape: (n_z,)
        self.cache: dict[bytes, tuple[int, int]] = {}

    def walk(self, order: np.ndarray) -> np.ndarray:
        """int64 (len(order) + 1, 2): tokens predicted the target and the source after moving order[:k]."""
        out = np.empty((order.size + 1, 2), np.int64)
        mask = np.zeros(self.hzT.shape[0], bool)
        np.copyto(self.E, self.E0)
        for k in range(order.size + 1):
            if k:
                u = order[k - 1]
                mask[u] = True
                if self.shift:
                    self.E += (self.value[u] * self.WT[u])[:, None]
                else:
                    np.multiply.outer(self.WT[u], self.value[u] - self.hzT[u], out=self._tmp)
                    self.E += self._tmp
            key = np.packbits(mask).tobytes()
            if key not in self.cache:
                pred = self._decode(mask)
                self.cache[key] = (int(np.count_nonzero(pred == self.t)), int(np.count_nonzero(pred == self.z)))
            out[k] = self.cache[key]
        return out

    def _decode(self, mask: np.ndarray) -> np.ndarray:
        if not self.n:
            return np.zeros(0, np.intp)
        if self.layout is not None:
            self.Esub[self.pos] = self.E.T
            return viterbi(self.Esub, None, None, self.layout)[self.pos]
        near = self.E >= self.E.max(axis=0) - self.tol  # shape: (T, n_z): the tags within rounding of the best
        pred = (near * self.weights).sum(axis=0)  # the best, where it is the only one near
        rows = np.flatnonzero(near.sum(axis=0) != 1)
        if rows.size:  # near or exact ties: recomputed from the edited units, the first max
            hr = self.hzT[:, rows].T.copy()  # shape: (n_rows, n)
            hr[:, mask] = hr[:, mask] + self.value[mask] if self.shift else self.value[mask]
            pred[rows] = (hr @ self.W.T + (self.b[rows] if self.b.ndim == 2 else self.b)).argmax(axis=1)
        return pred


def row_dtype(width: int, tag_width: int) -> np.dtype:
    """Structured dtype of translation rows (``FIELDS``): methods of ``width`` characters, tags of ``tag_width``."""
    return np.dtype([("method", f"U{max(width, 6)}"), ("source_tag", f"U{max(tag_width, 1)}"),
                     ("target_tag", f"U{max(tag_width, 1)}"), ("k", np.int32), ("draw", np.int32),
                     *[(f, np.int64) for f in COUNTS], *[(f, np.float64) for f in RATES]])


def _block(method: str, source: str, target: str, counts: np.ndarray, n_z: int) -> tuple:
    """One method's (or the draws') rows of a pair: counts int64 (R, K + 1, 2), laid out k-major, then draw."""
    return method, source, target, np.ascontiguousarray(counts.transpose(1, 0, 2)).reshape(-1, 2), counts.shape[0], n_z


def _rows(parts: list[tuple], K: int) -> np.ndarray:
    width = max([len(p[0]) for p in parts], default=6)
    tag_width = max([max(len(p[1]), len(p[2])) for p in parts], default=1)
    out = np.empty(sum(len(p[3]) for p in parts), dtype=row_dtype(width, tag_width))
    i = 0
    for method, source, target, counts, draws, n_z in parts:
        block = out[i:i + len(counts)]
        block["method"], block["source_tag"], block["target_tag"] = method, source, target
        block["k"] = np.repeat(np.arange(K + 1), draws)
        block["draw"] = np.tile(np.arange(draws), K + 1)
        block["n_tokens"], block["n_to_target"], block["n_stay"] = n_z, counts[:, 0], counts[:, 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            block["rate_to_target"], block["rate_stay"] = counts[:, 0] / n_z, counts[:, 1] / n_z
        i += len(counts)
    return out


def judge_translation(rows: np.ndarray) -> list[dict]:
    """Per method (not the draws), pair and k: the method's rates, the random draws' mean rates at the same pair
    and k, and where the method sits among them, ``random_p`` = (1 + #draws moving ≥ as many tokens to z′) /
    (1 + #draws) (an empirical p of "no better than a random unit set of that size"; counts compared, the
    draws edit the same tokens). None where there are no draws (random_mean, random_p) or no tokens (random_p).

    Returns:
        one dict per method row, fields ``JUDGED_FIELDS``, in the rows' order.
    """
    is_random = rows["method"] == RANDOM
    draws: dict[tuple, list] = {}
    rnd = rows[is_random]
    for key, to, rate, stay in zip(zip(rnd["source_tag"].tolist(), rnd["target_tag"].tolist(), rnd["k"].tolist()),
                                   rnd["n_to_target"].tolist(), rnd["rate_to_target"].tolist(),
                                   rnd["rate_stay"].tolist()):
        draws.setdefault(key, []).append((to, rate, stay))
    out = []
    for r in rows[~is_random].tolist():
        row = dict(zip(rows.dtype.names, r))
        d = np.array(draws.get((row["source_tag"], row["target_tag"], row["k"]), []), dtype=np.float64).reshape(-1, 3)
        some = len(d) > 0
        above = np.count_nonzero(d[:, 0] >= row["n_to_target"])
        p = float((1 + above) / (1 + len(d))) if some and row["n_tokens"] else None
        out.append({**{f: row[f] for f in JUDGED_FIELDS[:7]},
                    "random_mean": float(d[:, 1].mean()) if some else None,
                    "random_mean_stay": float(d[:, 2].mean()) if some else None,
                    "random_p": p, "n_draws": len(d)})
    return out


def translation_csv(rows: np.ndarray) -> str:
    """Text of ``translation.csv``: header ``FIELDS`` then one line per row (rates as Python's shortest repr)."""
    return structured_csv(rows, FIELDS)


def write_translation_csv(path: str | os.PathLike, rows: np.ndarray) -> None:
    """Write ``translation_csv(rows)`` to ``path`` atomically."""
    atomic_write_text(path, translation_csv(rows))


def read_translation_csv(path: str | os.PathLike) -> np.ndarray:
    """Rows of a ``translation.csv`` as ``translation_sweep`` gives them (``row_dtype``), parsed by pyarrow.

    Raises:
        ValueError (AnalysisInputError): another header, or a line that does not parse, naming the file.
    """
    numbers = {"k": np.int32, "draw": np.int32, **dict.fromkeys(COUNTS, np.int64), **dict.fromkeys(RATES, np.float64)}
    cols = read_csv_columns(path, FIELDS, numbers, "a translation.csv")
    tag_width = max(text_width(cols["source_tag"]), text_width(cols["target_tag"]))
    out = np.empty(len(cols["k"]), dtype=row_dtype(text_width(cols["method"]), tag_width))
    for f in FIELDS:
        out[f] = cols[f]
    return out


def translation_summary_csv(judged: list[dict]) -> str:
    """Text of ``translation_summary.csv``: header ``JUDGED_FIELDS``, one line per ``judge_translation`` dict."""
    return dicts_csv(judged, JUDGED_FIELDS)
