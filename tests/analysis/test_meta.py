"""The combination of runs against independent computations (the plain HKSJ formula with a Paule–Mandel tau² by
root finding, and statsmodels' own results), the verdict classes, degenerate inputs, and Holm's steps."""

import math

import numpy as np
import pytest
from scipy import optimize
from scipy import stats as st
from statsmodels.stats.meta_analysis import combine_effects
from statsmodels.stats.multitest import multipletests

from nerve.analysis.meta import (
    CONTRADICTED,
    HOLDS,
    INCONCLUSIVE,
    NEGLIGIBLE,
    NOT_TESTABLE,
    SEEDS,
    THESE,
    Estimate,
    decide,
    fixed_effect,
    holm_decide,
    holm_steps,
    p_text,
    random_effects,
)


def plain_hksj(y, v):
    """Paule–Mandel tau² (root of the generalised Q = k − 1, 0 when Q(0) < k − 1), the random-effects mean, and
    the HKSJ variance q/(k−1)/Σw with the Knapp–Hartung truncation at 1/Σw — written out, no statsmodels."""
    y, v = np.asarray(y, float), np.asarray(v, float)
    k = y.size

    def q(t2):
        w = 1 / (v + t2)
        m = (w * y).sum() / w.sum()
        return (w * (y - m) ** 2).sum() - (k - 1)

    tau2 = 0.0 if q(0) <= 0 else optimize.brentq(q, 0, 100 * (y.var() + v.max()), xtol=1e-14)
    w = 1 / (v + tau2)
    m = (w * y).sum() / w.sum()
    hk = (w * (y - m) ** 2).sum() / (k - 1) / w.sum()
    return m, math.sqrt(max(hk, 1 / w.sum())), tau2


