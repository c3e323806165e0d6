"""Tag x tag matrices of analysed runs and their agreement across seeds (Xin, Lin & Yu, EMNLP 2019)."""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from nerve.analysis.ablation import read_ablation_csv
from nerve.analysis.ranking import rank_units
from nerve.errors import NerveError
from nerve.io import atomic_write_text
from nerve.tags import tag_order

KINDS = ("corr", "similarity", "overlap")
_TITLES = {"corr": "Correlation of tag sensitivities over units", "similarity": "Cosine similarity of output weights",
           "overlap": "Shared units among the top-{k} of two tags"}


def _finite_unit_columns(x: np.ndarray, axis: int, ref: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Vectors along ``axis`` scaled to unit length, and a mask of those that are finite and not (near) zero.

    Near zero: norm below 1e-12 of the norm bound of ``ref`` (default x; pass the uncentred data so that
    a constant vector, centred to rounding noise, counts as zero).
    """
    norm = np.sqrt(np.sum(x * x, axis=axis))
    scale = np.max(np.abs(x if ref is None else ref), axis=axis) * math.sqrt(x.shape[axis])
    ok = np.all(np.isfinite(x), axis=axis) & (norm > 1e-12 * scale) & (norm > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return x / np.expand_dims(np.where(ok, norm, np.nan), axis), ok


def _cosine_rows(x: np.ndarray, ref: np.ndarray | None = None) -> np.ndarray:
    """(m, m) cosine of the rows of x (m, d); NaN rows/columns for non-finite or zero rows, diagonal 1."""
    u, ok = _finite_unit_columns(x, axis=1, ref=ref)
    c = np.clip(np.nan_to_num(u) @ np.nan_to_num(u).T, -1.0, 1.0)
    c[~ok, :] = np.nan
    c[:, ~ok] = np.nan
    c[np.diag_indices_from(c)] = np.where(ok, 1.0, np.nan)
    return c


def corr_matrix(s: np.ndarray) -> np.ndarray:
    """Pearson correlation between the sensitivity columns of every pair of tags, over units.

    Xin, Lin & Yu (2019) correlate the tags' sensitivity vectors to show which tags share units
    (B-x with I-x positive, B-x with I-y negative).

    Args:
        s: (n, T) sensitivities (``sensitivity.csv``), n >= 2 units.

    Returns:
        float64 (T, T), symmetric, diagonal 1; the row and column of a tag whose sensitivity
        column holds a NaN or is constant are NaN.

    Raises:
        ValueError: if ``s`` is not 2-d with at least 2 rows.
    """
    s = np.asarray(s, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] < 2:
        raise ValueError(f"s: expected shape (n_units >= 2, n_tags), got {s.shape}")
    with np.errstate(invalid="ignore"):
        centred = s - s.mean(axis=0)
    return _cosine_rows(centred.T, ref=s.T)


def similarity_matrix(W: np.ndarray) -> np.ndarray:
    """Cosine similarity between the output-weight rows of every pair of tags (Xin, Lin & Yu 2019).

    Args:
        W: (T, n) weights of the tag projection (``activations.npz`` key W).

    Returns:
        float64 (T, T), symmetric, diagonal 1; NaN row and column for an all-zero or non-finite row.

    Raises:
        ValueError: if ``W`` is not 2-d.
    """
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2 or W.shape[1] == 0:
        raise ValueError(f"W: expected shape (n_tags, n_units >= 1), got {W.shape}")
    return _cosine_rows(W)


def overlap_matrix(x: np.ndarray, k: int = 10) -> np.ndarray:
    """Number of units shared by the top-k importance rankings of every pair of tags.

    Args:
        x: either integer rankings (T, n) (``rank_units``: row j lists units, most important
            for tag j first) or float sensitivities (n, T), ranked with ``rank_units`` (an
            all-NaN column ranks units by index). The dtype decides which.
        k: ranking depth, 1..n.

    Returns:
        int64 (T, T), symmetric, diagonal k.

    Raises:
        ValueError: on a bad shape or k outside 1..n.
    """
    a = np.asarray(x)
    if a.ndim != 2:
        raise ValueError(f"x: expected rankings (n_tags, n_units) or sensitivities (n_units, n_tags), got {a.shape}")
    if np.issubdtype(a.dtype, np.integer):
        rankings = a
        if rankings.size and (rankings.min() < 0 or rankings.max() >= rankings.shape[1]):
            raise ValueError(f"rankings: expected unit indices in [0, {rankings.shape[1]}), got "
                             f"{rankings.min()}..{rankings.max()}")
    else:
        rankings = rank_units(a)
    n_tags, n = rankings.shape
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise ValueError(f"k: expected an integer in 1..{n} (number of units), got {k!r}")
    member = np.zeros((n_tags, n), dtype=np.int64)
    member[np.arange(n_tags)[:, None], rankings[:, :k]] = 1
    return member @ member.T


# ----------------------------------------------------------------------------------------------- files


def _read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def _read_sensitivity_csv(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    rows = _read_csv(path)
    if not rows or not rows[0] or rows[0][0] != "neuron" or len(rows[0]) < 2:
        raise ValueError(f"{path}: expected a sensitivity.csv with header neuron,<tag>,...")
    tags = rows[0][1:]
    body = [r for r in rows[1:] if r]
    if any(len(r) != len(tags) + 1 for r in body):
        raise ValueError(f"{path}: expected {len(tags) + 1} fields on every line")
    s = np.array([[float(v) for v in r[1:]] for r in body], dtype=np.float64).reshape(len(body), len(tags))
    return tags, [r[0] for r in body], s


def _read_ranking_tsv(path: Path, tags: list[str], neurons: list[str]) -> np.ndarray | None:
    """(T, n) rankings from ranking.tsv, or None if it does not list every unit for every tag."""
    unit = {u: i for i, u in enumerate(neurons)}
    tag = {t: j for j, t in enumerate(tags)}
    out = np.full((len(tags), len(neurons)), -1, dtype=np.intp)
    with open(path, encoding="utf-8") as f:
        if f.readline().rstrip("\n").split("\t") != ["tag", "rank", "neuron", "sensitivity"]:
            return None
        for line in f:
            p = line.rstrip("\n").split("\t")
            if len(p) != 4 or p[0] not in tag or p[2] not in unit or not p[1].isdigit():
                return None
            r = int(p[1]) - 1
            if not 0 <= r < len(neurons):
                return None
            out[tag[p[0]], r] = unit[p[2]]
    ok = all(np.array_equal(np.sort(row), np.arange(len(neurons))) for row in out)
    return out if ok else None


def _analysis_dir(path: str | os.PathLike) -> Path:
    p = Path(path)
    for d in (p, p / "analysis"):
        if (d / "sensitivity.csv").is_file():
            return d
    raise ValueError(f"{p}: expected an analysis folder (with sensitivity.csv) or a run folder with analysis/")


REQUIRED_FILES = ("sensitivity.csv", "activations.npz")
OPTIONAL_FILES = ("ranking.tsv", "ablation.csv", "per_tag_accuracy.json")  # read when the analysis recorded them


def analysis_is_current(d: str | os.PathLike) -> bool:
    """Whether the analysis folder ``d`` is complete, unchanged and (inside a run folder) of the run's model."""
    try:
        check_analysis(Path(d))
    except NerveError:
        return False
    return True


def check_analysis(d: Path) -> list[str]:
    """Refuse an analysis that is incomplete, whose files changed after it finished (e.g. an activations.npz
    copied in from another run), or that was computed from another model than the run folder now holds.

    Returns:
        the names of the files the analysis recorded (the only ones a reader may use).

    Raises:
        NerveError: naming the folder or file and what to do.
    """
    from nerve.folder import read_marker, sha256_file, verify_files

    recorded = (read_marker(d, "complete.json") or {}).get("files", {})
    names = list(REQUIRED_FILES) + [f for f in OPTIONAL_FILES if f in recorded]
    marker = verify_files(d, names, "analysis", "re-run `nerve analyze`")
    model = d.resolve().parent / "model.pt"
    made_from = marker.get("components", {}).get("model")
    if made_from is not None and model.is_file() and sha256_file(model) != made_from:
        raise NerveError(f"{d}: analyses an earlier model than {model} (the run was retrained since); re-run "
                         "`nerve analyze`")
    return names


def load_run_analysis(run_or_analysis_dir: str | os.PathLike) -> dict:
    """What the comparisons and findings need from one analysed run.

    Reads sensitivity.csv, activations.npz (only tags, neurons, W), ranking.tsv (if absent or
    incomplete, rankings are recomputed from s), ablation.csv and per_tag_accuracy.json (None if absent).

    Args:
        run_or_analysis_dir: a run folder holding ``analysis/`` or the analysis folder itself.

    Returns:
        dict: name (run folder name: the parent of a folder named "analysis", else the folder's
        own name), analysis_dir (str), tags (T,) list, neurons (n,) list, s float64 (n, T),
        W float64 (T, n) (rows and columns in the order of tags and neurons), rankings intp (T, n),
        ablation (structured array of ablation.csv rows, fields target_tag, selection, k, draw,
        eval_tag, accuracy; or None), accuracy (dict or None).

    Raises:
        ValueError: missing files, or tags / units that differ between the files.
        NerveError: an incomplete, modified or stale analysis (``check_analysis``).
    """
    d = _analysis_dir(run_or_analysis_dir)
    d_abs = d.resolve()
    name = d_abs.parent.name if d_abs.name == "analysis" else d_abs.name
    files = check_analysis(d)
    tags, neurons, s = _read_sensitivity_csv(d / "sensitivity.csv")
    npz = d / "activations.npz"
    if not npz.is_file():
        raise ValueError(f"{d}: expected activations.npz beside sensitivity.csv")
    with np.load(npz, allow_pickle=False) as z:
        missing = [key for key in ("tags", "neurons", "W") if key not in z.files]
        if missing:
            raise ValueError(f"{npz}: missing keys {', '.join(missing)}")
        z_tags = [str(t) for t in z["tags"].reshape(-1)]
        z_neurons = [str(u) for u in z["neurons"].reshape(-1)]
        W = np.asarray(z["W"], dtype=np.float64)
    if sorted(z_tags) != sorted(tags) or sorted(z_neurons) != sorted(neurons) or W.shape != (len(tags), len(neurons)):
        raise ValueError(f"{d}: expected the same tags and units in sensitivity.csv and activations.npz")
    W = W[[z_tags.index(t) for t in tags]][:, [z_neurons.index(u) for u in neurons]]
    rankings = _read_ranking_tsv(d / "ranking.tsv", tags, neurons) if "ranking.tsv" in files else None
    ablation = read_ablation_csv(d / "ablation.csv") if "ablation.csv" in files else None
    acc_path = d / "per_tag_accuracy.json"
    accuracy = json.loads(acc_path.read_text(encoding="utf-8")) if "per_tag_accuracy.json" in files else None
    return {"name": name, "analysis_dir": str(d), "tags": tags, "neurons": neurons, "s": s, "W": W,
            "rankings": rank_units(s) if rankings is None else rankings, "ablation": ablation, "accuracy": accuracy}


def _fmt(v) -> str:
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return "nan" if not np.isfinite(v) else f"{float(v):.9g}"


def matrix_csv(M: np.ndarray, tags: Sequence[str]) -> str:
    """Text of a tag x tag CSV: header ``tag,<tags...>``, one row per tag, both in ``tag_order``.

    Args:
        M: (T, T) matrix indexed like ``tags``; integer matrices are written as integers,
            floats as %.9g ("nan" for NaN).
    """

    M = np.asarray(M)
    if M.shape != (len(tags), len(tags)):
        raise ValueError(f"M: expected shape ({len(tags)}, {len(tags)}) for {len(tags)} tags, got {M.shape}")
    order = tag_order(tags)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["tag", *(tags[j] for j in order)])
    w.writerows([tags[i], *(_fmt(M[i, j]) for j in order)] for i in order)
    return buf.getvalue()


