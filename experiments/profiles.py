"""Profiles: the scale of a run, never its method. Each carries every size: training subsets and
epochs per question, evaluation sizes (UMAP points, fine-tuning-curve samples), and, for the demo,
the embedded datasets that stand in for the study's."""
from __future__ import annotations

from dataclasses import dataclass, field

# Only these RunConfig fields may differ between profiles: scale, never method.
SCALE_FIELDS = ("train_size", "eval_size", "val_size", "epochs", "image_size", "model_input_size", "finetune_samples")


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    scale: dict = field(default_factory=dict)        # per question: {"q1": {...}, "q2": {...}}
    dataset_map: dict = field(default_factory=dict)  # study dataset -> stand-in (demo only)
    umap_points: int = 10_000                        # test images embedded by UMAP (stratified)
    curve_samples: tuple[int, ...] = (100, 200, 400, 800, 1600, 3200)  # fc fine-tuning curve points
    autoattack_points: int = 1000                    # AutoAttack's fixed stratified test subset (RobustBench: 1,000);
    # the standard AutoAttack runs ~7,000 forward passes (APGD-CE 100, APGD-T and FAB-T 9 x 100, Square 5,000) on
    # the images still robust: on 2 CPU cores 1.5-3 minutes per robust model whatever the (small) subset
    sweep_radii: tuple[int, ...] | None = None       # the eps sweep's radii kept (in 255ths; None: the section's all).
    # Small profiles keep 0, the attacks' own 8 (both reuse numbers already measured), 2, 32 and 64 (audit check 5)
    square_queries: int = 5000                       # the audit's Square, run alone (AutoAttack's standard: 5,000)
    # the sections whose models get AutoAttack and the gradient-masking audit (None: every Q2 model). The demo
    # audits none: its barely trained Q2 models are robust by predicting one class, so the standard AutoAttack ran
    # its full length on each (192 s and 124 s of a 12.6-minute demo). The smoke pipeline in `make test` audits the
    # baseline, the study's adversarial training, PGD-AT and TRADES (every path of the audit); not Fast-AT, whose
    # one smoke epoch at the recipe's lr 0.2 leaves a model robust by predicting one class (the standard AutoAttack
    # then ran its full length: 97 s of the pipeline's 497), nor the kNN model (about 7 minutes, the same way),
    # whose audit path tests/eval/test_audit.py runs
    audit_sections: tuple[str, ...] | None = None


PROFILES: dict[str, Profile] = {p.name: p for p in [
    Profile("paper", "the study's exact settings and full datasets"),
    Profile("quick", "the same method on stratified subsets; `make q1` in about 30 min on 2 CPU cores",
            scale={"q1": dict(train_size=5000, eval_size=2000, epochs=5),
                   # the ConvNet: MNIST-10K for 8 epochs (2,500 of the protocol's 10,000 iterations; ~25 s per
                   # epoch on 2 CPU cores, RandConv's 3 views ~55 s); ResNet18: a 5,000-image slice for 5 epochs
                   "dg": dict(eval_size=2000, val_size=2000, epochs=8),
                   "dg:resnet18": dict(train_size=5000, eval_size=2000, epochs=5),
                   "q2": dict(train_size=10_000, val_size=10_000, eval_size=1000, epochs=10, model_input_size=32)},
            umap_points=2000, autoattack_points=200, square_queries=1000),
    Profile("smoke", "a few hundred images and 1 epoch, for CI",
            scale={"q1": dict(train_size=300, eval_size=200, epochs=1, finetune_samples=100),
                   "dg": dict(train_size=300, eval_size=200, val_size=100, epochs=1),
                   "q2": dict(train_size=300, val_size=200, eval_size=50, epochs=1, model_input_size=32)},
            umap_points=100, curve_samples=(25, 50), autoattack_points=8, square_queries=50,
            sweep_radii=(0, 2, 8, 32, 64),
            audit_sections=("q2-baseline", "q2-adversarial", "q2-pgd-at", "q2-trades")),
    # `make demo` on 2 CPU cores: 400 training images, Q2 trained 2 epochs and evaluated on 50 test images, the DG
    # benchmark on 200 images for 1 epoch, no AutoAttack or audit
    Profile("demo", "embedded scikit-learn digits standing in for every dataset; numbers are not the study's",
            scale={"q1": dict(train_size=400, epochs=2, finetune_samples=200),
                   # the DG benchmark: every section once, at smoke's size (the ConvNet's 5x5 convolutions on 2
                   # CPU cores take 10 s an epoch at 400 images)
                   "dg": dict(train_size=200, val_size=100, eval_size=200, epochs=1),
                   "q2": dict(train_size=400, val_size=200, eval_size=50, epochs=2, model_input_size=32)},
            dataset_map={"svhn": "digits", "mnist": "digits-inverted", "cifar10": "digits"},
            umap_points=100, curve_samples=(50, 100, 200), autoattack_points=10, sweep_radii=(0, 2, 8, 32, 64),
            square_queries=200, audit_sections=()),
]}
