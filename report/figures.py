"""The report's figures, drawn from results files only: in-domain vs out-of-domain accuracy, accuracy per DG
domain, robust accuracy vs eps for every model, the fine-tuning curve. Error bars come from eval/stats.py
(`spread`: the seed std, or the larger half of the 95% Wilson interval with one seed). A run's own figures
(training curves, example grid, eps curve, UMAP pair) are in report/run_figures.py."""
from __future__ import annotations

from pathlib import Path

from eval.audit import test_n
from eval.stats import spread, stats
from report.plotting import pyplot as _pyplot
from report.plotting import save_figure
from report.plotting import ticks_at as _ticks_at
from report.tables import datasets

_LINESTYLES = {"fgsm": "-", "pgd": "--", "noise+fgsm": ":"}
METHOD_NAMES = {"fgsm": "FGSM", "pgd": "PGD-10 (step scaled with eps)", "noise+fgsm": "noise+FGSM"}


def _finish(fig, ax, ylabel: str, title: str, path: Path, alt: str) -> tuple[str, str]:
    """A report figure's ending: a 0-100% y axis, a small title, the legend right of the axes, the file saved;
    (alt text, file name) for the report's link."""
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    save_figure(path, fig)
    return alt, path.name


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
        seeds = sorted({accs[d][0][2] for d, _ in shown_sets if d in accs})
        ax.bar(xs, ys, width, yerr=errs, capsize=2,
               label=f"{name} ({'/'.join(map(str, seeds))} seed{'s' if seeds != [1] else ''})")
    ax.set_xticks(range(len(shown_sets)), [lab for _, lab in shown_sets])
    return _finish(fig, ax, "test accuracy (%)",
                   f"{q.title.split('·')[-1].strip()}\naccuracy per domain; error bars: seed std, or 95% interval "
                   "with one seed; black ticks: published",
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