def read_matrix_csv(path: str | os.PathLike) -> tuple[np.ndarray, list[str]]:
    """(M float64 (T, T), tags) of a file written by ``matrix_csv``, in the file's order."""
    rows = [r for r in _read_csv(Path(path)) if r]
    if not rows or rows[0][0] != "tag" or [r[0] for r in rows[1:]] != rows[0][1:]:
        raise ValueError(f"{path}: expected a tag x tag CSV with header tag,<tags...> and one row per tag")
    return np.array([[float(v) for v in r[1:]] for r in rows[1:]], dtype=np.float64), rows[0][1:]


# ----------------------------------------------------------------------------------------------- figures


def plot_tag_matrix(M: np.ndarray, tags: Sequence[str], out_base: str | os.PathLike, title: str,
                    signed: bool = True, vmax: float | None = None, label: str = "") -> list[Path]:
    """Heatmap of a tag x tag matrix, tags in ``tag_order``; values printed in the cells when T <= 12.

    Args:
        M: (T, T) matrix indexed like ``tags``; NaN cells are grey.
        signed: diverging RdBu_r centred at 0 over [-1, 1] (correlations, cosines); else
            sequential Blues over [0, vmax] (overlap counts).
        vmax: upper end of the sequential scale; default the largest finite value.
    """
    from matplotlib import colormaps
    from matplotlib.colors import Normalize, TwoSlopeNorm
    from matplotlib.figure import Figure

    from nerve.report.plots import save_figure

    order = tag_order(tags)
    data = np.asarray(M, dtype=np.float64)[np.ix_(order, order)]
    names = [str(tags[j]) for j in order]
    t = len(names)
    if signed:
        cmap, norm = colormaps["RdBu_r"].with_extremes(bad="#d9d9d9"), TwoSlopeNorm(0.0, -1.0, 1.0)
    else:
        top = vmax if vmax is not None else (np.nanmax(data) if np.any(np.isfinite(data)) else 1.0)
        cmap, norm = colormaps["Blues"].with_extremes(bad="#d9d9d9"), Normalize(0.0, max(float(top), 1e-9))
    cell = 0.55 if t <= 12 else 0.32
    side = 1.2 + cell * t
    fig = Figure(figsize=(side + 1.3, side))
    ax = fig.add_axes((1.2 / (side + 1.3), 1.2 / side, cell * t / (side + 1.3), cell * t / side))
    img = ax.imshow(data, cmap=cmap, norm=norm, interpolation="nearest")
    font = 9 if t <= 12 else 7
    ax.set_xticks(np.arange(t), names, fontsize=font, rotation=90)
    ax.set_yticks(np.arange(t), names, fontsize=font)
    if t <= 12:
        integer = np.all(np.isfinite(data)) and np.allclose(data, np.round(data))
        for i, j in itertools.product(range(t), range(t)):
            v = data[i, j]
            txt = "" if not np.isfinite(v) else (f"{v:.0f}" if integer else f"{v:.2f}")
            dark = np.isfinite(v) and (abs(norm(v) - 0.5) > 0.3 if signed else norm(v) > 0.6)
            ax.text(j, i, txt, ha="center", va="center", fontsize=7, color="white" if dark else "black")
    cax = fig.add_axes(((1.35 + cell * t) / (side + 1.3), 1.2 / side, 0.15 / (side + 1.3), cell * t / side))
    fig.colorbar(img, cax=cax).set_label(label, fontsize=8)
    cax.tick_params(labelsize=7)
    ax.set_title(title, fontsize=9)
    return save_figure(fig, out_base)


