"""Architecture contrasts (nerve.analysis.contrasts): synthetic grids with a known truth, and the estimate, standard
error, df, p and Holm equal to an independent computation."""

import itertools
import math

import numpy as np
import pytest

from nerve.analysis.contrasts import (
    csv_rows,
    joint_factors,
    recipe_level,
    run_effects,
    study_contrasts,
    varying,
)
from nerve.analysis.meta import HOLDS, INCONCLUSIVE, NEGLIGIBLE, NOT_TESTABLE

LEVELS = {"char": ("none", "lstm", "cnn"), "encoder": ("lstm", "cnn"), "decoder": ("softmax", "crf")}
CNN_RECIPE = ["train.lr=0.3", "train.clip=5"]


def _recipe_real(a):  # the real grid's: the word-CNN and the char-CNN cells get the batch-mean recipe
    return CNN_RECIPE if "cnn" in (a["encoder"], a["char"]) else []


def grid(effect, seeds=3, sd_cell=0.03, sd_seed=0.05, seed=0, recipe=_recipe_real, cases=("LOC", "ORG"),
         sesoi=0.1, number=1):
    """(cells, findings) of a 3 × 2 × 2 grid: each run's case statistics = 0.3 + effect(levels) + a cell deviation
    (sd_cell) + a run deviation (sd_seed) + a little case noise."""
    rng = np.random.default_rng(seed)
    cells, findings = {}, {}
    for ch, en, de in itertools.product(*LEVELS.values()):
        a = {"char": ch, "encoder": en, "decoder": de}
        name = f"char={ch},encoder={en},decoder={de}"
        cells[name] = a | {"recipe": recipe_level(recipe(a))}
        mu = 0.3 + effect(a) + rng.normal(0, sd_cell)
        runs = [f"seed{42 + i}" for i in range(seeds)]
        run_mu = mu + rng.normal(0, sd_seed, seeds)
        case_rows = [{"key": k, "runs": runs, "values": list(run_mu + rng.normal(0, 0.01, seeds)), "sesoi": sesoi}
                     for k in cases]
        findings[name] = [{"number": number, "id": "corr_B_I_same_type", "ablate": None, "alpha": 0.05,
                           "clauses": [{"statistic": "r − baseline", "cases": case_rows}]}]
    return cells, findings


def by(contrasts, factor, low=None, high=None):
    return next(c for c in contrasts if c.factor == factor and (low is None or (c.low, c.high) == (low, high)))


def test_a_planted_decoder_effect_holds_and_no_other_factor_does():
    cells, findings = grid(lambda a: -0.35 * (a["decoder"] == "crf"))
    out = study_contrasts(cells, findings)
    assert [(c.factor, c.low, c.high) for c in out] == [
        ("char", "none", "lstm"), ("char", "none", "cnn"), ("char", "lstm", "cnn"), ("encoder", "lstm", "cnn"),
        ("decoder", "softmax", "crf"), ("recipe", "none", "train.clip=5; train.lr=0.3")]
    dec = by(out, "decoder")
    assert dec.verdict == HOLDS and dec.effect == pytest.approx(-0.35, abs=0.08) and dec.ci[1] < -0.1
    assert dec.df == 6 and dec.m == 6 and dec.n_cells == 12 and dec.n_runs == 36
    assert dec.population == "architectures of this grid, trained with other seeds"
    assert dec.test == "OLS on cell means, t(6)" and dec.level == pytest.approx(1 - 0.05 / 6)
    assert all(c.verdict != HOLDS for c in out if c.factor != "decoder")


def test_no_effect_claims_no_change():
    out = study_contrasts(*grid(lambda a: 0.0, seed=1))
    assert {c.verdict for c in out} <= {INCONCLUSIVE, NEGLIGIBLE} and INCONCLUSIVE in {c.verdict for c in out}
    assert all(c.ci[0] < 0.1 and c.ci[1] > -0.1 for c in out)  # no interval wholly beyond ±δ


def test_an_effect_inside_delta_with_many_seeds_is_negligible():
    cells, findings = grid(lambda a: 0.02 * (a["decoder"] == "crf"), seeds=30, sd_cell=0.005, sd_seed=0.05, seed=2)
    dec = by(study_contrasts(cells, findings), "decoder")
    assert dec.verdict == NEGLIGIBLE and -0.1 < dec.ci[0] < dec.ci[1] < 0.1


def test_a_recipe_collinear_with_the_encoder_is_reported_confounded_and_tested_jointly():
    cells, findings = grid(lambda a: 0.4 * (a["encoder"] == "cnn"),
                           recipe=lambda a: CNN_RECIPE if a["encoder"] == "cnn" else [], seed=3)
    out = study_contrasts(cells, findings)
    assert {c.factor for c in out} == {"char", "encoder & recipe", "decoder"}
    joint = by(out, "encoder & recipe")
    assert (joint.low, joint.high) == ("lstm / none", "cnn / train.clip=5; train.lr=0.3")
    assert joint.note == "encoder confounded with recipe: tested jointly"
    assert joint.verdict == HOLDS and joint.df == 7
    row = next(r for r in csv_rows(out) if r["factor"] == "encoder & recipe")
    assert row["confounded"] == joint.note


def test_the_real_grids_recipe_is_separable_under_main_effects():
    cells = [{"char": c, "encoder": e, "decoder": d, "recipe": recipe_level(_recipe_real({"char": c, "encoder": e}))}
             for c, e, d in itertools.product(*LEVELS.values())]
    factors = joint_factors(cells, varying(cells))
    assert [f.name for f in factors] == ["char", "encoder", "decoder", "recipe"] and not any(f.note for f in factors)


