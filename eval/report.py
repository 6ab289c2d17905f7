"""REPORT.md from results files only: the study's number, ours as mean ± std over seeds, and Δ.

Nothing here is typed by hand except prose. The study's numbers come from experiments.PRESETS (the
reference column); every other number is read from results/<profile>/<preset>[/seed-<n>]/*.json.
A section without results reads "not run".
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

from experiments import PRESETS, PROFILES, REFERENCE_THREAT

NOISE_SIGMAS = 2.0      # a difference under this many pooled standard deviations is within seed noise
TRANSFER_GAP = 20.0     # points between transfer and white-box robustness worth calling out

INTRO = {
    "q1": ("Q1 · Generalization: train on SVHN, test on SVHN and on MNIST",
           "A ResNet18 learns street-view house numbers (SVHN) and is then tested on handwritten digits (MNIST), "
           "a domain it never saw. The gap between the two accuracies measures how far what it learned transfers; "
           "each ablation changes one ingredient of the baseline."),
    "q2": ("Q2 · Robustness: CIFAR-10 under noise, FGSM and PGD",
           "An ImageNet-initialised ResNet18 is fine-tuned on CIFAR-10 and attacked with L-inf perturbations on the "
           "[0,1] pixel scale. Every adversarial number names its threat model: *white-box* attacks are crafted "
           "against the model being evaluated; *transfer* attacks are crafted once against a fixed source model "
           "(the study's protocol) and are usually much weaker."),
}

METHOD = {
    "q1-baseline": "The reference point: SGD with momentum on cross-entropy, no regularisation beyond BatchNorm.",
    "q1-no-bn": "BatchNorm normalises each layer's activations with batch statistics, which smooths the loss "
                "surface and acts as a mild regulariser; it also ties the model to the training domain's statistics. "
                "Removing it (dropout is the other classic regulariser, off here) should slow training and cost some "
                "accuracy, in-domain and out.",
    "q1-label-smoothing": "Label smoothing trains towards 1-s on the true class and s/(K-1) on each other class "
                          "instead of a one-hot target, which discourages over-confident logits. Calibrated, less "
                          "extreme features can transfer better to a new domain; the training loss stays high by "
                          "construction (it cannot fall below the target's entropy).",
    "q1-augmentation": "Random affine warps, brightness/contrast jitter, perspective and crops show the network "
                       "many plausible variants of each digit, so it must rely on shape rather than position or "
                       "colour. Flips are left out on purpose: a flipped 6 reads as a 9 and a flipped 2 as a 5, "
                       "which would teach wrong labels.",
    "q1-pretrained": "Starting from ImageNet weights gives the network generic edge and texture detectors before "
                     "it sees a digit; features learned on a broad domain tend to transfer better to another.",
    "q1-adam": "Adam scales each parameter's step by a running estimate of its gradient's magnitude, so it "
               "makes fast progress with little tuning; SGD with momentum is often said to find flatter minima "
               "that generalise better. The comparison tests that folklore on a domain shift.",
    "q1-reverse-unsupervised": "The reverse direction with the best settings: learn MNIST, test on SVHN. Clean, "
                               "centred MNIST digits carry much less variation than SVHN, so transfer is expected "
                               "to be poor.",
    "q1-reverse-supervised": "Only the final layer is retrained on a few hundred labelled SVHN images, the rest "
                             "frozen (BatchNorm statistics included). It asks whether the MNIST features already "
                             "separate SVHN digits and only the read-out is wrong.",
    "q2-examples": "Clean test images, the same images with 20 white pixels, and after FGSM on top, with the "
                   "model's predictions.",
    "q2-baseline": "FGSM (Goodfellow et al., 2015) takes one step of size eps along the sign of the input gradient; "
                   "PGD (Madry et al., 2018) takes many smaller steps, projecting back into the eps ball each time, "
                   "and is the stronger attack: its accuracy should never exceed FGSM's for the same model and eps.",
    "q2-adversarial": "Adversarial training replaces half of each batch (per sample, redrawn every step) with "
                      "adversarial versions crafted against the current model, so the model learns on the points "
                      "where its loss is highest. It should trade a little clean accuracy for robustness, most of "
                      "all against the attack it was trained on.",
    "q2-circle": "Circle Loss trains a 512-d embedding directly: same-class pairs are pulled above a similarity "
                 "of 1-m and other pairs pushed below m, each weighted by how far it is from its optimum; a kNN "
                 "(k=3) on train embeddings then classifies. Cross-entropy only needs a separating hyperplane, so "
                 "a metric loss can give tighter clusters, but it is no defence by itself: a white-box attack "
                 "still finds directions that move an image across clusters.",
}


# ---------------------------------------------------------------- reading results

def _load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def runs(root: Path, preset: str, name: str = "metrics.json") -> list[dict]:
    """Every seed's results file for a preset: <preset>/<name> and <preset>/seed-<n>/<name>."""
    base = root / preset
    found = [_load(base / name)] + [_load(p) for p in sorted(base.glob(f"seed-*/{name}"))]
    return [r for r in found if r is not None]


