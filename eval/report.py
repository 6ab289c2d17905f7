"""REPORT.md from results files only: the study's number, ours as mean ± std over seeds, and Δ.

Nothing here is typed by hand, prose included: the sections, their order, the study's numbers (the
reference column), the prose and the notes come from the entries the caller passes (experiments/
sections.py); every other number is read from results/<profile>/<section>[/seed-<n>]/*.json.
No section is named in this file. A section without results reads "not run".
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path


NOISE_SIGMAS = 2.0      # a difference under this many pooled standard deviations is within seed noise
TRANSFER_GAP = 20.0     # points between transfer and white-box robustness worth calling out

# ---------------------------------------------------------------- reading results

def _load(path: Path) -> dict | None:
    """A results file's contents; None if there is none. A file that is there but unreadable is an error
    naming it, never "not run"."""
    from core.errors import RunFailure

    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise RunFailure(f"results file {path} cannot be read ({err.strerror})") from err
    try:
        found = json.loads(text)
    except json.JSONDecodeError as err:
        raise RunFailure(f"results file {path} is corrupt ({err.msg} at line {err.lineno}); "
                         "delete it, or rerun its section") from err
    if not isinstance(found, dict):
        raise RunFailure(f"results file {path} holds a {type(found).__name__}, not a results object")
    return found


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

def build_report(root: Path, profile, sections: dict, questions: dict, out: Path) -> str:
    out_dir = out.parent
    lines = [f"# trustlab report · profile `{profile.name}`", ""]
    lines.append(f"Generated from the results files under `{root}` by `python cli.py report --profile {profile.name}`; "
                 "the study's numbers come from `experiments/sections.py`. Ours are mean ± sample std over the seeds "
                 "found (n shown); Δ = ours − study.")
    if profile.dataset_map:
        roles = ", ".join(f"{v} stands in for {k}" for k, v in profile.dataset_map.items())
        lines += ["", f"> **Demo data, not the study's.** {roles}. These numbers show the pipeline working on "
                      "embedded data; they are not comparable with the study's column."]
    elif profile.name != "paper":
        lines += ["", f"> Profile `{profile.name}` runs the study's method on subsets ({profile.description}); "
                      "expect lower numbers than the study's full-scale runs."]
    for q in questions.values():
        secs = {n: s for n, s in sections.items() if s.question == q.name}
        scaled = {k for key, v in profile.scale.items() if key.split(":")[0] == q.name for k in v}
        scaled |= {"train_on", "eval_on"}  # differ by profile, not by method
        if q.layout == "targets":
            table = _targets(root, q, secs, sections, scaled, out_dir)
        else:
            table = (_domains if q.layout == "domains" else _robustness)(root, q, secs, sections, scaled)
        lines += ["", f"## {q.title}", "", q.intro] + table
        lines += _sections(root, out_dir, secs)
    return "\n".join(lines) + "\n"


def _table_rows(secs: dict) -> dict:
    """The sections a question's table shows: those that train a model once per seed (no sweeps)."""
    return {n: s for n, s in secs.items() if s.kind != "none" and not s.sweep}


def _changed_but_not_run(name: str, sec, rs: list[dict], sections: dict, scaled: set) -> list[str]:
    """A section that changes a setting of its comparison section, run with that setting undone
    (e.g. PRETRAINED=0 under the ImageNet-initialisation section), tests nothing: say so."""
    if sec.compare_to not in sections:
        return []
    base, flags = sections[sec.compare_to].overrides, []
    for key, value in sec.overrides.items():
        if base.get(key) == value or key in scaled or not rs:
            continue
        ran = {(lambda v: tuple(v) if isinstance(v, list) else v)(r.get("config", {}).get(key, value)) for r in rs}
        if value not in ran:
            flags.append(f"- {name} ran with {key}={', '.join(map(str, sorted(ran, key=str)))} where the section sets "
                         f"{key}={value}, so it is {sec.compare_to} again by construction; its row says nothing "
                         "about that change.")
    return flags


