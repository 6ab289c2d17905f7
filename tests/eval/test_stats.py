"""eval/stats.py against references: scipy's Wilson interval and normal quantile, numpy's sample std, and
the textbook formulas of the binomial interval of a difference and of an average."""
import math

import numpy as np
import pytest
from scipy import stats as sp

from eval.stats import (
    NOISE_SIGMAS,
    Z,
    average_half_width,
    difference_noise,
    error_bar,
    paired_bootstrap,
    reaches,
    seed_noise,
    spread,
    stats,
    verdict,
    wilson,
)

CASES = [(0, 20), (1, 20), (7, 8), (50, 100), (412, 500), (999, 1000), (1000, 1000), (3, 450), (1234, 2007)]


def test_z_is_the_95_percent_normal_quantile():
    assert Z == pytest.approx(sp.norm.ppf(0.975), abs=1e-3)


@pytest.mark.parametrize("k,n", CASES)
def test_wilson_matches_scipy(k, n):
    ref = sp.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    lo, hi = wilson(100 * k / n, n)
    # scipy uses the exact quantile 1.95996...; ours the customary 1.96: equal to a few thousandths of a point
    assert lo == pytest.approx(100 * ref.low, abs=5e-3) and hi == pytest.approx(100 * ref.high, abs=5e-3)


def test_wilson_interval_against_its_formula():
    lo, hi = wilson(50.0, 100)
    assert round(lo, 2) == 40.38 and round(hi, 2) == 59.62  # the textbook value for 50/100
    lo, hi = wilson(100.0, 20)
    assert hi == 100.0 and 83.0 < lo < 84.0


@pytest.mark.parametrize("k,n", CASES)
def test_error_bar_is_the_larger_half_of_the_interval(k, n):
    acc = 100 * k / n
    lo, hi = wilson(acc, n)
    bar = error_bar(acc, n)
    assert bar == pytest.approx(max(acc - lo, hi - acc))
    assert acc - bar <= lo + 1e-9 and acc + bar >= hi - 1e-9  # the symmetric bar covers the whole interval
    if acc > 50:  # the interval leans towards 50%: below the mean is the larger half
        assert bar == pytest.approx(acc - lo)


def test_error_bar_is_symmetric_about_50_percent_and_zero_without_n():
    assert error_bar(80.0, 100) == pytest.approx(error_bar(20.0, 100))
    assert error_bar(80.0, 100) > wilson(80.0, 100)[1] - 80.0  # the upper half alone would understate it
    assert error_bar(70.0, None) == 0.0 and error_bar(70.0, 0) == 0.0


def test_spread_is_the_seed_std_with_seeds_else_the_error_bar():
    assert spread((70.0, 1.5, 3), 500) == 1.5
    assert spread((70.0, float("nan"), 1), 500) == error_bar(70.0, 500)


def test_stats_against_numpy():
    values = [90.0, 92.5, 94.0, float("nan"), None]
    mean, std, n = stats(values)
    assert n == 3 and mean == pytest.approx(np.mean([90, 92.5, 94]))
    assert std == pytest.approx(np.std([90, 92.5, 94], ddof=1))
    assert math.isnan(stats([5.0])[1]) and stats([]) is None and stats([float("inf")]) is None


def test_difference_noise_is_the_larger_of_the_binomial_interval_and_the_seed_spread():
    a, b = (60.0, 1.0, 3), (50.0, 3.0, 3)
    binomial = 100 * sp.norm.ppf(0.975) * math.sqrt(0.6 * 0.4 / 1000 + 0.5 * 0.5 / 400)
    assert difference_noise(a, b, 1000, 400) == pytest.approx(binomial, rel=1e-3)
    assert seed_noise(a, b) == pytest.approx(NOISE_SIGMAS * math.sqrt((1 + 9) / 2))
    wide = ((60.0, 10.0, 3), (50.0, 10.0, 3))
    assert difference_noise(*wide, 1000, 400) == pytest.approx(NOISE_SIGMAS * 10.0)  # the seeds dominate
    assert seed_noise((60.0, float("nan"), 1), b) is None
    assert difference_noise((60.0, float("nan"), 1), b, 1000, 400) == pytest.approx(binomial, rel=1e-3)


def test_average_half_width_is_the_binomial_interval_of_a_mean():
    accs, ns = [70.0, 40.0], [2000, 500]
    var = (0.7 * 0.3 / 2000 + 0.4 * 0.6 / 500) / 4
    assert average_half_width(accs, ns) == pytest.approx(100 * 1.96 * math.sqrt(var))