def stats(values: list[float]) -> tuple[float, float, int] | None:
    values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not values:
        return None
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else float("nan")
    return mean, std, n


def fmt(s, digits: int = 2) -> str:
    if s is None:
        return "not run"
    mean, std, n = s
    return f"{mean:.{digits}f} ± {std:.{digits}f} (n={n})" if n > 1 else f"{mean:.{digits}f} (n=1)"


def _cell(rs: list, s) -> str:
    """A table cell: the statistics, "not run" without results, "not evaluated" when the runs lack the metric."""
    return "not evaluated" if rs and s is None else fmt(s)


def ref_cell(ref, digits: int = 2) -> str:
    return "–" if ref is None else f"{ref:.{digits}f}"


def delta(s, ref) -> str:
    if s is None or ref is None:
        return "–"
    return f"{s[0] - ref:+.2f}"


def within_noise(a, b) -> bool | None:
    """True when |mean_a - mean_b| < NOISE_SIGMAS pooled std; None when either lacks a std (n=1)."""
    if a is None or b is None or a[2] < 2 or b[2] < 2:
        return None
    pooled = math.sqrt((a[1] ** 2 + b[1] ** 2) / 2)
    return abs(a[0] - b[0]) < NOISE_SIGMAS * pooled


def noise_flags(name: str, base_name: str, pairs, rerun: str) -> list[str]:
    """Flags for preset `name` against `base_name`: [(label, ours stats, base stats)]. A difference under
    NOISE_SIGMAS pooled std is "within seed noise"; with one seed the noise is unknown."""
    flags, beyond = [], []
    for label, ours, base in pairs:
        verdict = within_noise(ours, base)
        if verdict is False:
            beyond.append(f"{label} {ours[0] - base[0]:+.2f}")
        elif verdict is True:
            flags.append(f"- {name} vs {base_name} on {label}: {ours[0] - base[0]:+.2f} points, "
                         f"**within seed noise** (under {NOISE_SIGMAS:g} pooled std).")
        elif verdict is None and ours and base:
            flags.append(f"- {name} vs {base_name} on {label}: {ours[0] - base[0]:+.2f} points; "
                         f"seed noise unknown with one seed (run `{rerun}`).")
    if beyond:
        flags.append(f"- {name} vs {base_name}, beyond seed noise (over {NOISE_SIGMAS:g} pooled std): "
                     + ", ".join(beyond) + " points.")
    return flags


def _key(results: dict, study_name: str, suffix: str) -> str:
    return f"{results.get('roles', {}).get(study_name, study_name)}{suffix}"


def _metric(rs: list[dict], study_name: str, suffix: str):
    return stats([r["metrics"].get(_key(r, study_name, suffix)) for r in rs]) if rs else None


def _robust(rs: list[dict], threat: str, method: str):
    vals = []
    for r in rs:
        for row in r.get("results", []):
            if row["threat_model"] == threat and row["method"] == method:
                vals.append(row["robust_acc"])
    return stats(vals) if vals else None


def _link(root: Path, out_dir: Path, rel: str) -> str | None:
    path = root / rel
    return os.path.relpath(path, out_dir) if path.is_file() else None


# ---------------------------------------------------------------- the report

def build_report(root: Path, profile: str, out: Path) -> str:
    out_dir = out.parent
    lines = [f"# trustlab report · profile `{profile}`", ""]
    lines.append(f"Generated from the results files under `{root}` by `python cli.py report --profile {profile}`; "
                 "the study's numbers come from `experiments.py`. Ours are mean ± sample std over the seeds found "
                 "(n shown); Δ = ours − study.")
    if PROFILES[profile].dataset_map:
        roles = ", ".join(f"{v} stands in for {k}" for k, v in PROFILES[profile].dataset_map.items())
        lines += ["", f"> **Demo data, not the study's.** {roles}. These numbers show the pipeline working on "
                      "embedded data; they are not comparable with the study's column."]
    elif profile != "paper":
        lines += ["", f"> Profile `{profile}` runs the study's method on subsets ({PROFILES[profile].description}); "
                      "expect lower numbers than the study's full-scale runs."]
    lines += _q1(root, out_dir) + _q2(root, out_dir)
    return "\n".join(lines) + "\n"


