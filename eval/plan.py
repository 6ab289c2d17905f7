"""What an evaluation of a finished run is, as data (no torch): the plan steps a section declares in
experiments/, and the resolved Evaluation that the runners (eval/attack_run.py, knn_run.py, umap_run.py) run.

A plan step makes one results file beside the run's metrics.json; `specs` are the attacks it runs:
  AttackPlan -> robustness.json   (robust accuracy per method and threat model, eps sweep, example grid);
                audit.json with audit=True (AutoAttack plus the gradient-masking audit's attacks and checks)
  KnnPlan    -> knn.json          (kNN accuracy on the 512-d features, clean and under one attack)
  UmapPlan   -> umap.json         (UMAP of clean and adversarial features, and its PNG)
Sizes that depend on the scale (UMAP points) come from the profile, never from the step.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from attacks.base import AttackSpec

EPS = 8 / 255      # L-inf, on the [0,1] pixel scale (the study does not state its eps)
ALPHA = 2 / 255    # PGD step, [0,1] pixel scale
STEPS = 10         # PGD iterations
AUDIT_STEPS, AUDIT_RESTARTS = 50, 5   # the audit's converged PGD: 50 steps, 5 random restarts


def attacks(methods, threats, **settings) -> tuple[AttackSpec, ...]:
    """Every method under every threat model, with one set of settings (eps, alpha, steps, ...)."""
    return tuple(AttackSpec(method=m, threat=t, **settings) for m in methods for t in threats)


def audit_attacks(base: AttackSpec, queries: int, knn: bool) -> list[AttackSpec]:
    """The gradient-masking audit's attacks (Carlini et al. 2019, Athalye et al. 2018), all at base's eps and
    seed on the same test images: FGSM and PGD-10 (the pair the others are judged against), PGD-50 with 5
    random restarts (has PGD-10 converged?), Square (score-based, no gradients) and uniform noise (no model at
    all). A kNN model also gets the attacks on the kNN itself: PGD-50 and Square on its differentiable score."""
    at = dict(eps=base.eps, alpha=base.alpha, seed=base.seed, random_start=True)
    specs = [AttackSpec("fgsm", **at), AttackSpec("pgd", steps=STEPS, **at),
             AttackSpec("pgd", steps=AUDIT_STEPS, restarts=AUDIT_RESTARTS, **at),
             AttackSpec("square", threat="black-box", queries=queries, **at),
             AttackSpec("uniform", threat="black-box", **at)]
    if knn:  # AutoAttack too: through a surrogate its success test is the surrogate's argmax, not the kNN's
        specs += [AttackSpec("pgd", steps=AUDIT_STEPS, via="knn", **at),
                  AttackSpec("square", threat="black-box", queries=queries, via="knn", **at),
                  AttackSpec("autoattack", via="knn", **at)]
    return [s.validate() for s in specs]


@dataclass(frozen=True)
class AttackPlan:
    attacks: tuple[AttackSpec, ...]
    eps_sweep: tuple[float, ...] = ()   # white-box robust accuracy at each eps, of each sweep method
    sweep_methods: tuple[str, ...] = () # the methods swept (none given: the first attack's)
    file: str = "robustness.json"
    subset: str | None = None           # a Profile field giving the test images (e.g. "autoattack_points")
    audit: bool = False                 # add the gradient-masking audit's attacks and checks (audit_attacks)
    command: str = "attack"

    @property
    def specs(self) -> tuple[AttackSpec, ...]:
        return self.attacks


@dataclass(frozen=True)
class KnnPlan:
    k: int = 3
    attack: AttackSpec | None = None
    file: str = "knn.json"
    command: str = "knn-eval"

    @property
    def specs(self) -> tuple[AttackSpec, ...]:
        return (self.attack,) if self.attack else ()


@dataclass(frozen=True)
class UmapPlan:
    attack: AttackSpec = field(default_factory=AttackSpec)
    file: str = "umap.json"
    command: str = "umap"

    @property
    def specs(self) -> tuple[AttackSpec, ...]:
        return (self.attack,)


@dataclass
class Evaluation:
    """One resolved evaluation: which run, which attacks, where the data is, where the results go."""
    kind: str                            # "attack", "knn" or "umap"
    model: str                           # a finished run folder
    out: str                             # the results JSON (figures go beside it)
    attacks: list[AttackSpec] = field(default_factory=list)
    eps_sweep: list[float] = field(default_factory=list)
    sweep_methods: list[str] = field(default_factory=list)  # empty: the first attack's method
    audit: bool = False                  # the gradient-masking audit's attacks and checks (audit_attacks)
    square_queries: int = 5000           # the audit's Square budget per image
    source: str | None = None            # transfer source: "pretrained" or a run folder (None: no transfer attack)
    n: int | None = None                 # stratified test subset (UMAP: the points to embed)
    k: int = 3                           # kNN neighbours
    seed: int = 0
    data_root: str = "data"
    cache_dir: str = "data/cache"
    download: bool = False
    device: str = "auto"
    batch_size: int | None = None
    wandb: bool = False
    precision: str | None = None         # None: fp32 (eval/harness.py), whatever the run trained in
    channels_last: bool | None = None    # None: the run's own
