"""Intervals over seeds and over test images, against hand-computed values."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from qtlmnist import stats


def test_t_interval_matches_the_t_table():
    mean, std, low, high = stats.t_interval(np.array([0.70, 0.72, 0.74]))
    assert (round(mean, 6), round(std, 6)) == (0.72, 0.02)
    assert round(high - mean, 4) == round(4.302653 * 0.02 / np.sqrt(3), 4)  # t(0.975, 2) = 4.3027
    assert round(mean - low, 10) == round(high - mean, 10)
    assert stats.t_interval(np.array([0.5]))[2:] == (0.5, 0.5)


def test_wilson_interval_brackets_the_proportion():
    low, high = stats.wilson_interval(0.9, 10000)
    assert 0.893 < low < 0.9 < high < 0.907
    low, high = stats.wilson_interval(1.0, 20)  # 20/20 correct: the interval still reaches below 1
    assert round(low, 4) == round(20 / (20 + 1.959964**2), 4) and round(high, 12) == 1.0  # n / (n + z^2)


# --- paired tests, Holm, power: reference values from independent sources -----------------------------

# Student's sleep data (Cushny & Peebles 1905 via "Student" 1908; R's datasets::sleep): extra hours of sleep
# of 10 patients under two drugs. R's documented example, t.test(extra ~ group, data = sleep, paired = TRUE):
# t = -4.0621, df = 9, p-value = 0.002833, mean difference -1.58, 95% CI [-2.4598858, -0.7001142].
SLEEP_1 = np.array([0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0])
SLEEP_2 = np.array([1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4])


def test_paired_t_on_students_sleep_data_matches_r():
    assert stats.paired_t(SLEEP_1, SLEEP_2) == pytest.approx(0.002833, abs=5e-7)
    mean, _, low, high = stats.t_interval(SLEEP_1 - SLEEP_2)
    assert (mean, low, high) == pytest.approx((-1.58, -2.4598858, -0.7001142), abs=1e-6)
    assert stats.paired_t([0.5, 0.6], [0.5, 0.6]) == 1.0 and stats.paired_t([0.6, 0.7], [0.5, 0.6]) == 0.0


def test_sign_flip_is_exact_and_floors_at_two_over_two_to_the_n():
    # sleep: 9 of 10 differences positive, one exactly 0. By hand: only the all-positive signs (x2 for the
    # zero's sign) reach the observed sum, 2 of 2^10 per tail, so two-sided p = 4 / 1024.
    assert stats.sign_flip(SLEEP_2, SLEEP_1) == pytest.approx(4 / 1024)
    a = np.array([0.9, 0.8, 0.95, 0.85, 0.9])
    assert stats.sign_flip(a, a - 0.1) == pytest.approx(2 / 2**5) == stats.smallest_p("sign_flip", 5)
    assert stats.smallest_p("sign_flip", 10) == pytest.approx(0.001953125) and stats.smallest_p("paired_t", 3) == 0
    # differences +1, -1, +2 (by hand): sums of the 8 sign patterns are +-2, +-4, +-0 twice; |sum| >= 2: 6 of 8
    assert stats.sign_flip([1.0, 0.0, 2.0], [0.0, 1.0, 0.0]) == pytest.approx(6 / 8)
    # a second implementation: scipy's own exact enumeration, on continuous and on tied (integer) data
    rng = np.random.default_rng(3)
    for x, y in ((rng.normal(0.5, 1, 9), rng.normal(0, 1, 9)), (rng.integers(0, 4, 11), rng.integers(0, 4, 11))):
        scipy_p = scipy_stats.permutation_test(
            (x, y), lambda u, v, axis: np.mean(u - v, axis=axis), permutation_type="samples", n_resamples=np.inf,
            vectorized=True,
        ).pvalue  # fmt: skip
        assert stats.sign_flip(x, y) == pytest.approx(min(scipy_p, 1.0), rel=1e-12)
    with pytest.raises(ValueError, match="unknown primary test 'wilcoxon'"):
        stats.primary_p("wilcoxon", a, a)


def test_mcnemar_exact_matches_statsmodels_on_agrestis_approval_table():
    # Agresti, An Introduction to Categorical Data Analysis (2nd ed., Table 8.1): presidential approval of 1,600
    # people at two surveys, [[794, 150], [86, 570]]; discordant 150 vs 86. statsmodels 0.15.0,
    # mcnemar(table, exact=True).pvalue = 3.7159361395713866e-05.
    first = np.r_[np.ones(794 + 150), np.zeros(86 + 570)].astype(bool)
    second = np.r_[np.ones(794), np.zeros(150), np.ones(86), np.zeros(570)].astype(bool)
    b, c, p = stats.mcnemar_exact(first, second)
    assert (b, c) == (150, 86) and p == pytest.approx(3.7159361395713866e-05, rel=1e-9)
    # 5 discordant pairs all one way, by hand: 2 * (1/2)^5; never disagreeing: p = 1
    assert stats.mcnemar_exact([1, 1, 1, 1, 1, 0], [0, 0, 0, 0, 0, 0]) == (5, 0, pytest.approx(0.0625))
    assert stats.mcnemar_exact([1, 0, 1], [1, 0, 1]) == (0, 0, 1.0)
    with pytest.raises(ValueError, match="differ in length"):
        stats.mcnemar_exact([1, 0], [1, 0, 1])


def test_holm_matches_statsmodels():
    # statsmodels 0.15.0 multipletests(p, method="holm")[1]; the second list is Benjamini & Hochberg's (1995)
    # 15 p-values of their worked example.
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    bh = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240, 0.4262, 0.5719, 0.6528,
          0.7590, 1.000]  # fmt: skip
    expected = [0.0015, 0.0056, 0.0247, 0.114, 0.2211, 0.278, 0.278, 0.278, 0.3213] + [1.0] * 6
    assert stats.holm(bh) == pytest.approx(expected)
    assert stats.holm_thresholds([0.04, 0.01, 0.03], 0.05) == pytest.approx([0.05, 0.05 / 3, 0.025])


def test_paired_t_power_and_seeds_match_statsmodels():
    # statsmodels 0.15.0 TTestPower().power(effect_size, nobs, alpha, alternative="two-sided") and
    # .solve_power(..., power=0.8): n = 33.367 at d = 0.5 (Cohen's table: 34), 14.303 at 0.8, 9.938 at 1.0.
    assert stats.paired_t_power(0.5, 20, 0.05) == pytest.approx(0.5645044184390203, rel=1e-6)
    assert stats.paired_t_power(0.7, 10, 0.0025) == pytest.approx(0.09330163395418149, rel=1e-6)
    for effect, n in ((0.5, 34), (0.8, 15), (1.0, 10)):
        differences = effect * np.sqrt(2) + np.array([1.0, -1.0])  # mean / sample std (sqrt 2) = effect
        assert stats.seeds_to_resolve(differences, 0.05, "paired_t") == n
    # the sign flip needs at least 2 / 2^n <= alpha: n >= 6 at 0.05, 11 at 0.001 (2/2048 = 0.00098)
    assert stats.seeds_to_resolve([1.0, 1.0, 1.0], 0.05, "sign_flip") == 6
    assert stats.seeds_to_resolve([1.0, 1.0, 1.0], 0.001, "sign_flip") == 11
    assert stats.seeds_to_resolve([1.0, -1.0], 0.05, "paired_t") is None  # no observed difference


def test_seeds_for_width_inverts_the_t_interval():
    # sd 5 pp, 10 pp wide: 2 t(0.975, n-1) 5 / sqrt(n) <= 10 first at n = 7 (2.447 * 10 / 2.646 = 9.25;
    # n = 6: 2.571 * 10 / 2.449 = 10.5), from the t table
    assert stats.seeds_for_width(5.0, 10.0) == 7


def test_trained_rule_and_fraction_interval():
    # 80 training images, majority 53.75% (001's notebook split): margin 2.326 * sqrt(.5375 * .4625 / 80)
    margin = stats.trained_margin(0.5375, 80, 0.99)
    assert margin == pytest.approx(2.3263479 * np.sqrt(0.5375 * 0.4625 / 80))
    assert stats.trained(0.775, 0.5375, 80, 0.99) and not stats.trained(0.5375, 0.5375, 80, 0.99)
    assert not stats.trained(0.5375 + margin - 1e-9, 0.5375, 80, 0.99)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        stats.trained_margin(0.5, 80, 1.0)
    # statsmodels 0.15.0 proportion_confint(7, 10, method="wilson") = (0.39677814746, 0.89220873259): the
    # issue's "7 of 10 runs; [40, 89]% of seeds"; 0 of 10: (0.0, 0.27753279986)
    assert stats.proportion_interval(7, 10) == pytest.approx((0.39677814746114537, 0.8922087325936989), abs=1e-6)
    assert stats.proportion_interval(0, 10) == pytest.approx((0.0, 0.27753279986288926), abs=1e-6)
