"""Tests for nerve.analysis.ablation: every sweep row against brute-force recomputation, draws, summaries."""

import numpy as np
import pytest
from analysis_synthetic import as_table, assert_scores_equal, brute_force, make_arrays, sweep

from nerve.analysis.ablation import (
    FIELDS,
    Sweep,
    SweepInput,
    ablation_csv,
    ablation_sweep,
    per_tag_accuracy_arrays,
    random_orders,
    read_ablation_csv,
    row_dtype,
    write_ablation_csv,
)
from nerve.analysis.pipeline import summarise_ablation
from nerve.analysis.tables import slow_structured_csv, structured_csv


def test_top_and_bottom_rows_equal_brute_force(arrays):
    rows, rankings = sweep(arrays)
    table = as_table(rows)
    for j, tag in enumerate(arrays["tags"]):
        for k in range(arrays["h"].shape[1] + 1):
            assert_scores_equal(table[(str(tag), "top", k, 0)], brute_force(arrays, rankings[j, :k]))
            assert_scores_equal(table[(str(tag), "bottom", k, 0)], brute_force(arrays, rankings[j, ::-1][:k]))


def test_random_rows_equal_brute_force_on_permutation_prefixes(arrays):
    rows, _ = sweep(arrays, draws=3, seed=7)
    table = as_table(rows)
    for r, order in enumerate(random_orders(arrays["h"].shape[1], 3, 7)):
        for k in (0, 1, 4, 8):
            assert_scores_equal(table[("O", "random", k, r)], brute_force(arrays, order[:k]))


def test_random_draws_are_sets_of_k_distinct_units():
    orders = random_orders(8, 5, seed=1)
    assert orders.shape == (5, 8)
    assert all(sorted(o.tolist()) == list(range(8)) for o in orders)


def test_random_draws_reproducible_with_same_seed_and_differ_with_another():
    assert np.array_equal(random_orders(20, 4, seed=3), random_orders(20, 4, seed=3))
    assert not np.array_equal(random_orders(20, 4, seed=3), random_orders(20, 4, seed=4))


def test_random_rows_are_shared_by_every_target(arrays):
    rows, _ = sweep(arrays, max_k=4, draws=2)
    rnd = rows[rows["selection"] == "random"]
    per_target = [rnd[rnd["target_tag"] == t]["accuracy"] for t in arrays["tags"]]
    assert all(np.array_equal(p, per_target[0], equal_nan=True) for p in per_target)


def test_rows_have_expected_count_and_order(arrays):
    rows, _ = sweep(arrays, max_k=3, draws=2)
    n_tags, n_eval = 5, 9
    assert rows.size == n_tags * (2 + 2) * 4 * n_eval
    assert rows[:n_eval]["eval_tag"].tolist() == [*arrays["tags"].tolist(), "ALL", "F1", "F1:LOC", "F1:PER"]
    first = rows[rows["target_tag"] == "B-LOC"]
    assert list(dict.fromkeys(first["selection"].tolist())) == ["top", "bottom", "random"]
    rnd = first[first["selection"] == "random"]
    assert rnd["k"][::n_eval].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert rnd["draw"][::n_eval].tolist() == [0, 1] * 4


def test_exact_ties_decode_to_the_first_tag():
    a = make_arrays(n_tokens=60, n=4, seed=2)
    a["W"][3] = a["W"][1]  # I-PER duplicates B-PER
    a["b"][:] = 0.5
    rows, rankings = sweep(a, draws=1)
    table = as_table(rows)
    for k in range(5):
        assert_scores_equal(table[("O", "top", k, 0)], brute_force(a, rankings[4, :k]))
    assert table[("O", "top", 4, 0)]["B-LOC"][0] == 1.0  # everything ablated: all logits tie, tag 0 wins


def test_max_k_larger_than_units_raises(arrays):
    with pytest.raises(ValueError, match=r"max_k: expected an integer in 0\.\.8"):
        sweep(arrays, max_k=9)


def test_rankings_that_are_not_permutations_raise(arrays):
    with pytest.raises(ValueError, match="permutation"):
        ablation_sweep(_args(arrays)[0], np.zeros((5, 8), int), Sweep(2))