def _q1(root: Path, out_dir: Path) -> list[str]:
    title, intro = INTRO["q1"]
    lines = ["", f"## {title}", "", intro, "",
             "| section | SVHN study | SVHN ours | Δ | MNIST study | MNIST ours | Δ | train loss study / ours | train acc study / ours |",
             "|---|---|---|---|---|---|---|---|---|"]
    loaded = {p: runs(root, p) for p, pr in PRESETS.items() if pr.question == "q1"}
    flags = []
    base_svhn, base_mnist = _metric(loaded["q1-baseline"], "svhn", "_test_acc"), _metric(loaded["q1-baseline"], "mnist", "_test_acc")
    for name, rs in loaded.items():
        ref = PRESETS[name].reference
        svhn, mnist = _metric(rs, "svhn", "_test_acc"), _metric(rs, "mnist", "_test_acc")
        loss, acc = (stats([r["metrics"].get("train_loss") for r in rs]) if rs else None,
                     stats([r["metrics"].get("train_acc") for r in rs]) if rs else None)
        lines.append(f"| {name} | {ref_cell(ref.get('svhn_test_acc'))} | {_cell(rs, svhn)} | {delta(svhn, ref.get('svhn_test_acc'))} "
                     f"| {ref_cell(ref.get('mnist_test_acc'))} | {_cell(rs, mnist)} | {delta(mnist, ref.get('mnist_test_acc'))} "
                     f"| {ref_cell(ref.get('train_loss'), 3)} / {fmt(loss, 3)} | {ref_cell(ref.get('train_acc'))} / {fmt(acc)} |")
        if name not in ("q1-baseline", "q1-reverse-unsupervised", "q1-reverse-supervised") and rs:
            flags += noise_flags(name, "q1-baseline", (("SVHN", svhn, base_svhn), ("MNIST", mnist, base_mnist)),
                                 'make q1 SEEDS="0 1 2"')
    if loaded["q1-pretrained"] and not any(r.get("config", {}).get("pretrained") for r in loaded["q1-pretrained"]):
        flags.append("- q1-pretrained ran without ImageNet weights (PRETRAINED=0), so it is the baseline again "
                     "by construction; its row says nothing about ImageNet initialisation.")
    lines += ["", "### Honesty checks", ""] + (flags or ["- nothing to compare yet"])
    lines += _sections(root, out_dir, loaded, "q1")
    return lines


