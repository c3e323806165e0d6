"""What the explorer page shows of one analysed run, as a JSON-ready dict (pure functions over the analysis
folder's checked files): the units x tags sensitivities, the rankings of every method, per unit its extreme tokens,
histograms and single-unit ablation effect, per tag its ablation curves and top-k overlap, and the split's words
with every unit's activation quantised to int8 for the sentence view."""

from __future__ import annotations

import base64
import json
import math
import os
from pathlib import Path

import numpy as np

from nerve.errors import NerveError

TOP = 20  # top- and most negative tokens kept per unit
BINS = 20  # histogram bins per unit
OVERLAP_K = 10


def rounded(x, digits: int = 4):
    """A numpy array or number as nested lists of floats rounded to ``digits``, NaN and infinities as None."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 0:
        v = float(a)
        return round(v, digits) if math.isfinite(v) else None
    out = np.round(a, digits).astype(object)
    out[~np.isfinite(a)] = None
    return out.tolist()


def quantise(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 codes (tokens x units) and per-unit scales with h ~= q * scale / 127 (error <= scale / 254)."""
    h = np.asarray(h, dtype=np.float64)
    scale = np.abs(h).max(axis=0) if h.size else np.zeros(h.shape[1])
    scale = np.where(scale > 0, scale, 1.0)
    q = np.clip(np.rint(h / scale * 127), -127, 127).astype(np.int8)
    return q, scale


def split_words(info: dict, marker: dict, lengths: np.ndarray, where: Path) -> list[str]:
    """The words of the analysed split in token order (the non-empty sentences of the file the analysis read).

    Raises:
        NerveError: the split file is gone, changed since the analysis, or does not give the analysed tokens.
    """
    from nerve.data.conll import read_conll
    from nerve.folder import sha256_file

    path = info.get("split")
    if not path or not Path(path).is_file():
        raise NerveError(f"{where}: the split the analysis read ({path}) is not there any more; the explorer shows "
                         "its words, so restore the file or re-run `nerve analyze`")
    want = (marker.get("components", {}).get("split") or {}).get("sha256")
    if want is not None and sha256_file(path) != want:
        raise NerveError(f"{path}: changed since the analysis in {where} read it; re-run `nerve analyze`")
    sents = [s.words for s in read_conll(path) if s.words]
    if [len(s) for s in sents] != lengths.tolist():
        raise NerveError(f"{path}: its sentences are not the {len(lengths)} the analysis in {where} holds; re-run "
                         "`nerve analyze`")
    return [w for s in sents for w in s]


def extreme_tokens(h: np.ndarray, k: int = TOP) -> tuple[np.ndarray, np.ndarray]:
    """Per unit the token indices of its k largest and k smallest values (units x k each; ties by token index)."""
    k = min(k, h.shape[0])
    order = np.argsort(-h, axis=0, kind="stable")[:k].T
    low = np.argsort(h, axis=0, kind="stable")[:k].T
    return order, low


def histograms(h: np.ndarray, labels: np.ndarray, n_tags: int, bins: int = BINS) -> tuple[list, list]:
    """Per unit the bin edges (bins + 1) over its range and the counts per tag (n_tags x bins)."""
    edges, counts = [], []
    for u in range(h.shape[1]):
        lo, hi = float(h[:, u].min()), float(h[:, u].max())
        hi = hi if hi > lo else lo + 1e-6
        e = np.linspace(lo, hi, bins + 1)
        b = np.clip(np.searchsorted(e, h[:, u], side="right") - 1, 0, bins - 1)
        c = np.bincount(labels * bins + b, minlength=n_tags * bins).reshape(n_tags, bins)
        edges.append(rounded(e, 4))
        counts.append(c.tolist())
    return edges, counts