# ----------------------------------------------------------------------------------------------- matching


def profile_corr(s_a: np.ndarray, s_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pearson correlation of every unit of run a with every unit of run b over their sensitivity profiles.

    A unit's profile is its row of s (its sensitivity to each tag). Tag columns holding a NaN in
    either run are dropped; a constant profile correlates 0 with everything.

    Args:
        s_a: (n_a, T), s_b: (n_b, T) sensitivities with the same tag columns in the same order.

    Returns:
        (C float64 (n_a, n_b), used bool (T,) mask of the tag columns used).
    """
    s_a, s_b = np.asarray(s_a, dtype=np.float64), np.asarray(s_b, dtype=np.float64)
    if s_a.ndim != 2 or s_b.ndim != 2 or s_a.shape[1] != s_b.shape[1]:
        raise ValueError(f"s_a, s_b: expected (n_a, T) and (n_b, T) with one T, got {s_a.shape} and {s_b.shape}")
    used = np.all(np.isfinite(s_a), axis=0) & np.all(np.isfinite(s_b), axis=0)
    if used.sum() < 2:
        raise ValueError(f"s_a, s_b: expected at least 2 tag columns without NaN in both runs, got {int(used.sum())}")
    a, b = s_a[:, used], s_b[:, used]
    za, _ = _finite_unit_columns(a - a.mean(axis=1, keepdims=True), axis=1, ref=a)
    zb, _ = _finite_unit_columns(b - b.mean(axis=1, keepdims=True), axis=1, ref=b)
    return np.clip(np.nan_to_num(za) @ np.nan_to_num(zb).T, -1.0, 1.0), used


def _interval(x: np.ndarray) -> tuple[float, float, float]:
    return float(np.mean(x)), float(np.percentile(x, 2.5)), float(np.percentile(x, 97.5))


def match_units(s_a: np.ndarray, s_b: np.ndarray, draws: int = 100, seed: int = 0) -> dict:
    """One-to-one matching of the units of two runs by sensitivity profile, with two chance baselines.

    Units are numbered arbitrarily in each trained model, so unit i of one seed is never compared
    with unit i of another. Instead the Hungarian algorithm (``linear_sum_assignment``) pairs the
    units of a and b (min(n_a, n_b) pairs) so that the summed profile correlation (``profile_corr``)
    is largest; the statistic is the mean correlation of the matched pairs. Baselines, ``draws``
    each, one seeded generator:

    - random: the mean correlation of a uniformly random one-to-one assignment (what matching
      without looking at the profiles gives);
    - shuffled: the Hungarian matched mean after permuting each unit's profile of run b across
      tags independently per unit (what optimal matching finds in profiles with no tag structure;
      the fair null for a maximised statistic). ``shuffled_p`` = (1 + #draws >= matched) / (1 + draws).

    Args:
        s_a: (n_a, T), s_b: (n_b, T) sensitivities, tag columns aligned.

    Returns:
        dict: rows, cols (lists: unit rows[i] of a matches unit cols[i] of b), corr (list of the
        matched correlations), n_tags (columns used), matched_mean, random_mean, random_p2_5,
        random_p97_5, shuffled_mean, shuffled_p2_5, shuffled_p97_5, shuffled_p, draws, seed.
    """
    if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or draws < 1:
        raise ValueError(f"draws: expected an integer >= 1, got {draws!r}")
    C, used = profile_corr(s_a, s_b)
    rows, cols = linear_sum_assignment(C, maximize=True)
    matched = float(C[rows, cols].mean())
    rng = np.random.default_rng(seed)
    n_a, n_b = C.shape
    m = min(n_a, n_b)
    rand = np.empty(draws)
    for d in range(draws):
        if n_a <= n_b:
            rand[d] = C[np.arange(n_a), rng.permutation(n_b)[:n_a]].mean()
        else:
            rand[d] = C[rng.permutation(n_a)[:n_b], np.arange(n_b)].mean()
    sb = np.asarray(s_b, dtype=np.float64)[:, used]
    shuf = np.empty(draws)
    for d in range(draws):
        Cs, _ = profile_corr(np.asarray(s_a, dtype=np.float64)[:, used], rng.permuted(sb, axis=1))
        r, c = linear_sum_assignment(Cs, maximize=True)
        shuf[d] = Cs[r, c].mean()
    rm, rlo, rhi = _interval(rand)
    sm, slo, shi = _interval(shuf)
    return {"rows": rows.tolist(), "cols": cols.tolist(), "corr": C[rows, cols].tolist(), "n_matched": int(m),
            "n_tags": int(used.sum()), "matched_mean": matched, "random_mean": rm, "random_p2_5": rlo,
            "random_p97_5": rhi, "shuffled_mean": sm, "shuffled_p2_5": slo, "shuffled_p97_5": shi,
            "shuffled_p": float((1 + np.sum(shuf >= matched - 1e-12)) / (1 + draws)), "draws": int(draws),
            "seed": int(seed)}


def _upper_pearson(x: np.ndarray, y: np.ndarray) -> tuple[int, float]:
    """(number of pairs, Pearson r) of the upper triangles (no diagonal) of x and y, finite pairs only."""
    iu = np.triu_indices_from(x, k=1)
    a, b = np.asarray(x, float)[iu], np.asarray(y, float)[iu]
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return int(a.size), float("nan")
    return int(a.size), float(np.clip(np.corrcoef(a, b)[0, 1], -1.0, 1.0))


# ----------------------------------------------------------------------------------------------- runs


def _csv_text(header, rows) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows([v if isinstance(v, str) else _fmt(v) for v in r] for r in rows)
    return buf.getvalue()


def _check_tag_sets(runs: list[dict]) -> None:
    groups: dict[frozenset, list[str]] = {}
    for r in runs:
        groups.setdefault(frozenset(r["tags"]), []).append(r["name"])
    if len(groups) > 1:
        desc = "; ".join(f"{', '.join(names)}: {len(t)} tags {sorted(t)}" for t, names in groups.items())
        raise ValueError(f"runs: expected one tag set across the compared runs, got {desc}")


def compare_runs(dirs: Sequence[str | os.PathLike], out_dir: str | os.PathLike, k: int = 10, draws: int = 100,
                 seed: int = 0) -> dict:
    """Compare the tag x tag structure of analysed runs (e.g. seeds) and match their units.

    Writes into ``out_dir`` (every file atomically; matrices with header ``tag,<tags...>`` in
    ``tag_order``): per run ``corr_<run>.csv``, ``similarity_<run>.csv``, ``overlap_<run>.csv``
    (``corr_matrix``, ``similarity_matrix``, ``overlap_matrix`` at depth min(k, n)) and their heatmaps
    (.png + .svg); across runs ``<kind>_mean.csv`` and ``<kind>_std.csv`` (element-wise mean and
    sample std, ddof 1, NaN propagates; std is NaN for a single run) with heatmaps of the means;
    ``consistency.csv`` (run_a, run_b, kind, n_pairs, pearson: correlation of the two runs' upper
    triangles without diagonal, finite pairs only); ``unit_matching.csv`` (``match_units`` per pair).

    Args:
        dirs: run folders or their analysis folders (``load_run_analysis``); run names that
            repeat get a suffix.
        out_dir: output folder (created).
        k: top-k depth of the overlap matrices; draws, seed: baselines of ``match_units``.

    Returns:
        JSON-ready dict: out_dir, runs (names), tags (tag_order), k, files (names), consistency
        (rows), unit_matching (rows, without the matched unit lists).

    Raises:
        ValueError: no runs, or runs whose tag sets differ (naming the runs).
    """
    from nerve.report.plots import tag_filenames

    if not dirs:
        raise ValueError("dirs: expected at least one analysed run")
    runs = [load_run_analysis(d) for d in dirs]
    for r, stem in zip(runs, tag_filenames([r["name"] for r in runs], reserved=("mean", "std")).values()):
        r["name"] = stem
    _check_tag_sets(runs)
    tags0 = runs[0]["tags"]
    tags = [tags0[j] for j in tag_order(tags0)]
    k_eff = int(min(k, *(len(r["neurons"]) for r in runs)))
    mats: dict[str, list[np.ndarray]] = {kind: [] for kind in KINDS}
    for r in runs:
        idx = [r["tags"].index(t) for t in tags]
        r["s_aligned"] = r["s"][:, idx]
        mats["corr"].append(corr_matrix(r["s_aligned"]))
        mats["similarity"].append(similarity_matrix(r["W"][idx]))
        mats["overlap"].append(overlap_matrix(np.asarray(r["rankings"])[idx], k_eff))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: list[str] = []

    def emit(kind: str, stem: str, M: np.ndarray, title: str, plot: bool = True) -> None:
        atomic_write_text(out / f"{stem}.csv", matrix_csv(M, tags))
        files.append(f"{stem}.csv")
        if plot:
            signed = kind != "overlap"
            paths = plot_tag_matrix(M, tags, out / stem, title, signed=signed, vmax=None if signed else k_eff,
                                    label={"corr": "Pearson r", "similarity": "cosine"}.get(kind, "shared units"))
            files.extend(p.name for p in paths)

    for kind in KINDS:
        title = _TITLES[kind].format(k=k_eff)
        for r, M in zip(runs, mats[kind]):
            emit(kind, f"{kind}_{r['name']}", M, f"{title}\n{r['name']}")
        stack = np.stack([np.asarray(M, dtype=np.float64) for M in mats[kind]])
        mean = stack.mean(axis=0)
        std = stack.std(axis=0, ddof=1) if len(runs) > 1 else np.full_like(mean, np.nan)
        emit(kind, f"{kind}_mean", mean, f"{title}\nmean over {len(runs)} run(s)")
        emit(kind, f"{kind}_std", std, "", plot=False)

    consistency = []
    matching = []
    for a, b in itertools.combinations(range(len(runs)), 2):
        ra, rb = runs[a]["name"], runs[b]["name"]
        for kind in KINDS:
            n_pairs, r = _upper_pearson(mats[kind][a], mats[kind][b])
            consistency.append({"run_a": ra, "run_b": rb, "kind": kind, "n_pairs": n_pairs, "pearson": r})
        row = {"run_a": ra, "run_b": rb, "n_units_a": len(runs[a]["neurons"]), "n_units_b": len(runs[b]["neurons"])}
        sa, sb = runs[a]["s_aligned"], runs[b]["s_aligned"]
        if np.sum(np.all(np.isfinite(sa), axis=0) & np.all(np.isfinite(sb), axis=0)) >= 2:
            m = match_units(sa, sb, draws=draws, seed=seed)
            row.update({key: v for key, v in m.items() if key not in ("rows", "cols", "corr")})
        else:  # too few tags with a sensitivity in both runs (e.g. tags never predicted)
            row.update({"n_tags": 0, "draws": int(draws), "seed": int(seed)})
        matching.append(row)
    c_fields = ["run_a", "run_b", "kind", "n_pairs", "pearson"]
    atomic_write_text(out / "consistency.csv", _csv_text(c_fields, ([r[f] for f in c_fields] for r in consistency)))
    m_fields = ["run_a", "run_b", "n_units_a", "n_units_b", "n_tags", "n_matched", "matched_mean", "random_mean",
                "random_p2_5", "random_p97_5", "shuffled_mean", "shuffled_p2_5", "shuffled_p97_5", "shuffled_p",
                "draws", "seed"]
    atomic_write_text(out / "unit_matching.csv",
                      _csv_text(m_fields, ([r.get(f, float("nan")) for f in m_fields] for r in matching)))
    files += ["consistency.csv", "unit_matching.csv"]
    def clean(rows: list[dict]) -> list[dict]:
        return [{key: (None if isinstance(v, float) and not math.isfinite(v) else v) for key, v in r.items()}
                for r in rows]

    return {"out_dir": str(out), "runs": [r["name"] for r in runs], "tags": tags, "k": k_eff, "files": files,
            "consistency": clean(consistency), "unit_matching": clean(matching)}
