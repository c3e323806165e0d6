"""Tag x tag matrices and cross-run comparison: every output equals a plain numpy re-computation from the files."""

import csv
import itertools
import json

import numpy as np
import pytest

from nerve.analysis.compare import CompareSpec, load_run_analysis
from nerve.analysis.matching import match_units
from nerve.analysis.matrices import corr_matrix, overlap_matrix, read_matrix_csv, similarity_matrix
from nerve.analyze import compare as compare_runs
from nerve.folder import mark_complete
from nerve.report.figures import figure_formats
from nerve.tags import tag_order

TAGS = ["B-LOC", "I-LOC", "B-PER", "I-PER", "B-MISC", "I-MISC", "O"]
N = 12
K = 4


def write_run(root, name, s, W, tags, neurons):
    """An analysed run folder ROOT/NAME/analysis with sensitivity.csv, activations.npz and ranking.tsv."""
    d = root / name / "analysis"
    d.mkdir(parents=True)
    with open(d / "sensitivity.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["neuron", *tags])
        w.writerows([u, *map(repr, map(float, row))] for u, row in zip(neurons, s))
    np.savez(d / "activations.npz", h=np.zeros((3, len(neurons)), np.float32), gold=np.zeros(3, np.int64),
             pred=np.zeros(3, np.int64), tags=np.array(tags), W=W.astype(np.float32), b=np.zeros(len(tags)),
             neurons=np.array(neurons), sentence_starts=np.array([0]), decoder=np.array("softmax"))
    lines = ["tag\trank\tneuron\tsensitivity"]
    for j, t in enumerate(tags):
        for r, u in enumerate(np.argsort(-s[:, j], kind="stable"), start=1):
            lines.append(f"{t}\t{r}\t{neurons[u]}\t{s[u, j]!r}")
    (d / "ranking.tsv").write_text("\n".join(lines) + "\n")
    mark_complete(d, {"kind": "analysis", "test": name}, ["sensitivity.csv", "activations.npz", "ranking.tsv"])
    return d


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory):
    """Runs a, b independent; c = a with units shuffled and tag columns in another order. Compared once."""
    root = tmp_path_factory.mktemp("runs")
    rng = np.random.default_rng(7)
    neurons = [str(i) for i in range(N)]
    runs = {}
    for name in ("a", "b"):
        s = rng.normal(size=(N, len(TAGS)))
        W = rng.normal(size=(len(TAGS), N)).astype(np.float32).astype(np.float64)
        write_run(root, name, s, W, TAGS, neurons)
        runs[name] = (s, W)
    perm, cols = rng.permutation(N), rng.permutation(len(TAGS))
    s, W = runs["a"]
    write_run(root, "c", s[perm][:, cols], W[cols][:, perm], [TAGS[j] for j in cols], neurons)
    runs["c"] = (s[perm], W[:, perm])  # tag columns as in TAGS
    out = root / "cmp"
    with figure_formats(("png", "svg")):  # the formats test_compare_writes_heatmaps_... reads
        summary = compare_runs([root / n for n in "abc"], out, CompareSpec(k=K, draws=20))
    return {"root": root, "out": out, "summary": summary, "runs": runs, "perm": perm}


def numpy_matrices(s, W):
    """Reference corr, similarity, overlap (TAGS order) by plain numpy."""
    Wn = W / np.linalg.norm(W, axis=1, keepdims=True)
    top = [set(np.argsort(-s[:, j])[:K]) for j in range(len(TAGS))]
    ov = np.array([[len(x & y) for y in top] for x in top])
    return {"corr": np.corrcoef(s.T), "similarity": Wn @ Wn.T, "overlap": ov}


def ordered(M):
    o = tag_order(TAGS)
    return M[np.ix_(o, o)]


def test_corr_matrix_equals_numpy_corrcoef_of_sensitivity_columns():
    s = np.random.default_rng(0).normal(size=(20, 5))
    np.testing.assert_allclose(corr_matrix(s), np.corrcoef(s.T), atol=1e-12)


