"""Experiments as data: one RunConfig, the study's sections as PRESETS, scales as PROFILES.

A preset overrides only what differs from the Q1 baseline and carries the study's own numbers
(`reference`), which reports show beside ours and which are never written as our output.
A profile changes scale (subset sizes, epochs, image size) and never the method.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from core.errors import UsageError

DATASETS = ("svhn", "mnist", "cifar10", "digits", "digits-inverted")
OPTIMIZERS = ("sgd", "adam")
LOSSES = ("ce", "smooth-ce", "circle")
NORMS = ("batch", "none")


@dataclass
class RunConfig:
    preset: str = "custom"
    profile: str = "paper"
    seed: int = 0
    question: str = "q1"
    # --- data ---
    train_on: str = "svhn"
    eval_on: tuple[str, ...] = ("svhn", "mnist")
    train_size: int | None = None   # stratified subset of the train split; None = all of it
    eval_size: int | None = None    # stratified subset of each test split; None = all of it
    val_size: int = 0               # held out of train by random_split (Q2: 10,000 of 50,000)
    data_seed: int = 0              # fixes the subsets and splits, so every preset sees the same data
    image_size: int | None = None   # resize on the device to this many pixels; None = native size
    augment: bool = False           # the study's augmentation set (loaders/augment.py)
    # --- model ---
    norm: str = "batch"             # "none" removes every BatchNorm
    dropout: float = 0.0            # before fc
    head: str = "fc"                # "none": fc removed, the model outputs its 512-d embedding
    input_mean: tuple[float, ...] | None = None  # normalization inside the model; None = raw [0,1]
    input_std: tuple[float, ...] | None = None
    pretrained: bool = False        # torchvision ResNet18_Weights.IMAGENET1K_V1 (fc excluded)
    weights: str | None = None      # local file with those weights, instead of downloading
    # --- optimisation ---
    optimizer: str = "sgd"
    lr: float = 1e-3
    momentum: float = 0.9           # SGD only
    lr_gamma: float = 0.99          # ExponentialLR, stepped once per epoch
    epochs: int = 15
    batch_size: int = 16
    loss: str = "ce"
    smoothing: float = 0.1          # smooth-ce: true class 1-s, every other class s/(K-1)
    circle_m: float = 0.4           # circle: relaxation margin (Sun et al., 2020)
    circle_gamma: float = 80.0      # circle: scale factor
    # --- fine-tuning (finetune-fc) ---
    init_from: str | None = None    # run folder whose model.pt starts this run
    trainable: tuple[str, ...] = () # parameter-name prefixes to train; () = all
    finetune_samples: int | None = None  # uniformly random training images (the study: 800)
    # --- attacks (eps and alpha on the [0,1] pixel scale) ---
    attack_eps: float = 8 / 255     # L-inf radius of FGSM/PGD (the study does not state it)
    attack_alpha: float = 2 / 255   # PGD step
    attack_steps: int = 10          # PGD iterations
    noise_pixels: int = 20          # white pixels per image before FGSM (the study's adversarial data)
    adv_prob: float = 0.0           # adversarial training: each sample replaced with this probability
    adv_method: str = "noise+fgsm"  # ... by this attack, crafted white-box against the model in training
    val_attack: str | None = None   # per-epoch adversarial accuracy on the val/test sets (white-box)
    knn_k: int = 3                  # kNN evaluation of embedding models (scikit-learn semantics)
    # --- runtime (never changes the method) ---
    device: str = "auto"
    eval_batch_size: int = 256
    deterministic: bool = False
    compile: bool = False           # torch.compile the training step (opt-in: CUDA; slower to start on CPU)

    def validate(self) -> "RunConfig":
        def choice(name: str, value: Any, valid: tuple) -> None:
            if value not in valid:
                raise UsageError(f"unknown {name} {value!r}; choose one of {', '.join(valid)}")

        choice("dataset", self.train_on, DATASETS)
        for name in self.eval_on:
            choice("dataset", name, DATASETS)
        if not self.eval_on:
            raise UsageError("no eval set: give at least one --eval DATASET")
        choice("optimizer", self.optimizer, OPTIMIZERS)
        choice("loss", self.loss, LOSSES)
        choice("norm", self.norm, NORMS)
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        for name in ("train_size", "eval_size", "finetune_samples", "image_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UsageError(f"{name.replace('_', '-')} must be at least 1, got {value}")
        if not self.lr > 0:
            raise UsageError(f"lr must be positive, got {self.lr}")
        if not 0 <= self.smoothing < 1:
            raise UsageError(f"smoothing must be in [0, 1), got {self.smoothing}")
        if not 0 <= self.dropout < 1:
            raise UsageError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0 <= self.adv_prob <= 1:
            raise UsageError(f"adv-prob must be in [0, 1], got {self.adv_prob}")
        if not 0 <= self.attack_eps < 1:
            raise UsageError(f"eps must be in [0, 1) on the pixel scale, got {self.attack_eps}")
        if self.attack_steps < 1:
            raise UsageError(f"steps must be at least 1, got {self.attack_steps}")
        if self.knn_k < 1:
            raise UsageError(f"k must be at least 1, got {self.knn_k}")
        if (self.loss == "circle") != (self.head == "none"):
            raise UsageError("loss 'circle' goes with head 'none' (an embedding model), and only with it")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise UsageError(f"unknown config keys: {', '.join(sorted(unknown))}")
        tuples = {"eval_on", "trainable", "input_mean", "input_std"}
        return cls(**{k: tuple(v) if k in tuples and v is not None else v for k, v in data.items()})

    def method(self) -> dict:
        """The fields that define what a checkpoint is a checkpoint of (scale and method, not runtime)."""
        runtime = {"device", "eval_batch_size", "deterministic", "compile", "profile"}
        return {k: v for k, v in self.to_dict().items() if k not in runtime}


@dataclass(frozen=True)
class Preset:
    name: str
    question: str
    title: str
    overrides: dict = field(default_factory=dict)
    reference: dict = field(default_factory=dict)  # the study's numbers, % (loss as is)
    kind: str = "train"                            # "train" or "finetune"
    needs: str | None = None                       # the preset whose run this one starts from


# The best Q1 setting, which the reverse experiment trains with.
_BEST = dict(loss="smooth-ce", augment=True, pretrained=True, optimizer="adam")

PRESETS: dict[str, Preset] = {p.name: p for p in [
    Preset("q1-baseline", "q1", "Baseline: SVHN, SGD, cross-entropy",
           reference={"svhn_test_acc": 92.57, "mnist_test_acc": 55.38, "train_loss": 0.044, "train_acc": 98.60}),
    Preset("q1-no-bn", "q1", "No BatchNorm", dict(norm="none"),
           reference={"svhn_test_acc": 91.91, "mnist_test_acc": 49.34, "train_loss": 0.197, "train_acc": 94.31}),
    Preset("q1-label-smoothing", "q1", "Label smoothing", dict(loss="smooth-ce"),
           reference={"svhn_test_acc": 92.95, "mnist_test_acc": 61.06, "train_loss": 1.055, "train_acc": 98.80}),
    Preset("q1-augmentation", "q1", "Augmentation", dict(augment=True),
           reference={"svhn_test_acc": 94.08, "mnist_test_acc": 57.11, "train_loss": 0.328, "train_acc": 89.97}),
    Preset("q1-pretrained", "q1", "ImageNet initialisation", dict(pretrained=True),
           reference={"svhn_test_acc": 92.71, "mnist_test_acc": 61.30, "train_loss": 0.062, "train_acc": 98.09}),
    Preset("q1-adam", "q1", "Adam instead of SGD", dict(optimizer="adam"),
           reference={"svhn_test_acc": 92.45, "mnist_test_acc": 64.96, "train_loss": 0.062, "train_acc": 98.08}),
    Preset("q1-reverse-unsupervised", "q1", "Reverse: train on MNIST with the best setting",
           dict(_BEST, train_on="mnist", eval_on=("mnist", "svhn")),
           reference={"svhn_test_acc": 23.15, "mnist_test_acc": 99.16, "train_loss": 1.047, "train_acc": 98.99}),
    # The study does not say how the fc was trained; we keep the best setting's optimizer, loss and
    # augmentation, and keep the frozen layers' BatchNorm statistics fixed (only fc changes).
    Preset("q1-reverse-supervised", "q1", "Reverse: fine-tune fc on 800 SVHN images",
           dict(_BEST, pretrained=False, train_on="svhn", eval_on=("svhn", "mnist"), epochs=10,
                trainable=("fc",), finetune_samples=800),
           reference={"svhn_test_acc": 28.20, "mnist_test_acc": 74.58},
           kind="finetune", needs="q1-reverse-unsupervised"),
]}

# Q2: ImageNet-pretrained ResNet18 on CIFAR-10 at 224 px, normalization (0.5, 0.5, 0.5) inside the
# model. The study leaves the optimizer unstated: SGD(lr=0.01, momentum=0.9) with ExponentialLR(0.99)
# is our choice, set here once for every Q2 preset.
_Q2 = dict(train_on="cifar10", eval_on=("cifar10",), val_size=10_000, image_size=224,
           input_mean=(0.5, 0.5, 0.5), input_std=(0.5, 0.5, 0.5), pretrained=True,
           optimizer="sgd", lr=0.01, momentum=0.9, lr_gamma=0.99, batch_size=128, epochs=25,
           val_attack="noise+fgsm")
# The study's adversarial numbers: 20 white pixels then FGSM, crafted once on the ImageNet model
# before fine-tuning (transfer). `adversarial` is the cifar10 test accuracy on that set.
PRESETS.update({p.name: p for p in [
    Preset("q2-examples", "q2", "Clean, noisy and adversarial test images", {**_Q2},
           kind="examples", needs="q2-baseline"),
    Preset("q2-baseline", "q2", "Cross-entropy on clean CIFAR-10", {**_Q2},
           reference={"cifar10_test_acc": 89.31, "adversarial": 11.89}),
    Preset("q2-adversarial", "q2", "Adversarial training (p = 0.5 per sample)", {**_Q2, "adv_prob": 0.5},
           reference={"cifar10_test_acc": 87.33, "adversarial": 79.65}),
    Preset("q2-circle", "q2", "Circle Loss embedding, kNN (k = 3)",
           {**_Q2, "head": "none", "loss": "circle", "epochs": 20},
           reference={"cifar10_test_acc": 89.52, "adversarial": 7.28}),
]})
REFERENCE_THREAT = {"q2": {"threat_model": "transfer", "method": "noise+fgsm", "eps_label": "not stated (8/255 used)",
                           "source": "ImageNet ResNet18 before fine-tuning"}}


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    scale: dict = field(default_factory=dict)        # per question: {"q1": {...}, "q2": {...}}
    dataset_map: dict = field(default_factory=dict)  # stand-in datasets (demo only)


# Only these fields may differ between profiles: scale, never method.
SCALE_FIELDS = {"train_size", "eval_size", "val_size", "epochs", "image_size", "finetune_samples"}
ATTACK_METHODS = ("noise", "fgsm", "pgd", "noise+fgsm", "noise+pgd", "autoattack")

PROFILES: dict[str, Profile] = {p.name: p for p in [
    Profile("paper", "the study's exact settings and full datasets"),
    Profile("quick", "the same method on stratified subsets; `make q1` in about 30 min on 2 CPU cores",
            scale={"q1": dict(train_size=5000, eval_size=2000, epochs=5),
                   "q2": dict(train_size=10_000, val_size=10_000, eval_size=1000, epochs=10, image_size=32)}),
    Profile("smoke", "a few hundred images and 1 epoch, for CI",
            scale={"q1": dict(train_size=300, eval_size=200, epochs=1, finetune_samples=100),
                   "q2": dict(train_size=300, val_size=200, eval_size=100, epochs=1, image_size=32)}),
    Profile("demo", "embedded scikit-learn digits standing in for every dataset; numbers are not the study's",
            scale={"q1": dict(train_size=600, epochs=2, finetune_samples=200),
                   "q2": dict(train_size=600, val_size=300, eval_size=200, epochs=6, image_size=32)},
            dataset_map={"svhn": "digits", "mnist": "digits-inverted", "cifar10": "digits"}),
]}


def _check_name(kind: str, name: str, valid: dict) -> None:
    if name not in valid:
        raise UsageError(f"unknown {kind} {name!r}; choose one of {', '.join(valid)}")


def resolve(preset: str, profile: str = "paper", **overrides: Any) -> RunConfig:
    """The fully resolved config: baseline <- preset <- profile scale <- explicit overrides."""
    _check_name("preset", preset, PRESETS)
    _check_name("profile", profile, PROFILES)
    p, prof = PRESETS[preset], PROFILES[profile]
    values = dict(p.overrides)
    for key, value in prof.scale.get(p.question, {}).items():
        if key == "epochs":  # a profile caps epochs; it never adds any
            value = min(value, values.get("epochs", RunConfig.epochs))
        if key == "finetune_samples" and "finetune_samples" not in values:
            continue
        values[key] = value
    values.update({k: v for k, v in overrides.items() if v is not None})
    cfg = RunConfig(preset=preset, profile=profile, question=p.question, **values)
    if prof.dataset_map:
        remap = lambda name: prof.dataset_map.get(name, name)  # noqa: E731
        cfg.train_on = remap(cfg.train_on)
        cfg.eval_on = tuple(dict.fromkeys(remap(n) for n in cfg.eval_on))
    return cfg.validate()


def dataset_roles(profile: str) -> dict[str, str]:
    """Which dataset stands in for which study dataset under this profile (identity outside demo)."""
    return dict(PROFILES[profile].dataset_map)