def single_unit_ablation(arrays: dict, n: int, progress: bool | None = False) -> tuple[np.ndarray, np.ndarray]:
    """(baseline per-tag accuracy (T,), per-tag accuracy with each unit alone set to 0 (n, T)), decoded as the
    ablation sweep decodes (``nerve.analysis.decoders``); ``progress``: a tqdm bar on stderr (None: on a
    terminal)."""
    import sys

    from tqdm import tqdm

    from nerve.analysis.ablation import per_tag_accuracy_arrays
    from nerve.analysis.decoders import CrfDecoder, SoftmaxDecoder

    h, W, b = arrays["h"], arrays["W"], arrays["b"]
    if str(arrays["decoder"]) == "crf":
        crf = (arrays["crf_start"], arrays["crf_transitions"], arrays["crf_end"])
        dec = CrfDecoder(h, W, b, arrays["sentence_starts"], crf)
    else:
        dec = SoftmaxDecoder(h, W, b, 1)
    T = W.shape[0]
    mask = np.zeros(n, dtype=bool)
    dec.reset()
    base, _ = per_tag_accuracy_arrays(arrays["gold"], dec.decode(mask), T)
    out = np.empty((n, T))
    for u in tqdm(range(n), desc="single-unit ablation", unit="unit", leave=False, file=sys.stderr,
                  disable=None if progress is None else not progress):
        dec.reset()
        dec.remove(u)
        mask[:] = False
        mask[u] = True
        out[u], _ = per_tag_accuracy_arrays(arrays["gold"], dec.decode(mask), T)
    return base, out


def ablation_curves(rows: np.ndarray | None, tags: list[str]) -> dict:
    """Per target tag its own accuracy as its top, bottom and random k units are zeroed: k, top, bottom, and the
    random draws' mean, 2.5th and 97.5th percentile per k (ablation.csv; empty without one)."""
    if rows is None or not len(rows):
        return {}
    out = {}
    for t in tags:
        r = rows[(rows["target_tag"] == t) & (rows["eval_tag"] == t)]
        if not len(r):
            continue
        ks = sorted({int(k) for k in r["k"]})
        cur = {"k": ks}
        for sel in ("top", "bottom"):
            s = r[r["selection"] == sel]
            by_k = {int(k): float(a) for k, a in zip(s["k"], s["accuracy"])}
            cur[sel] = rounded([by_k.get(k, np.nan) for k in ks])
        rnd = r[r["selection"] == "random"]
        stats = []
        for k in ks:
            a = rnd["accuracy"][rnd["k"] == k].astype(float)
            stats.append([np.mean(a), np.percentile(a, 2.5), np.percentile(a, 97.5)] if len(a) else [np.nan] * 3)
        st = np.array(stats).reshape(len(ks), 3)
        cur.update(random_mean=rounded(st[:, 0]), random_lo=rounded(st[:, 1]), random_hi=rounded(st[:, 2]))
        out[t] = cur
    return out


def cluster_order(s: np.ndarray) -> list[int]:
    """Units ordered by average-linkage clustering of their sensitivity profiles (NaN as 0)."""
    from scipy.cluster.hierarchy import leaves_list, linkage

    x = np.nan_to_num(np.asarray(s, dtype=np.float64))
    if x.shape[0] < 3:
        return list(range(x.shape[0]))
    return leaves_list(linkage(x, method="average", metric="euclidean")).tolist()


def _methods(d: Path, files: list[str], tags: list[str], neurons: list[str]) -> dict | None:
    if "methods_scores.npz" not in files:
        return None
    with np.load(d / "methods_scores.npz", allow_pickle=False) as z:
        m_tags = [str(t) for t in z["tags"]]
        m_units = [str(u) for u in z["neurons"]]
        if sorted(m_tags) != sorted(tags) or sorted(m_units) != sorted(neurons):
            raise NerveError(f"{d / 'methods_scores.npz'}: its tags or units differ from sensitivity.csv's")
        unit_pos = np.array([neurons.index(u) for u in m_units])
        ranks = np.asarray(z["rankings"])[:, [m_tags.index(t) for t in tags]]
        return {"names": [str(m) for m in z["methods"]], "rank_split": str(z["rank_split"]),
                "rankings": unit_pos[ranks].tolist()}