def test_corr_matrix_is_nan_for_a_constant_or_nan_column():
    s = np.random.default_rng(1).normal(size=(10, 4))
    s[:, 1] = 0.3
    s[2, 3] = np.nan
    c = corr_matrix(s)
    assert np.isnan(c[1]).all() and np.isnan(c[:, 3]).all()
    np.testing.assert_allclose(c[np.ix_([0, 2], [0, 2])], np.corrcoef(s[:, [0, 2]].T), atol=1e-12)


def test_similarity_matrix_is_cosine_of_weight_rows():
    W = np.random.default_rng(2).normal(size=(5, 8))
    Wn = W / np.linalg.norm(W, axis=1, keepdims=True)
    np.testing.assert_allclose(similarity_matrix(W), Wn @ Wn.T, atol=1e-12)


def test_overlap_matrix_counts_shared_top_k_units_from_s_or_rankings():
    s = np.random.default_rng(3).normal(size=(15, 4))
    top = [set(np.argsort(-s[:, j])[:5]) for j in range(4)]
    want = np.array([[len(x & y) for y in top] for x in top])
    np.testing.assert_array_equal(overlap_matrix(s, k=5), want)
    np.testing.assert_array_equal(overlap_matrix(np.argsort(-s, axis=0).T, k=5), want)


def test_overlap_matrix_rejects_k_outside_the_units():
    with pytest.raises(ValueError, match="k: expected an integer in 1..6"):
        overlap_matrix(np.zeros((6, 3)), k=7)


def test_load_run_analysis_reads_run_or_analysis_folder_and_names_the_run(three_runs):
    a = load_run_analysis(three_runs["root"] / "c")
    b = load_run_analysis(three_runs["root"] / "c" / "analysis")
    assert a.name == b.name == "c"
    assert a.ablation is None and a.s.shape == (N, len(TAGS)) and a.W.shape == (len(TAGS), N)
    assert a.methods is None and "ranking.tsv" in a.files
    np.testing.assert_array_equal(a.s, b.s)


def test_per_run_matrices_equal_numpy_recomputation(three_runs):
    for name, (s, W) in three_runs["runs"].items():
        ref = numpy_matrices(s, W)
        for kind in ("corr", "similarity", "overlap"):
            M, tags = read_matrix_csv(three_runs["out"] / f"{kind}_{name}.csv")
            assert tags == [TAGS[j] for j in tag_order(TAGS)]
            np.testing.assert_allclose(M, ordered(ref[kind]), atol=1e-7, err_msg=f"{kind} {name}")


def test_cross_run_mean_and_std_equal_numpy(three_runs):
    refs = [numpy_matrices(*three_runs["runs"][n]) for n in "abc"]
    for kind in ("corr", "similarity", "overlap"):
        stack = np.stack([ordered(r[kind]).astype(float) for r in refs])
        mean, _ = read_matrix_csv(three_runs["out"] / f"{kind}_mean.csv")
        std, _ = read_matrix_csv(three_runs["out"] / f"{kind}_std.csv")
        np.testing.assert_allclose(mean, stack.mean(0), atol=1e-7)
        np.testing.assert_allclose(std, stack.std(0, ddof=1), atol=1e-7)


def test_consistency_is_pearson_of_upper_triangles(three_runs):
    refs = {n: numpy_matrices(*three_runs["runs"][n]) for n in "abc"}
    rows = list(csv.DictReader(open(three_runs["out"] / "consistency.csv")))
    assert len(rows) == 3 * 3
    iu = np.triu_indices(len(TAGS), k=1)
    for r in rows:
        x, y = refs[r["run_a"]][r["kind"]][iu], refs[r["run_b"]][r["kind"]][iu]
        assert float(r["pearson"]) == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-6)
        assert int(r["n_pairs"]) == len(iu[0])
    same = [r for r in rows if (r["run_a"], r["run_b"]) == ("a", "c")]
    assert all(float(r["pearson"]) == pytest.approx(1.0) for r in same)


def test_compare_writes_heatmaps_of_every_run_and_of_the_means(three_runs):
    for kind, stem in itertools.product(("corr", "similarity", "overlap"), ("a", "b", "c", "mean")):
        for ext in ("png", "svg"):
            assert (three_runs["out"] / f"{kind}_{stem}.{ext}").stat().st_size > 1000


