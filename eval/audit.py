"""The gradient-masking audit (Carlini et al., "On Evaluating Adversarial Robustness", 2019; Athalye et al.,
"Obfuscated Gradients", 2018): eight checks a reviewer runs before believing a robust accuracy, computed
from results files only (the attack evaluation stores the ones its own file answers; the report adds the
eps-sweep and transfer checks from robustness.json).

Every number is an accuracy in % on a stated number of test images; a check flags only a difference beyond
the noise, as eval/stats.py's one `verdict` judges it.
"""
from __future__ import annotations

from eval.stats import paired_verdict, reaches, stats, verdict

LARGE_EPS = 64 / 255   # at this radius every honest model should be near 0
NEAR_ZERO = 5.0        # "about 0": the 95% interval's lower end is at most this many points
ZERO_GRAD_MAX = 5.0    # % of inputs whose input gradient is exactly zero before the check flags it
DECISIVE = 10.0        # check 6 calls "no effect" a flag only when the test-set noise is under this many points
CHANCE = 10.0          # % correct by guessing among the 10 classes


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
    """(stats over seeds, label) of the worst case. AutoAttack's convention: an image counts as robust only if
    no attack broke it, so with every row's per-image record the worst case is per image over every attack
    ("any attack, per image"); without the records, the lowest mean robust accuracy of one attack (its label)."""
    per_seed = []
    for r in results:
        records = [row.get("correct") for row in r.get("results", [])]
        if not records or not all(records) or len({len(b) for b in records}) != 1:
            per_seed = None
            break
        per_seed.append(100 * sum(all(b[i] == "1" for b in records) for i in range(len(records[0])))
                        / len(records[0]))
    if per_seed:
        return stats(per_seed), "any attack, per image"
    keys = {(row["method"], row["threat_model"], row.get("steps"), row.get("restarts", 1), row.get("via", "logits")):
            row.get("label", row["method"]) for r in results for row in r.get("results", [])}
    found = [(robust(results, *key), label) for key, label in keys.items()]
    found = [(s, label) for s, label in found if s is not None]
    return min(found, key=lambda f: f[0][0]) if found else None


# ---------------------------------------------------------------- the checks

def _check(number: int, title: str, ok: bool | None, detail: str) -> dict:
    """passed: True, False (flagged) or None (inconclusive: the test images cannot decide it)."""
    return {"check": number, "title": title, "passed": None if ok is None else bool(ok), "detail": detail}


OUTCOMES = {True: "pass", False: "flag", None: "inconclusive"}  # a check's "passed", in words


def _bits(result: dict, key: dict) -> str | None:
    """One seed's per-image correctness under the attack `key` names ("clean" for no attack)."""
    if key.get("method") == "clean":
        return result.get("clean_correct")
    matches = [row for row in result.get("results", [])
               if _matches(row, key["method"], key.get("threat", "white-box"), key.get("steps"),
                           key.get("restarts", 1), key.get("via", "logits"))]
    return matches[0].get("correct") if matches else None


def disagreements(results: list[dict], a: dict, b: dict) -> int | None:
    """On how many test images the two attacks' outcomes differ (McNemar's b + c), the most over the seeds;
    None unless every seed stored both per-image records."""
    counts = []
    for r in results:
        x, y = _bits(r, a), _bits(r, b)
        if not x or not y or len(x) != len(y):
            return None
        counts.append(sum(p != q for p, q in zip(x, y)))
    return max(counts) if counts else None


def accuracy_under(results: list[dict], key: dict):
    """stats() of the seeds' accuracy under the attack `key` names ("clean" for none); None where no seed ran it."""
    if key.get("method") == "clean":
        return stats([r["clean_acc"] for r in results if "clean_acc" in r])
    return robust(results, key["method"], key.get("threat", "white-box"), key.get("steps"), key.get("restarts", 1),
                  key.get("via", "logits"))


def compare(results: list[dict], a: dict, b: dict, n: int):
    """The verdict on accuracy under a minus under b, both on the same n images: the exact McNemar test on the
    per-image records when every seed stored both (eval/stats.paired_verdict), else the unpaired binomial rule
    (eval/stats.verdict), which is conservative for two attacks on the same images."""
    pairs = [(_bits(r, a), _bits(r, b)) for r in results]
    paired = paired_verdict(pairs) if pairs else None
    if paired is not None:
        # the mean accuracies stand as the difference (equal to the records' unless a seed lacks a row)
        return paired
    return verdict(accuracy_under(results, a), accuracy_under(results, b), n, n)