def _domains(root: Path, q, secs: dict, sections: dict, scaled: set) -> list[str]:
    """In-domain and out-of-domain test accuracy per section, with train loss and accuracy."""
    heads = " | ".join(f"{label} study | {label} ours | Δ" for _, label in q.datasets)
    lines = ["", f"| section | {heads} | train loss study / ours | train acc study / ours |",
             "|---|" + "---|---|---|" * len(q.datasets) + "---|---|"]
    loaded = {n: runs(root, s.name) for n, s in _table_rows(secs).items()}
    flags = []
    for name, rs in loaded.items():
        sec, ref = secs[name], secs[name].reference
        accs = {d: _metric(rs, d, "_test_acc") for d, _ in q.datasets}
        loss, acc = (stats([r["metrics"].get("train_loss") for r in rs]) if rs else None,
                     stats([r["metrics"].get("train_acc") for r in rs]) if rs else None)
        cells = " | ".join(f"{ref_cell(ref.get(f'{d}_test_acc'))} | {_cell(rs, accs[d])} | "
                           f"{delta(accs[d], ref.get(f'{d}_test_acc'))}" for d, _ in q.datasets)
        lines.append(f"| {name} | {cells} | {ref_cell(ref.get('train_loss'), 3)} / {fmt(loss, 3)} "
                     f"| {ref_cell(ref.get('train_acc'))} / {fmt(acc)} |")
        if sec.compare_to in loaded and rs:
            base = loaded[sec.compare_to]
            flags += noise_flags(name, sec.compare_to, [(label, accs[d], _metric(base, d, "_test_acc"))
                                                        for d, label in q.datasets], q.rerun)
        flags += _changed_but_not_run(name, sec, rs, sections, scaled)
    return lines + ["", "### Honesty checks", ""] + (flags or ["- nothing to compare yet"])


