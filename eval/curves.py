"""Training curves drawn from a results dict (what metrics.json holds), never from live state."""
from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from core.io import save_figure  # noqa: E402


def plot_curves(results: dict, path: str | os.PathLike) -> None:
    """Loss (left) and accuracy per epoch for train and every eval set (right)."""
    history = pd.DataFrame(results["history"])
    sns.set_theme(style="whitegrid")
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    loss_cols = [c for c in history.columns if c.endswith("_loss")]
    acc_cols = [c for c in history.columns if c.endswith("_acc")]
    if loss_cols:
        sns.lineplot(data=history.melt("epoch", loss_cols, "series", "loss"), x="epoch", y="loss",
                     hue="series", marker="o", ax=ax_loss)
    if acc_cols:
        sns.lineplot(data=history.melt("epoch", acc_cols, "series", "accuracy (%)"), x="epoch",
                     y="accuracy (%)", hue="series", marker="o", ax=ax_acc)
        ax_acc.set_ylim(0, 100)
    fig.suptitle(f"{results['preset']} · {results['profile']} · seed {results['seed']}")
    save_figure(path, fig)