@pytest.mark.parametrize("seed", range(6))
def test_random_effects_equals_the_plain_formula_and_statsmodels(seed):
    rng = np.random.default_rng(seed)
    k = [3, 5, 10][seed % 3]
    v = rng.uniform(0.001, 0.02, k)
    y = 0.3 + rng.normal(scale=[0.0, 0.1, 0.3][seed // 2], size=k) + rng.normal(size=k) * np.sqrt(v)
    e = random_effects(y, v)
    m, se, tau2 = plain_hksj(y, v)
    assert e.effect == pytest.approx(m, abs=1e-8) and e.se == pytest.approx(se, rel=1e-6)
    assert e.tau2 == pytest.approx(tau2, abs=1e-8) and e.df == k - 1 and e.population == SEEDS
    res = combine_effects(y, v, method_re="pm", use_t=True)
    lo, hi = e.interval(0.05)
    if res.var_hksj_re >= res.var_eff_w_re:  # untruncated: statsmodels' own HKSJ interval
        assert (lo, hi) == pytest.approx(tuple(res.conf_int(alpha=0.05)[3]), abs=1e-6)
    crit = st.t.isf(0.025, k - 1)
    assert (lo, hi) == pytest.approx((m - crit * se, m + crit * se), rel=1e-6)


def test_equal_variances_and_a_large_spread_give_the_one_sample_t_test():
    y = np.array([0.1, 0.4, 0.35, 0.2, 0.5, 0.3])
    e = random_effects(y, np.full(6, 1e-4))
    t = st.ttest_1samp(y, 0.0)
    assert e.effect == pytest.approx(y.mean()) and e.effect / e.se == pytest.approx(t.statistic, rel=1e-6)
    d = decide(e, 0.0, 1, 0.0, 0.05)
    assert d.p_holds == pytest.approx(t.pvalue / 2, rel=1e-6)


def test_fixed_effect_is_the_inverse_variance_mean_with_a_normal_interval():
    y, v = np.array([0.2, 0.3, 0.5]), np.array([0.01, 0.02, 0.04])
    e = fixed_effect(y, v)
    w = 1 / v
    assert e.effect == pytest.approx((w * y).sum() / w.sum()) and e.se == pytest.approx(w.sum() ** -0.5)
    assert e.population == THESE and math.isinf(e.df)
    assert e.interval(0.05)[0] == pytest.approx(e.effect - 1.959963985 * e.se)


def test_degenerate_inputs_cannot_be_tested_with_a_reason():
    one = random_effects([0.4], [0.01])
    assert not one.testable and "one run" in one.reason
    copies = random_effects([0.4] * 5, [0.0] * 5)
    assert not copies.testable and "no spread" in copies.reason
    assert decide(copies, 0, 1, 0.1, 0.05).verdict == NOT_TESTABLE
    assert not fixed_effect([0.4, 0.5], [0.0, 0.0]).testable
    assert not fixed_effect([], []).testable


def test_zero_spread_with_within_run_variance_is_tested_from_that_variance_never_at_p_0():
    e = random_effects([0.05] * 10, [0.01] * 10)
    assert e.testable and e.se == pytest.approx(math.sqrt(0.01 / 10)) and e.tau2 == 0
    assert decide(e, 0.0, 1, 0.0, 0.05).p > 0.05


def test_a_zero_within_run_variance_beside_others_is_floored_not_infinite():
    e = random_effects([0.1, 0.3, 0.2], [0.0, 0.01, 0.01])
    assert e.testable and math.isfinite(e.se) and e.se > 0


def _est(effect, se=0.02, df=9.0):
    return Estimate(effect, se, df, 10, 0.0, "test", SEEDS)


@pytest.mark.parametrize("effect, sign, verdict", [
    (0.40, 1, HOLDS), (-0.40, 1, CONTRADICTED), (0.01, 1, NEGLIGIBLE), (0.10, 1, INCONCLUSIVE),
    (-0.40, -1, HOLDS), (0.40, -1, CONTRADICTED), (-0.01, -1, NEGLIGIBLE)])
def test_each_verdict_class_reads_the_interval_against_plus_minus_delta(effect, sign, verdict):
    d = decide(_est(effect), 0.0, sign, 0.1, 0.05)
    assert d.verdict == verdict
    lo, hi = d.interval
    crit = st.t.isf(0.025, 9)
    assert (lo, hi) == pytest.approx((effect - crit * 0.02, effect + crit * 0.02))
    assert (d.p < 0.05) == (verdict != INCONCLUSIVE)


def test_verdict_and_p_agree_at_every_level():
    rng = np.random.default_rng(3)
    for _ in range(300):
        e = _est(rng.normal(scale=0.3), se=rng.uniform(0.01, 0.2), df=float(rng.integers(2, 20)))
        alpha = float(rng.choice([0.05, 0.01, 0.001]))
        d = decide(e, 0.05, int(rng.choice([1, -1])), 0.1, alpha)
        assert (d.verdict != INCONCLUSIVE) == (d.p < alpha)


def test_a_threshold_shifts_the_regions():
    d = decide(_est(0.45), 0.3, 1, 0.1, 0.05)  # 0.45 − 0.3 = 0.15 ± 0.046: beyond +0.1
    assert d.verdict == HOLDS and d.t == pytest.approx(0.05 / 0.02)


def test_holm_steps_and_adjusted_p_equal_statsmodels_multipletests():
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.uniform(0, 0.002, 6), rng.uniform(0, 1, 20), [np.nan]])
    rejected, level = holm_steps(p, 0.05)
    want, adjusted, _, _ = multipletests(p[:-1], alpha=0.05, method="holm")
    assert list(rejected[:-1]) == list(want) and not rejected[-1] and math.isnan(level[-1])
    r = int(want.sum())
    assert np.allclose(level[:-1][~want], 0.05 / (26 - r))
    order = np.argsort(p[:-1])
    assert np.allclose(level[order[:r]], 0.05 / (26 - np.arange(r)))
    from nerve.analysis.stats import holm

    assert np.allclose(holm(p)[:-1], adjusted)


def test_holm_decide_draws_each_interval_at_its_holm_level_and_agrees_with_the_adjusted_p():
    ests = [_est(e) for e in (0.5, 0.2, 0.13, -0.3, 0.0, 0.11)] + [random_effects([1.0], [0.1])]
    decisions, adjusted = holm_decide(ests, [0.0] * 7, [1] * 7, [0.1] * 7, 0.05)
    for d, a in zip(decisions[:-1], adjusted[:-1]):
        assert (d.verdict != INCONCLUSIVE) == (a < 0.05)
        assert d.alpha <= 0.05 / 1 and d.interval[1] - d.interval[0] > 2 * st.t.isf(0.025, 9) * 0.02 - 1e-12
    assert decisions[-1].verdict == NOT_TESTABLE and math.isnan(adjusted[-1])
    assert [d.verdict for d in decisions[:5]] == [HOLDS, HOLDS, INCONCLUSIVE, CONTRADICTED, NEGLIGIBLE]


def test_p_text_shows_a_p_at_its_floor_as_below_it():
    assert p_text(1 / 21, floor=1 / 21, floor_label="1/21") == "< 1/21"
    assert p_text(0.2, floor=1 / 21) == "0.2" and p_text(None) == "–" and p_text(0.0) == "< 1e-300"
