"""Judging methods from sweep rows: every number equals a plain re-computation on hand-made rows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nerve.analysis.heldout import METHOD_FIELDS
from nerve.analysis.judging import drop_matrix, judge_methods, summary_csv

TAGS = ["O", "B-PER", "B-LOC"]


def _rows(scores: dict) -> np.ndarray:
    """scores: (method, ablate, target, eval, k, draw) -> accuracy."""
    dtype = np.dtype([("method", "U12"), ("ablate", "U4"), ("rank_split", "U4"), ("score_split", "U4"),
                      ("target_tag", "U6"), ("selection", "U6"), ("k", np.int32), ("draw", np.int32),
                      ("eval_tag", "U6"), *[(f, np.float64) for f in ("accuracy", "precision", "recall", "f1")]])
    out = np.empty(len(scores), dtype=dtype)
    for i, ((m, a, t, e, k, d), acc) in enumerate(scores.items()):
        # f1 is a fixed transform of the accuracy, so that the two scores are judged apart
        out[i] = (m, a, "dev", "test", t, "random" if m == "random" else "top", k, d, e, acc, np.nan, acc, acc / 2)
    assert list(out.dtype.names) == list(METHOD_FIELDS)
    return out


@pytest.fixture
def rows() -> np.ndarray:
    rng = np.random.default_rng(1)
    scores = {}
    for t in TAGS:
        for k in range(3):
            for e in TAGS:
                base = {"O": 0.9, "B-PER": 0.8, "B-LOC": 0.7}[e]
                scores[("probe", "zero", t, e, k, 0)] = base - (0.2 * k if e == t else 0.05 * k)
                for d in range(4):
                    scores[("random", "zero", t, e, k, d)] = base - (0.0 if k == 0 else rng.uniform(0, 0.3))
    return _rows(scores)


def test_own_drop_selectivity_and_auc_equal_a_plain_recomputation(rows):
    judged = {(r["score"], r["target_tag"], r["k"]): r for r in judge_methods(rows, ks=(1, 2))}
    r = judged[("accuracy", "B-PER", 2)]
    assert r["own_drop"] == pytest.approx(0.4) and r["others_mean_drop"] == pytest.approx(0.1)
    assert r["selectivity"] == pytest.approx(0.3)
    assert r["auc"] == pytest.approx(np.trapezoid([0.0, 0.2, 0.4]) / 2)
    assert r["baseline"] == pytest.approx(0.8) and (r["rank_split"], r["score_split"]) == ("dev", "test")


def test_the_f1_score_is_judged_from_the_f1_column(rows):
    judged = {(r["score"], r["target_tag"], r["k"]): r for r in judge_methods(rows, ks=(2,))}
    f1, acc = judged[("f1", "B-PER", 2)], judged[("accuracy", "B-PER", 2)]
    assert f1["own_drop"] == pytest.approx(acc["own_drop"] / 2) and f1["baseline"] == pytest.approx(0.4)


def test_random_p_is_the_share_of_draws_at_least_as_bad_with_one_added(rows):
    r = next(x for x in judge_methods(rows, ks=(1,)) if x["target_tag"] == "B-LOC")
    sel = (rows["method"] == "random") & (rows["target_tag"] == "B-LOC") & (rows["eval_tag"] == "B-LOC")
    acc = {(int(k), int(d)): a for k, d, a in zip(rows["k"][sel], rows["draw"][sel], rows["accuracy"][sel])}
    drops = [acc[(0, d)] - acc[(1, d)] for d in range(4)]
    assert r["random_p"] == pytest.approx((1 + sum(x >= 0.2 - 1e-12 for x in drops)) / 5)
    assert r["random_mean_drop"] == pytest.approx(np.mean(drops)) and r["n_draws"] == 4


def test_only_swept_k_are_judged(rows):
    assert {r["k"] for r in judge_methods(rows, ks=(1, 5, 10))} == {1}


def test_drop_matrix_is_methods_by_tags(rows):
    judged = judge_methods(rows, ks=(2,))
    methods, tags, M = drop_matrix(judged, "zero", 2)
    assert methods == ["probe", "random (mean of draws)"] and tags == TAGS and M.shape == (2, 3)
    assert M[0, 1] == pytest.approx(0.4)
    assert M[1, 1] == pytest.approx(next(r["random_mean_drop"] for r in judged if r["target_tag"] == "B-PER"))


def test_summary_csv_leaves_missing_random_figures_empty(rows):
    no_draws = rows[rows["method"] != "random"]
    text = summary_csv(judge_methods(no_draws, ks=(1,)))
    first = text.splitlines()[1].split(",")
    assert first[0] == "probe" and first[-3:] == ["", "", "0"]
    assert first[2] == "accuracy" and not math.isnan(float(first[8]))


def _judged(method, tag, k, own, p=None, rnd=None):
    return {"method": method, "ablate": "zero", "score": "accuracy", "rank_split": "dev", "score_split": "test",
            "target_tag": tag, "k": k, "own_drop": own, "selectivity": own / 2, "random_mean_drop": rnd, "random_p": p}


def test_across_runs_means_sds_medians_and_best_counts_equal_a_plain_recomputation():
    from nerve.analysis.judging import across_runs

    runs = [[_judged("a", "B-PER", 10, 0.5, 0.05, 0.1), _judged("b", "B-PER", 10, 0.3, 0.2, 0.1)],
            [_judged("a", "B-PER", 10, 0.2, 0.10, 0.2), _judged("b", "B-PER", 10, 0.4, 0.05, 0.2)],
            [_judged("a", "B-PER", 10, 0.6, 0.30, 0.0), _judged("b", "B-PER", 10, 0.6, 0.5, 0.0)]]
    got = {r["method"]: r for r in across_runs(runs)}
    a = got["a"]
    assert a["n_runs"] == 3 and a["own_drop_mean"] == pytest.approx(np.mean([0.5, 0.2, 0.6]))
    assert a["own_drop_sd"] == pytest.approx(np.std([0.5, 0.2, 0.6], ddof=1))
    assert a["random_p_median"] == pytest.approx(0.10) and a["random_mean_drop"] == pytest.approx(0.1)
    assert a["selectivity_mean"] == pytest.approx(np.mean([0.25, 0.1, 0.3]))
    assert (a["runs_best"], got["b"]["runs_best"]) == (2, 2)  # run 3 is a tie: both count


def test_summary_csv_reads_back_as_written(rows):
    from nerve.analysis.judging import read_summary_csv

    judged = judge_methods(rows, ks=(1, 2))
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.csv"
        path.write_text(summary_csv(judged))
        back = read_summary_csv(path)
    assert len(back) == len(judged)
    for a, b in zip(judged, back):
        for key, v in a.items():
            assert b[key] == pytest.approx(v) if isinstance(v, float) else b[key] == v


def test_a_summary_with_other_columns_is_refused_naming_the_file(tmp_path):
    from nerve.analysis.checks import AnalysisInputError
    from nerve.analysis.judging import read_summary_csv

    path = tmp_path / "methods_summary.csv"
    path.write_text("method,ablate,rank_split,score_split,target_tag,k,own_drop\nprobe,zero,dev,test,O,1,0.1\n")
    with pytest.raises(AnalysisInputError, match="methods_summary.csv: expected a header"):
        read_summary_csv(path)


def _across(drops: dict, random_drop: float = 0.05) -> list[dict]:
    """across_runs-like rows at k = 10, zero ablation: drops[(method, tag)] = (mean, sd, runs_best)."""
    return [{"method": m, "ablate": "zero", "score": "accuracy", "rank_split": "dev", "score_split": "test",
             "target_tag": t, "k": 10, "n_runs": 5, "own_drop_mean": mean, "own_drop_sd": sd,
             "selectivity_mean": 0.0, "random_mean_drop": random_drop, "random_p_median": 0.05, "runs_best": best}
            for (m, t), (mean, sd, best) in drops.items()]


def test_the_verdict_names_the_method_that_hurt_each_tag_most_with_its_spread_and_runs():
    from nerve.analysis.judging import method_verdicts

    v = method_verdicts(_across({("ig", "B-PER"): (0.30, 0.04, 4), ("probe", "B-PER"): (0.12, 0.02, 1)}), "zero", 10)
    (tag,) = v["tags"]
    assert tag["best"] == "ig"
    assert tag["text"] == ("B-PER: ig's top 10 lower its recall most, by 0.30 ± 0.04 (mean over 5 runs; the largest "
                           "drop in 4 of 5); next probe (0.12); 10 random units: 0.05, median random-draw p 0.05.")


def test_a_median_random_draw_p_at_its_floor_reads_below_one_over_draws_plus_one():
    from nerve.analysis.judging import method_verdicts

    rows = _across({("ig", "B-PER"): (0.30, 0.04, 4)})
    rows[0] |= {"random_p_median": 1 / 21, "n_draws": 20}
    assert method_verdicts(rows, "zero", 10)["tags"][0]["text"].endswith("median random-draw p < 1/21.")


def test_across_runs_keeps_the_fewest_random_draws_of_a_run():
    from nerve.analysis.judging import across_runs

    run = {"method": "ig", "ablate": "zero", "score": "accuracy", "rank_split": "dev", "score_split": "test",
           "target_tag": "B-PER", "k": 10, "own_drop": 0.3, "selectivity": 0.1, "random_mean_drop": 0.05,
           "random_p": 1 / 21}
    (row,) = across_runs([[run | {"n_draws": 20}], [run | {"n_draws": 50}]])
    assert row["n_draws"] == 20


def test_the_overall_verdict_counts_wins_over_entity_tags_and_runs_but_not_o():
    from nerve.analysis.judging import method_verdicts

    v = method_verdicts(_across({("ig", "B-PER"): (0.3, 0.1, 4), ("probe", "B-PER"): (0.2, 0.1, 1),
                                 ("ig", "B-LOC"): (0.1, 0.1, 2), ("probe", "B-LOC"): (0.2, 0.1, 3),
                                 ("ig", "O"): (0.01, 0.0, 5), ("probe", "O"): (0.0, 0.0, 0)}), "zero", 10)
    assert v["wins"] == {"ig": 6, "probe": 4}
    assert v["overall"].startswith("Over the 10 entity tag × run cases")


def test_a_tag_no_method_hurts_more_than_random_units_says_so():
    from nerve.analysis.judging import method_verdicts

    v = method_verdicts(_across({("ig", "O"): (-0.001, 0.0, 5), ("probe", "O"): (-0.002, 0.0, 0)},
                                random_drop=-0.001), "zero", 10)
    assert v["tags"][0]["best"] is None
    text = v["tags"][0]["text"]
    assert "no method's top 10 lower its recall by 0.005 or more, or more than 10 random units do" in text


def test_a_drop_that_rounds_to_zero_is_no_drop_even_above_random_units():
    from nerve.analysis.judging import method_verdicts

    v = method_verdicts(_across({("ig", "O"): (0.003, 0.0, 5)}, random_drop=0.0), "zero", 10)
    assert v["tags"][0]["best"] is None
