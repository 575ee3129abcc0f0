"""Intervals for accuracies: over seeds (Student t) and over the test images of one run (Wilson).

Used by the experiments (`qtlmnist.experiments`) and the trainable systems (`qtlmnist.systems`); numpy and
scipy only, so table jobs in any env can import it.
"""

from __future__ import annotations

import numpy as np


def t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float, float]:
    """(mean, sample std, low, high) of a Student-t interval for the mean; low = high = mean for one value."""
    from scipy import stats

    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, 0.0, mean, mean
    std = float(values.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, len(values) - 1) * std / np.sqrt(len(values)))
    return mean, std, mean - half, mean + half


def wilson_interval(accuracy: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson interval of a proportion measured on n test images (the test set's own sampling error)."""
    centre = (accuracy + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)


# --- did a run train at all? -----------------------------------------------------------------------------


def trained_margin(majority_rate: float, n: int, confidence: float) -> float:
    """How far above the majority-class rate a run's TRAIN accuracy must lie to count as trained: z times the
    standard error of a proportion at that rate on n images, z = the one-sided normal quantile of
    `confidence` (0.99: z = 2.326). A model stuck at one answer scores the majority rate; one answering at
    random, less."""
    return float(trained_z(confidence) * np.sqrt(majority_rate * (1 - majority_rate) / n))


def trained_z(confidence: float) -> float:
    """The one-sided standard normal quantile of `confidence` (0.99: 2.326), the trained rule's z."""
    from scipy import stats

    if not 0 < confidence < 1:
        raise ValueError(f"confidence = {confidence}: must lie strictly between 0 and 1")
    return float(stats.norm.ppf(confidence))


def trained(train_accuracy: float, majority_rate: float, n: int, confidence: float) -> bool:
    """The one rule for "this run trained" (vs "stuck"): its accuracy on its own TRAINING images exceeds the
    training set's majority-class rate by `trained_margin`. Never the test set: which runs count must not
    depend on the numbers the verdict then compares."""
    return bool(train_accuracy > majority_rate + trained_margin(majority_rate, n, confidence))


def proportion_interval(successes: int, n: int) -> tuple[float, float]:
    """95% Wilson interval of successes out of n (e.g. the fraction of seeds whose run trained)."""
    return wilson_interval(successes / n, n)


# --- paired comparisons ----------------------------------------------------------------------------------


def mcnemar_exact(correct_a, correct_b) -> tuple[int, int, float]:
    """McNemar's exact test on two models' per-image correct/incorrect vectors (the same images, in the same
    order): (b, c, p) with b = images only a gets right, c = images only b gets right, and p the two-sided
    binomial p of b out of b + c at 1/2 (scipy.stats.binomtest); p = 1 when the two never disagree."""
    from scipy import stats

    a, b_ = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b_.shape:
        raise ValueError(f"paired vectors differ in length: {a.shape} vs {b_.shape}")
    b, c = int(np.sum(a & ~b_)), int(np.sum(~a & b_))
    if b + c == 0:
        return b, c, 1.0
    return b, c, float(stats.binomtest(b, b + c, 0.5).pvalue)


PRIMARY_TESTS = ("sign_flip", "paired_t")


def paired_t(a, b) -> float:
    """Two-sided p of Student's paired t-test of a - b (scipy.stats.ttest_rel); 1 when every difference is 0,
    0 when they are all the same non-zero value (no spread: the difference is certain)."""
    from scipy import stats

    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if np.all(d == d[0]):
        return 1.0 if d[0] == 0 else 0.0
    return float(stats.ttest_rel(a, b).pvalue)


def sign_flip(a, b) -> float:
    """Two-sided p of the exact sign-flip permutation test of the mean of d = a - b: over all 2^n ways to swap
    a and b within pairs (each flips the sign of one d), p = 2 min(P(sum >= observed), P(sum <= observed)),
    capped at 1, as scipy.stats.permutation_test(permutation_type="samples", n_resamples=inf) computes it
    (tested against it). Enumerated as two halves of the signs, sorted and merged, so 20 seeds take
    milliseconds where scipy's enumeration takes tens of seconds."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if len(d) > MAX_SIGN_FLIP_PAIRS:
        raise ValueError(f"{len(d)} pairs: the exact sign flip enumerates 2^n patterns (at most n = 40 here)")

    def sums(part: np.ndarray) -> np.ndarray:
        bits = (np.arange(2 ** len(part))[:, None] >> np.arange(len(part))) & 1
        return (1 - 2 * bits) @ part

    half = len(d) // 2
    left, right = sums(d[:half]), np.sort(sums(d[half:]))
    observed = float(d.sum())
    tolerance = 1e-9 * max(float(np.abs(d).sum()), 1e-300)  # sums equal but for rounding count as ties
    at_least = np.sum(len(right) - np.searchsorted(right, observed - left - tolerance, side="left"))
    at_most = np.sum(np.searchsorted(right, observed - left + tolerance, side="right"))
    return float(min(1.0, 2 * min(at_least, at_most) / 2 ** len(d)))


MAX_SIGN_FLIP_PAIRS = 40


def primary_p(test: str, a, b) -> float:
    """The p of the primary test across seeds named in config (`verdicts.primary_test`)."""
    if test == "sign_flip":
        return sign_flip(a, b)
    if test == "paired_t":
        return paired_t(a, b)
    raise ValueError(f"unknown primary test {test!r} (allowed: {', '.join(PRIMARY_TESTS)})")


def smallest_p(test: str, n: int) -> float:
    """The smallest two-sided p the test can give over n pairs: 2 / 2^n for the exact sign flip (all n
    differences of one sign), 0 for the t-test (no floor)."""
    return 2.0 / 2**n if test == "sign_flip" else 0.0


def holm(pvalues) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (Holm 1979): the k-th smallest of m is multiplied by m - k + 1, made
    monotone by a running maximum and capped at 1. Reject where adjusted <= alpha."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out


def holm_thresholds(pvalues, alpha: float) -> np.ndarray:
    """The level each p is compared with in Holm's step-down: alpha / (m - k + 1) for the k-th smallest."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = len(p)
    out = np.empty(m)
    out[np.argsort(p, kind="stable")] = alpha / (m - np.arange(m))
    return out


def paired_t_power(effect: float, n: int, alpha: float) -> float:
    """Power of the two-sided paired t-test at level alpha over n pairs when the true mean difference is
    `effect` standard deviations: P(|T| > t crit) with T noncentral t (df n - 1, noncentrality effect sqrt n)."""
    from scipy import stats

    crit = stats.t.ppf(1 - alpha / 2, n - 1)
    nc = effect * np.sqrt(n)
    return float(stats.nct.sf(crit, n - 1, nc) + stats.nct.cdf(-crit, n - 1, nc))


MAX_SEEDS = 10_000  # beyond this, "seeds needed" is reported as not within reach


def seeds_to_resolve(differences, alpha: float, test: str, power: float = 0.8) -> int | None:
    """Seeds (pairs) at which the primary test would reach `alpha` with probability `power` if the true mean
    difference and spread were the observed ones: the paired t-test's power (noncentral t, `paired_t_power`)
    for both tests (the sign flip has slightly less power than t on normal data: an approximation), and for
    the sign flip at least the n whose smallest p, 2 / 2^n, is <= alpha. None when the observed mean is 0 or
    more than MAX_SEEDS would be needed."""
    d = np.asarray(differences, dtype=np.float64)
    mean, sd = float(d.mean()), float(d.std(ddof=1)) if len(d) > 1 else 0.0
    if mean == 0:
        return None
    floor = int(np.ceil(np.log2(2 / alpha))) if test == "sign_flip" else 2
    if sd == 0:
        return max(floor, 2)
    effect = abs(mean) / sd
    for n in range(2, MAX_SEEDS + 1):
        if paired_t_power(effect, n, alpha) >= power:
            return max(n, floor)
    return None


def seeds_for_width(sd: float, width: float, level: float = 0.95) -> int | None:
    """Seeds at which a Student-t interval of the mean with this spread (sample std) is at most `width` wide."""
    from scipy import stats

    if sd == 0:
        return 2
    for n in range(2, MAX_SEEDS + 1):
        if 2 * stats.t.ppf(0.5 + level / 2, n - 1) * sd / np.sqrt(n) <= width:
            return n
    return None