def test_reaches_reads_the_lower_end_of_the_interval():
    assert reaches(12.0, 50, 10.0) and not reaches(30.0, 500, 10.0)
    assert reaches(1.0, 1000, 5.0) and not reaches(8.0, 1000, 5.0)


def test_verdict_names_its_test_and_says_beyond_only_past_the_noise():
    v = verdict((60.0, 1.0, 3), (50.0, 1.0, 3), 1000, 1000)
    assert v.test == "binomial" and v.difference == pytest.approx(10.0) and v.beyond and v.above and not v.below
    assert v.noise == pytest.approx(difference_noise((60.0, 1.0, 3), (50.0, 1.0, 3), 1000, 1000))
    close = verdict((51.0, 1.0, 3), (50.0, 1.0, 3), 1000, 1000)
    assert close.beyond is False and not close.above and not close.below
    below = verdict((40.0, 1.0, 3), (50.0, 1.0, 3), 1000, 1000)
    assert below.below and not below.above
    seeds = verdict((60.0, 1.0, 3), (50.0, 1.0, 3))  # no test-set sizes: Welch's t test on the seeds
    ref = sp.ttest_ind_from_stats(60.0, 1.0, 3, 50.0, 1.0, 3, equal_var=False)
    assert seeds.test == "Welch t" and seeds.p == pytest.approx(ref.pvalue, rel=1e-6) and seeds.beyond
    assert seeds.noise == pytest.approx(sp.t.ppf(0.975, 4) * (2 / 3) ** 0.5, rel=1e-6)  # df 4 for 3 + 3 equal seeds
    assert verdict((60.0, 1.0, 3), (59.0, 1.0, 3)).beyond is False
    unknown = verdict((60.0, float("nan"), 1), (50.0, 1.0, 3))  # one seed and no sizes: the noise is unknown
    assert unknown.test == "unknown" and unknown.beyond is None and unknown.noise is None and not unknown.above


# ---------------------------------------------------------------- paired tests (issue 22)

@pytest.mark.parametrize("b,c", [(0, 0), (6, 0), (0, 6), (3, 3), (5, 1), (12, 30), (40, 41)])
def test_mcnemar_p_is_scipys_exact_binomial_test(b, c):
    from eval.stats import mcnemar_p

    ref = 1.0 if b + c == 0 else sp.binomtest(b, b + c, 0.5).pvalue
    assert mcnemar_p(b, c) == pytest.approx(ref, rel=1e-9)


def _records(b: int, c: int, n: int = 100) -> tuple[str, str]:
    """Two per-image records of the same n images: a right and b wrong on b images, the reverse on c, and on the
    rest both right on every other image."""
    rest = ("10" * n)[: n - b - c]
    return "1" * b + "0" * c + rest, "0" * b + "1" * c + rest


def test_paired_verdict_fires_on_six_to_nothing_and_not_on_three_to_three():
    from eval.stats import paired_verdict

    six = paired_verdict([_records(6, 0)])
    assert six.test == "McNemar" and six.beyond and six.above and six.p == pytest.approx(0.03125)
    assert six.difference == pytest.approx(6.0)
    even = paired_verdict([_records(3, 3)])
    assert even.beyond is False and even.difference == 0 and even.p == 1.0
    # the unpaired rule on the same numbers calls neither: the paired test is the sharper one here
    assert not verdict((50.0, float("nan"), 1), (44.0, float("nan"), 1), 100, 100).beyond
    # seeds pool their disagreements: 3-0 twice is 6-0
    assert paired_verdict([_records(3, 0), _records(3, 0)]).p == pytest.approx(0.03125)
    assert paired_verdict([("101", "10")]) is None and paired_verdict([("", "")]) is None


@pytest.mark.parametrize("a,b", [([70.0, 72.0, 71.5], [65.0, 66.0, 64.0]), ([50.0, 51.0], [50.5, 49.0, 52.0, 51.0]),
                                 ([80.0, 80.5, 79.5], [70.0, 75.0, 72.0])])
def test_welch_verdict_is_scipys_welch_t_test(a, b):
    from eval.stats import welch_verdict

    v = welch_verdict(a, b)
    ref = sp.ttest_ind(a, b, equal_var=False)
    assert v.test == "Welch t" and v.p == pytest.approx(ref.pvalue, rel=1e-6)
    assert v.beyond == (ref.pvalue < 0.05)
    lo, hi = ref.confidence_interval(0.95)
    assert v.noise == pytest.approx((hi - lo) / 2, rel=1e-6)


