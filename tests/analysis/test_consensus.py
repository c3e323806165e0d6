"""Consensus of ranking methods (Fan et al. 2023): every row equals a plain-Python re-computation; a method that is
the others' consensus scores 1; a method's own ranking never enters its consensus; unranked tags neither vote nor
are judged."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from nerve.analysis.checks import AnalysisInputError
from nerve.analysis.consensus import (
    CONSENSUS_FIELDS,
    consensus_csv,
    consensus_ranking,
    consensus_rows,
    rank_spearman,
    valid_tags,
    write_consensus_csv,
)
from nerve.analysis.ranking import rank_units

TAGS = ["O", "B-PER", "I-PER"]


def _random_rankings(seed: int, methods=("a", "b", "c", "d"), T: int = 3, n: int = 12) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {m: np.stack([rng.permutation(n) for _ in range(T)]) for m in methods}


def _brute_consensus(lists: list[list[int]]) -> list[int]:
    """Borda count by hand: n − position points per list, units by points (most first), ties by unit index."""
    n = len(lists[0])
    points = {u: 0 for u in range(n)}
    for lst in lists:
        for pos, u in enumerate(lst):
            points[u] += n - pos
    return sorted(range(n), key=lambda u: (-points[u], u))


def _brute_spearman(a: list[int], b: list[int]) -> float:
    ra = np.array([a.index(u) for u in range(len(a))], dtype=float)
    rb = np.array([b.index(u) for u in range(len(b))], dtype=float)
    return float(np.corrcoef(ra, rb)[0, 1])


def _brute_rows(rankings, tags, ks, valid):
    out = []
    for m in rankings:
        for z, tag in enumerate(tags):
            voters = [o for o in rankings if o != m and valid[o][z]]
            if not valid[m][z] or not voters:
                continue
            mine = [int(u) for u in rankings[m][z]]
            cons = _brute_consensus([[int(u) for u in rankings[o][z]] for o in voters])
            for k in ks:
                a, c = set(mine[:k]), set(cons[:k])
                jac = [len(a & set(rankings[o][z][:k].tolist())) / len(a | set(rankings[o][z][:k].tolist()))
                       for o in voters]
                out.append({"method": m, "target_tag": tag, "k": k, "n_voters": len(voters),
                            "overlap": len(a & c) / k, "jaccard": len(a & c) / len(a | c),
                            "avg_jaccard": sum(jac) / len(jac), "spearman": _brute_spearman(mine, cons)})
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rows_equal_a_brute_force_recomputation(seed):
    R = _random_rankings(seed)
    valid = {m: np.ones(3, bool) for m in R}
    valid["b"][1] = False
    valid["d"][2] = False
    got = consensus_rows(R, TAGS, (1, 5, 10, 20), valid)
    want = _brute_rows(R, TAGS, (1, 5, 10), valid)  # k = 20 > n = 12 units: not compared
    assert [(r["method"], r["target_tag"], r["k"]) for r in got] == [(r["method"], r["target_tag"], r["k"])
                                                                       for r in want]
    for g, w in zip(got, want):
        for f in CONSENSUS_FIELDS[3:]:
            assert g[f] == pytest.approx(w[f], abs=1e-12), (g, f)


def test_a_method_identical_to_the_others_consensus_scores_one():
    R = _random_rankings(4, methods=("a", "b", "c"))
    R["m"] = np.stack([_brute_consensus([R[o][z].tolist() for o in "abc"]) for z in range(3)])
    rows = [r for r in consensus_rows(R, TAGS) if r["method"] == "m"]
    assert len(rows) == 3 * 3  # tags × ks 1, 5, 10
    assert all(r["overlap"] == 1.0 and r["jaccard"] == 1.0 and r["spearman"] == pytest.approx(1.0) for r in rows)
    assert all(r["n_voters"] == 3 for r in rows)


def test_a_method_own_ranking_never_enters_its_consensus():
    R = _random_rankings(5)
    before = [r for r in consensus_rows(R, TAGS) if r["method"] == "a"]
    R2 = dict(R, a=R["a"][:, ::-1].copy())  # a changes: its own rows change, its consensus (b, c, d) does not
    after = [r for r in consensus_rows(R2, TAGS) if r["method"] == "a"]
    for z in range(3):
        cons = consensus_ranking([R[o][z] for o in "bcd"])
        for r in [r for r in after if r["target_tag"] == TAGS[z]]:
            k = r["k"]
            assert r["overlap"] == len(set(R2["a"][z][:k]) & set(cons[:k])) / k
    assert before != after
    # and a method that votes alone agrees perfectly with itself only through the others: two methods, a's
    # consensus is b's ranking
    two = {"a": R["a"], "b": R["b"]}
    for r in consensus_rows(two, TAGS):
        other = "b" if r["method"] == "a" else "a"
        z = TAGS.index(r["target_tag"])
        assert r["spearman"] == pytest.approx(_brute_spearman(R[r["method"]][z].tolist(), R[other][z].tolist()))


def test_unranked_tags_neither_vote_nor_are_judged():
    R = _random_rankings(6, methods=("a", "b"))
    scores = {"a": np.random.default_rng(0).random((12, 3)), "b": np.random.default_rng(1).random((12, 3))}
    scores["b"][:, 2] = np.nan
    valid = valid_tags(scores)
    assert valid["a"].all() and valid["b"].tolist() == [True, True, False]
    rows = consensus_rows(R, TAGS, valid=valid)
    assert "I-PER" not in {r["target_tag"] for r in rows}  # b cannot rank it, so a has no voter there
    assert {r["target_tag"] for r in rows} == {"O", "B-PER"}


def test_a_method_ranking_in_reverse_of_the_others_has_no_overlap_and_a_correlation_of_minus_one():
    s = np.random.default_rng(7).normal(size=(30, 3))
    R = {"a": rank_units(s), "b": rank_units(s + 1e-9), "c": rank_units(-s)}
    rows = {(r["method"], r["target_tag"], r["k"]): r for r in consensus_rows(R, TAGS)}
    assert rows[("a", "O", 5)]["n_voters"] == 2
    assert rows[("c", "O", 10)]["overlap"] == 0.0  # a and b vote the reverse of c
    assert rows[("c", "O", 10)]["spearman"] == pytest.approx(-1.0)


def test_rank_spearman_is_scipys():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(8)
    a, b = rng.permutation(20), rng.permutation(20)
    assert rank_spearman(a, b) == pytest.approx(spearmanr(np.argsort(a), np.argsort(b)).statistic, abs=1e-12)
    assert rank_spearman(np.array([0]), np.array([0])) is None


@pytest.mark.parametrize("bad", [{"a": np.zeros((2, 4), int)}, {"a": np.tile(np.arange(4), (3, 1)),
                                                                "b": np.zeros((3, 4), int)}])
def test_bad_rankings_are_errors(bad):
    with pytest.raises(AnalysisInputError, match="consensus"):
        consensus_rows(bad, TAGS)


def test_the_csv_has_one_line_per_row(tmp_path):
    rows = consensus_rows(_random_rankings(9), TAGS)
    text = consensus_csv(rows)
    back = list(csv.DictReader(io.StringIO(text)))
    assert tuple(back[0]) == CONSENSUS_FIELDS and len(back) == len(rows)
    assert float(back[0]["jaccard"]) == pytest.approx(rows[0]["jaccard"])
    write_consensus_csv(tmp_path / "consensus.csv", rows)
    assert (tmp_path / "consensus.csv").read_text() == text