def test_per_tag_accuracy_arrays_gives_nan_for_tag_without_gold_tokens():
    per_tag, overall = per_tag_accuracy_arrays(np.array([0, 0, 2, 2]), np.array([0, 1, 2, 0]), 3)
    np.testing.assert_array_equal(per_tag, [0.5, np.nan, 0.5])
    assert overall == 0.5


def test_per_tag_accuracy_arrays_accepts_a_batch():
    per_tag, overall = per_tag_accuracy_arrays(np.array([0, 1]), np.array([[0, 1], [1, 1]]), 2)
    np.testing.assert_array_equal(per_tag, [[1.0, 1.0], [0.0, 1.0]])
    np.testing.assert_array_equal(overall, [1.0, 0.5])


def test_per_tag_accuracy_arrays_refuses_a_predicted_tag_id_out_of_range():
    with pytest.raises(ValueError, match=r"pred: expected tag ids in 0\.\.1, got 0\.\.2"):
        per_tag_accuracy_arrays(np.array([0, 1]), np.array([0, 2]), 2)


def test_summary_drop_compares_top_with_random_draws(arrays):
    rows, _ = sweep(arrays, max_k=4, draws=3)
    summary = {r["target_tag"]: r for r in summarise_ablation(rows, 2)}
    own = rows[(rows["target_tag"] == "B-PER") & (rows["eval_tag"] == "B-PER")]
    acc = {(s, k, d): a for s, k, d, a in zip(own["selection"], own["k"], own["draw"], own["accuracy"])}
    rnd = [acc[("random", 0, d)] - acc[("random", 2, d)] for d in range(3)]
    got = summary["B-PER"]
    assert got["top_drop"] == pytest.approx(acc[("top", 0, 0)] - acc[("top", 2, 0)])
    assert got["bottom_drop"] == pytest.approx(acc[("bottom", 0, 0)] - acc[("bottom", 2, 0)])
    assert got["random_mean_drop"] == pytest.approx(np.mean(rnd))
    assert got["random_p2_5_drop"] == pytest.approx(np.percentile(rnd, 2.5))
    assert got["random_p97_5_drop"] == pytest.approx(np.percentile(rnd, 97.5))
    assert got["n_draws"] == 3


def test_summary_rejects_k_not_swept(arrays):
    rows, _ = sweep(arrays, max_k=2, draws=1)
    with pytest.raises(ValueError, match="k: expected one of"):
        summarise_ablation(rows, 5)


def test_csv_round_trip_keeps_rows(arrays, tmp_path):
    rows, _ = sweep(arrays, max_k=2, draws=2)
    write_ablation_csv(tmp_path / "ablation.csv", rows)
    assert ablation_csv(rows).startswith("target_tag,selection,k,draw,eval_tag,accuracy,precision,recall,f1\n")
    back = read_ablation_csv(tmp_path / "ablation.csv")
    for f in ("target_tag", "selection", "k", "draw", "eval_tag"):
        assert back[f].tolist() == rows[f].tolist()
    np.testing.assert_array_equal(back["accuracy"], rows["accuracy"])


def test_integer_valued_inputs_full_of_ties_equal_brute_force():
    a = make_arrays(n_tokens=150, n=6, seed=4)
    rng = np.random.default_rng(4)
    a["h"] = rng.integers(-1, 2, a["h"].shape).astype(np.float32)  # logits are small integers: ties everywhere
    a["W"] = rng.integers(-2, 3, a["W"].shape).astype(np.float32)
    a["b"] = rng.integers(0, 2, a["b"].shape).astype(np.float32)
    rows, rankings = sweep(a, draws=2)
    table = as_table(rows)
    for j, tag in enumerate(a["tags"]):
        for k in range(7):
            assert_scores_equal(table[(str(tag), "top", k, 0)], brute_force(a, rankings[j, :k]))


