"""Each statistical rule once: the summary of a number over seeds, the 95% Wilson interval of an accuracy,
error bars, the noise a difference of two accuracies must exceed, and the one `verdict` that every audit
check (eval/audit.py), report flag, DG gain and figure (report/) calls.

Every accuracy is in % and rests on a stated number of test images n; a "stats" triple is (mean, sample std,
seeds) as `stats()` returns it. A difference is "beyond the noise" only when it exceeds the larger of the seed
spread and the test sets' 95% binomial interval of the difference (issue 13). That test is unpaired and so
conservative for two attacks on the same images; a paired test (exact McNemar on the per-image records, a
paired bootstrap) slots in as another rule returning the same `Verdict` under its own `test` name.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

Z = 1.96              # the two-sided 95% quantile of the normal distribution
NOISE_SIGMAS = 2.0    # a difference under this many pooled seed standard deviations is within seed noise


def stats(values: list[float]) -> tuple[float, float, int] | None:
    """(mean, sample std, count) of the finite values; None without any (std is nan with one value)."""
    values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not values:
        return None
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else float("nan")
    return mean, std, n


def wilson(acc: float, n: int, z: float = Z) -> tuple[float, float]:
    """The 95% Wilson score interval (in %) of an accuracy of acc % measured on n test images."""
    if not (0 <= acc <= 100 and n >= 1):
        raise ValueError(f"an accuracy of {acc}% on {n} images has no interval (accuracies are 0-100, n at least 1)")
    p = acc / 100
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, 100 * (centre - half)), min(100.0, 100 * (centre + half))


def error_bar(acc: float, n: int | None) -> float:
    """A symmetric error bar (in points) for acc % on n images: the LARGER half of the 95% Wilson interval (the
    interval is lopsided away from 50%, and a bar must not understate it); 0 without n."""
    if not n:
        return 0.0
    lo, hi = wilson(acc, n)
    return max(acc - lo, hi - acc)


def spread(s: tuple, n: int | None) -> float:
    """The error bar of a mean over seeds (a stats triple): the seed std with two seeds or more, else the
    error_bar of the mean on the n test images every seed shares."""
    return s[1] if s[2] > 1 else error_bar(s[0], n)


def reaches(acc: float, n: int, level: float) -> bool:
    """Whether the 95% Wilson interval of acc % on n images reaches down to `level` % (chance, or "about 0")."""
    return wilson(acc, n)[0] <= level


def _binomial(variance: float) -> float:
    """The 95% half-width in points of a quantity whose variance (in proportion², normal approximation) is given."""
    return 100 * Z * math.sqrt(variance)


def average_half_width(accs: list[float], ns: list[int]) -> float:
    """The 95% half-width of the plain average of accuracies each measured on its own test set (their binomial
    variances summed and divided by the number of accuracies squared)."""
    return _binomial(sum((a / 100) * (1 - a / 100) / n for a, n in zip(accs, ns)) / len(accs) ** 2)


def seed_noise(a, b) -> float | None:
    """NOISE_SIGMAS pooled seed standard deviations of two stats triples; None unless both have two seeds or more."""
    if a[2] < 2 or b[2] < 2:
        return None
    return NOISE_SIGMAS * math.sqrt((a[1] ** 2 + b[1] ** 2) / 2)


def difference_noise(a, b, n_a: int, n_b: int) -> float:
    """Points a difference of two mean accuracies must exceed to be beyond noise: the larger of the seed
    spread (seed_noise, with two seeds or more on both sides) and the test sets' 95% binomial interval of the
    difference."""
    pa, pb = a[0] / 100, b[0] / 100
    return max(_binomial(pa * (1 - pa) / n_a + pb * (1 - pb) / n_b), seed_noise(a, b) or 0.0)


@dataclass(frozen=True)
class Verdict:
    """Whether a − b is beyond the noise. test: the rule that judged it ("binomial": difference_noise on both
    test-set sizes; "Welch t": Welch's t test on the seeds, the sizes unknown; "McNemar": the exact paired test on per-image
    records; "unknown": neither, one seed and no sizes); difference and noise in points; beyond None when the
    noise is unknown; p the paired test's two-sided p-value (None for the other rules); seeds: how many seeds'
    pairs of records a paired test pooled (None for the other rules)."""
    test: str
    difference: float
    noise: float | None
    beyond: bool | None
    p: float | None = None
    seeds: int | None = None

    def said(self) -> str:
        """The judgement's basis in words: "McNemar p = 0.031" or "binomial noise ±5.20"."""
        if self.p is not None:
            return f"{self.test} p = {self.p:.2g}"
        return f"{self.test} noise ±{self.noise:.2f}" if self.noise is not None else "noise unknown"

    @property
    def above(self) -> bool:
        """a is above b beyond the noise."""
        return bool(self.beyond) and self.difference > 0

    @property
    def below(self) -> bool:
        """a is below b beyond the noise."""
        return bool(self.beyond) and self.difference < 0


def verdict(a, b, n_a: int | None = None, n_b: int | None = None) -> Verdict:
    """Is the difference of two mean accuracies (stats triples) beyond the noise? With both test-set sizes, the
    noise is difference_noise (so one seed is judged too); without them, Welch's t test on the seeds (welch);
    with one seed a side and no sizes, unknown."""
    difference = a[0] - b[0]
    if not (n_a and n_b):
        return welch(a, b)
    noise = difference_noise(a, b, n_a, n_b)
    return Verdict("binomial", difference, noise, abs(difference) > noise)


ALPHA = 0.05  # a paired test calls a difference beyond the noise when its two-sided p-value is below this