def _noise_text(results: list[dict], a: dict, b: dict, v) -> str:
    """How the comparison was judged, in words: the test, its p-value or noise, and how many images differ."""
    k = disagreements(results, a, b)
    differ = f"; the two differ on {k} image(s)" if k is not None else ""
    return v.said() + differ


FGSM, PGD10 = {"method": "fgsm"}, {"method": "pgd", "steps": 10}
AUTO, UNIFORM, CLEAN = {"method": "autoattack"}, {"method": "uniform", "threat": "black-box"}, {"method": "clean"}
AUTO_KNN = {"method": "autoattack", "via": "knn"}  # on a kNN model: AutoAttack stopping on the kNN's own vote
# Gradient attacks (AutoAttack is not one: it ends with Square) and the score-based ones, with their labels.
GRADIENT = ((FGSM, "FGSM"), (PGD10, "PGD-10"), ({"method": "pgd", "steps": 50, "restarts": 5}, "PGD-50 x5"),
            ({"method": "pgd", "steps": 50, "via": "knn"}, "PGD-50 on the kNN"))
SCORE = (({"method": "square", "threat": "black-box"}, "Square"),
         ({"method": "square", "threat": "black-box", "via": "knn"}, "Square on the kNN"))


def model_autoattack(audit: list[dict]) -> tuple[dict, str]:
    """(key, label) of the model's AutoAttack: on a kNN model the one on the kNN's scores, whose success test is
    the kNN's vote (the one through the centroid surrogate stops on the surrogate's argmax); else the plain one."""
    if accuracy_under(audit, AUTO_KNN) is not None:
        return AUTO_KNN, "AutoAttack on the kNN's scores"
    return AUTO, "AutoAttack"


def audit_checks(audit: list[dict]) -> list[dict]:
    """Checks 1, 2, 3, 4, 6 and 8 on the audit's own test images (every attack on the same images, so each
    comparison is paired)."""
    n = test_n(audit)
    if not audit or not n:
        return []
    have = lambda key: accuracy_under(audit, key) is not None
    out = []
    clean = accuracy_under(audit, CLEAN)
    if clean and reaches(clean[0], n, CHANCE):  # at chance: no attack has anything to remove
        out.append(_check(0, "the model is above chance", None,
                          f"clean accuracy {clean[0]:.2f}% on {n:,} images: its 95% interval reaches chance "
                          f"({CHANCE:g}%), "
                          "so the attack comparisons below cannot show anything"))
    acc = lambda key: accuracy_under(audit, key)[0]
    if have(FGSM) and have(PGD10):
        v = compare(audit, PGD10, FGSM, n)
        out.append(_check(1, "iterative not weaker than single-step", not v.above,
                          f"PGD-10 {acc(PGD10):.2f}% vs FGSM {acc(FGSM):.2f}% "
                          f"({_noise_text(audit, PGD10, FGSM, v)})"))
    pgd50 = GRADIENT[2][0]
    if have(PGD10) and have(pgd50):
        v = compare(audit, PGD10, pgd50, n)
        out.append(_check(2, "PGD-10 has converged", not v.above,
                          f"PGD-50 x5 restarts {acc(pgd50):.2f}% vs PGD-10 {acc(PGD10):.2f}% "
                          f"({_noise_text(audit, PGD10, pgd50, v)})"))
    auto, auto_label = model_autoattack(audit)
    if have(PGD10) and have(auto):
        v = compare(audit, PGD10, auto, n)
        why = (f"; quote {auto_label}" if v.above else
               f"; {auto_label} weaker than PGD-10: its success test is not the model's own rule (a surrogate), "
               "or a bug" if v.below else "")
        out.append(_check(3, "AutoAttack not far below PGD-10, and not weaker", not v.beyond,
                          f"{auto_label} {acc(auto):.2f}% vs PGD-10 {acc(PGD10):.2f}% "
                          f"({_noise_text(audit, PGD10, auto, v)}){why}"))
    gradient = [(k, label) for k, label in GRADIENT if have(k)]
    squares = [(k, label) for k, label in SCORE if have(k)]
    if gradient and squares:
        (g, g_label), (q, q_label) = min(gradient, key=lambda t: acc(t[0])), min(squares, key=lambda t: acc(t[0]))
        v = compare(audit, g, q, n)
        out.append(_check(4, "black-box not stronger than white-box", not v.above,
                          f"{q_label} {acc(q):.2f}% vs the best gradient attack ({g_label}) {acc(g):.2f}% "
                          f"({_noise_text(audit, g, q, v)})" + ("; the gradients are masked" if v.above else "")))
    if have(UNIFORM) and have(PGD10):
        v = compare(audit, UNIFORM, PGD10, n)
        if v.above:
            ok = True
        elif v.below:
            ok = False  # noise is the stronger "attack"
        else:  # undecided, unless the attack does nothing measurable at all (then it is the masking sign), on
            # enough images to tell (a noise under DECISIVE points)
            drop = compare(audit, CLEAN, PGD10, n) if clean else None
            ok = False if drop is not None and not drop.above and v.noise < DECISIVE else None
        out.append(_check(6, "random noise far weaker than the attack", ok,
                          f"uniform noise {acc(UNIFORM):.2f}% vs PGD-10 {acc(PGD10):.2f}% "
                          f"({_noise_text(audit, UNIFORM, PGD10, v)})"
                          + ("; PGD-10 lowers accuracy no more than noise does" if ok is False else "")))
    sanity = [a["sanity"] for a in audit if a.get("sanity")]
    if sanity:
        out.append(_sanity_check(audit, sanity))
    if out and out[0]["check"] == 0:  # at chance: the comparisons are inconclusive, check 8 still stands
        out = [c if c["check"] in (0, 8) else {**c, "passed": None} for c in out]
    return out


