"""Analysed runs read back (checked against their completion markers) and compared: tag x tag matrices per run
and across runs, run-to-run consistency and unit matching (Xin, Lin & Yu, EMNLP 2019)."""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nerve.analysis.ablation import read_ablation_csv
from nerve.analysis.heldout import read_methods_csv
from nerve.analysis.matching import match_units, upper_pearson
from nerve.analysis.matrices import corr_matrix, format_value, matrix_csv, overlap_matrix, similarity_matrix
from nerve.analysis.ranking import rank_units
from nerve.errors import NerveError
from nerve.folder import read_marker
from nerve.io import atomic_write_text
from nerve.tags import tag_filenames, tag_order

MatrixDrawer = Callable[..., list[Path]]

KINDS = ("corr", "similarity", "overlap")
_TITLES = {"corr": "Correlation of tag sensitivities over units", "similarity": "Cosine similarity of output weights",
           "overlap": "Shared units among the top-{k} of two tags"}


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
OPTIONAL_FILES = ("sensitivity.npy", "ranking.tsv", "ablation.csv", "ablation_sentences.npz", "per_tag_accuracy.json",
                  "methods.csv", "methods_sentences.npz", "methods_summary.csv", "methods_scores.npz",
                  "methods_agreement.csv", "sufficiency.csv", "sufficiency_summary.csv",
                  "methods_draws.npz", "methods_baselines.csv", "sufficiency_draws.npz", "sufficiency_baselines.csv",
                  "consensus.csv", "atp.csv", "translation.csv", "translation_summary.csv")  # read when recorded


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
    unrecorded = [f for f in OPTIONAL_FILES if f not in recorded and (d / f).exists()]
    if recorded and unrecorded:
        raise NerveError(f"{d / unrecorded[0]}: not among the files the analysis recorded (its complete.json was "
                         "edited, or the file copied in); re-run `nerve analyze`")
    names = list(REQUIRED_FILES) + [f for f in OPTIONAL_FILES if f in recorded]
    marker = verify_files(d, names, "analysis", "re-run `nerve analyze`")
    model = d.resolve().parent / "model.pt"
    made_from = marker.get("components", {}).get("model")
    if made_from is not None and model.is_file() and sha256_file(model) != made_from:
        raise NerveError(f"{d}: analyses an earlier model than {model} (the run was retrained since); re-run "
                         "`nerve analyze`")
    return names


@dataclass(frozen=True)
class AnalysedRun:
    """What the comparisons and findings need from one analysed run (``load_run_analysis``).

    name: the run folder's name; analysis_dir; tags (T,); neurons (n,); s: float64 (n, T) sensitivities;
    W: float64 (T, n) output weights (rows and columns in the order of tags and neurons); rankings: intp (T, n);
    ablation: the rows of ablation.csv (fields target_tag, selection, k, draw, eval_tag, accuracy) or None;
    accuracy: per_tag_accuracy.json's content or None; files: the names of the files the analysis recorded that
    a reader may use (``check_analysis``); methods: the rows of methods.csv (``heldout.read_methods_csv``) when the
    analysis judged ranking methods, else None.
    """

    name: str
    analysis_dir: str
    tags: list[str]
    neurons: list[str]
    s: np.ndarray
    W: np.ndarray
    rankings: np.ndarray
    ablation: np.ndarray | None = None
    accuracy: dict | None = None
    files: tuple[str, ...] = ()
    methods: np.ndarray | None = None
    model: str | None = None  # the SHA-256 of the analysed model (of the archive for an analysis of bare arrays)

    def columns(self, tags: Sequence[str]) -> list[int]:
        """Indices of ``tags`` among this run's tags (to align runs whose tags are in another order)."""
        return [self.tags.index(t) for t in tags]