def test_a_factor_with_a_level_per_cell_absorbs_the_others_and_leaves_no_df():
    cells = [{"a": a, "b": b, "c": f"{a}{b}"} for a, b in itertools.product("xy", "uv")]
    (joint,) = joint_factors(cells, varying(cells))
    assert sorted(joint.parts) == ["a", "b", "c"] and len(joint.levels) == 4 and "confounded with" in joint.note
    findings = {f"{c['a']}{c['b']}": [{"number": 1, "id": "f", "clauses": [{"statistic": "r", "cases": [
        {"key": "k", "runs": ["s1", "s2"], "values": [0.1, 0.2], "sesoi": 0.1}]}]}] for c in cells}
    out = study_contrasts({f"{c['a']}{c['b']}": c for c in cells}, findings)
    assert len(out) == 6 and {c.verdict for c in out} == {NOT_TESTABLE}
    assert out[0].reason == "no residual df (4 cells, 4 parameters)"


def test_estimate_se_df_and_p_equal_statsmodels_formula_ols_on_the_cell_means():
    import pandas as pd
    import statsmodels.formula.api as smf
    from scipy import stats

    cells, findings = grid(lambda a: -0.2 * (a["decoder"] == "crf") + 0.1 * (a["char"] == "cnn"), seed=4)
    out = study_contrasts(cells, findings)
    rows = []
    for name, a in cells.items():
        per_run = np.mean([c["values"] for c in findings[name][0]["clauses"][0]["cases"]], axis=0)  # shape: (seeds,)
        rows.append(a | {"y": float(per_run.mean())})
    fit = smf.ols("y ~ C(char, Treatment('none')) + C(encoder, Treatment('lstm')) + C(decoder, Treatment('softmax'))"
                  " + C(recipe, Treatment('none'))", data=pd.DataFrame(rows)).fit()

    def name(factor, level):
        return next(n for n in fit.params.index if n.startswith(f"C({factor}") and n.endswith(f"[T.{level}]"))

    dec_name = name("decoder", "crf")
    dec = by(out, "decoder")
    assert dec.effect == pytest.approx(fit.params[dec_name], rel=1e-10)
    assert dec.se == pytest.approx(fit.bse[dec_name], rel=1e-10) and dec.df == fit.df_resid == 6
    # lstm − cnn is a difference of two coefficients: c'β and sqrt(c' Σ c)
    lstm, cnn = name("char", "lstm"), name("char", "cnn")
    diff = by(out, "char", "lstm", "cnn")
    cov = fit.cov_params()
    assert diff.effect == pytest.approx(fit.params[cnn] - fit.params[lstm], rel=1e-10)
    assert diff.se == pytest.approx(math.sqrt(cov.loc[cnn, cnn] + cov.loc[lstm, lstm] - 2 * cov.loc[cnn, lstm]),
                                    rel=1e-10)
    # p: 2 × the smallest one-sided p of "beyond +δ", "beyond −δ", "inside ±δ" (the larger of its two TOST p)
    for c in out:
        t = stats.t(c.df)
        up, down = t.sf((c.effect - 0.1) / c.se), t.sf((-c.effect - 0.1) / c.se)
        inside = max(t.sf((c.effect + 0.1) / c.se), t.sf((0.1 - c.effect) / c.se))
        assert c.p == pytest.approx(min(1.0, 2 * min(up, down, inside)), rel=1e-8)
    # Holm over every contrast of the study; each interval at its Holm level
    from statsmodels.stats.multitest import multipletests

    holm = multipletests([c.p for c in out], method="holm")[1]
    assert [c.p_holm for c in out] == pytest.approx(list(holm), rel=1e-10)
    first = min(out, key=lambda c: c.p)
    half = stats.t(first.df).ppf(1 - 0.05 / len(out) / 2) * first.se
    assert first.ci == pytest.approx((first.effect - half, first.effect + half), rel=1e-8)


def test_holm_spans_findings_and_an_unbalanced_cell_still_fits():
    cells, f1 = grid(lambda a: -0.35 * (a["decoder"] == "crf"), seed=5)
    _, f7 = grid(lambda a: 0.0, seed=6, number=7)
    lost = "char=cnn,encoder=cnn,decoder=crf"
    for case in f1[lost][0]["clauses"][0]["cases"]:  # one seed of one cell failed
        case["runs"], case["values"] = case["runs"][:2], case["values"][:2]
    out = study_contrasts(cells, {n: f1[n] + f7[n] for n in cells})
    assert len(out) == 12 and {c.m for c in out} == {12} and by(out, "decoder").verdict == HOLDS
    assert by(out, "decoder").n_runs == 35


def test_a_clause_missing_in_a_cell_cannot_be_tested_and_says_where():
    cells, findings = grid(lambda a: 0.0, seed=7)
    findings["char=lstm,encoder=lstm,decoder=crf"] = []
    out = study_contrasts(cells, findings)
    assert {c.verdict for c in out} == {NOT_TESTABLE} and {c.m for c in out} == {0}
    assert out[0].reason == "not evaluated in every cell (none in char=lstm,encoder=lstm,decoder=crf)"


def test_run_effects_average_the_named_cases_per_run_and_skip_nan():
    clause = {"cases": [{"key": "a", "runs": ["r1", "r2"], "values": [0.2, 0.4]},
                        {"key": "b", "runs": ["r1", "r2"], "values": [0.4, math.nan]},
                        {"key": "c", "runs": ["r1"], "values": [9.0]}]}
    assert run_effects(clause, ["a", "b"]) == pytest.approx({"r1": 0.3, "r2": 0.4})