def test_welch_verdict_needs_two_seeds_a_side():
    from eval.stats import welch_verdict

    assert welch_verdict([70.0], [60.0, 61.0]).beyond is None


def _bootstrap_records(n, both, only_a, only_b, seed):
    """Per-image records of two models on n images: right together on `both`, each alone on its own count."""
    a = np.zeros(n, dtype=int)
    b = np.zeros(n, dtype=int)
    a[:both + only_a] = 1
    b[:both] = 1
    b[both + only_a:both + only_a + only_b] = 1
    order = np.random.default_rng(seed).permutation(n)
    return "".join(map(str, a[order])), "".join(map(str, b[order]))


def _naive_two_level_bootstrap(pairs, reps=4000):
    """The textbook loop: draw the seeds with replacement and one resample of the test images (the same indices
    for both models and every seed: they were all scored on those images); the mean of the drawn seeds'
    differences."""
    rng = np.random.default_rng(1)
    arrays = [(np.array(list(x), dtype=int), np.array(list(y), dtype=int)) for x, y in pairs]
    diffs = []
    for _ in range(reps):
        per_seed = []
        idx = rng.integers(0, len(arrays[0][0]), len(arrays[0][0]))
        for j in rng.integers(0, len(arrays), len(arrays)):
            a, b = arrays[j]
            per_seed.append(100 * (a[idx].mean() - b[idx].mean()))
        diffs.append(np.mean(per_seed))
    return np.percentile(diffs, [2.5, 97.5])


@pytest.mark.parametrize("gains, orders", [((18, 18), (0, 1)), ((18, 0, 9), (0, 1, 2)), ((18, 12, 15), (0, 0, 0))])
def test_paired_bootstrap_matches_a_naive_resampling_of_seeds_and_images(gains, orders):
    """The same gain each seed; gains that differ by seed; seeds that win and lose on the same images (one order)."""
    pairs = [_bootstrap_records(300, 150, 30, 30 - g, s) for s, g in zip(orders, gains)]
    v = paired_bootstrap(pairs, reps=20_000)
    lo, hi = _naive_two_level_bootstrap(pairs)
    assert v.test == "paired bootstrap" and v.seeds == len(gains)
    assert v.difference == pytest.approx(100 * np.mean(gains) / 300)
    assert v.noise == pytest.approx((hi - lo) / 2, abs=0.3)


def test_the_paired_bootstrap_counts_the_training_seeds_spread():
    """Two seeds on 10,000 images: one gains 6 points, the other nothing. Resampling images alone would call the
    mean +3 beyond noise (±0.5); a draw of the second seed twice is as likely as any, so it is not."""
    pairs = [_bootstrap_records(10_000, 7000, 900, 300, 0), _bootstrap_records(10_000, 7000, 300, 300, 1)]
    v = paired_bootstrap(pairs)
    assert v.difference == pytest.approx(3.0) and not v.beyond and v.noise > 2
    same = paired_bootstrap([pairs[0], _bootstrap_records(10_000, 7000, 900, 300, 1)])  # both seeds gain 6
    assert same.beyond and same.noise < 1


def test_seeds_that_agree_on_every_image_are_as_noisy_as_one_seed():
    """Three seeds with the same per-image records: the test images' noise is shared, not averaged away (resampling
    each seed's images on its own would shrink it by about the square root of 3)."""
    one = _bootstrap_records(2000, 1400, 90, 40, 0)
    alone, three = paired_bootstrap([one]), paired_bootstrap([one] * 3)
    assert three.difference == pytest.approx(alone.difference) and three.seeds == 3
    assert three.noise == pytest.approx(alone.noise, rel=0.05)
    assert paired_bootstrap([one, (one[0][:-1], one[1][:-1])]) is None  # records of different test sets
    assert paired_bootstrap([("10x1", "1001")]) is None and paired_bootstrap([("10é", "100")]) is None


def test_paired_bootstrap_calls_what_the_unpaired_rule_cannot_and_not_a_tie():
    # two models that agree on almost every image: +3 points on 1,000 images, every disagreement one way
    x, y = _bootstrap_records(1000, 700, 30, 0, 0)
    paired = paired_bootstrap([(x, y)])
    unpaired = verdict(stats([73.0]), stats([70.0]), 1000, 1000)
    assert paired.beyond and not unpaired.beyond
    tie = paired_bootstrap([_bootstrap_records(1000, 700, 20, 20, 0)])
    assert tie.difference == 0 and not tie.beyond and tie.p == pytest.approx(1.0, abs=0.05)
    assert paired_bootstrap([("101", "10")]) is None and paired_bootstrap([]) is None