def _sanity_check(audit: list[dict], sanity: list[dict]) -> dict:
    """Check 8: two eval passes give the same logits; every L-inf attack's images lie in [0,1] and within eps
    of the inputs; few inputs have an all-zero input gradient."""
    diff = max(s["max_logit_change"] for s in sanity)
    zero = max(s["zero_grad_pct"] for s in sanity)
    rows = [row for a in audit for row in a.get("results", [])
            if "max_perturbation" in row and "noise" not in row["method"]]
    outside = [row.get("label", row["method"]) for row in rows
               if row["min_pixel"] < 0 or row["max_pixel"] > 1 or row["max_perturbation"] > row["eps"] + 1e-5]
    ok = diff <= sanity[0].get("tolerance", 0.0) and not outside and zero <= ZERO_GRAD_MAX
    return _check(8, "deterministic, attacks inside [0,1] and the eps ball, gradients not vanishing", ok,
                  f"two eval passes differ by at most {diff:.2g} in a logit; "
                  + (f"{len(rows)} attacks' images all in [0,1] and within eps" if not outside else
                     f"outside [0,1] or the eps ball: {', '.join(outside)}")
                  + f"; {zero:.1f}% of inputs have an all-zero input gradient (flag above {ZERO_GRAD_MAX:g}%)")


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
                 if verdict(a1, a0, n, n).above]
        large = [s for e, s in points if e >= LARGE_EPS - 1e-9]
        ok = not rises and (not large or reaches(min(s[0] for s in large), n, NEAR_ZERO))
        detail = f"{method} over {len(points)} radii: " + (
            "non-increasing" if not rises else f"rises from {rises[0][1][0]:.2f}% at {rises[0][0] * 255:.0f}/255 "
                                               f"to {rises[0][3][0]:.2f}% at {rises[0][2] * 255:.0f}/255")
        if large:
            detail += (f"; {min(s[0] for s in large):.2f}% at {LARGE_EPS * 255:.0f}/255 (about 0: the 95% interval "
                       f"reaches {NEAR_ZERO:g}% or below)")
        out.append(_check(5, f"eps sweep ({method}) non-increasing, about 0 at a large eps", ok, detail))
    for method in ("fgsm", "pgd"):
        t, w = robust(robustness, method, "transfer"), robust(robustness, method)
        if t and w:
            v = transfer_verdict(robustness, method, n)
            out.append(_check(7, f"transfer {method.upper()} not stronger than white-box", not v.below,
                              f"transfer {t[0]:.2f}% vs white-box {w[0]:.2f}% ({v.said()})"))
    return out


def transfer_verdict(robustness: list[dict], method: str, n: int):
    """Check 7's comparison: transfer minus white-box robust accuracy under `method`, on the same n images. Below
    the noise, transfer is the stronger attack (check 7 flags it); above, the transfer number overstates the
    model's robustness (the report says to quote the white-box one)."""
    return compare(robustness, {"method": method, "threat": "transfer"}, {"method": method}, n)
