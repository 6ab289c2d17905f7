"""A run's figures, drawn by the commands from the results they write: the training curves (curves.png), an
attack evaluation's example grid and eps curve, the UMAP pair. Dataset names and colours come from
loaders/registry.py; the matplotlib setup from report/plotting.py."""
from __future__ import annotations

import os

from loaders.registry import CIFAR_CLASSES, DATASETS, shown, stand_in_for
from report.load import stand_ins
from report.plotting import pyplot as _pyplot
from report.plotting import save_figure
from report.plotting import ticks_at as _ticks_at

TRAIN_COLOUR = "#333333"


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