def wilson(acc: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval (in %) of an accuracy of acc % measured on n test images."""
    p = acc / 100
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, 100 * (centre - half)), min(100.0, 100 * (centre + half))


def _test_n(rs: list[dict], dataset: str) -> int | None:
    sizes = {r.get("datasets", {}).get(f"{_key(r, dataset, '')}_test", {}).get("size") for r in rs}
    sizes.discard(None)
    sizes.discard(0)
    return min(sizes) if sizes else None


def _with_n(rs: list[dict], s, n: int | None) -> str:
    """ours ± seed std, the test-set size and the 95% Wilson interval of the mean."""
    if s is None:
        return _cell(rs, s)
    if n is None:
        return fmt(s)
    lo, hi = wilson(s[0], n)  # every seed is tested on the same images: the test set's n, not n x seeds
    return f"{fmt(s)}, {n:,} imgs, 95% [{lo:.1f}, {hi:.1f}]"


def difference_noise(a, b, n_a: int, n_b: int) -> float:
    """Points a difference of two mean accuracies must exceed to be beyond noise: the larger of the seed
    spread (NOISE_SIGMAS pooled std, with two seeds or more on both sides) and the test sets' 95% binomial
    interval of the difference."""
    pa, pb = a[0] / 100, b[0] / 100
    binomial = 196 * math.sqrt(pa * (1 - pa) / n_a + pb * (1 - pb) / n_b)
    seeds = NOISE_SIGMAS * math.sqrt((a[1] ** 2 + b[1] ** 2) / 2) if a[2] > 1 and b[2] > 1 else 0.0
    return max(binomial, seeds)


def _targets(root: Path, q, secs: dict, sections: dict, scaled: set, out_dir: Path | None = None) -> list[str]:
    """Per-target test accuracy (the first dataset is the source) and the average over the targets present,
    beside the published rows; each method's gain over the section it compares to, judged against noise."""
    source, targets = q.datasets[0], q.datasets[1:]
    heads = f"{source[1]} ours | " + " | ".join(f"{label} published | {label} ours" for _, label in targets)
    lines = ["", f"| section | {heads} | average published | average ours (targets present) |",
             "|---|---|" + "---|---|" * len(targets) + "---|---|"]
    loaded = {n: runs(root, s.name) for n, s in _table_rows(secs).items()}
    flags, bars = [], {}
    for name, rs in loaded.items():
        sec, ref = secs[name], secs[name].reference
        accs = {d: _metric(rs, d, "_test_acc") for d, _ in q.datasets}
        ns = {d: _test_n(rs, d) for d, _ in q.datasets}
        present = [d for d, _ in targets if accs[d] is not None]
        avg = stats([sum(r["metrics"][_key(r, d, "_test_acc")] for d in present) / len(present)
                     for r in rs if all(_key(r, d, "_test_acc") in r["metrics"] for d in present)]) if present else None
        cells = " | ".join(f"{ref_cell(ref.get(f'{d}_test_acc'))} | "
                           + ("skipped (data missing)" if rs and accs[d] is None and _skipped(rs, d)
                              else _with_n(rs, accs[d], ns[d])) for d, _ in targets)
        pub_avg = ref_cell(ref.get("average_test_acc"))  # as published, over all four targets
        avg_cell = f"{fmt(avg)} over {', '.join(present)}" if avg else _cell(rs, avg)
        lines.append(f"| {name} | {_with_n(rs, accs[source[0]], ns[source[0]])} | {cells} | {pub_avg} | {avg_cell} |")
        if any(accs[d] is not None for d, _ in q.datasets):
            bars[name] = {d: (accs[d], ns[d]) for d, _ in q.datasets if accs[d] is not None}
        base = loaded.get(sec.compare_to)
        if base and rs:
            for d, label in q.datasets:
                ours, theirs = accs[d], _metric(base, d, "_test_acc")
                n_a, n_b = ns[d], _test_n(base, d)
                if ours is None or theirs is None or not n_a or not n_b:
                    continue
                gain, noise = ours[0] - theirs[0], difference_noise(ours, theirs, n_a, n_b)
                verdict = "**beyond noise**" if abs(gain) > noise else "within noise"
                seeds = f"{min(ours[2], theirs[2])} seed(s)"
                flags.append(f"- {name} vs {sec.compare_to} on {label}: {gain:+.2f} points, {verdict} (noise ±{noise:.2f}: "
                             f"the larger of the seed spread and the 95% binomial interval of {n_a:,} and {n_b:,} "
                             f"test images; {seeds}).")
        flags += _changed_but_not_run(name, sec, rs, sections, scaled)
    if out_dir is not None and bars:
        lines += ["", _target_bars(bars, q, secs, out_dir)]
    return lines + ["", "### Honesty checks", ""] + (flags or ["- nothing to compare yet"])


def _skipped(rs: list[dict], dataset: str) -> bool:
    return any("skipped" in r.get("datasets", {}).get(f"{dataset}_test", {}) for r in rs)


def _target_bars(bars: dict, q, secs: dict, out_dir: Path) -> str:
    """Grouped bars: accuracy per dataset (source first) for every method, error bars the seed std (or the
    95% Wilson half-width with one seed); the published numbers as black ticks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from core.io import save_figure

    datasets = [(d, label) for d, label in q.datasets if any(d in b for b in bars.values())]
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(datasets), 3.6))
    width = 0.8 / len(bars)
    for i, (name, accs) in enumerate(bars.items()):
        xs, ys, errs = [], [], []
        for j, (d, _) in enumerate(datasets):
            if d in accs:
                (mean, std, seeds), n = accs[d]
                xs.append(j + (i - (len(bars) - 1) / 2) * width)
                ys.append(mean)
                errs.append(std if seeds > 1 else (wilson(mean, n)[1] - mean if n else 0))
            ref = secs[name].reference.get(f"{d}_test_acc")
            if ref is not None and d in accs:
                ax.plot([xs[-1] - width / 2, xs[-1] + width / 2], [ref, ref], color="black", lw=1.5)
        ax.bar(xs, ys, width, yerr=errs, capsize=2, label=name)
    ax.set_xticks(range(len(datasets)), [label for _, label in datasets])
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"{q.title.split('·')[-1].strip()}\naccuracy per domain; black ticks: published", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    save_figure(out_dir / f"{q.name}-targets.png", fig)
    return f"![{q.name}: accuracy per domain]({q.name}-targets.png)"


ROBUST_COLUMNS = [(t, m) for t in ("white-box", "transfer") for m in ("fgsm", "pgd")]


def _robustness(root: Path, q, secs: dict, sections: dict, scaled: set) -> list[str]:
    """Clean accuracy, the study's adversarial number and ours under the same protocol, and the
    white-box and transfer FGSM/PGD columns, per trained section; then the honesty checks."""
    dataset = q.datasets[0][0]
    lines = ["", f"The study's adversarial column is {q.reference_threat}. Ours: eps 8/255, PGD 10 steps of 2/255 "
                 "with a random start; the transfer source is named in each run's robustness.json.", "",
             "| section | clean study | clean ours | Δ | adversarial study | transfer noise+FGSM ours | Δ "
             "| white-box FGSM | white-box PGD | transfer FGSM | transfer PGD | AutoAttack (test images) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    rows = _table_rows(secs)
    loaded = {n: runs(root, s.name) for n, s in rows.items()}
    robust = {n: runs(root, s.name, "robustness.json") for n, s in rows.items()}
    auto = {n: runs(root, s.name, "autoattack.json") for n, s in rows.items()}
    cells_of, flags = {}, []
    for name, rs in loaded.items():
        sec, ref = secs[name], secs[name].reference
        rob = robust[name]
        cells = {(t, m): _robust(rob, t, m) for t in ("white-box", "transfer") for m in ("fgsm", "pgd", "noise+fgsm")}
        cells["clean"] = _metric(rs, dataset, "_test_acc")
        cells_of[name] = cells
        base = cells_of.get(sec.compare_to)
        if base is not None and rs:
            flags += noise_flags(name, sec.compare_to, (
                ("clean accuracy", cells["clean"], base["clean"]),
                ("white-box FGSM", cells[("white-box", "fgsm")], base[("white-box", "fgsm")]),
                ("white-box PGD", cells[("white-box", "pgd")], base[("white-box", "pgd")])), q.rerun)
        if any(row.get("threat_model") == "transfer" and row.get("source") == r.get("model")
               for r in rob for row in r.get("results", [])):
            flags.append(f"- {name}: its transfer attacks were crafted on the model itself (PRETRAINED=0 makes its "
                         "trained transfer-source run the source), so its transfer columns are white-box by "
                         "construction.")
        tr = cells[("transfer", "noise+fgsm")]
        lines.append(f"| {name} | {ref_cell(ref.get(f'{dataset}_test_acc'))} | {fmt(cells['clean'])} "
                     f"| {delta(cells['clean'], ref.get(f'{dataset}_test_acc'))} "
                     f"| {ref_cell(ref.get('adversarial'))} | {fmt(tr)} | {delta(tr, ref.get('adversarial'))} | "
                     + " | ".join(fmt(cells[c]) for c in ROBUST_COLUMNS) + f" | {_autoattack_cell(auto[name])} |")
        flags += _above_autoattack(name, cells, robust[name], auto[name])
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
        flags += _changed_but_not_run(name, sec, rs, sections, scaled)
        flags += [f"- {note.format(**ref)}" for note in sec.notes]
    lines += ["", "### Honesty checks", ""] + (flags or ["- nothing to compare yet"])
    for name, sec in secs.items():
        knn = runs(root, sec.name, "knn.json") if any(p.file == "knn.json" for p in sec.evals) else []
        if knn:
            attacked = {}
            for k in knn:
                for r in k["results"]:
                    attacked.setdefault((r["threat_model"], r["method"]), []).append(r["robust_acc"])
            lines += ["", f"kNN (k={knn[0]['k']}) on the {name} model's features: clean "
                          f"{fmt(stats([k['clean_acc'] for k in knn]))}"
                      + "".join(f"; {t} {m} {fmt(stats(v))}" for (t, m), v in attacked.items())]
    return lines


def _n_of(rs: list[dict]) -> int | None:
    ns = [r.get("test", {}).get("n") for r in rs]
    return min(ns) if ns and all(isinstance(n, int) and n > 0 for n in ns) else None


def _autoattack_cell(aa: list[dict]) -> str:
    s = _robust(aa, "white-box", "autoattack")
    return "not run" if s is None else _with_n(aa, s, _n_of(aa))


def _above_autoattack(name: str, cells: dict, rob: list[dict], aa: list[dict]) -> list[str]:
    """A white-box number above AutoAttack's by more than the two test sets' noise overstates robustness."""
    a, n_a, n_r = _robust(aa, "white-box", "autoattack"), _n_of(aa), _n_of(rob)
    flags = []
    for method, label in (("pgd", "PGD-10"), ("fgsm", "FGSM")):
        w = cells[("white-box", method)]
        if a is None or w is None or not n_a or not n_r:
            continue
        gap, noise = w[0] - a[0], difference_noise(w, a, n_r, n_a)
        if gap > noise:
            flags.append(f"- {name}: white-box {label} {w[0]:.2f}% is above AutoAttack's {a[0]:.2f}% by {gap:.2f} "
                         f"points, beyond the test-set noise (±{noise:.2f} on {n_r:,} and {n_a:,} images): **{label} "
                         "overstates this model's robustness; quote AutoAttack.**")
    return flags


def sweep_curve(root: Path, out_dir: Path, sec) -> list[str]:
    """A sweep section's figure: in-domain test accuracy against the number of training images (mean ± std
    over seeds), from results/<profile>/<section>/samples-<n>[/seed-<s>]/metrics.json."""
    paths = sorted((root / sec.name).glob("samples-*/metrics.json")) + \
        sorted((root / sec.name).glob("samples-*/seed-*/metrics.json"))
    found = [r for r in (_load(p) for p in paths) if r]
    if not found:
        return [f"*not run* (`make {sec.name}`)."]
    study = sec.overrides.get("train_on", "svhn")
    by_size: dict = {}
    for r in found:
        by_size.setdefault(r["datasets"]["train"]["size"], []).append(r["metrics"].get(_key(r, study, "_test_acc")))
    points = [(size, stats(v)) for size, v in sorted(by_size.items())]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from core.io import save_figure

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.errorbar([p for p, _ in points], [s[0] for _, s in points],
                yerr=[s[1] if s[2] > 1 else 0 for _, s in points], marker="o", capsize=3)
    ax.set_xscale("log", base=2)
    ax.set_xticks([p for p, _ in points], [str(p) for p, _ in points])  # ticks at the measured points
    ax.minorticks_off()
    ax.set_xlabel("fc fine-tuning images")
    ax.set_ylabel(f"{_key(found[0], study, '')} test accuracy (%)")
    ax.set_title(f"{sec.name}: accuracy vs fine-tuning samples", fontsize=9)
    save_figure(out_dir / f"{sec.name}.png", fig)
    cells = " | ".join(f"{size}: {fmt(s)}" for size, s in points)
    return [f"{study.upper()} accuracy by number of fine-tuning images — {cells}", "", f"![{sec.name}]({sec.name}.png)"]


def _sections(root: Path, out_dir: Path, secs: dict) -> list[str]:
    lines = []
    for name, sec in secs.items():
        lines += ["", f"### {name}: {sec.title}", "", sec.prose, ""]
        if sec.sweep:
            lines += sweep_curve(root, out_dir, sec)
            continue
        rs = runs(root, sec.name, "metrics.json" if sec.kind != "none" else sec.evals[0].file)
        lines += _seeds_and_figures(root, out_dir, name, rs) if rs else ["*not run*"]
        if sec.kind != "none" and any(p.file == "robustness.json" for p in sec.evals):
            lines += audit_card(name, runs(root, sec.name, "robustness.json"), runs(root, sec.name, "autoattack.json"))
    return lines


LARGE_EPS = 64 / 255   # at this radius every honest model should be near 0
NEAR_ZERO = 5.0        # "about 0": at most this many points, plus the test-set noise


def audit_card(name: str, rob: list[dict], aa: list[dict]) -> list[str]:
    """The gradient-masking checks the results files already answer (Carlini et al. 2019; Athalye et al.
    2018), each with its numbers and a pass or a flag judged against the test-set noise (95% Wilson)."""
    if not rob:
        return []
    n = _n_of(rob)
    cell = lambda t, m: _robust(rob, t, m)  # noqa: E731
    checks = []

    def verdict(ok: bool) -> str:
        return "pass" if ok else "**flag**"

    wf, wp = cell("white-box", "fgsm"), cell("white-box", "pgd")
    if wf and wp and n:
        noise = difference_noise(wp, wf, n, n)
        checks.append(f"1. iterative not weaker than single-step: PGD-10 {wp[0]:.2f}% vs FGSM {wf[0]:.2f}% "
                      f"(noise ±{noise:.2f}): {verdict(wp[0] - wf[0] <= noise)}")
    a, n_a = _robust(aa, "white-box", "autoattack"), _n_of(aa)
    if wp and a and n and n_a:
        noise = difference_noise(wp, a, n, n_a)
        checks.append(f"3. AutoAttack not far below PGD-10: {a[0]:.2f}% vs {wp[0]:.2f}% (noise ±{noise:.2f}): "
                      f"{verdict(wp[0] - a[0] <= noise)}")
    sweeps = [r.get("eps_sweep") or [] for r in rob]
    if sweeps and sweeps[0] and n:
        by_eps: dict = {}
        for sweep in sweeps:
            for row in sweep:
                by_eps.setdefault(row["eps"], []).append(row["robust_acc"])
        points = sorted((e, sum(v) / len(v)) for e, v in by_eps.items())
        rises = [(e0, a0, e1, a1) for (e0, a0), (e1, a1) in zip(points, points[1:])
                 if a1 - a0 > 196 * math.sqrt(max(a0, a1) / 100 * (1 - max(a0, a1) / 100) * 2 / n)]
        method = sweeps[0][0].get("method", "the first attack")
        line = f"5. {method} accuracy non-increasing in eps over {len(points)} radii: {verdict(not rises)}"
        if rises:
            e0, a0, e1, a1 = rises[0]
            line += f" (rises from {a0:.2f}% at {e0 * 255:.0f}/255 to {a1:.2f}% at {e1 * 255:.0f}/255)"
        large = [acc for e, acc in points if e >= LARGE_EPS - 1e-9]
        if large:
            hi = wilson(min(large), n)[0]
            line += (f"; at {LARGE_EPS * 255:.0f}/255: {min(large):.2f}%, about 0: "
                     f"{verdict(hi <= NEAR_ZERO)}")
        checks.append(line)
    for method in ("fgsm", "pgd"):
        t, w = cell("transfer", method), cell("white-box", method)
        if t and w and n:
            noise = difference_noise(t, w, n, n)
            checks.append(f"7. transfer {method.upper()} not stronger than white-box: {t[0]:.2f}% vs {w[0]:.2f}% "
                          f"(noise ±{noise:.2f}): {verdict(w[0] - t[0] <= noise)}")
    if not checks:
        return []
    return (["", f"Gradient-masking audit of {name} (on {n:,} test images; checks 2, 4, 6 and 8 of issue 13 "
             "are not built yet):", ""] + [f"- {c}" for c in checks])


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


def write_report(profile, sections: dict, questions: dict, results_root: str | Path = "results",
                 out: str | Path | None = None) -> Path:
    """REPORT.md for `profile` (a Profile) over `sections` and `questions` (experiments' entries)."""
    from core.errors import UsageError
    from core.io import atomic_write

    if not Path(results_root).is_dir():
        raise UsageError(f"results root {results_root} does not exist (pass --results, the folder holding "
                         "<profile>/<section>/ run folders)")
    root = Path(results_root) / profile.name
    out = Path(out) if out else root / "REPORT.md"
    text = build_report(root, profile, sections, questions, out)
    atomic_write(out, lambda tmp: Path(tmp).write_text(text))
    return out
