"""Intervals over seeds and over test images, against hand-computed values."""

import numpy as np

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
