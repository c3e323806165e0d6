"""Tests for nerve.analysis.ranking: importance order, ties, NaN columns and the ranking files."""

import numpy as np

from nerve.analysis.ranking import rank_units, ranking_tsv, ranking_txt


def test_units_sorted_by_sensitivity_descending():
    s = np.array([[0.1, -1.0], [0.5, 2.0], [-0.3, 0.0]])
    assert rank_units(s).tolist() == [[1, 0, 2], [1, 2, 0]]


def test_ties_keep_unit_index_order():
    s = np.array([[0.2], [0.7], [0.2], [0.7], [0.2]])
    assert rank_units(s)[0].tolist() == [1, 3, 0, 2, 4]


def test_nan_column_ranks_units_by_index():
    s = np.array([[np.nan, 1.0], [np.nan, 3.0], [np.nan, 2.0]])
    assert rank_units(s).tolist() == [[0, 1, 2], [1, 2, 0]]


def test_ranking_tsv_lists_every_unit_for_every_tag():
    s = np.array([[0.1, -1.0], [0.5, 2.0], [-0.3, 0.0]])
    text = ranking_tsv(s, rank_units(s), ["B-PER", "O"], ["a", "b", "c"])
    lines = text.splitlines()
    assert lines[0] == "tag\trank\tneuron\tsensitivity"
    assert len(lines) == 1 + 2 * 3
    assert lines[1] == "B-PER\t1\tb\t0.5"
    assert lines[6] == "O\t3\ta\t-1"


def test_ranking_txt_has_one_line_per_tag_with_unit_names():
    s = np.array([[0.1, -1.0], [0.5, 2.0], [-0.3, 0.0]])
    assert ranking_txt(rank_units(s), ["B-PER", "O"], ["a", "b", "c"]) == "B-PER: b a c\nO: b c a\n"
    assert ranking_txt(rank_units(s), ["B-PER", "O"], ["a", "b", "c"], top=1) == "B-PER: b\nO: b\n"