def load_run_analysis(run_or_analysis_dir: str | os.PathLike) -> AnalysedRun:
    """What the comparisons and findings need from one analysed run.

    Reads sensitivity.csv, activations.npz (only tags, neurons, W), ranking.tsv (if absent or
    incomplete, rankings are recomputed from s), ablation.csv, per_tag_accuracy.json and methods.csv (None if
    absent).

    Args:
        run_or_analysis_dir: a run folder holding ``analysis/`` or the analysis folder itself.

    Returns:
        ``AnalysedRun``, named after the run folder (the parent of a folder named "analysis", else the
        folder's own name).

    Raises:
        ValueError: missing files, or tags / units that differ between the files.
        NerveError: an incomplete, modified or stale analysis (``check_analysis``).
    """
    d = _analysis_dir(run_or_analysis_dir)
    d_abs = d.resolve()
    inside_run = d_abs.name == "analysis" or (d_abs.parent / "model.pt").is_file()
    name = d_abs.parent.name if inside_run else d_abs.name
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
    methods = read_methods_csv(d / "methods.csv") if "methods.csv" in files else None
    made = (read_marker(d, "complete.json") or {}).get("components", {})
    return AnalysedRun(name, str(d), tags, neurons, s, W, rank_units(s) if rankings is None else rankings, ablation,
                       accuracy, tuple(files), methods, made.get("model") or made.get("arrays"))


def check_distinct_models(runs: Sequence[AnalysedRun]) -> None:
    """A model counts once in a comparison: the same model (by its SHA-256) in two folders — one analysis given
    twice, one model analysed on two splits, a copied run folder — is refused, naming both folders.

    Raises:
        NerveError: two runs of one model."""
    seen: dict[str, AnalysedRun] = {}
    for r in runs:
        if r.model is None:
            continue
        first = seen.setdefault(r.model, r)
        if first is not r:
            raise NerveError(f"{first.analysis_dir} and {r.analysis_dir}: analyses of one model (SHA-256 "
                             f"{r.model[:12]}…); a model counts once in a comparison — compare models trained "
                             "with different seeds or configs")


def as_analysed(run: AnalysedRun | str | os.PathLike) -> AnalysedRun:
    """An analysed run as given, or loaded from its folder (``load_run_analysis``)."""
    return run if isinstance(run, AnalysedRun) else load_run_analysis(run)




def _csv_text(header, rows) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows([v if isinstance(v, str) else format_value(v) for v in r] for r in rows)
    return buf.getvalue()


def _check_tag_sets(runs: list[AnalysedRun], names: list[str]) -> None:
    groups: dict[frozenset, list[str]] = {}
    for r, name in zip(runs, names):
        groups.setdefault(frozenset(r.tags), []).append(name)
    if len(groups) > 1:
        desc = "; ".join(f"{', '.join(names)}: {len(t)} tags {sorted(t)}" for t, names in groups.items())
        raise ValueError(f"runs: expected one tag set across the compared runs, got {desc}")


@dataclass(frozen=True)
class CompareSpec:
    """How runs are compared: k, the top-k depth of the overlap matrices; draws and seed, the baselines of
    ``match_units``; run_figures, draw each run's matrices too (else only the means'); figures, draw any figure at
    all (``analyze.compare_analyses``: False draws none, every table still written)."""

    k: int = 10
    draws: int = 100
    seed: int = 0
    run_figures: bool = True
    figures: bool = True


