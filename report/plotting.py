"""The one matplotlib setup of every figure: the file-only Agg backend (imported on first use, so `import report`
stays light), seaborn themes where a figure uses seaborn, atomic writes, and log-like axes ticked at the measured
points only. report/figures.py draws the report's figures, report/run_figures.py a run's."""
from __future__ import annotations


def save_figure(path, fig) -> None:
    """core.io's atomic figure write, imported on use (core.io imports torch; the report needs none)."""
    from core.io import save_figure as save

    save(path, fig)


def pyplot(theme: str | None = None):
    """matplotlib on the file-only Agg backend (imported on first use, so `import report` stays light); with a
    seaborn theme for the seaborn figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if theme:
        import seaborn as sns

        sns.set_theme(style=theme)
    return plt


def ticks_at(ax, xs: list, labels: list[str], **scale) -> None:
    """A log-like x axis (scale: matplotlib's set_xscale arguments) with a tick at each measured point only."""
    ax.set_xscale(**scale)
    ax.set_xticks(xs, labels)
    ax.minorticks_off()
