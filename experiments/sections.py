"""The study as data: one Section per report section, end to end.

A section holds its training config (only what differs from RunConfig's defaults), the study's own
numbers (`reference`, shown beside ours and never written as our output), its evaluation plan (the
results files it adds beside metrics.json), its dependencies (`needs`: the run it starts from or
evaluates; `transfer_source`), and its report prose. The Makefile (through experiments/matrix.py), the
planner and the report iterate over SECTIONS. No other file defines a section; a few pick one by name as
a default or an example (cli.py's finetune-fc default, bench/gpu_check.py's paper slice, help texts), and
fail at once if it is gone.

Adding a section: append one Section here (and its tests). `make help` lists it, `make q1`/`make q2`
run it, and the report shows it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from eval.plan import ALPHA, EPS, STEPS, AttackPlan, KnnPlan, UmapPlan, attacks


@dataclass(frozen=True)
class Question:
    name: str
    title: str
    intro: str
    layout: str                       # the report's table: "domains" (Q1) or "robustness" (Q2)
    datasets: tuple[tuple[str, str], ...] = ()  # domains: (study dataset, column label)
    rerun: str = ""                   # the command that adds seeds, quoted when seed noise is unknown
    reference_threat: str = ""        # how the study's adversarial number was made


@dataclass(frozen=True)
class Section:
    name: str
    question: str
    title: str
    overrides: dict = field(default_factory=dict)   # RunConfig fields that differ from the defaults
    reference: dict = field(default_factory=dict)   # the study's numbers, % (loss as is)
    kind: str = "train"                  # "train", "finetune" (from the `needs` run) or "none" (evaluates `needs`)
    needs: str | None = None             # the section whose run this one starts from or evaluates
    transfer_source: str | None = None   # without ImageNet weights, transfer attacks are crafted on this section's run
    evals: tuple = ()                    # AttackPlan / KnnPlan / UmapPlan: one results file each
    sweep: str | None = None             # "finetune_samples": one run per profile.curve_samples point
    compare_to: str | None = None        # honesty checks: differences to this section against seed noise
    also_compare_to: tuple[str, ...] = ()  # further sections its gains are judged against (the same test, no
                                           # "changed but not run" check: their settings differ in more than one way)
    prose: str = ""                      # the report's paragraph on the method
    notes: tuple[str, ...] = ()          # report notes, formatted with the section's reference numbers


QUESTIONS: dict[str, Question] = {q.name: q for q in [
    Question("q1", "Q1 · Generalization: train on SVHN, test on SVHN and on MNIST",
             "A ResNet18 learns street-view house numbers (SVHN) and is then tested on handwritten digits (MNIST), "
             "a domain it never saw. The gap between the two accuracies measures how far what it learned transfers; "
             "each ablation changes one ingredient of the baseline.",
             layout="domains", datasets=(("svhn", "SVHN"), ("mnist", "MNIST")), rerun='make q1 SEEDS="0 1 2"'),
    Question("dg", "Q1, beyond the study · Single-source domain generalization (digits)",
             "The field's benchmark for Q1's question: train on the first 10,000 MNIST training images (32x32 RGB) "
             "and test on digit domains never seen in training: USPS, SVHN, MNIST-M and SynDigits (SYN). Each target "
             "that is present is evaluated; the average is over the targets present. The published rows are other "
             "papers' numbers with the benchmark's small ConvNet, shown for reference, never as our output.",
             layout="targets", datasets=(("mnist", "MNIST (source)"), ("usps", "USPS"), ("svhn", "SVHN"),
                                         ("mnistm", "MNIST-M"), ("syn", "SYN")),
             rerun='make dg SEEDS="0 1 2"'),
    Question("q2", "Q2 · Robustness: CIFAR-10 under noise, FGSM and PGD",
             "A ResNet18 (ImageNet-initialised in the study; each section's line below says how ours started) is "
             "fine-tuned on CIFAR-10 and attacked with L-inf perturbations on the "
             "[0,1] pixel scale. Every adversarial number names its threat model: *white-box* attacks are crafted "
             "against the model being evaluated; *transfer* attacks are crafted once against a fixed source model "
             "(the study's protocol) and are usually much weaker.",
             layout="robustness", datasets=(("cifar10", "CIFAR-10"),), rerun='make q2 SEEDS="0 1 2"',
             reference_threat="transfer noise+fgsm (source: ImageNet ResNet18 before fine-tuning; "
                              "eps not stated (8/255 used))"),
]}

# The best Q1 setting, which the reverse experiment trains with.
_BEST = dict(loss="smooth-ce", augment=True, pretrained=True, optimizer="adam")
# fc-only fine-tuning of the reverse model on SVHN. The study does not say how the fc was trained; we keep
# the best setting's optimizer, loss and augmentation, and keep the frozen layers' BatchNorm statistics
# fixed (only fc changes).
_FC = dict(_BEST, pretrained=False, train_on="svhn", eval_on=("svhn", "mnist"), epochs=10, trainable=("fc",),
           finetune_samples=800)

# RandConv, mix variant, as wildphoton/RandConv's exp_mnist10k.sh runs it: kernels {1,3,5,7}, 3 views, consistency 10;
# the second and third views are random convolutions of the first (their randconv_trainer.py: `inputs` is
# overwritten with the first view before the others are drawn from it).
_RANDCONV = dict(randconv=True, randconv_views=3, randconv_weight=10.0, randconv_kernels=(1, 3, 5, 7),
                 randconv_chain=True)
# RandConv, img variant (RC_img of the same script: -idp 0.5 -cl -clw 5, no -mix): each view is its input itself with
# probability 0.5, else that input's random convolution alone (the input: the batch for the first view, the first
# view for the others); consistency weight 5.
_RANDCONV_IMG = dict(_RANDCONV, randconv_weight=5.0, randconv_mix=False, randconv_identity_prob=0.5)
# The DG digits benchmark: the first 10,000 MNIST training images at 32x32 RGB, every target present.
_DG = dict(train_on="mnist", train_size=10_000, train_take="first", image_size=32,
           eval_on=("mnist", "usps", "svhn", "mnistm", "syn"), optional_eval=("usps", "svhn", "mnistm", "syn"))
# The benchmark's ConvNet protocol (wildphoton/RandConv exp_mnist10k.sh, the M-ADA code alike): Adam, lr 1e-4,
# no schedule, batch 32, 10,000 iterations = 32 epochs of 10,000 images; inputs normalised with (0.5, 0.5, 0.5).
# Checkpoint selection as the authors' train_digits.py does it: every 250 iterations, MNIST validation accuracy
# (RandConv on, the mean of 10 draws, for RandConv models), the best kept. They validate on MNIST's test split; we
# hold out 10,000 MNIST training images beyond the first 10,000, so the MNIST test column stays a test.
_DG_CONVNET = dict(_DG, arch="digitnet", norm="none", optimizer="adam", lr=1e-4, lr_gamma=1.0, batch_size=32,
                   epochs=32, input_mean=(0.5, 0.5, 0.5), input_std=(0.5, 0.5, 0.5), pretrained=False,
                   val_size=10_000, select_every=250, select_draws=10)
# Published rows (% on each target; MNIST-10K, the small ConvNet). ERM: the row the M-ADA paper reports (as
# quoted in issue 12). RandConv: the mix-variant row as the Pro-RandConv paper (Choi et al., CVPR 2023)
# quotes it. Neither was confirmed against the papers' PDFs here (not retrievable offline); see README.
_PUBLISHED_ERM = {"svhn_test_acc": 27.83, "mnistm_test_acc": 52.72, "syn_test_acc": 39.65, "usps_test_acc": 76.94,
                  "average_test_acc": 49.29}
_PUBLISHED_RANDCONV = {"svhn_test_acc": 61.66, "mnistm_test_acc": 84.53, "syn_test_acc": 67.87,
                       "usps_test_acc": 85.31, "average_test_acc": 74.84}
# RandConv's own headline digits row (Xu et al., ICLR 2021: average 72.88), which we read as the img variant (RC_img,
# p = 0.5, consistency weight 5); the per-target figures as they are quoted with that average.
_PUBLISHED_RANDCONV_IMG = {"svhn_test_acc": 57.52, "mnistm_test_acc": 87.76, "syn_test_acc": 62.88,
                           "usps_test_acc": 83.36, "average_test_acc": 72.88}
# Pro-RandConv (Choi et al., CVPR 2023) on the same ConvNet, with its own digits protocol: SGD lr 0.01, momentum
# 0.9, batch 64, cosine schedule, 500 epochs of MNIST-10K, the last epoch kept (the paper selects nothing); the
# block's settings and the ones we chose are in loaders/prorandconv.py.
_PRORANDCONV = dict(_DG_CONVNET, randconv=True, randconv_progressive=True, randconv_repeats=10, randconv_views=2,
                    randconv_weight=0.0, optimizer="sgd", lr=0.01, momentum=0.9, lr_schedule="cosine",
                    batch_size=64, epochs=500, select_every=0)
# The benchmark's record: Pro-RandConv's own row (Choi et al., CVPR 2023, Table 1).
_PUBLISHED_PRORANDCONV = {"svhn_test_acc": 69.67, "mnistm_test_acc": 82.30, "syn_test_acc": 79.77,
                          "usps_test_acc": 93.67, "average_test_acc": 81.35}

# Q2: ImageNet-pretrained ResNet18 on CIFAR-10 at 224 px, normalization (0.5, 0.5, 0.5) inside the
# model. The study leaves the optimizer unstated: SGD(lr=0.01, momentum=0.9) with ExponentialLR(0.99)
# is our choice, set here once for every Q2 section.
_Q2 = dict(train_on="cifar10", eval_on=("cifar10",), val_size=10_000, model_input_size=224,
           input_mean=(0.5, 0.5, 0.5), input_std=(0.5, 0.5, 0.5), pretrained=True,
           optimizer="sgd", lr=0.01, momentum=0.9, lr_gamma=0.99, batch_size=128, epochs=25,
           val_attack="noise+fgsm")
# Every Q2 model: white-box and transfer FGSM, PGD-10 and the study's noise+FGSM at eps 8/255, and the
# white-box robust accuracy of FGSM and PGD-10 against eps (PGD's step scaled with eps).
_STUDY_ATTACK = dict(eps=EPS, alpha=ALPHA, steps=STEPS, n_pixels=20)
_Q2_ATTACKS = AttackPlan(attacks(("fgsm", "pgd", "noise+fgsm"), ("white-box", "transfer"), **_STUDY_ATTACK),
                         eps_sweep=(0, 1 / 255, 2 / 255, 4 / 255, 8 / 255, 16 / 255, 32 / 255, 64 / 255),
                         sweep_methods=("fgsm", "pgd"))
# AutoAttack (standard: APGD-CE, APGD-T, FAB-T, Square; torchattacks) and the gradient-masking audit (FGSM,
# PGD-10, PGD-50 x5 restarts, Square alone, uniform noise; for a kNN model PGD and Square on the kNN itself),
# all on the profile's fixed stratified subset.
_AUTOATTACK = AttackPlan(attacks(("autoattack",), ("white-box",), **_STUDY_ATTACK), file="audit.json",
                         subset="autoattack_points", audit=True)
# What every Q2 training beyond the baseline shares: judged against it, attacked by transfer from it, evaluated alike.
_VS_BASELINE = dict(compare_to="q2-baseline", transfer_source="q2-baseline", evals=(_Q2_ATTACKS, _AUTOATTACK))
# The defences' published recipe (beyond the study): SGD momentum 0.9, weight decay 5e-4, random crop (4 px) and
# horizontal flip, validated each epoch by white-box PGD-10 (eps 8/255, 2/255 steps) on the held-out split, and
# the epoch with the best robust validation accuracy kept (Rice et al. 2020, locuslab/robust_overfitting).
_RECIPE = dict(weight_decay=5e-4, crop_flip=True, momentum=0.9, val_attack="pgd", keep_best=True)
_UMAP = UmapPlan(attacks(("noise+fgsm",), ("white-box",), **_STUDY_ATTACK)[0])

SECTIONS: dict[str, Section] = {s.name: s for s in [
    Section("q1-baseline", "q1", "Baseline: SVHN, SGD, cross-entropy",
            reference={"svhn_test_acc": 92.57, "mnist_test_acc": 55.38, "train_loss": 0.044, "train_acc": 98.60},
            prose="The reference point: SGD with momentum on cross-entropy, no regularisation beyond BatchNorm."),
    Section("q1-no-bn", "q1", "No BatchNorm", dict(norm="none"), compare_to="q1-baseline",
            reference={"svhn_test_acc": 91.91, "mnist_test_acc": 49.34, "train_loss": 0.197, "train_acc": 94.31},
            prose="BatchNorm normalises each layer's activations with batch statistics, which smooths the loss "
                  "surface and acts as a mild regulariser; it also ties the model to the training domain's "
                  "statistics. Removing it (dropout is the other classic regulariser, off here) should slow "
                  "training and cost some accuracy, in-domain and out."),
    Section("q1-label-smoothing", "q1", "Label smoothing", dict(loss="smooth-ce"), compare_to="q1-baseline",
            reference={"svhn_test_acc": 92.95, "mnist_test_acc": 61.06, "train_loss": 1.055, "train_acc": 98.80},
            prose="Label smoothing trains towards 1-s on the true class and s/(K-1) on each other class instead "
                  "of a one-hot target, which discourages over-confident logits. Calibrated, less extreme features "
                  "can transfer better to a new domain; the training loss stays high by construction (it cannot "
                  "fall below the target's entropy)."),
    Section("q1-augmentation", "q1", "Augmentation", dict(augment=True), compare_to="q1-baseline",
            reference={"svhn_test_acc": 94.08, "mnist_test_acc": 57.11, "train_loss": 0.328, "train_acc": 89.97},
            prose="Random affine warps, brightness/contrast jitter, perspective and crops show the network many "
                  "plausible variants of each digit, so it must rely on shape rather than position or colour. "
                  "Flips are left out on purpose: a flipped 6 reads as a 9 and a flipped 2 as a 5, which would "
                  "teach wrong labels."),
    Section("q1-pretrained", "q1", "ImageNet initialisation", dict(pretrained=True), compare_to="q1-baseline",
            reference={"svhn_test_acc": 92.71, "mnist_test_acc": 61.30, "train_loss": 0.062, "train_acc": 98.09},
            prose="Starting from ImageNet weights gives the network generic edge and texture detectors before it "
                  "sees a digit; features learned on a broad domain tend to transfer better to another."),
    Section("q1-adam", "q1", "Adam instead of SGD", dict(optimizer="adam"), compare_to="q1-baseline",
            reference={"svhn_test_acc": 92.45, "mnist_test_acc": 64.96, "train_loss": 0.062, "train_acc": 98.08},
            prose="Adam scales each parameter's step by a running estimate of its gradient's magnitude, so it "
                  "makes fast progress with little tuning; SGD with momentum is often said to find flatter minima "
                  "that generalise better. The comparison tests that folklore on a domain shift."),
    Section("q1-reverse-unsupervised", "q1", "Reverse: train on MNIST with the best setting",
            dict(_BEST, train_on="mnist", eval_on=("mnist", "svhn")),
            reference={"svhn_test_acc": 23.15, "mnist_test_acc": 99.16, "train_loss": 1.047, "train_acc": 98.99},
            prose="The reverse direction with the best settings: learn MNIST, test on SVHN. Clean, centred MNIST "
                  "digits carry much less variation than SVHN, so transfer is expected to be poor."),
    Section("q1-reverse-supervised", "q1", "Reverse: fine-tune fc on a few SVHN images (the study: 800)", dict(_FC),
            reference={"svhn_test_acc": 28.20, "mnist_test_acc": 74.58},
            kind="finetune", needs="q1-reverse-unsupervised",
            prose="Only the final layer is retrained on a few hundred labelled SVHN images, the rest frozen "
                  "(BatchNorm statistics included). It asks whether the MNIST features already separate SVHN "
                  "digits and only the read-out is wrong."),
    Section("q1-finetune-curve", "q1", "Reverse: SVHN accuracy against the number of fc fine-tuning images",
            dict(_FC), kind="finetune", needs="q1-reverse-unsupervised", sweep="finetune_samples",
            prose="The same fc-only fine-tuning on a growing number of labelled SVHN images: how fast the read-out "
                  "recovers shows how much SVHN structure the frozen MNIST features already carry."),
    Section("q1-randconv", "q1", "RandConv on the baseline (SVHN → MNIST)", dict(_RANDCONV), compare_to="q1-baseline",
            prose="Beyond the study: the baseline trained with RandConv (Xu et al., 2021): every batch passes through "
                  "freshly drawn random convolutions (kernel 1–7, mixed with the input) in three views, with a "
                  "consistency loss between the views' predictions. Colour and texture change at random, shape does "
                  "not, so the network has to rely on shape, which is what carries from house numbers to handwriting."),
    Section("q1-reverse-randconv", "q1", "RandConv on the reverse setting (MNIST → SVHN)",
            dict(_BEST, **_RANDCONV, train_on="mnist", eval_on=("mnist", "svhn")), compare_to="q1-reverse-unsupervised",
            prose="Beyond the study: the reverse direction's best setting plus RandConv. This is the direction the "
                  "field's benchmark measures (MNIST → SVHN), and the one where the study's ablations left most on the "
                  "table (23% on SVHN)."),
    Section("dg-erm-digitnet", "dg", "ERM, the benchmark's ConvNet", dict(_DG_CONVNET), reference=_PUBLISHED_ERM,
            prose="Empirical risk minimisation: the benchmark's small ConvNet trained on MNIST-10K with its published "
                  "protocol (Adam 1e-4, batch 32, 10,000 iterations), nothing else. As the authors do, the kept "
                  "checkpoint is the one with the best MNIST validation accuracy, checked every 250 iterations (on "
                  "10,000 MNIST training images beyond the first 10,000; the authors validate on MNIST's test split; "
                  "RandConv models are validated with RandConv on, the mean of 10 draws). Its row is the baseline "
                  "every method's gain is measured against, by the paired bootstrap on the same test images."),
    Section("dg-randconv-digitnet", "dg", "RandConv (mix), the benchmark's ConvNet", dict(_DG_CONVNET, **_RANDCONV),
            reference=_PUBLISHED_RANDCONV, compare_to="dg-erm-digitnet", also_compare_to=("dg-randconv-img-digitnet",),
            prose="The same network and protocol with RandConv's mix variant and its consistency loss (3 views, "
                  "weight 10), the settings of the authors' MNIST-10K script."),
    Section("dg-randconv-img-digitnet", "dg", "RandConv (img), the benchmark's ConvNet",
            dict(_DG_CONVNET, **_RANDCONV_IMG), reference=_PUBLISHED_RANDCONV_IMG, compare_to="dg-erm-digitnet",
            prose="RandConv's img variant, the RC_img line of the authors' MNIST-10K script: each of the 3 views is, "
                  "with probability 0.5, the batch itself, else its random convolution alone (no mixing), with a "
                  "consistency weight of 5. Its published row is RandConv's own headline digits result (Xu et al., "
                  "2021: average 72.88); the mix row beside it is as Pro-RandConv's paper quotes it."),
    Section("dg-prorandconv-digitnet", "dg", "Pro-RandConv, the benchmark's ConvNet", dict(_PRORANDCONV),
            reference=_PUBLISHED_PRORANDCONV, compare_to="dg-erm-digitnet",
            also_compare_to=("dg-randconv-digitnet", "dg-randconv-img-digitnet"),
            prose="Pro-RandConv (Choi et al., CVPR 2023), the benchmark's record: per batch one random 3x3 block "
                  "(deformable convolution with random offsets and Gaussian-tapered weights, standardisation, "
                  "random contrast and bias, tanh) applied 1 to 10 times with the same weights; the network learns "
                  "on each batch and its augmented copy. Its own protocol: SGD lr 0.01, momentum 0.9, batch 64, "
                  "cosine schedule, 500 epochs, the last epoch kept. The authors published no code: the settings "
                  "the paper leaves open are ours and listed in loaders/prorandconv.py (e.g. offset scale up to "
                  "0.2 px, one block per batch). Its published row is the paper's Table 1; the paper's ERM row on "
                  "the same network reads 32.52 / 54.92 / 42.34 / 78.21 (SVHN / MNIST-M / SYN / USPS)."),
    Section("dg-erm-resnet18", "dg", "ERM, the study's ResNet18 (best Q1 setting)", dict(_BEST, **_DG),
            prose="The study's network with the best setting of Q1 (Adam, label smoothing, augmentation, ImageNet "
                  "initialisation unless PRETRAINED=0), on the benchmark's data: it ties the benchmark to Q1."),
    Section("dg-randconv-resnet18", "dg", "RandConv (mix), the study's ResNet18", dict(_BEST, **_DG, **_RANDCONV),
            compare_to="dg-erm-resnet18",
            prose="The same with RandConv on top: does the field's simple method carry over to the study's network?"),
    Section("q2-examples", "q2", "Clean, noisy and adversarial test images", kind="none", needs="q2-baseline",
            transfer_source="q2-baseline",
            evals=(AttackPlan(attacks(("noise+fgsm",), ("white-box", "transfer"), **_STUDY_ATTACK)),),
            prose="Clean test images, the same images with 20 white pixels, and after FGSM on top, with the "
                  "model's predictions."),
    Section("q2-baseline", "q2", "Cross-entropy on clean CIFAR-10", dict(_Q2),
            reference={"cifar10_test_acc": 89.31, "adversarial": 11.89},
            transfer_source="q2-baseline", evals=(_Q2_ATTACKS, _AUTOATTACK, _UMAP),
            prose="FGSM (Goodfellow et al., 2015) takes one step of size eps along the sign of the input gradient; "
                  "PGD (Madry et al., 2018) takes many smaller steps, projecting back into the eps ball each time, "
                  "and is the stronger attack: its accuracy should never exceed FGSM's for the same model and eps."),
    Section("q2-adversarial", "q2", "Adversarial training (p = 0.5 per sample)", dict(_Q2, adv_prob=0.5),
            reference={"cifar10_test_acc": 87.33, "adversarial": 79.65}, compare_to="q2-baseline",
            transfer_source="q2-baseline", evals=(_Q2_ATTACKS, _AUTOATTACK),
            prose="Adversarial training replaces half of each batch (per sample, redrawn every step) with "
                  "adversarial versions crafted against the current model, so the model learns on the points "
                  "where its loss is highest. It should trade a little clean accuracy for robustness, most of "
                  "all against the attack it was trained on.",
            notes=("The study's {adversarial}% after adversarial training is a transfer number; compare it with "
                   "our white-box column, not only with the transfer one.",)),
    Section("q2-circle", "q2", "Circle Loss embedding, kNN (k = 3)",
            dict(_Q2, head="none", loss="circle", epochs=20),
            reference={"cifar10_test_acc": 89.52, "adversarial": 7.28}, compare_to="q2-baseline",
            transfer_source="q2-baseline",
            evals=(_Q2_ATTACKS, _AUTOATTACK,
                   KnnPlan(k=3, attack=attacks(("noise+fgsm",), ("transfer",), **_STUDY_ATTACK)[0]), _UMAP),
            prose="Circle Loss trains a 512-d embedding directly: same-class pairs are pulled above a similarity "
                  "of 1-m and other pairs pushed below m, each weighted by how far it is from its optimum; a kNN "
                  "(k=3) on train embeddings then classifies. Cross-entropy only needs a separating hyperplane, "
                  "so a metric loss can give tighter clusters, but it is no defence by itself: a white-box attack "
                  "still finds directions that move an image across clusters."),
    # Beyond the study: the defences that work, every sample adversarial, each with its published recipe (_RECIPE
    # and its own schedule), starting like every Q2 model from ImageNet weights with the resize to 224 px inside
    # the model (the recipes train CIFAR ResNet-18s from scratch at 32 px: the anchors are not like-for-like).
    Section("q2-fast-at", "q2", "Fast adversarial training (FGSM from a random start, cyclic lr)",
            dict(_Q2, **_RECIPE, adv_prob=1.0, adv_method="pgd", attack_steps=1, attack_alpha=10 / 255,
                 attack_train_mode=True, lr_schedule="cyclic", lr=0.2, epochs=15),
            **_VS_BASELINE,
            prose="Wong et al. (2020), as locuslab/fast_adversarial trains it: one FGSM step of 1.25·eps from a "
                  "uniform random start in the eps ball, on every training image, crafted with the model in train "
                  "mode; a cyclic learning rate (0 up to 0.2 at 40% of training, back to 0) over 15 epochs, weight "
                  "decay 5e-4, crop and flip. The random start is what keeps single-step training from catastrophic "
                  "overfitting; the best PGD-10 epoch is kept. RobustBench's ResNet-18 anchor (Wong2020Fast): 83.34% "
                  "clean, 43.21% under AutoAttack at 8/255 (full CIFAR-10 training; not comparable with a subset "
                  "run)."),
    Section("q2-pgd-at", "q2", "PGD adversarial training (7 steps of 2/255, piecewise lr)",
            dict(_Q2, **_RECIPE, adv_prob=1.0, adv_method="pgd", attack_steps=7, attack_alpha=2 / 255,
                 lr_schedule="piecewise"),
            **_VS_BASELINE,
            prose="Madry et al. (2018): train on the worst case PGD finds, 7 steps of 2/255 from a random start, on "
                  "every training image; the recipe of Rice et al. (2020, locuslab/robust_overfitting): SGD divided "
                  "by 10 at 50% and 75% of the epochs, weight decay 5e-4, crop and flip, and the epoch with "
                  "the best PGD-10 accuracy on held-out images kept (robust overfitting sets in after the first "
                  "decay). Its lr starts at Q2's fine-tuning 0.01, not the recipe's 0.1 for training from scratch "
                  "(at 0.1, TRADES diverged on the demo's data). ResNet-18 anchor: about 84.5% clean and 52.8% "
                  "under PGD-10 at 8/255 (full CIFAR-10; not comparable with a subset run)."),
    Section("q2-trades", "q2", "TRADES (beta = 6, piecewise lr)",
            dict(_Q2, **_RECIPE, loss="trades", trades_beta=6.0, attack_steps=10, attack_alpha=0.007,
                 lr_schedule="piecewise"),
            **_VS_BASELINE,
            prose="Zhang et al. (2019): cross-entropy on the clean image plus 6 times the KL divergence between the "
                  "predictions on the clean image and on the point of the eps ball (10 steps of 0.007 from a small "
                  "Gaussian start) where that KL is largest: it trades clean accuracy for a smooth decision "
                  "boundary. Trained with Rice et al.'s recipe (SGD, x0.1 at 50% and 75% of the epochs, from Q2's "
                  "fine-tuning lr 0.01 rather than the from-scratch 0.1, "
                  "weight decay 5e-4, crop and flip, best PGD-10 epoch kept); yaodongyu/TRADES' own script uses "
                  "weight decay 2e-4 and one decay at epoch 75 of 76. RobustBench's ResNet-18 anchor for a "
                  "TRADES-family model (Addepalli2022Efficient): 85.71% clean, 52.48% under AutoAttack."),
]}
# The older name of SECTIONS, kept for scripts that import it. The code says "section"; the CLI's --section
# keeps --preset as an alias, and RunConfig.preset (the results files' key) holds the section's name.
PRESETS = SECTIONS
