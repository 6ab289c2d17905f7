"""The gradient-masking audit (Carlini et al., "On Evaluating Adversarial Robustness", 2019; Athalye et al.,
"Obfuscated Gradients", 2018): eight checks a reviewer runs before believing a robust accuracy, computed
from results files only (the attack evaluation stores the ones its own file answers; the report adds the
eps-sweep and transfer checks from robustness.json).

Every number is an accuracy in % on a stated number of test images; a check flags only a difference beyond
the noise: the larger of the seed spread and the 95% binomial interval of the difference (difference_noise).
"""
from __future__ import annotations

import math

NOISE_SIGMAS = 2.0     # a difference under this many pooled seed standard deviations is within seed noise
LARGE_EPS = 64 / 255   # at this radius every honest model should be near 0
NEAR_ZERO = 5.0        # "about 0": the 95% interval's lower end is at most this many points
ZERO_GRAD_MAX = 5.0    # % of inputs whose input gradient is exactly zero before the check flags it


# ---------------------------------------------------------------- statistics

def stats(values: list[float]) -> tuple[float, float, int] | None:
    """(mean, sample std, count) of the finite values; None without any."""
    values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not values:
        return None
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else float("nan")
    return mean, std, n


def wilson(acc: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval (in %) of an accuracy of acc % measured on n test images."""
    p = acc / 100
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, 100 * (centre - half)), min(100.0, 100 * (centre + half))


def difference_noise(a, b, n_a: int, n_b: int) -> float:
    """Points a difference of two mean accuracies must exceed to be beyond noise: the larger of the seed
    spread (NOISE_SIGMAS pooled std, with two seeds or more on both sides) and the test sets' 95% binomial
    interval of the difference."""
    pa, pb = a[0] / 100, b[0] / 100
    binomial = 196 * math.sqrt(pa * (1 - pa) / n_a + pb * (1 - pb) / n_b)
    seeds = NOISE_SIGMAS * math.sqrt((a[1] ** 2 + b[1] ** 2) / 2) if a[2] > 1 and b[2] > 1 else 0.0
    return max(binomial, seeds)


# ---------------------------------------------------------------- reading rows

def test_n(results: list[dict]) -> int | None:
    """The number of test images the results rest on (the smallest, if seeds differ)."""
    ns = [r.get("test", {}).get("n") for r in results]
    return min(ns) if ns and all(isinstance(n, int) and n > 0 for n in ns) else None


def _matches(row: dict, method: str, threat: str, steps: int | None, restarts: int, via: str) -> bool:
    return (row.get("method") == method and row.get("threat_model") == threat
            and (steps is None or row.get("steps") == steps) and row.get("restarts", 1) == restarts
            and row.get("via", "logits") == via)


def robust(results: list[dict], method: str, threat: str = "white-box", steps: int | None = None,
           restarts: int = 1, via: str = "logits"):
    """stats() over seeds of the robust accuracy of one attack (None if no seed has it)."""
    values = [row["robust_acc"] for r in results for row in r.get("results", [])
              if _matches(row, method, threat, steps, restarts, via)]
    return stats(values) if values else None


def worst(results: list[dict]) -> tuple[tuple, str] | None:
    """(stats, attack label) of the lowest mean robust accuracy over every attack the results hold."""
    keys = {(row["method"], row["threat_model"], row.get("steps"), row.get("restarts", 1), row.get("via", "logits")):
            row.get("label", row["method"]) for r in results for row in r.get("results", [])}
    found = [(robust(results, *key), label) for key, label in keys.items()]
    found = [(s, label) for s, label in found if s is not None]
    return min(found, key=lambda f: f[0][0]) if found else None


# ---------------------------------------------------------------- the checks

def _check(number: int, title: str, ok: bool | None, detail: str) -> dict:
    """passed: True, False (flagged) or None (inconclusive: the test images cannot decide it)."""
    return {"check": number, "title": title, "passed": None if ok is None else bool(ok), "detail": detail}


def verdict(check: dict) -> str:
    return {True: "pass", False: "**flag**", None: "inconclusive"}[check["passed"]]


def _beyond(a, b, n: int) -> tuple[float, float]:
    """(a - b in points, the noise that difference must exceed), both on n paired test images."""
    return a[0] - b[0], difference_noise(a, b, n, n)


def audit_checks(audit: list[dict]) -> list[dict]:
    """Checks 1, 2, 3, 4, 6 and 8 on the audit's own test images (every attack on the same images)."""
    n = test_n(audit)
    if not audit or not n:
        return []
    fgsm, pgd10 = robust(audit, "fgsm"), robust(audit, "pgd", steps=10)
    pgd50 = next((robust(audit, "pgd", steps=r.get("steps"), restarts=r["restarts"])
                  for a in audit for r in a.get("results", []) if r.get("restarts", 1) > 1), None)
    auto = robust(audit, "autoattack")
    out = []
    clean = stats([a["clean_acc"] for a in audit if "clean_acc" in a])
    if clean and wilson(clean[0], n)[0] <= 10.0:  # at chance: no attack has anything to remove
        out.append(_check(0, "the model is above chance", None,
                          f"clean accuracy {clean[0]:.2f}% on {n:,} images: its 95% interval reaches chance (10%), "
                          "so the attack comparisons below cannot show anything"))
    if fgsm and pgd10:
        gap, noise = _beyond(pgd10, fgsm, n)
        out.append(_check(1, "iterative not weaker than single-step", gap <= noise,
                          f"PGD-10 {pgd10[0]:.2f}% vs FGSM {fgsm[0]:.2f}% (noise ±{noise:.2f})"))
    if pgd10 and pgd50:
        gap, noise = _beyond(pgd10, pgd50, n)
        out.append(_check(2, "PGD-10 has converged", gap <= noise,
                          f"PGD-50 x5 restarts {pgd50[0]:.2f}% vs PGD-10 {pgd10[0]:.2f}% (noise ±{noise:.2f})"))
    if pgd10 and auto:
        gap, noise = _beyond(pgd10, auto, n)
        why = ("; quote AutoAttack" if gap > noise else
               "; AutoAttack weaker than PGD-10: its success test is not the model's own rule (a surrogate), or a bug"
               if -gap > noise else "")
        out.append(_check(3, "AutoAttack not far below PGD-10, and not weaker", abs(gap) <= noise,
                          f"AutoAttack {auto[0]:.2f}% vs PGD-10 {pgd10[0]:.2f}% (noise ±{noise:.2f}){why}"))
    gradient = [(s, label) for s, label in ((fgsm, "FGSM"), (pgd10, "PGD-10"), (pgd50, "PGD-50 x5"),
                                            (auto, "AutoAttack"),
                                            (robust(audit, "pgd", steps=50, via="knn"), "PGD-50 on the kNN"),
                                            (robust(audit, "autoattack", via="knn"), "AutoAttack on the kNN"))
                if s is not None]
    squares = [(s, label) for s, label in ((robust(audit, "square", "black-box"), "Square"),
                                           (robust(audit, "square", "black-box", via="knn"), "Square on the kNN"))
               if s is not None]
    if gradient and squares:
        (g, g_label), (q, q_label) = min(gradient, key=lambda t: t[0][0]), min(squares, key=lambda t: t[0][0])
        gap, noise = _beyond(g, q, n)
        out.append(_check(4, "black-box not stronger than white-box", gap <= noise,
                          f"{q_label} {q[0]:.2f}% vs the best gradient attack ({g_label}) {g[0]:.2f}% "
                          f"(noise ±{noise:.2f})" + ("" if gap <= noise else "; the gradients are masked")))
    uniform = robust(audit, "uniform", "black-box")
    if uniform and pgd10:
        gap, noise = _beyond(uniform, pgd10, n)  # "far weaker" must be shown: within the noise it is undecided
        out.append(_check(6, "random noise far weaker than the attack", True if gap > noise else None if gap > 0 else False,
                          f"uniform noise {uniform[0]:.2f}% vs PGD-10 {pgd10[0]:.2f}% (noise ±{noise:.2f})"))
    sanity = [a["sanity"] for a in audit if a.get("sanity")]
    if sanity:
        diff = max(s["max_logit_change"] for s in sanity)
        lo, hi = min(s["input_min"] for s in sanity), max(s["input_max"] for s in sanity)
        zero = max(s["zero_grad_pct"] for s in sanity)
        ok = diff <= sanity[0].get("tolerance", 0.0) and lo >= 0 and hi <= 1 and zero <= ZERO_GRAD_MAX
        out.append(_check(8, "deterministic, inputs in [0,1], gradients not vanishing", ok,
                          f"two eval passes differ by at most {diff:.2g} in a logit; inputs in [{lo:.3g}, {hi:.3g}]; "
                          f"{zero:.1f}% of inputs have an all-zero input gradient (flag above {ZERO_GRAD_MAX:g}%)"))
    if out and out[0]["check"] == 0:  # at chance: the comparisons are inconclusive, check 8 still stands
        out = [c if c["check"] in (0, 8) else {**c, "passed": None} for c in out]
    return out


def sweep_checks(robustness: list[dict]) -> list[dict]:
    """Check 5 per swept method (non-increasing in eps; about 0 at 64/255) and check 7 per method (transfer
    not stronger than white-box), on robustness.json's test images."""
    n = test_n(robustness)
    if not robustness or not n:
        return []
    out = []
    by_method: dict = {}
    for r in robustness:
        for row in r.get("eps_sweep") or []:
            by_method.setdefault(row["method"], {}).setdefault(row["eps"], []).append(row["robust_acc"])
    for method, by_eps in by_method.items():
        points = sorted((e, stats(v)) for e, v in by_eps.items())
        rises = [(e0, a0, e1, a1) for (e0, a0), (e1, a1) in zip(points, points[1:])
                 if a1[0] - a0[0] > difference_noise(a1, a0, n, n)]
        large = [s for e, s in points if e >= LARGE_EPS - 1e-9]
        ok = not rises and (not large or wilson(min(s[0] for s in large), n)[0] <= NEAR_ZERO)
        detail = f"{method} over {len(points)} radii: " + ("non-increasing" if not rises else
                                                            f"rises from {rises[0][1][0]:.2f}% at {rises[0][0] * 255:.0f}/255 "
                                                            f"to {rises[0][3][0]:.2f}% at {rises[0][2] * 255:.0f}/255")
        if large:
            detail += (f"; {min(s[0] for s in large):.2f}% at {LARGE_EPS * 255:.0f}/255 (about 0: the 95% interval "
                       f"reaches {NEAR_ZERO:g}% or below)")
        out.append(_check(5, f"eps sweep ({method}) non-increasing, about 0 at a large eps", ok, detail))
    for method in ("fgsm", "pgd"):
        t, w = robust(robustness, method, "transfer"), robust(robustness, method)
        if t and w:
            gap, noise = _beyond(w, t, n)
            out.append(_check(7, f"transfer {method.upper()} not stronger than white-box", gap <= noise,
                              f"transfer {t[0]:.2f}% vs white-box {w[0]:.2f}% (noise ±{noise:.2f})"))
    return out