def mcnemar_p(b: int, c: int) -> float:
    """The exact two-sided McNemar p-value: of the b + c images on which two classifications disagree, b went
    one way and c the other; under "no difference" each disagreement goes either way with probability 1/2
    (scipy.stats.binomtest(b, b + c).pvalue, here without scipy). 1.0 without disagreements."""
    n, k = b + c, min(b, c)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def paired_verdict(pairs: list[tuple[str, str]]) -> Verdict | None:
    """Is accuracy under a minus under b beyond the noise, from per-image records of the SAME images ("1" correct,
    "0" not, one pair of strings per seed)? The exact McNemar test on the disagreements pooled over seeds (each
    a fair coin under "no difference", so the pool is exact too). noise: the smallest difference (in points) that
    this many images could call at ALPHA with every disagreement going one way. None if a record is missing or
    the two records of a seed differ in length."""
    b = c = total = 0
    for x, y in pairs:
        if not x or not y or len(x) != len(y):
            return None
        b += sum(p == "1" and q == "0" for p, q in zip(x, y))  # a right where b is wrong
        c += sum(p == "0" and q == "1" for p, q in zip(x, y))
        total += len(x)
    if not total:
        return None
    p = mcnemar_p(b, c)
    smallest = next((k for k in range(1, total + 1) if mcnemar_p(k, 0) < ALPHA), None)
    noise = 100 * (smallest - 1) / total if smallest else float("inf")
    return Verdict("McNemar", 100 * (b - c) / total, noise, p < ALPHA, p, len(pairs))


BOOTSTRAP_REPS = 10_000


def paired_bootstrap(pairs: list[tuple[str, str]], reps: int = BOOTSTRAP_REPS, seed: int = 0) -> Verdict | None:
    """Is model a's accuracy minus model b's beyond the noise, from per-image records of the SAME test images ("1"
    correct, one pair of strings per training seed)? The paired bootstrap over seeds and images, two levels: each
    replicate draws the seeds with replacement (so the training seeds' spread is in the noise, not only the test
    images'), and draws one set of image weights (a resample of the test images with replacement) that every seed
    shares, as every seed was scored on those same images, then averages the drawn seeds' differences; with one
    seed, the images alone. noise: half the width of the difference's 95% percentile interval; beyond when that
    interval excludes 0; p: the two-sided bootstrap p-value. An image enters only through its pattern of
    differences across seeds (each -1, 0 or +1), so a replicate is drawn exactly as multinomial counts of the
    patterns that occur (at most 3 ** seeds and n, no n-sized resample per replicate). None if a record is missing
    or holds anything but "0" and "1", or the records differ in length (within a seed, or across seeds: then they
    are not of the same images). With two or three seeds the seed level is coarse (a bootstrap of so few values
    understates their spread)."""
    import numpy as np

    if not pairs or any(not x or not y or len(x) != len(y) or len(x) != len(pairs[0][0]) or set(x + y) - {"0", "1"}
                        for x, y in pairs):
        return None

    def right(r: str):
        return np.frombuffer(r.encode(), dtype=np.uint8) == ord("1")

    rng, k, n = np.random.default_rng(seed), len(pairs), len(pairs[0][0])
    seeds = rng.integers(0, k, size=(reps, k)) if k > 1 else np.zeros((reps, 1), dtype=int)
    per_image = np.array([right(x).astype(int) - right(y) for x, y in pairs])  # seeds × images: -1, 0 or +1
    patterns, counts = np.unique(per_image.T, axis=0, return_counts=True)  # patterns × seeds, how many images each
    drawn = rng.multinomial(n, counts / n, size=reps)  # reps × patterns: the shared image resample
    per_seed = 100 * (drawn @ patterns) / n  # reps × seeds: each seed's difference on the replicate's images
    draws = np.take_along_axis(per_seed, seeds, axis=1).mean(axis=1)
    observed = 100 * per_image.sum() / (n * k)
    lo, hi = np.percentile(draws, [100 * ALPHA / 2, 100 * (1 - ALPHA / 2)])
    p = min(1.0, 2 * min(float((draws <= 0).mean()), float((draws >= 0).mean())))
    return Verdict("paired bootstrap", observed, float(hi - lo) / 2, bool(lo > 0 or hi < 0), p, k)


def welch(a, b) -> Verdict:
    """Two stats triples (mean, sample std, seeds) without test-set sizes or per-image records: Welch's t test,
    its two-sided 95% quantile from the t distribution with the Welch-Satterthwaite degrees of freedom (so the bar
    shrinks as seeds are added). noise: the half-width of the difference's 95% interval. Unknown with fewer than
    two seeds on a side."""
    difference = a[0] - b[0]
    if a[2] < 2 or b[2] < 2:
        return Verdict("unknown", difference, None, None)
    from scipy.stats import t as student

    va, vb = a[1] ** 2 / a[2], b[1] ** 2 / b[2]
    if va + vb == 0:
        return Verdict("Welch t", difference, 0.0, difference != 0, 0.0 if difference else 1.0)
    df = (va + vb) ** 2 / (va ** 2 / (a[2] - 1) + vb ** 2 / (b[2] - 1))
    se = math.sqrt(va + vb)
    p = 2 * student.sf(abs(difference) / se, df)
    return Verdict("Welch t", difference, float(student.ppf(1 - ALPHA / 2, df) * se), bool(p < ALPHA), float(p))


def welch_verdict(a: list[float], b: list[float]) -> Verdict:
    """welch on two groups of per-seed accuracies (non-finite values dropped)."""
    a = [v for v in a if math.isfinite(v)]
    b = [v for v in b if math.isfinite(v)]
    if not a or not b:
        return Verdict("unknown", float("nan"), None, None)
    return welch(stats(a), stats(b))