def compare_runs(dirs: Sequence[AnalysedRun | str | os.PathLike], out_dir: str | os.PathLike,
                 spec: CompareSpec = CompareSpec(), draw: MatrixDrawer | None = None) -> dict:
    """Compare the tag x tag structure of analysed runs (e.g. seeds) and match their units.

    Writes into ``out_dir`` (every file atomically; matrices with header ``tag,<tags...>`` in
    ``tag_order``): per run ``corr_<run>.csv``, ``similarity_<run>.csv``, ``overlap_<run>.csv``
    (``corr_matrix``, ``similarity_matrix``, ``overlap_matrix`` at depth min(k, n)) and, with ``run_figures``,
    their heatmaps (.png + .svg); across runs ``<kind>_mean.csv`` and ``<kind>_std.csv`` (element-wise mean and
    sample std, ddof 1, NaN propagates; std is NaN for a single run) with heatmaps of the means;
    ``consistency.csv`` (run_a, run_b, kind, n_pairs, pearson: correlation of the two runs' upper
    triangles without diagonal, finite pairs only); ``unit_matching.csv`` (``match_units`` per pair).

    Args:
        dirs: analysed runs, or run folders or their analysis folders (``load_run_analysis``); run names that
            repeat get a suffix.
        out_dir: output folder (created).
        spec: the overlap depth k, the matching baselines' draws and seed, whether each run's figures are drawn.
        draw: draws a matrix as ``draw(M, tags, out_base, title, signed=, vmax=, label=)`` and returns the
            paths written (``nerve.report.plots.plot_tag_matrix``); None writes the CSV files only.

    Returns:
        JSON-ready dict: out_dir, runs (names), tags (tag_order), k, files (names), consistency
        (rows), unit_matching (rows, without the matched unit lists).

    Raises:
        ValueError: no runs, or runs whose tag sets differ (naming the runs).
    """
    if not dirs:
        raise ValueError("dirs: expected at least one analysed run")
    runs = [as_analysed(d) for d in dirs]
    check_distinct_models(runs)
    k, draws, seed, run_figures = spec.k, spec.draws, spec.seed, spec.run_figures
    names: list[str] = []  # distinct, file-safe, one per run even when two runs share a name
    for r in runs:
        names.append(tag_filenames([r.name], reserved=("mean", "std", *names))[r.name])
    _check_tag_sets(runs, names)
    tags = [runs[0].tags[j] for j in tag_order(runs[0].tags)]
    k_eff = int(min(k, *(len(r.neurons) for r in runs)))
    mats: dict[str, list[np.ndarray]] = {kind: [] for kind in KINDS}
    aligned = []  # each run's sensitivities, tag columns in ``tags`` order
    for r in runs:
        idx = r.columns(tags)
        aligned.append(r.s[:, idx])
        mats["corr"].append(corr_matrix(aligned[-1]))
        mats["similarity"].append(similarity_matrix(r.W[idx]))
        mats["overlap"].append(overlap_matrix(np.asarray(r.rankings)[idx], k_eff))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: list[str] = []

    def emit(kind: str, stem: str, M: np.ndarray, title: str, plot: bool = True) -> None:
        atomic_write_text(out / f"{stem}.csv", matrix_csv(M, tags))
        files.append(f"{stem}.csv")
        if plot and draw is not None:
            signed = kind != "overlap"
            paths = draw(M, tags, out / stem, title, signed=signed, vmax=None if signed else k_eff,
                         label={"corr": "Pearson r", "similarity": "cosine"}.get(kind, "shared units"))
            files.extend(p.name for p in paths)

    for kind in KINDS:
        title = _TITLES[kind].format(k=k_eff)
        for name, M in zip(names, mats[kind]):
            emit(kind, f"{kind}_{name}", M, f"{title}\n{name}", plot=run_figures)
        stack = np.stack([np.asarray(M, dtype=np.float64) for M in mats[kind]])
        mean = stack.mean(axis=0)
        std = stack.std(axis=0, ddof=1) if len(runs) > 1 else np.full_like(mean, np.nan)
        emit(kind, f"{kind}_mean", mean, f"{title}\nmean over {len(runs)} run(s)")
        emit(kind, f"{kind}_std", std, "", plot=False)

    consistency = []
    matching = []
    for a, b in itertools.combinations(range(len(runs)), 2):
        ra, rb = names[a], names[b]
        for kind in KINDS:
            n_pairs, r = upper_pearson(mats[kind][a], mats[kind][b])
            consistency.append({"run_a": ra, "run_b": rb, "kind": kind, "n_pairs": n_pairs, "pearson": r})
        row = {"run_a": ra, "run_b": rb, "n_units_a": len(runs[a].neurons), "n_units_b": len(runs[b].neurons)}
        sa, sb = aligned[a], aligned[b]
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
    return {"out_dir": str(out), "runs": names, "tags": tags, "k": k_eff, "files": files,
            "consistency": _json_ready(consistency), "unit_matching": _json_ready(matching)}


def _json_ready(rows: list[dict]) -> list[dict]:
    """Rows with NaN and infinities as None."""
    return [{key: (None if isinstance(v, float) and not math.isfinite(v) else v) for key, v in r.items()} for r in rows]
