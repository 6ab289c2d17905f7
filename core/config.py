"""RunConfig: every setting of one training run, as plain data (no torch, no registry imports).

experiments/ builds these (section <- profile scale <- overrides) and checks names against the
registries; every lower layer (trainers, eval, runs) receives one and reads its fields. A finished
run stores `to_dict()` in metrics.json; `from_dict` reads it back.

`version` is the code version of the results: bump it on purpose (in experiments/sections.py) when a
code change alters what a run computes, so Make reruns exactly the runs it affects.
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field

from core.errors import UsageError

# Fields that never change what a run computes (runtime and bookkeeping): left out of checkpoint checks.
RUNTIME_FIELDS = ("device", "eval_batch_size", "deterministic", "compile", "profile", "precision", "channels_last")
# Fields stored as tuples (JSON gives lists back).
TUPLE_FIELDS = ("eval_on", "trainable", "input_mean", "input_std", "optional_eval", "randconv_kernels")


@dataclass
class RunConfig:
    preset: str = "custom"          # the section's name (the key results files have always used)
    profile: str = "paper"
    seed: int = 0
    question: str = "q1"
    version: int = 1                # code version of the results (see the module docstring)
    # --- data ---
    train_on: str = "svhn"
    eval_on: tuple[str, ...] = ("svhn", "mnist")
    train_size: int | None = None   # subset of the train split (see train_take); None = all of it
    train_take: str = "stratified"  # "stratified" subset, or the "first" train_size images (MNIST-10K)
    optional_eval: tuple[str, ...] = ()  # eval sets skipped (and recorded) when their data is missing
    eval_size: int | None = None    # stratified subset of each test split; None = all of it
    val_size: int = 0               # held out of train by random_split (Q2: 10,000 of 50,000)
    data_seed: int = 0              # fixes the subsets and splits, so every section sees the same data
    image_size: int | None = None   # resize the batches on the device to this many pixels; None = native size
    # resize inside the model (a layer, like the normalisation): the threat model stays at the batches' pixels
    model_input_size: int | None = None
    augment: bool = False           # the study's augmentation set (loaders/augment.py)
    stand_ins: dict = field(default_factory=dict)  # study dataset -> the dataset standing in for it (demo)
    randconv: bool = False          # RandConv (Xu et al. 2021) on every training batch
    randconv_mix: bool = True       # "mix" (alpha * conv(x) + (1 - alpha) * x), else "img" (conv(x) alone)
    randconv_identity_prob: float = 0.0  # per view, the probability of leaving the batch unchanged (img: 0.5)
    randconv_views: int = 3         # augmented views per image; cross-entropy on the first
    # views after the first are random convolutions of the first view, not of the batch, as the authors' code makes
    # them (wildphoton/RandConv randconv_trainer.py overwrites `inputs` with the first view before drawing the
    # others); False: every view from the batch (this field's default, so older results files read as what ran)
    randconv_chain: bool = False
    randconv_weight: float = 10.0   # weight of the consistency (KL to the views' mean) loss
    randconv_kernels: tuple[int, ...] = (1, 3, 5, 7)  # kernel size drawn uniformly per view
    # Pro-RandConv (Choi et al. 2023, loaders/prorandconv.py) instead: one 3x3 deformable block repeated 1..repeats
    # times; the batch and its augmented copy, cross-entropy on both (views, weight and kernels are then unused)
    randconv_progressive: bool = False
    randconv_repeats: int = 10
    # --- model ---
    arch: str = "resnet18"          # "digitnet": the DG digits benchmark's small ConvNet
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
    # exponential (lr_gamma per epoch), piecewise (x0.1 at 50% and 75% of the epochs; Rice et al. 2020), cyclic
    # (per step, 0 -> lr at 40% of the epochs -> 0; Wong et al. 2020) or cosine (per epoch, lr -> 0 at the end)
    lr_schedule: str = "exponential"
    weight_decay: float = 0.0
    crop_flip: bool = False         # random crop with 4 px zero padding and horizontal flip (CIFAR-10 recipes)
    # keep the epoch with the best white-box robust accuracy on the validation split (Rice et al. 2020's early
    # stopping) instead of the last; the chosen epoch is recorded
    keep_best: bool = False
    # the DG benchmark authors' checkpoint selection (wildphoton/RandConv): every select_every training iterations
    # (and after the last), clean accuracy on the held-out source split, with RandConv on for a RandConv model (the
    # mean over select_draws random draws), and the best checkpoint kept; 0: off (the last epoch, or keep_best)
    select_every: int = 0
    select_draws: int = 10
    epochs: int = 15
    batch_size: int = 16
    loss: str = "ce"
    smoothing: float = 0.1          # smooth-ce: true class 1-s, every other class s/(K-1)
    circle_m: float = 0.4           # circle: relaxation margin (Sun et al., 2020)
    circle_gamma: float = 80.0      # circle: scale factor
    trades_beta: float = 6.0        # trades: weight of the KL term (Zhang et al. 2019: 6 on CIFAR-10)
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
    attack_train_mode: bool = False # craft the training attack with the model in train mode (Fast-AT, Wong et al.)
    val_attack: str | None = None   # per-epoch adversarial accuracy on the val/test sets (white-box)
    knn_k: int = 3                  # kNN evaluation of embedding models (scikit-learn semantics)
    # --- runtime (never changes the method) ---
    device: str = "auto"
    eval_batch_size: int = 256
    deterministic: bool = False
    compile: bool = False           # torch.compile the training step (opt-in: CUDA; slower to start on CPU)
    precision: str = "auto"         # auto (bf16 autocast on CUDA), bf16 (autocast on any device), fp32
    channels_last: bool | None = None  # None: on CUDA only

    def validate(self) -> RunConfig:
        """Ranges and combinations. Names (datasets, losses, ...) are checked against their registries
        by experiments.resolve."""
        check_seed(self.seed)
        check_seed(self.data_seed, "data-seed")
        check_device(self.device)
        if self.precision not in ("auto", "bf16", "fp32"):
            raise UsageError(f"precision must be auto, bf16 or fp32, got {self.precision!r}")
        if not self.eval_on:
            raise UsageError("no eval set: give at least one --eval DATASET")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        for name in ("train_size", "eval_size", "finetune_samples", "image_size", "model_input_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UsageError(f"{name.replace('_', '-')} must be at least 1, got {value}")
        for f in dataclasses.fields(self):  # every number finite (a NaN passes every comparison below)
            value = getattr(self, f.name)
            for v in value if isinstance(value, tuple) else (value,):
                if isinstance(v, float) and not math.isfinite(v):
                    raise UsageError(f"{f.name.replace('_', '-')} must be a finite number, got {v}")
        if not self.lr > 0:
            raise UsageError(f"lr must be positive, got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise UsageError(f"momentum must be in [0, 1), got {self.momentum}")
        if not 0 < self.lr_gamma <= 1:
            raise UsageError(f"lr-gamma must be in (0, 1], got {self.lr_gamma}")
        if self.circle_gamma <= 0 or not 0 <= self.circle_m < 1 or self.trades_beta < 0:
            raise UsageError("circle-gamma must be positive, circle-m in [0, 1) and trades-beta at least 0, got "
                             f"{self.circle_gamma}, {self.circle_m} and {self.trades_beta}")
        if self.lr_schedule not in ("exponential", "piecewise", "cyclic", "cosine"):
            raise UsageError(f"lr-schedule must be exponential, piecewise, cyclic or cosine, got {self.lr_schedule!r}")
        if self.weight_decay < 0:
            raise UsageError(f"weight-decay must be at least 0, got {self.weight_decay}")
        if self.select_every < 0 or self.select_draws < 1:
            raise UsageError(f"select-every must be at least 0 and select-draws at least 1, got {self.select_every} "
                             f"and {self.select_draws}")
        if self.select_every and not self.val_size:
            raise UsageError("select-every validates on the held-out source split: it needs a val-size")
        if self.select_every and self.keep_best:
            raise UsageError("select-every and keep-best each choose the kept model: use one")
        if self.keep_best and not self.val_attack:
            raise UsageError("keep-best selects by the robust validation accuracy: it needs a val-attack")
        if self.attack_train_mode and not (self.adv_method == "pgd" and self.attack_steps == 1):
            raise UsageError("attack-train-mode is Fast-AT's: a one-step PGD (FGSM from a random start) attack")
        if not 0 < self.attack_alpha < 1:
            raise UsageError(f"attack-alpha must be in (0, 1) on the pixel scale, got {self.attack_alpha}")
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
        if self.train_take not in ("stratified", "first"):
            raise UsageError(f"train-take must be 'stratified' or 'first', got {self.train_take!r}")
        if self.randconv and (self.randconv_views < 1 or not self.randconv_kernels
                              or any(k < 1 or k % 2 == 0 for k in self.randconv_kernels)):
            raise UsageError("randconv needs at least one view and odd kernel sizes of at least 1")
        if self.randconv and self.head != "fc":
            raise UsageError("randconv's consistency loss needs class logits: it goes with head 'fc' only")
        if self.randconv_repeats < 1:
            raise UsageError(f"randconv-repeats must be at least 1, got {self.randconv_repeats}")
        if self.randconv_progressive and not self.randconv:
            raise UsageError("randconv-progressive is a RandConv variant: it needs randconv on")
        if not 0 <= self.randconv_identity_prob < 1:
            raise UsageError(f"randconv-identity-prob must be in [0, 1), got {self.randconv_identity_prob}")
        if self.randconv and self.randconv_weight < 0:
            raise UsageError(f"randconv weight must be at least 0, got {self.randconv_weight}")
        if self.loss == "trades" and (self.adv_prob > 0 or self.head != "fc" or self.randconv):
            raise UsageError("loss 'trades' crafts its own adversarial images: no adv-prob, randconv or embedding head")
        if (self.loss == "circle") != (self.head == "none"):
            raise UsageError("loss 'circle' goes with head 'none' (an embedding model), and only with it")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RunConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise UsageError(f"unknown config keys: {', '.join(sorted(unknown))}")
        return cls(**{k: tuple(v) if k in TUPLE_FIELDS and v is not None else v for k, v in data.items()})

    def method(self) -> dict:
        """The fields that define what a checkpoint is a checkpoint of (scale and method, not runtime)."""
        return {k: v for k, v in self.to_dict().items() if k not in RUNTIME_FIELDS}


def saved_method(saved: dict | None) -> dict:
    """The method fields of a config saved as JSON (a results file's config, a checkpoint's method), as JSON values,
    a field added since it was saved read as its default: the run ran at it."""
    from core.io import to_jsonable  # core.io imports torch; the config does not need it

    defaults = to_jsonable(RunConfig().method())
    return {**defaults, **{k: v for k, v in (saved or {}).items() if k not in RUNTIME_FIELDS}}


MAX_SEED = 2**32 - 1  # numpy's seed range; torch's and Python's are wider


def check_seed(seed: int, name: str = "seed") -> int:
    if not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise UsageError(f"{name} must be an integer from 0 to {MAX_SEED}, got {seed}")
    return seed


_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def check_device(name: str) -> str:
    if not isinstance(name, str) or not _DEVICE.fullmatch(name):
        raise UsageError(f"device {name!r} is not one of auto, cpu, cuda, cuda:N, mps")
    return name


# ---------------------------------------------------------------- --set key=value

_NOT_SETTABLE = ("preset", "profile", "question", "version", "stand_ins", "seed")  # the CLI's own options, or derived


def _parse_one(key: str, text: str, kind: str):
    """text as the type the field's annotation names (the annotations are strings here)."""
    from fractions import Fraction

    text = text.strip()
    if "None" in kind and text.lower() in ("none", "null", ""):
        return None
    base = kind.replace(" | None", "").strip()
    try:
        if base.startswith("tuple["):
            inner = base[6:].split(",")[0].strip()
            return tuple(_parse_one(key, part, inner) for part in text.split(",") if part.strip())
        if base == "bool":
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if base == "int":
            return int(text)
        if base == "float":
            return float(Fraction(text)) if "/" in text else float(text)
        if base == "str":
            return text
    except (ValueError, ZeroDivisionError):
        raise UsageError(f"--set {key}={text}: expected {kind}") from None
    raise UsageError(f"--set {key}: a field of type {kind} cannot be set from the command line")


def parse_settings(items) -> dict:
    """`--set key=value` items -> {field: value}, each checked against RunConfig's fields and their types.
    Ranges and names are checked later, with the whole config (RunConfig.validate, the registries)."""
    import difflib

    fields = {f.name: f for f in dataclasses.fields(RunConfig)}
    settings = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"--set {item!r}: write key=value, e.g. --set adv_prob=0.3")
        key, text = item.split("=", 1)
        key = key.strip().replace("-", "_")
        if key not in fields or key in _NOT_SETTABLE:
            close = difflib.get_close_matches(key, [f for f in fields if f not in _NOT_SETTABLE], n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else "; the fields are listed in core/config.py"
            why = "has its own option" if key in _NOT_SETTABLE else "is not a RunConfig field"
            raise UsageError(f"--set {key}: {why}{hint}")
        if key in settings:
            raise UsageError(f"--set {key} is given twice")
        settings[key] = _parse_one(key, text, str(fields[key].type))
    return settings
