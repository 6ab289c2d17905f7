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
    test-set sizes; "seeds": seed_noise alone, the sizes unknown; "unknown": neither, one seed and no sizes);
    difference and noise in points; beyond None when the noise is unknown."""
    test: str
    difference: float
    noise: float | None
    beyond: bool | None

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
    noise is difference_noise (so one seed is judged too); without them, seed_noise; with neither, unknown."""
    difference = a[0] - b[0]
    if n_a and n_b:
        test, noise = "binomial", difference_noise(a, b, n_a, n_b)
    else:
        test, noise = "seeds", seed_noise(a, b)
    if noise is None:
        return Verdict("unknown", difference, None, None)
    return Verdict(test, difference, noise, abs(difference) > noise)
