"""Figures drawn from results files only: example grids, robust accuracy against eps, UMAP pairs."""
from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from core.io import save_figure  # noqa: E402

from loaders.registry import CIFAR_CLASSES, class_names  # noqa: E402,F401


def example_grid(examples: dict, path: str | os.PathLike, names=CIFAR_CLASSES, title: str = "") -> None:
    """examples: {"labels": [...], "rows": [{"name", "images" (N,3,H,W), "preds"}]}, one row per stage."""
    rows, labels = examples["rows"], examples["labels"]
    n = len(labels)
    fig, axes = plt.subplots(len(rows), n, figsize=(1.6 * n, 1.9 * len(rows)), squeeze=False)
    for r, row in enumerate(rows):
        for c in range(n):
            ax = axes[r][c]
            ax.imshow(row["images"][c].permute(1, 2, 0).clamp(0, 1).numpy())
            ok = int(row["preds"][c]) == int(labels[c])
            ax.set_title(f"{names[int(row['preds'][c])]}", fontsize=8, color="green" if ok else "red")
            ax.set_xticks([]), ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(row["name"], fontsize=9)
    fig.suptitle(title + "\ntitle = prediction (green right, red wrong); true: "
                 + ", ".join(names[int(y)] for y in labels), fontsize=9)
    save_figure(path, fig)


def eps_curve(sweep: list[dict], path: str | os.PathLike, title: str = "") -> None:
    """White-box robust accuracy against eps, one line per attack (its label, e.g. PGD-10), ticks at the
    measured radii (in 255ths, on a symlog axis so 0 and 64/255 both show)."""
    frame = pd.DataFrame(sweep)
    frame["eps (in 1/255)"] = frame["eps"] * 255
    frame["attack"] = frame["label"] if "label" in frame else frame["method"]
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    sns.lineplot(data=frame, x="eps (in 1/255)", y="robust_acc", hue="attack", style="attack", marker="o", ax=ax)
    ax.set_xscale("symlog", linthresh=1)
    radii = sorted(frame["eps (in 1/255)"].unique())
    ax.set_xticks(radii, [f"{r:g}" for r in radii])
    ax.minorticks_off()
    ax.set_ylabel("white-box robust accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    save_figure(path, fig)


def umap_pair(result: dict, path: str | os.PathLike, names=CIFAR_CLASSES) -> None:
    sns.set_theme(style="white")
    fig, axes = plt.subplots(1, 2, figsize=(11, 5), sharex=True, sharey=True)
    for ax, key, title in ((axes[0], "clean", "clean test images"),
                           (axes[1], "adversarial", f"adversarial ({result['attack']['method']}, "
                                                    f"{result['attack']['threat_model']}, eps {result['attack']['eps_label']})")):
        pts = pd.DataFrame(result[key]["xy"], columns=["umap-1", "umap-2"])
        pts["class"] = [names[int(y)] for y in result["labels"]]
        sns.scatterplot(data=pts, x="umap-1", y="umap-2", hue="class", s=8, linewidth=0, ax=ax,
                        hue_order=list(names), legend=key == "adversarial", palette="tab10")
        ax.set_title(title, fontsize=10)
    if axes[1].get_legend():
        axes[1].legend(loc="center left", bbox_to_anchor=(1, 0.5), fontsize=8, markerscale=2)
    fig.suptitle(f"{result['preset']}: UMAP fitted on clean features; adversarial points placed with transform()")
    save_figure(path, fig)
