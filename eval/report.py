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


from eval.audit import (NOISE_SIGMAS, audit_checks, difference_noise, robust, stats, sweep_checks, test_n,
                        verdict, wilson, worst)

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
    """Flags for preset `name` against `base_name`: [(label, ours stats, base stats[, n ours, n base])]. With
    the test-set sizes, a difference is judged against difference_noise (the larger of the seed spread and
    the 95% binomial interval), so one seed is judged too; without them, against NOISE_SIGMAS pooled seed
    std, and with one seed the noise is unknown."""
    flags, beyond = [], []
    for label, ours, base, *ns in pairs:
        if ours and base and len(ns) == 2 and all(ns):
            gap, noise = ours[0] - base[0], difference_noise(ours, base, *ns)
            why = (f"noise ±{noise:.2f}: the larger of the seed spread ({min(ours[2], base[2])} seed(s)) and the "
                   f"95% binomial interval of {ns[0]:,} and {ns[1]:,} test images")
            flags.append(f"- {name} vs {base_name} on {label}: {gap:+.2f} points, "
                         + (f"**beyond noise** ({why})." if abs(gap) > noise else f"within noise ({why})."))
            continue
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
            table = (_domains(root, q, secs, sections, scaled, out_dir) if q.layout == "domains"
                     else _robustness(root, q, secs, sections, scaled, out_dir))
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


def _domains(root: Path, q, secs: dict, sections: dict, scaled: set, out_dir: Path | None = None) -> list[str]:
    """In-domain and out-of-domain test accuracy per section, with train loss and accuracy."""
    heads = " | ".join(f"{label} study | {label} ours | Δ" for _, label in q.datasets)
    lines = ["", f"| section | {heads} | train loss study / ours | train acc study / ours |",
             "|---|" + "---|---|---|" * len(q.datasets) + "---|---|"]
    loaded = {n: runs(root, s.name) for n, s in _table_rows(secs).items()}
    stand_in = any(r.get("config", {}).get("stand_ins") for rs in loaded.values() for r in rs)
    flags, points = [], {}
    for name, rs in loaded.items():
        sec, ref = secs[name], secs[name].reference
        accs = {d: _metric(rs, d, "_test_acc") for d, _ in q.datasets}
        ns = {d: _test_n(rs, d) for d, _ in q.datasets}
        if len(q.datasets) >= 2 and all(accs[d] for d, _ in q.datasets[:2]):
            points[name] = [(accs[d], ns[d]) for d, _ in q.datasets[:2]]
        loss, acc = (stats([r["metrics"].get("train_loss") for r in rs]) if rs else None,
                     stats([r["metrics"].get("train_acc") for r in rs]) if rs else None)
        cells = " | ".join(f"{ref_cell(ref.get(f'{d}_test_acc'))} | {_with_n(rs, accs[d], ns[d])} | "
                           + ("–" if stand_in else delta(accs[d], ref.get(f'{d}_test_acc'))) for d, _ in q.datasets)
        lines.append(f"| {name} | {cells} | {ref_cell(ref.get('train_loss'), 3)} / {fmt(loss, 3)} "
                     f"| {ref_cell(ref.get('train_acc'))} / {fmt(acc)} |")
        if sec.compare_to in loaded and rs:
            base = loaded[sec.compare_to]
            flags += noise_flags(name, sec.compare_to, [(label, accs[d], _metric(base, d, "_test_acc"), ns[d],
                                                         _test_n(base, d)) for d, label in q.datasets], q.rerun)
        for d, label in q.datasets:
            flags += _chance(f"{name} on {label}", accs[d], ns[d], what="accuracy")
        flags += _changed_but_not_run(name, sec, rs, sections, scaled)
    if stand_in:
        flags.append("- Δ against the study is left out: these runs use stand-in data (see the banner).")
    figure = [_domain_figure(points, q, secs, out_dir, stand_in)] if points and out_dir is not None else []
    return lines + [""] + figure + ["", "### Honesty checks", ""] + (flags or ["- nothing to compare yet"])


def _error(s, n) -> float:
    """An error bar: the seed std with two seeds or more, else the 95% Wilson half-width of n images."""
    if s[2] > 1:
        return s[1]
    if not n:
        return 0.0
    lo, hi = wilson(s[0], n)
    return max(s[0] - lo, hi - s[0])