def test_compare_of_loaded_runs_writes_the_same_files_as_of_their_folders(three_runs, tmp_path):
    runs = [load_run_analysis(three_runs["root"] / n) for n in "abc"]
    with figure_formats(("png",)):  # one of the fixture's two formats
        summary = compare_runs(runs, tmp_path, CompareSpec(k=K, draws=20))
    assert summary["files"] == [n for n in three_runs["summary"]["files"] if not n.endswith(".svg")]
    for name in summary["files"]:
        if name.endswith(".csv"):
            assert (tmp_path / name).read_text() == (three_runs["out"] / name).read_text(), name


def test_compare_without_run_figures_draws_the_means_only_and_writes_every_matrix(three_runs, tmp_path):
    summary = compare_runs([three_runs["root"] / n for n in "abc"], tmp_path,
                           CompareSpec(k=K, draws=20, run_figures=False))
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["corr_mean.png", "overlap_mean.png",
                                                              "similarity_mean.png"]
    assert {n for n in summary["files"] if n.endswith(".csv")} == {
        n for n in three_runs["summary"]["files"] if n.endswith(".csv")}


def test_compare_summary_is_json_ready_and_lists_every_pair(three_runs):
    summary = json.loads(json.dumps(three_runs["summary"], allow_nan=False))
    assert summary["runs"] == ["a", "b", "c"] and summary["k"] == K
    assert [(m["run_a"], m["run_b"]) for m in summary["unit_matching"]] == [("a", "b"), ("a", "c"), ("b", "c")]


def test_unit_matching_of_a_shuffled_copy_is_perfect_and_above_both_baselines(three_runs):
    rows = {(r["run_a"], r["run_b"]): r for r in csv.DictReader(open(three_runs["out"] / "unit_matching.csv"))}
    ac = rows[("a", "c")]
    assert float(ac["matched_mean"]) == pytest.approx(1.0)
    matched = float(ac["matched_mean"])
    assert matched > float(ac["random_p97_5"]) and matched > float(ac["shuffled_p97_5"])
    assert float(rows[("a", "b")]["matched_mean"]) < 0.99


def test_hungarian_matching_recovers_a_known_permutation():
    rng = np.random.default_rng(4)
    s_a = rng.normal(size=(30, 9))
    perm = rng.permutation(30)
    m = match_units(s_a, s_a[perm], draws=50, seed=1)
    assert m["matched_mean"] == pytest.approx(1.0)
    np.testing.assert_array_equal(perm[m["cols"]], m["rows"])  # unit rows[i] of a is unit cols[i] of b
    assert m["random_p97_5"] < 0.5 and m["shuffled_p97_5"] < 0.9 and m["shuffled_p"] == pytest.approx(1 / 51)


def test_compare_rejects_runs_with_different_tag_sets_naming_them(tmp_path):
    rng = np.random.default_rng(5)
    write_run(tmp_path, "conll", rng.normal(size=(4, 3)), rng.normal(size=(3, 4)), ["B-PER", "I-PER", "O"],
              list("0123"))
    write_run(tmp_path, "other", rng.normal(size=(4, 3)), rng.normal(size=(3, 4)), ["B-LOC", "I-LOC", "O"],
              list("0123"))
    with pytest.raises(ValueError, match="conll.*other"):
        compare_runs([tmp_path / "conll", tmp_path / "other"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_compare_of_a_single_run_writes_nan_std_and_no_pairs(tmp_path):
    rng = np.random.default_rng(6)
    write_run(tmp_path, "solo", rng.normal(size=(5, 3)), rng.normal(size=(3, 5)), ["B-PER", "I-PER", "O"],
              list("01234"))
    summary = compare_runs([tmp_path / "solo"], tmp_path / "out", CompareSpec(k=2, draws=5))
    std, _ = read_matrix_csv(tmp_path / "out" / "corr_std.csv")
    assert np.isnan(std).all() and summary["unit_matching"] == [] and summary["consistency"] == []
