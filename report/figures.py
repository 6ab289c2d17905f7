"""Every figure, drawn from results files only, with one matplotlib setup (`_pyplot`): the report's four
(in-domain vs out-of-domain accuracy, accuracy per DG domain, robust accuracy vs eps for every model, the
fine-tuning curve), a run's training curves, and an evaluation's example grid, eps curve and UMAP pair.
Error bars come from eval/stats.py (`spread`: the seed std, or the larger half of the 95% Wilson interval with
one seed); dataset names and colours from loaders/registry.py."""
from __future__ import annotations

import os
from pathlib import Path

from eval.audit import test_n
from eval.stats import spread, stats
from loaders.registry import CIFAR_CLASSES, DATASETS, class_names, shown, stand_in_for  # noqa: F401 (class_names: re-exported for the runners)
from report.load import stand_ins
from report.tables import datasets

TRAIN_COLOUR = "#333333"
_LINESTYLES = {"fgsm": "-", "pgd": "--", "noise+fgsm": ":"}
METHOD_NAMES = {"fgsm": "FGSM", "pgd": "PGD-10 (step scaled with eps)", "noise+fgsm": "noise+FGSM"}


def save_figure(path, fig) -> None:
    """core.io's atomic figure write, imported on use (core.io imports torch; the report needs none)."""
    from core.io import save_figure as save

    save(path, fig)


def _pyplot(theme: str | None = None):
    """matplotlib on the file-only Agg backend (imported on first use, so `import report` stays light); with a
    seaborn theme for the seaborn figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if theme:
        import seaborn as sns

        sns.set_theme(style=theme)
    return plt


def _finish(fig, ax, ylabel: str, title: str, path: Path, alt: str) -> tuple[str, str]:
    """A report figure's ending: a 0-100% y axis, a small title, the legend right of the axes, the file saved;
    (alt text, file name) for the report's link."""
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    save_figure(path, fig)
    return alt, path.name


def _ticks_at(ax, xs: list, labels: list[str], **scale) -> None:
    """A log-like x axis (scale: matplotlib's set_xscale arguments) with a tick at each measured point only."""
    ax.set_xscale(**scale)
    ax.set_xticks(xs, labels)
    ax.minorticks_off()


# ---------------------------------------------------------------- the report's figures

def domains(points: dict, q, secs: dict, out_dir: Path, stand_in: bool) -> tuple[str, str]:
    """In-domain against out-of-domain accuracy per section, with error bars; the study's own numbers as grey
    crosses (left out under stand-in data). points: {section: [(stats, n) in-domain, (stats, n) out]}."""
    plt = _pyplot()
    (d_in, label_in), (d_out, label_out) = datasets(q)[:2]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for i, (name, ((a, n_a), (b, n_b))) in enumerate(points.items()):
        colour = plt.get_cmap("tab10")(i % 10)
        ax.errorbar(a[0], b[0], xerr=spread(a, n_a), yerr=spread(b, n_b), fmt="o", color=colour, capsize=3, label=name)
        ref = secs[name].reference
        if not stand_in and ref.get(f"{d_in}_test_acc") is not None and ref.get(f"{d_out}_test_acc") is not None:
            ax.plot(ref[f"{d_in}_test_acc"], ref[f"{d_out}_test_acc"], "x", color="grey")
            ax.plot([a[0], ref[f"{d_in}_test_acc"]], [b[0], ref[f"{d_out}_test_acc"]], ":", color=colour, lw=0.8)
    ax.set_xlabel(f"{label_in} test accuracy (%)")  # the question's in-domain set (the reverse runs train on the other)
    ax.set_xlim(0, 100)
    return _finish(fig, ax, f"{label_out} test accuracy (%)",
                   f"{q.name.upper()}: {label_in} vs {label_out} test accuracy per section (error bars: seed std, or "
                   "95% interval with one seed)" + ("" if stand_in else "\ngrey crosses: the study's numbers"),
                   out_dir / f"{q.name}-domains.png", f"{q.name}: {label_in} vs {label_out} accuracy per section")


def targets(bars: dict, q, secs: dict, out_dir: Path) -> tuple[str, str]:
    """Grouped bars: accuracy per dataset (source first) for every method, error bars the seed std (or the
    larger half of the 95% Wilson interval with one seed); the published numbers as black ticks.
    bars: {section: {dataset: (stats, n)}}."""
    plt = _pyplot()
    shown_sets = [(d, lab) for d, lab in datasets(q) if any(d in b for b in bars.values())]
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(shown_sets), 3.6))
    width = 0.8 / len(bars)
    for i, (name, accs) in enumerate(bars.items()):
        xs, ys, errs = [], [], []
        for j, (d, _) in enumerate(shown_sets):
            if d in accs:
                s, n = accs[d]
                xs.append(j + (i - (len(bars) - 1) / 2) * width)
                ys.append(s[0])
                errs.append(spread(s, n))
            ref = secs[name].reference.get(f"{d}_test_acc")
            if ref is not None and d in accs:
                ax.plot([xs[-1] - width / 2, xs[-1] + width / 2], [ref, ref], color="black", lw=1.5)
        ax.bar(xs, ys, width, yerr=errs, capsize=2, label=name)
    ax.set_xticks(range(len(shown_sets)), [lab for _, lab in shown_sets])
    return _finish(fig, ax, "test accuracy (%)",
                   f"{q.title.split('·')[-1].strip()}\naccuracy per domain; black ticks: published",
                   out_dir / f"{q.name}-targets.png", f"{q.name}: accuracy per domain")