def _domain_figure(points: dict, q, secs: dict, out_dir: Path, stand_in: bool) -> str:
    """One summary figure for a question: in-domain against out-of-domain accuracy per section, with error
    bars; the study's own numbers as grey crosses (left out under stand-in data)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from core.io import save_figure

    (d_in, label_in), (d_out, label_out) = q.datasets[:2]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for i, (name, ((a, n_a), (b, n_b))) in enumerate(points.items()):
        colour = plt.get_cmap("tab10")(i % 10)
        ax.errorbar(a[0], b[0], xerr=_error(a, n_a), yerr=_error(b, n_b), fmt="o", color=colour, capsize=3, label=name)
        ref = secs[name].reference
        if not stand_in and ref.get(f"{d_in}_test_acc") is not None and ref.get(f"{d_out}_test_acc") is not None:
            ax.plot(ref[f"{d_in}_test_acc"], ref[f"{d_out}_test_acc"], "x", color="grey")
            ax.plot([a[0], ref[f"{d_in}_test_acc"]], [b[0], ref[f"{d_out}_test_acc"]], ":", color=colour, lw=0.8)
    ax.set_xlabel(f"{label_in} test accuracy (%)")  # the question's in-domain set (the reverse runs train on the other)
    ax.set_ylabel(f"{label_out} test accuracy (%)")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_title(f"{q.name.upper()}: {label_in} vs {label_out} test accuracy per section (error bars: seed std, or 95% "
                 "interval with one seed)"
                 + ("" if stand_in else "\ngrey crosses: the study's numbers"), fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    save_figure(out_dir / f"{q.name}-domains.png", fig)
    return f"![{q.name}: {label_in} vs {label_out} accuracy per section]({q.name}-domains.png)"


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
        avg_cell = f"{fmt(avg)} over {', '.join(present)}{_average_interval(accs, ns, present)}" if avg else _cell(rs, avg)
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


def _average_interval(accs: dict, ns: dict, present: list[str]) -> str:
    """The 95% half-width of an average of per-target accuracies, each on its own test set (the targets'
    binomial variances, summed and divided by the number of targets squared)."""
    if not present or not all(ns.get(d) for d in present):
        return ""
    var = sum((accs[d][0] / 100) * (1 - accs[d][0] / 100) / ns[d] for d in present) / len(present) ** 2
    return f", 95% ±{196 * math.sqrt(var):.1f}"


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
_METHOD_NAMES = {"fgsm": "FGSM", "pgd": "PGD-10 (step scaled with eps)", "noise+fgsm": "noise+FGSM"}


def _protocol(rob: dict) -> str:
    """The attacks' settings as the results file records them (never typed here)."""
    parts = []
    for row in rob.get("results", []):
        if row["method"] == "pgd" and row["threat_model"] == "white-box" and not parts and "alpha" in row:
            parts.append(f"eps {_eps_text(row['eps'])}; PGD {row['steps']} steps of {_eps_text(row['alpha'])}"
                         + (" from a random start" if row.get("random_start") else ""))
    sources = sorted({row["source"] for row in rob.get("results", []) if row["threat_model"] == "transfer"
                      and "source" in row})
    through = sorted({row["through"] for row in rob.get("results", [])
                      if row["threat_model"] == "white-box" and "through" in row})
    if sources:
        parts.append("transfer attacks crafted on " + ", ".join(sources))
    if through:
        parts.append("white-box gradients through " + ", ".join(through))
    return "; ".join(parts)


def _eps_text(eps: float) -> str:
    from attacks.base import eps_label

    return eps_label(eps)


