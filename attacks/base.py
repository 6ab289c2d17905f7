"""What every attack shares: the spec (threat model, eps on the pixel scale) and eps parsing (no torch here)."""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from fractions import Fraction

from attacks.registry import ATTACKS, THREATS, VIA
from core.errors import UsageError


def parse_eps(text: str | float, name: str = "eps") -> float:
    """'8/255', '0.03' or a float -> float in [0, 1), on the [0,1] pixel scale."""
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        s = str(text).strip()
        if not re.fullmatch(r"\d+(\.\d+)?(/\d+(\.\d+)?)?|\.\d+", s):
            raise UsageError(f"cannot parse {name} {text!r}; write a number such as 0.03 or a fraction such as 8/255")
        try:
            value = float(Fraction(s)) if "/" in s and "." not in s else (
                float(s.split("/")[0]) / float(s.split("/")[1]) if "/" in s else float(s))
        except ZeroDivisionError:
            raise UsageError(f"cannot parse {name} {text!r}: division by zero") from None
    if not math.isfinite(value) or not 0 <= value < 1:
        raise UsageError(f"{name} must be in [0, 1) on the [0,1] pixel scale, got {text!r}")
    return value


def eps_label(eps: float) -> str:
    """8/255 when eps is a whole number of 255ths, else the decimal."""
    k = eps * 255
    return f"{round(k)}/255" if abs(k - round(k)) < 1e-6 else f"{eps:g}"


@dataclass
class AttackSpec:
    method: str = "noise+fgsm"
    eps: float = 8 / 255          # L-inf radius, [0,1] pixel scale
    alpha: float = 2 / 255        # PGD step size, [0,1] pixel scale
    steps: int = 10               # PGD iterations
    random_start: bool = True     # PGD: start uniformly inside the eps ball
    n_pixels: int = 20            # noise: white pixels per image
    threat: str = "white-box"     # "transfer" (crafted on a fixed source model) or "black-box" (scores only)
    seed: int = 0
    restarts: int = 1             # runs from fresh random starts; per image, the first that fools the model is kept
    queries: int = 5000           # Square: the query budget per image (AutoAttack's standard: 5,000)
    via: str = "logits"           # what gradients/scores come from: the model's logits (or its centroid
    #                               surrogate, for a kNN model) or "knn", a differentiable score of the kNN itself

    def validate(self) -> AttackSpec:
        if self.method not in ATTACKS:
            raise UsageError(f"unknown attack method {self.method!r}; choose one of {', '.join(ATTACKS)}")
        if self.threat not in THREATS:
            raise UsageError(f"unknown threat model {self.threat!r}; choose one of {', '.join(THREATS)}")
        parse_eps(self.eps)
        parse_eps(self.alpha, "alpha")
        if self.steps < 1:
            raise UsageError(f"steps must be at least 1, got {self.steps}")
        if "pgd" in self.method and self.alpha <= 0 and self.eps > 0:
            raise UsageError(f"alpha (PGD's step) must be above 0, got {self.alpha}: steps of 0 never move the "
                             "start, which is no PGD (for random noise in the eps ball use --method uniform)")
        if self.n_pixels < 0:
            raise UsageError(f"noise pixels must be >= 0, got {self.n_pixels}")
        if self.restarts < 1:
            raise UsageError(f"restarts must be at least 1, got {self.restarts}")
        if self.restarts > 1 and not self.random_start:
            raise UsageError("restarts need a random start (without one every restart repeats the first run)")
        if self.queries < 1:
            raise UsageError(f"queries must be at least 1, got {self.queries}")
        if self.via not in VIA:
            raise UsageError(f"unknown attack route {self.via!r}; choose one of {', '.join(VIA)}")
        return self

    def describe(self) -> dict:
        """What every adversarial number is stored with: threat model, method, eps, steps."""
        d = asdict(self)
        d["eps_label"] = eps_label(self.eps)
        d["threat_model"] = d.pop("threat")
        if self.method.startswith("autoattack"):  # its own iterations: 100 (standard), 10 (torchattacks')
            d["steps"] = 100 if self.method == "autoattack" else 10
            d.pop("alpha"), d.pop("random_start")
        elif "pgd" not in self.method:
            d["steps"] = 1 if "fgsm" in self.method else 0
            d.pop("alpha"), d.pop("random_start")
        if "noise" not in self.method:
            d.pop("n_pixels")
        if self.restarts == 1:
            d.pop("restarts")
        if self.method != "square":
            d.pop("queries")
        if self.via == "logits":
            d.pop("via")
        return d

    @property
    def label(self) -> str:
        """A human name: 'PGD-50 x5 restarts', 'Square (1,000 queries)', 'FGSM', 'noise+FGSM'."""
        name = {"pgd": "PGD", "fgsm": "FGSM", "autoattack": "AutoAttack, standard", "square": "Square",
                "autoattack-torchattacks": "AutoAttack (torchattacks 3.5.1: 10-step APGD and FAB)", "uniform": "uniform noise",
                "noise": "white pixels", "noise+fgsm": "noise+FGSM", "noise+pgd": "noise+PGD"}.get(self.method, self.method)
        if "pgd" in self.method:
            name += f"-{self.steps}" + (f" x{self.restarts} restarts" if self.restarts > 1 else "")
        if self.method == "square":
            name += f" ({self.queries:,} queries)"
        return name + (" on the kNN's scores" if self.via == "knn" else "")