def eps_models(rob_files: dict, q, out_dir: Path) -> tuple[str, str] | None:
    """Every model and swept attack on shared axes: white-box robust accuracy against eps (x in 255ths, ticks
    at the measured radii), one colour per section, one line style per attack; error bars from `spread`."""
    curves = {}
    for name, rob in rob_files.items():
        n = test_n(rob)
        by: dict = {}
        for r in rob:
            for row in r.get("eps_sweep") or []:
                by.setdefault(row["method"], {}).setdefault(row["eps"], []).append(row["robust_acc"])
        for method, points in by.items():
            curves[(name, method)] = (n, sorted((e, stats(v)) for e, v in points.items()))
    if not curves:
        return None
    plt = _pyplot()
    colours = {name: plt.get_cmap("tab10")(i % 10) for i, name in enumerate(rob_files)}
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    radii = sorted({e for _, pts in curves.values() for e, _ in pts})
    for (name, method), (n, pts) in curves.items():
        ax.errorbar([e * 255 for e, _ in pts], [s[0] for _, s in pts], yerr=[spread(s, n) for _, s in pts],
                    color=colours[name], linestyle=_LINESTYLES.get(method, "-."), marker="o", markersize=3, capsize=2,
                    label=f"{name}, {METHOD_NAMES.get(method, method)}")
    _ticks_at(ax, [e * 255 for e in radii], [f"{e * 255:g}" for e in radii], value="symlog", linthresh=1)
    ax.set_xlabel("eps (L-inf, in 1/255 of the [0,1] pixel range)")
    return _finish(fig, ax, "white-box robust accuracy (%)",
                   f"{q.name.upper()}: robust accuracy vs eps, every model (colour) and attack (line style)",
                   out_dir / f"{q.name}-eps.png", f"{q.name}: robust accuracy against eps, every model and attack")