def _q2(root: Path, out_dir: Path) -> list[str]:
    title, intro = INTRO["q2"]
    ref_threat = REFERENCE_THREAT["q2"]
    lines = ["", f"## {title}", "", intro, "",
             f"The study's adversarial column is {ref_threat['threat_model']} {ref_threat['method']} "
             f"(source: {ref_threat['source']}; eps {ref_threat['eps_label']}). Ours: eps 8/255, PGD 10 steps of 2/255 "
             "with a random start; the transfer source is named in each run's robustness.json.", "",
             "| section | clean study | clean ours | Δ | adversarial study | transfer noise+FGSM ours | Δ "
             "| white-box FGSM | white-box PGD | transfer FGSM | transfer PGD |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    loaded = {p: runs(root, p) for p in ("q2-baseline", "q2-adversarial", "q2-circle")}
    robust = {p: runs(root, p, "robustness.json") for p in loaded}
    flags = []
    base_cells = None
    for name, rs in loaded.items():
        ref = PRESETS[name].reference
        clean = _metric(rs, "cifar10", "_test_acc")
        rob = robust[name]
        cells = {(t, m): _robust(rob, t, m) for t in ("white-box", "transfer") for m in ("fgsm", "pgd", "noise+fgsm")}
        cells["clean"] = clean
        if name == "q2-baseline":
            base_cells = cells
        elif base_cells is not None and rs:
            flags += noise_flags(name, "q2-baseline", (
                ("clean accuracy", clean, base_cells["clean"]),
                ("white-box FGSM", cells[("white-box", "fgsm")], base_cells[("white-box", "fgsm")]),
                ("white-box PGD", cells[("white-box", "pgd")], base_cells[("white-box", "pgd")])),
                'make q2 SEEDS="0 1 2"')
        if any(row.get("threat_model") == "transfer" and row.get("source") == r.get("model")
               for r in rob for row in r.get("results", [])):
            flags.append(f"- {name}: its transfer attacks were crafted on the model itself (PRETRAINED=0 makes the "
                         "trained q2-baseline the source), so its transfer columns are white-box by construction.")
        tr = cells[("transfer", "noise+fgsm")]
        lines.append(f"| {name} | {ref_cell(ref['cifar10_test_acc'])} | {fmt(clean)} | {delta(clean, ref['cifar10_test_acc'])} "
                     f"| {ref_cell(ref['adversarial'])} | {fmt(tr)} | {delta(tr, ref['adversarial'])} "
                     f"| {fmt(cells[('white-box', 'fgsm')])} | {fmt(cells[('white-box', 'pgd')])} "
                     f"| {fmt(cells[('transfer', 'fgsm')])} | {fmt(cells[('transfer', 'pgd')])} |")
        wf, wp = cells[("white-box", "fgsm")], cells[("white-box", "pgd")]
        if wf and wp and wp[0] > wf[0]:
            flags.append(f"- {name}: white-box PGD ({wp[0]:.2f}%) is above white-box FGSM ({wf[0]:.2f}%): "
                         "**suspect** (PGD should be the stronger attack; look for gradient masking or a bug).")
        for method in ("fgsm", "noise+fgsm", "pgd"):
            t, w = cells[("transfer", method)], cells[("white-box", method)]
            if t and w and t[0] - w[0] > TRANSFER_GAP:
                flags.append(f"- {name}: transfer {method} {t[0]:.2f}% vs white-box {w[0]:.2f}%: a gap of "
                             f"{t[0] - w[0]:.1f} points. **Transfer robustness overstates the model's robustness**; "
                             "quote the white-box number as its robustness.")
        if name == "q2-adversarial":
            flags.append(f"- The study's {ref['adversarial']}% after adversarial training is a transfer number; "
                         "compare it with our white-box column, not only with the transfer one.")
    lines += ["", "### Honesty checks", ""] + (flags or ["- nothing to compare yet"])
    knn = runs(root, "q2-circle", "knn.json")
    if knn:
        attacked = {}
        for k in knn:
            for r in k["results"]:
                attacked.setdefault((r["threat_model"], r["method"]), []).append(r["robust_acc"])
        lines += ["", f"kNN (k={knn[0]['k']}) on the circle model's features: clean "
                      f"{fmt(stats([k['clean_acc'] for k in knn]))}"
                  + "".join(f"; {t} {m} {fmt(stats(v))}" for (t, m), v in attacked.items())]
    lines += _sections(root, out_dir, {"q2-examples": runs(root, "q2-examples", "robustness.json"), **loaded}, "q2")
    return lines


def finetune_curve(root: Path, out_dir: Path) -> list[str]:
    """The reverse-supervised extra figure, drawn from results/<profile>/q1-finetune-curve/samples-N/."""
    found = [r for r in (_load(p) for p in (root / "q1-finetune-curve").glob("samples-*/metrics.json")) if r]
    if not found:
        return ["", "Fine-tuning curve (SVHN accuracy against the number of fc training images): *not run* "
                    "(`make q1-finetune-curve`)."]
    points = sorted(({"samples": r["datasets"]["train"]["size"],
                      "accuracy": r["metrics"][_key(r, "svhn", "_test_acc")]} for r in found),
                    key=lambda p: p["samples"])
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from core.io import save_figure

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([p["samples"] for p in points], [p["accuracy"] for p in points], marker="o")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("fc fine-tuning images")
    ax.set_ylabel(f"{_key(found[0], 'svhn', '')} test accuracy (%)")
    ax.set_title("q1-reverse-supervised: accuracy vs fine-tuning samples", fontsize=9)
    save_figure(out_dir / "q1-finetune-curve.png", fig)
    cells = " | ".join(f"{p['samples']}: {p['accuracy']:.2f}" for p in points)
    return ["", f"Fine-tuning curve, samples: SVHN accuracy — {cells}", "",
            "![fine-tuning curve](q1-finetune-curve.png)"]


def _sections(root: Path, out_dir: Path, loaded: dict, question: str) -> list[str]:
    lines = []
    for name, rs in loaded.items():
        lines += ["", f"### {name}: {PRESETS[name].title}", "", METHOD[name], ""]
        lines += _seeds_and_figures(root, out_dir, name, rs) if rs else ["*not run*"]
        if name == "q1-reverse-supervised":
            lines += finetune_curve(root, out_dir)
    return lines


def _seeds_and_figures(root: Path, out_dir: Path, name: str, rs: list[dict]) -> list[str]:
    seeds = sorted({r["seed"] for r in rs})
    lines = [f"Seeds: {', '.join(map(str, seeds))}."]
    figures = []
    for sub in [""] + [f"seed-{s}/" for s in seeds]:
        for rel, caption in ((f"{name}/{sub}curves.png", "training curves"),
                             (f"{name}/{sub}robustness-examples.png", "adversarial examples"),
                             (f"{name}/{sub}robustness-eps.png", "robust accuracy vs eps"),
                             (f"{name}/{sub}umap.png", "UMAP, clean vs adversarial")):
            link = _link(root, out_dir, rel)
            if link:
                figures.append(f"![{name} {caption}]({link})")
    if figures:
        lines += [""] + figures[:4]
    return lines


def write_report(profile: str, results_root: str | Path = "results", out: str | Path | None = None) -> Path:
    from core.errors import UsageError
    from core.io import atomic_write

    if profile not in PROFILES:
        raise UsageError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    root = Path(results_root) / profile
    out = Path(out) if out else root / "REPORT.md"
    text = build_report(root, profile, out)
    atomic_write(out, lambda tmp: Path(tmp).write_text(text))
    return out