def _robustness(root: Path, q, secs: dict, sections: dict, scaled: set, out_dir: Path | None = None) -> list[str]:
    """Clean accuracy, the study's adversarial number and ours under the same protocol, the white-box and
    transfer FGSM/PGD columns, AutoAttack and the worst case over every attack, per trained section (each
    with its test images and 95% interval); then the honesty checks and the shared-axes eps figure."""
    dataset = q.datasets[0][0]
    rows = _table_rows(secs)
    loaded = {n: runs(root, s.name) for n, s in rows.items()}
    rob_files = {n: runs(root, s.name, "robustness.json") for n, s in rows.items()}
    audits = {n: runs(root, s.name, "audit.json") for n, s in rows.items()}
    protocol = next((_protocol(r[0]) for r in rob_files.values() if r), "")
    lines = ["", f"The study's adversarial column is {q.reference_threat}."
             + (f" Ours, as the results files record it: {protocol}." if protocol else ""),
             "Each cell: mean (± seed std), the number of test images, and the 95% Wilson interval. AutoAttack and "
             "the worst case run on the audit's fixed subset; the worst case is the lowest accuracy of every attack "
             "there (for a kNN model, the attacks on the kNN itself included).", "",
             "| section | clean study | clean ours | Δ | adversarial study | transfer noise+FGSM ours | Δ "
             "| white-box FGSM | white-box PGD | transfer FGSM | transfer PGD | AutoAttack | worst case (attack) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    stand_in = any(r.get("config", {}).get("stand_ins") for rs in loaded.values() for r in rs)
    cells_of, flags = {}, []
    for name, rs in loaded.items():
        sec, ref = secs[name], secs[name].reference
        rob, aud = rob_files[name], audits[name]
        n_rob, n_aud = test_n(rob), test_n(aud)
        cells = {(t, m): robust(rob, m, t) for t in ("white-box", "transfer") for m in ("fgsm", "pgd", "noise+fgsm")}
        cells["clean"] = _metric(rs, dataset, "_test_acc")
        cells_of[name] = cells
        base = cells_of.get(sec.compare_to)
        if base is not None and rs:
            base_rs, base_rob = loaded[sec.compare_to], rob_files[sec.compare_to]
            flags += noise_flags(name, sec.compare_to, (
                ("clean accuracy", cells["clean"], base["clean"], _test_n(rs, dataset), _test_n(base_rs, dataset)),
                ("white-box FGSM", cells[("white-box", "fgsm")], base[("white-box", "fgsm")], n_rob, test_n(base_rob)),
                ("white-box PGD", cells[("white-box", "pgd")], base[("white-box", "pgd")], n_rob, test_n(base_rob))),
                q.rerun)
        if any(row.get("threat_model") == "transfer" and row.get("source") == r.get("model")
               for r in rob for row in r.get("results", [])):
            flags.append(f"- {name}: its transfer attacks were crafted on the model itself (PRETRAINED=0 makes its "
                         "trained transfer-source run the source), so its transfer columns are white-box by "
                         "construction.")
        tr = cells[("transfer", "noise+fgsm")]
        clean_n = _test_n(rs, dataset)
        study = lambda key, s: "–" if stand_in else delta(s, ref.get(key))  # noqa: E731
        auto = robust(aud, "autoattack")
        low = worst(aud)
        lines.append(f"| {name} | {ref_cell(ref.get(f'{dataset}_test_acc'))} | {_with_n(rs, cells['clean'], clean_n)} "
                     f"| {study(f'{dataset}_test_acc', cells['clean'])} "
                     f"| {ref_cell(ref.get('adversarial'))} | {_with_n(rob, tr, n_rob)} | {study('adversarial', tr)} | "
                     + " | ".join(_with_n(rob, cells[c], n_rob) for c in ROBUST_COLUMNS)
                     + f" | {_with_n(aud, auto, n_aud) if auto else 'not run'}"
                     + f" | {_with_n(aud, low[0], n_aud) + ' (' + low[1] + ')' if low else 'not run'} |")
        flags += _chance(name, cells["clean"], clean_n)
        flags += _above_autoattack(name, cells, rob, aud)
        wf, wp = cells[("white-box", "fgsm")], cells[("white-box", "pgd")]
        if wf and wp and n_rob and wp[0] - wf[0] > difference_noise(wp, wf, n_rob, n_rob):
            flags.append(f"- {name}: white-box PGD ({wp[0]:.2f}%) is above white-box FGSM ({wf[0]:.2f}%) beyond the "
                         f"noise (±{difference_noise(wp, wf, n_rob, n_rob):.2f} on {n_rob:,} images): **suspect** (PGD "
                         "should be the stronger attack; look for gradient masking or a bug; see the audit card).")
        flags += _knn_explained(name, rob, aud)
        for method in ("fgsm", "noise+fgsm", "pgd"):
            t, w = cells[("transfer", method)], cells[("white-box", method)]
            if t and w and t[0] - w[0] > TRANSFER_GAP:
                flags.append(f"- {name}: transfer {method} {t[0]:.2f}% vs white-box {w[0]:.2f}%: a gap of "
                             f"{t[0] - w[0]:.1f} points. **Transfer robustness overstates the model's robustness**; "
                             "quote the white-box number as its robustness.")
        flags += _changed_but_not_run(name, sec, rs, sections, scaled)
        flags += [f"- {note.format(**ref)}" for note in sec.notes]
    if stand_in:
        flags.append("- Δ against the study is left out: these runs use stand-in data (see the banner).")
    lines += ["", "### Honesty checks", ""] + (flags or ["- nothing to compare yet"])
    if out_dir is not None:
        figure = eps_figure(rob_files, q, out_dir)
        if figure:
            lines += ["", figure]
    for name, sec in secs.items():
        knn = runs(root, sec.name, "knn.json") if any(p.file == "knn.json" for p in sec.evals) else []
        if knn:
            attacked = {}
            for k in knn:
                for r in k["results"]:
                    attacked.setdefault((r["threat_model"], r["method"]), []).append(r["robust_acc"])
            n = test_n(knn)
            lines += ["", f"kNN (k={knn[0]['k']}) on the {name} model's features: clean "
                          f"{_with_n(knn, stats([k['clean_acc'] for k in knn]), n)}"
                      + "".join(f"; {t} {m} {_with_n(knn, stats(v), n)}" for (t, m), v in attacked.items())]
    return lines


def _chance(name: str, clean, n: int | None, classes: int = 10, what: str = "clean accuracy") -> list[str]:
    """An accuracy whose 95% interval reaches chance (1/classes) or lies below it is no better than guessing:
    say so."""
    if clean is None or not n or wilson(clean[0], n)[0] > 100 / classes:
        return []
    tail = ": its robustness numbers mean nothing." if what == "clean accuracy" else "."
    return [f"- {name}: {what} {clean[0]:.2f}% on {n:,} images is **at or below chance** ({100 / classes:.0f}% for "
            f"{classes} classes; its 95% interval reaches it){tail}"]


def _knn_explained(name: str, rob: list[dict], aud: list[dict]) -> list[str]:
    """For a kNN model: the surrogate's white-box numbers beside the attacks on the kNN itself, and whether the
    surrogate overstated the kNN's robustness beyond the noise."""
    if not aud or not all(a.get("prediction") == "knn" for a in aud):
        return []
    n = test_n(aud)
    via_surrogate = robust(aud, "pgd", steps=10)
    on_knn = [(s, label) for s, label in ((robust(aud, "pgd", steps=50, via="knn"), "PGD-50 on the kNN's score"),
                                          (robust(aud, "square", "black-box", via="knn"), "Square on the kNN's scores"),
                                          (robust(aud, "autoattack", via="knn"), "AutoAttack on the kNN's scores"))
              if s is not None]
    if not via_surrogate or not on_knn or not n:
        return []
    best, label = min(on_knn, key=lambda t: t[0][0])
    gap, noise = via_surrogate[0] - best[0], difference_noise(via_surrogate, best, n, n)
    verdict = (f"**the surrogate overstated the kNN's robustness by {gap:.2f} points** (beyond the noise, ±{noise:.2f}): "
               "the centroid surrogate is not the kNN's decision rule, so its gradients point only roughly where "
               "the kNN's decision changes, and more PGD steps can overfit the surrogate (which is how PGD can come "
               "out above FGSM); quote the attacks on the kNN"
               if gap > noise else f"within the noise (±{noise:.2f}): the surrogate did not overstate it here")
    return [f"- {name} predicts by kNN. On the audit's {n:,} images, PGD-10 through the centroid surrogate leaves "
            f"{via_surrogate[0]:.2f}%; attacking the kNN itself, {label} leaves {best[0]:.2f}%: {verdict}."]


def _above_autoattack(name: str, cells: dict, rob: list[dict], aa: list[dict]) -> list[str]:
    """Any robust-accuracy column above AutoAttack's by more than the two test sets' noise overstates the
    model's robustness: flag it, so no number in the table stands above AutoAttack unflagged."""
    a, n_a, n_r = robust(aa, "autoattack"), test_n(aa), test_n(rob)
    flags = []
    for (threat, method), label in ((("white-box", "pgd"), "white-box PGD-10"), (("white-box", "fgsm"), "white-box FGSM"),
                                    (("white-box", "noise+fgsm"), "white-box noise+FGSM"),
                                    (("transfer", "pgd"), "transfer PGD-10"), (("transfer", "fgsm"), "transfer FGSM"),
                                    (("transfer", "noise+fgsm"), "transfer noise+FGSM")):
        w = cells[(threat, method)]
        if a is None or w is None or not n_a or not n_r:
            continue
        gap, noise = w[0] - a[0], difference_noise(w, a, n_r, n_a)
        if gap > noise:
            flags.append(f"- {name}: {label} {w[0]:.2f}% is above AutoAttack's {a[0]:.2f}% by {gap:.2f} "
                         f"points, beyond the test-set noise (±{noise:.2f} on {n_r:,} and {n_a:,} images): **{label} "
                         "overstates this model's robustness; quote AutoAttack.**")
    return flags


_LINESTYLES = {"fgsm": "-", "pgd": "--", "noise+fgsm": ":"}


def eps_figure(rob_files: dict, q, out_dir: Path) -> str | None:
    """Every model and swept attack on shared axes: white-box robust accuracy against eps (x in 255ths, ticks
    at the measured radii), one colour per section, one line style per attack; error bars the seed std, or the
    95% Wilson half-width with one seed."""
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from core.io import save_figure

    colours = {name: plt.get_cmap("tab10")(i % 10) for i, name in enumerate(rob_files)}
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    radii = sorted({e for _, pts in curves.values() for e, _ in pts})
    for (name, method), (n, pts) in curves.items():
        xs = [e * 255 for e, _ in pts]
        ys = [s[0] for _, s in pts]
        errs = [_error(s, n) for _, s in pts]
        ax.errorbar(xs, ys, yerr=errs, color=colours[name], linestyle=_LINESTYLES.get(method, "-."), marker="o",
                    markersize=3, capsize=2, label=f"{name}, {_METHOD_NAMES.get(method, method)}")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xticks([e * 255 for e in radii], [f"{e * 255:g}" for e in radii])
    ax.minorticks_off()
    ax.set_xlabel("eps (L-inf, in 1/255 of the [0,1] pixel range)")
    ax.set_ylabel("white-box robust accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"{q.name.upper()}: robust accuracy vs eps, every model (colour) and attack (line style)", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    save_figure(out_dir / f"{q.name}-eps.png", fig)
    return f"![{q.name}: robust accuracy against eps, every model and attack]({q.name}-eps.png)"


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

    n_test = _test_n(found, study)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.errorbar([p for p, _ in points], [s[0] for _, s in points],  # seed std, or the 95% interval with one seed
                yerr=[_error(s, n_test) for _, s in points], marker="o", capsize=3)
    ax.set_xscale("log", base=2)
    ax.set_xticks([p for p, _ in points], [str(p) for p, _ in points])  # ticks at the measured points
    ax.minorticks_off()
    ax.set_xlabel("fc fine-tuning images")
    from eval.curves import DATASET_LABELS

    used = _key(found[0], study, "")
    ax.set_ylabel(f"{DATASET_LABELS.get(study, study)} test accuracy (%)"
                  + (f"\n(stand-in: {used})" if used != study else ""))
    ax.set_title(f"{sec.name}: accuracy vs fine-tuning samples", fontsize=9)
    save_figure(out_dir / f"{sec.name}.png", fig)
    cells = " | ".join(f"{size}: {_with_n(found, s, n_test)}" for size, s in points)
    return [f"{study.upper()} accuracy by number of fine-tuning images — {cells}", "", f"![{sec.name}]({sec.name}.png)"]


def _sections(root: Path, out_dir: Path, secs: dict) -> list[str]:
    lines = []
    for name, sec in secs.items():
        lines += ["", f"### {name}: {sec.title}", "", sec.prose, ""]
        if sec.sweep:
            lines += sweep_curve(root, out_dir, sec)
            continue
        rs = runs(root, sec.name, "metrics.json" if sec.kind != "none" else sec.evals[0].file)
        if rs and sec.kind != "none":
            lines += [_what_ran(rs), ""]
        lines += _seeds_and_figures(root, out_dir, name, rs) if rs else ["*not run*"]
        if sec.kind != "none" and any(p.file == "robustness.json" for p in sec.evals):
            lines += audit_card(name, runs(root, sec.name, "robustness.json"), runs(root, sec.name, "audit.json"))
    return lines


def _what_ran(rs: list[dict]) -> str:
    """What the runs did, read from their configs and datasets (never from the section's prose)."""
    from eval.curves import DATASET_LABELS

    def one_of(values) -> str:
        found = sorted({str(v) for v in values})
        return found[0] if len(found) == 1 else " / ".join(found)

    cfgs = [r.get("config", {}) for r in rs]
    train = [r.get("datasets", {}).get("train", {}) for r in rs]
    names = {v: k for r in rs for k, v in r.get("roles", {}).items()}
    label = lambda d: DATASET_LABELS.get(names.get(d, d), d) + (f" (stand-in: {d})" if d in names else "")  # noqa: E731
    tested = one_of(", ".join(f"{label(k[:-5])} ({v.get('size', 0):,} images)" for k, v in r.get("datasets", {}).items()
                              if k.endswith("_test") and v.get("size")) for r in rs)
    init = one_of("ImageNet weights" if c.get("pretrained") else "from the run " + Path(c["init_from"]).name
                  if c.get("init_from") else "random initialisation" for c in cfgs)
    size = one_of(f"{c['image_size']} px" if c.get("image_size") else "native size" for c in cfgs)
    on = one_of(label(t.get("dataset", "?")) for t in train)
    images = one_of(format(t.get("size", 0), ",") for t in train)
    epochs = one_of(c.get("epochs") for c in cfgs)
    return (f"*This section's runs, as their configs record them:* trained on {on} ({images} images), {epochs} epochs, "
            f"{init}, images at {size}; tested on {tested}.")


def audit_card(name: str, rob: list[dict], aud: list[dict]) -> list[str]:
    """The gradient-masking audit of one model as a short card: each check (eval/audit.py) with its numbers
    and a pass or a flag judged against the test-set noise."""
    checks = sorted(audit_checks(aud) + sweep_checks(rob), key=lambda c: c["check"])
    if not checks:
        return []
    flagged = sum(c["passed"] is False for c in checks)
    undecided = sum(c["passed"] is None for c in checks)
    where = ([f"checks 1-4, 6 and 8 on the audit's {test_n(aud):,} images"] if aud and test_n(aud) else []) + \
        ([f"5 and 7 on robustness.json's {test_n(rob):,}"] if rob and test_n(rob) else [])
    head = (f"Gradient-masking audit of {name}: {sum(c['passed'] is True for c in checks)} of {len(checks)} checks pass"
            + (f", **{flagged} flagged**" if flagged else "") + (f", {undecided} inconclusive" if undecided else "")
            + (f" ({'; '.join(where)})" if where else "") + ":")
    return ["", head, ""] + [f"- {c['check']}. {c['title']}: {c['detail']}: {verdict(c)}" for c in checks]


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


def track_report(enabled: bool, profile: str, path: Path) -> None:
    """REPORT.md and the figures beside it as one W&B artifact, in a run of job_type "report"."""
    if not enabled:
        return
    from core.tracking import Tracker

    path = Path(path)
    tracker = Tracker(True, group=f"{profile}/report", name=f"report-{profile}", job_type="report",
                      config={"profile": profile, "report": str(path)}, tags=(profile,))
    figures = sorted(path.parent.glob("*.png"))
    for png in figures:
        tracker.image(png.stem, png)
    tracker.artifact(f"report-{profile}", "report", [path, *figures])
    tracker.finish()