def curve(points: list, n_test: int | None, name: str, ylabel: str, out_dir: Path) -> tuple[str, str]:
    """A curve section: in-domain test accuracy against the number of fine-tuning images, error bars from
    `spread`; ticks at the measured points."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.errorbar([p for p, _ in points], [s[0] for _, s in points], yerr=[spread(s, n_test) for _, s in points],
                marker="o", capsize=3)
    _ticks_at(ax, [p for p, _ in points], [str(p) for p, _ in points], value="log", base=2)
    ax.set_xlabel("fc fine-tuning images")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{name}: accuracy vs fine-tuning samples", fontsize=9)
    save_figure(out_dir / f"{name}.png", fig)
    return name, f"{name}.png"


# ---------------------------------------------------------------- a run's figures (the runners draw these)

def series_label(column: str, results: dict) -> tuple[str, str]:
    """A history column (train_loss, cifar10_val_adv_acc, ...) as a legend label, and its colour key (the
    study's dataset name)."""
    roles, attack = stand_ins(results), results.get("config", {}).get("val_attack")
    if column.startswith("train_"):
        return "train", "train"
    for suffix, kind in (("_val_adv_acc", f"val, under white-box {attack}"), ("_val_acc", "val"),
                         ("_test_acc", "test")):
        if column.endswith(suffix):
            name = column[:-len(suffix)]
            return f"{shown(name, roles)} {kind}", stand_in_for(name, roles)
    return column, column


def colour(key: str) -> str | None:
    return TRAIN_COLOUR if key == "train" else DATASETS[key].colour if key in DATASETS else None


def plot_curves(results: dict, path: str | os.PathLike) -> None:
    """Loss (left) and accuracy per epoch for train and every eval set (right): integer epoch ticks, the
    study's dataset names in the legend, one colour per dataset; test solid, val dash-dot, under attack dashed.
    Drawn by every training run, so it stays on matplotlib alone (its seaborn-like style sheet): pandas and
    seaborn would add about 1.5 s to each run's start-up."""
    from matplotlib.ticker import MaxNLocator

    history = results["history"]
    columns = list(dict.fromkeys(k for row in history for k in row))
    epochs = [row["epoch"] for row in history]
    plt = _pyplot()
    with plt.style.context("seaborn-v0_8-whitegrid"):
        fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, suffix, ylabel in ((ax_loss, "_loss", "loss"), (ax_acc, "_acc", "accuracy (%)")):
        for column in [c for c in columns if c.endswith(suffix)]:
            lab, k = series_label(column, results)
            style = ("--", "v") if "_adv_" in column else ("-.", "o") if "_val_" in column else ("-", "s")
            ax.plot(epochs, [row.get(column, float("nan")) for row in history], marker=style[1], markersize=4,
                    label=lab, color=colour(k), linestyle=style[0])
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(history) <= 12:
            ax.set_xticks(epochs)  # a tick at every measured epoch
        if ax.lines:
            ax.legend(fontsize=8)
    ax_acc.set_ylim(0, 100)
    fig.suptitle(f"{results['preset']}: training curves ({results['profile']} profile, seed {results['seed']})")
    save_figure(path, fig)


def example_grid(examples: dict, path: str | os.PathLike, names=CIFAR_CLASSES, title: str = "") -> None:
    """examples: {"labels": [...], "rows": [{"name", "images" (N,3,H,W), "preds"}]}, one row per stage. The
    tiles are laid into one canvas drawn by a single imshow, each prediction written above its tile (green
    right, red wrong): one axes instead of one per image (64 axes took about 4 s to build and save here)."""
    import torch

    rows, labels = examples["rows"], examples["labels"]
    n = len(labels)
    h, w = rows[0]["images"].shape[-2:]
    gap, label_h = max(1, w // 8), max(4, h // 3)  # white gap between tiles; room for the prediction above one
    cell_h, cell_w = h + label_h, w + gap
    canvas = torch.ones(3, len(rows) * cell_h, n * cell_w - gap)
    for r, row in enumerate(rows):
        for c in range(n):
            img = row["images"][c].float().clamp(0, 1)
            top, left = r * cell_h + label_h, c * cell_w
            canvas[:, top:top + h, left:left + w] = img.expand(3, -1, -1) if img.shape[0] == 1 else img
    plt = _pyplot()
    width = 1.6 * n
    height = 0.89 * width * canvas.shape[1] / canvas.shape[2] + 0.7  # the canvas's aspect, room for the title
    fig, ax = plt.subplots(figsize=(width, height))
    fig.subplots_adjust(left=0.1, right=0.99, bottom=0.01, top=1 - 0.7 / height)  # row names left of 0.1
    ax.imshow(canvas.permute(1, 2, 0).numpy(), interpolation="nearest")
    for r, row in enumerate(rows):
        for c in range(n):
            ok = int(row["preds"][c]) == int(labels[c])
            ax.text(c * cell_w + w / 2, r * cell_h + label_h - 1, names[int(row["preds"][c])], ha="center",
                    va="bottom", fontsize=8, color="green" if ok else "red")
        ax.text(-gap, r * cell_h + label_h + h / 2, row["name"], ha="right", va="center", fontsize=9)
    ax.set_axis_off()
    fig.suptitle(title + "\nabove each image: the prediction (green right, red wrong); true: "
                 + ", ".join(names[int(y)] for y in labels), fontsize=9)
    save_figure(path, fig)


def eps_curve(sweep: list[dict], path: str | os.PathLike, title: str = "") -> None:
    """White-box robust accuracy against eps, one line per attack (its label, e.g. PGD-10), ticks at the
    measured radii (in 255ths, on a symlog axis so 0 and 64/255 both show)."""
    import pandas as pd
    import seaborn as sns

    frame = pd.DataFrame(sweep)
    frame["eps (in 1/255)"] = frame["eps"] * 255
    frame["attack"] = frame["label"] if "label" in frame else frame["method"]
    plt = _pyplot("whitegrid")
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    sns.lineplot(data=frame, x="eps (in 1/255)", y="robust_acc", hue="attack", style="attack", marker="o", ax=ax)
    radii = sorted(frame["eps (in 1/255)"].unique())
    _ticks_at(ax, radii, [f"{r:g}" for r in radii], value="symlog", linthresh=1)
    ax.set_ylabel("white-box robust accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    save_figure(path, fig)


def umap_pair(result: dict, path: str | os.PathLike, names=CIFAR_CLASSES) -> None:
    import pandas as pd
    import seaborn as sns

    plt = _pyplot("white")
    fig, axes = plt.subplots(1, 2, figsize=(11, 5), sharex=True, sharey=True)
    attack = result["attack"]
    for ax, k, title in ((axes[0], "clean", "clean test images"),
                         (axes[1], "adversarial", f"adversarial ({attack['method']}, {attack['threat_model']}, "
                                                  f"eps {attack['eps_label']})")):
        pts = pd.DataFrame(result[k]["xy"], columns=["umap-1", "umap-2"])
        pts["class"] = [names[int(y)] for y in result["labels"]]
        sns.scatterplot(data=pts, x="umap-1", y="umap-2", hue="class", s=8, linewidth=0, ax=ax,
                        hue_order=list(names), legend=k == "adversarial", palette="tab10")
        ax.set_title(title, fontsize=10)
    if axes[1].get_legend():
        axes[1].legend(loc="center left", bbox_to_anchor=(1, 0.5), fontsize=8, markerscale=2)
    fig.suptitle(f"{result['preset']}: UMAP fitted on clean features; adversarial points placed with transform()")
    save_figure(path, fig)
