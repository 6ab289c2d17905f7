"""Training curves drawn from a results dict (what metrics.json holds), never from live state."""
from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from core.io import save_figure  # noqa: E402


# The study's names for the datasets, and one colour per dataset in every figure.
DATASET_LABELS = {"svhn": "SVHN", "mnist": "MNIST", "cifar10": "CIFAR-10", "usps": "USPS", "mnistm": "MNIST-M",
                  "syn": "SYN", "digits": "digits", "digits-inverted": "inverted digits"}
DATASET_COLOURS = {"train": "#333333", "svhn": "#1f77b4", "mnist": "#ff7f0e", "cifar10": "#2ca02c", "usps": "#d62728",
                   "mnistm": "#9467bd", "syn": "#8c564b"}


def _dataset(name: str, roles: dict) -> tuple[str, str]:
    """(label, colour key) for a dataset as the run named it: the study's name, and the stand-in if one."""
    study = next((k for k, v in roles.items() if v == name), name)
    label = DATASET_LABELS.get(study, study)
    return (label if study == name else f"{label} (stand-in: {DATASET_LABELS.get(name, name)})"), study


def series_label(column: str, results: dict) -> tuple[str, str]:
    """A history column (train_loss, cifar10_val_adv_acc, ...) as a legend label, and its colour key."""
    roles, attack = results.get("roles", {}), results.get("config", {}).get("val_attack")
    if column.startswith("train_"):
        return "train", "train"
    for suffix, kind in (("_val_adv_acc", f"val, under white-box {attack}"), ("_val_acc", "val"),
                         ("_test_acc", "test")):
        if column.endswith(suffix):
            label, key = _dataset(column[:-len(suffix)], roles)
            return f"{label} {kind}", key
    return column, column


def plot_curves(results: dict, path: str | os.PathLike) -> None:
    """Loss (left) and accuracy per epoch for train and every eval set (right): integer epoch ticks, the
    study's dataset names in the legend, one colour per dataset; test solid, val dash-dot, under attack dashed."""
    from matplotlib.ticker import MaxNLocator

    history = pd.DataFrame(results["history"])
    sns.set_theme(style="whitegrid")
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, suffix, ylabel in ((ax_loss, "_loss", "loss"), (ax_acc, "_acc", "accuracy (%)")):
        for column in [c for c in history.columns if c.endswith(suffix)]:
            label, key = series_label(column, results)
            style = ("--", "v") if "_adv_" in column else ("-.", "o") if "_val_" in column else ("-", "s")
            ax.plot(history["epoch"], history[column], marker=style[1], markersize=4, label=label,
                    color=DATASET_COLOURS.get(key), linestyle=style[0])
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(history) <= 12:
            ax.set_xticks(list(history["epoch"]))  # a tick at every measured epoch
        if ax.lines:
            ax.legend(fontsize=8)
    ax_acc.set_ylim(0, 100)
    fig.suptitle(f"{results['preset']}: training curves ({results['profile']} profile, seed {results['seed']})")
    save_figure(path, fig)