def run_payload(analysis_dir: str | os.PathLike, *, top: int = TOP, bins: int = BINS,
                progress: bool | None = False) -> dict:
    """Everything the explorer shows of one analysed run (a run folder holding ``analysis/`` or the folder);
    ``progress``: a tqdm bar on stderr over its single-unit ablations (None: on a terminal).

    Returns a JSON-ready dict; unit and tag indices follow sensitivity.csv's order (``units``, ``tags``).

    Raises:
        NerveError: an incomplete, modified or stale analysis, or its split file gone or changed.
    """
    from nerve.analysis.compare import _analysis_dir, check_analysis, load_run_analysis
    from nerve.analysis.matrices import overlap_matrix
    from nerve.analysis.pipeline import load_activations
    from nerve.folder import read_marker

    try:
        d = _analysis_dir(analysis_dir)
        files = check_analysis(d)
        run = load_run_analysis(d)
    except ValueError as err:
        raise NerveError(str(err)) from None
    arrays = load_activations(d / "activations.npz")
    z_tags = [str(t) for t in arrays["tags"]]
    z_units = [str(u) for u in arrays["neurons"]]
    tags, units = run.tags, run.neurons
    to_tag = np.array([tags.index(t) for t in z_tags])
    cols = [z_units.index(u) for u in units]
    arrays = dict(arrays, h=np.asarray(arrays["h"], dtype=np.float32)[:, cols], W=run.W.astype(np.float32),
                  b=np.asarray(arrays["b"])[..., [z_tags.index(t) for t in tags]],  # (T,) or per token (N, T)
                  gold=to_tag[arrays["gold"]], pred=to_tag[arrays["pred"]])
    if "crf_transitions" in arrays:
        ix = [z_tags.index(t) for t in tags]
        arrays.update(crf_start=arrays["crf_start"][ix], crf_end=arrays["crf_end"][ix],
                      crf_transitions=arrays["crf_transitions"][np.ix_(ix, ix)])
    h = arrays["h"]
    n_tok, n = h.shape
    info_path = d / "analysis.json"
    info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.is_file() else {}
    starts = np.asarray(arrays["sentence_starts"], dtype=np.int64)
    lengths = np.diff(np.r_[starts, n_tok])
    words = split_words(info, read_marker(d, "complete.json") or {}, lengths, d)
    q, scale = quantise(h)
    hi, lo = extreme_tokens(h, top)
    bucket = arrays["pred"] if info.get("bucket", "predicted") == "predicted" else arrays["gold"]
    edges, counts = histograms(h, bucket, len(tags), bins)
    base, single = single_unit_ablation(arrays, n, progress)
    return {
        "name": run.name, "analysis_dir": str(d.resolve()), "run": info.get("run"),
        "split": info.get("split_name"), "decoder": str(arrays["decoder"]), "bucket": info.get("bucket"),
        "tags": tags, "units": units, "n_tokens": int(n_tok),
        "sensitivity": rounded(run.s), "rankings": np.asarray(run.rankings).tolist(),
        "cluster": cluster_order(run.s), "overlap_k": int(min(OVERLAP_K, n)),
        "overlap": overlap_matrix(np.asarray(run.rankings), int(min(OVERLAP_K, n))).tolist(),
        "methods": _methods(d, files, tags, units),
        "accuracy": rounded(base), "single_ablation": rounded(single),
        "curves": ablation_curves(run.ablation, tags),
        "mean": rounded(h.mean(axis=0), 5),
        "top": hi.tolist(), "top_values": rounded(np.take_along_axis(h.T, hi, axis=1)),
        "bottom": lo.tolist(), "bottom_values": rounded(np.take_along_axis(h.T, lo, axis=1)),
        "hist_edges": edges, "hist_counts": counts,
        "words": words, "sentence_starts": starts.tolist(),
        "gold": arrays["gold"].tolist(), "pred": arrays["pred"].tolist(),
        "act_scale": rounded(scale, 6), "act_q": base64.b64encode(q.tobytes()).decode("ascii"),
    }