@pytest.mark.parametrize("selections", [("top",), ("random",), ("top", "random"), ("bottom",)])
def test_a_sweep_of_some_selections_gives_exactly_those_rows_of_the_full_sweep(arrays, selections):
    args, rankings = _args(arrays)
    full = ablation_sweep(args, rankings, Sweep(3, random_draws=2))
    part = ablation_sweep(args, rankings, Sweep(3, random_draws=2, selections=selections))
    want = full[np.isin(full["selection"], selections)]
    assert part.dtype == want.dtype and len(part) == len(want)
    for field in part.dtype.names:  # field by field: NaN equals NaN in a float column
        np.testing.assert_array_equal(part[field], want[field])


def test_an_unknown_selection_is_refused(arrays):
    args, rankings = _args(arrays)
    with pytest.raises(ValueError, match="selections: expected some of top, bottom, random"):
        ablation_sweep(args, rankings, Sweep(3, selections=("middle",)))


def _args(a):
    from nerve.analysis.ranking import rank_units
    from nerve.analysis.sensitivity import sensitivity

    rankings = rank_units(sensitivity(a["h"], a["W"], a["pred"]))
    return SweepInput(a["h"], a["W"], a["b"], a["gold"], a["sentence_starts"], list(a["tags"])), rankings


ODD_TAGS = {"B-LOC": 'B-"L,O"C', "B-PER": "B-P ER", "I-PER": "I-PÉR;x", "O": "O"}


def _odd_rows(arrays) -> np.ndarray:
    """A sweep with tag names the csv module must quote, and NaN, -0.0, tiny and huge scores."""
    rows, _ = sweep(arrays, max_k=2, draws=2)
    odd = np.empty(rows.size, dtype=row_dtype(12))
    for f in FIELDS:
        odd[f] = [ODD_TAGS.get(t, t) for t in rows[f].tolist()] if f.endswith("_tag") else rows[f]
    odd["accuracy"][:4] = [np.nan, -0.0, 1e-05, 1.5e20]
    odd["f1"][5] = np.inf
    return odd


def _csv_module_parse(path) -> list[list[str]]:
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_csv_text_is_the_csv_modules_text_with_odd_tags_and_nan(arrays):
    rows = _odd_rows(arrays)
    assert structured_csv(rows, FIELDS) == slow_structured_csv(rows, FIELDS)
    assert '"B-""L,O""C"' in structured_csv(rows, FIELDS) and ",nan," in structured_csv(rows, FIELDS)


def test_csv_text_written_in_blocks_is_the_csv_modules_text(arrays, monkeypatch):
    import nerve.analysis.tables as tables

    rows = _odd_rows(arrays)
    monkeypatch.setattr(tables, "BLOCK_ROWS", 7)  # many blocks, the last one short
    assert len(rows) % 7 and structured_csv(rows, FIELDS) == slow_structured_csv(rows, FIELDS)


def test_read_ablation_csv_equals_the_csv_module_parse(arrays, tmp_path):
    rows = _odd_rows(arrays)
    write_ablation_csv(tmp_path / "ablation.csv", rows)
    back = read_ablation_csv(tmp_path / "ablation.csv")
    lines = _csv_module_parse(tmp_path / "ablation.csv")
    assert lines[0] == list(FIELDS)
    assert [[str(v) if isinstance(v, str) else repr(v) for v in r] for r in back.tolist()] == lines[1:]
    assert back.dtype == row_dtype(max(len(t) for t in rows["eval_tag"].tolist()))
    np.testing.assert_array_equal(np.signbit(back["accuracy"]), np.signbit(rows["accuracy"]))


def test_read_ablation_csv_refuses_another_header_naming_the_file(tmp_path):
    path = tmp_path / "ablation.csv"
    path.write_text("target_tag,selection,k\nO,top,0\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"{path}: expected an ablation.csv with header target_tag,selection"):
        read_ablation_csv(path)


def test_read_ablation_csv_refuses_a_line_that_does_not_parse_naming_the_file(arrays, tmp_path):
    path = tmp_path / "ablation.csv"
    rows, _ = sweep(arrays, max_k=1, draws=0)
    path.write_text(ablation_csv(rows).replace(",top,1,", ",top,one,", 1), encoding="utf-8")
    with pytest.raises(ValueError, match=f"{path}: cannot be read as an ablation.csv"):
        read_ablation_csv(path)
