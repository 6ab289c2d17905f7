"""The report's sentences, each read from results files and the section entries (never typed numbers): the
header and the demo banner, the attack protocol, what each section's runs did, its seeds and figures, the kNN
line and the fine-tuning curve's points."""
from __future__ import annotations

import os
import re
from pathlib import Path

from eval.audit import test_n
from eval.stats import stats
from loaders.registry import label, shown
from report.load import stand_ins
from report.tables import ours
from runs.layout import run_dir


def generated(root: Path, profile) -> str:
    return (f"Generated from the results files under `{root}` by `python cli.py report --profile {profile.name}`; "
            "the study's numbers come from `experiments/sections.py`. Ours are mean ± sample std over the seeds "
            "found (n shown); Δ = ours − study.")


def banner(profile) -> str | None:
    """Under stand-in data, that the numbers are not the study's; on subsets, that they are lower."""
    if profile.dataset_map:
        roles = ", ".join(f"{v} stands in for {k}" for k, v in profile.dataset_map.items())
        return (f"> **Demo data, not the study's.** {roles}. These numbers show the pipeline working on "
                "embedded data; they are not comparable with the study's column.")
    if profile.name != "paper":
        return (f"> Profile `{profile.name}` runs the study's method on subsets ({profile.description}); "
                "expect lower numbers than the study's full-scale runs.")
    return None


def eps_text(eps: float) -> str:
    from attacks.base import eps_label

    return eps_label(eps)


def protocol(rob: dict) -> str:
    """The attacks' settings as the results file records them (never typed here)."""
    parts = []
    for row in rob.get("results", []):
        if row["method"] == "pgd" and row["threat_model"] == "white-box" and not parts and "alpha" in row:
            parts.append(f"eps {eps_text(row['eps'])}; PGD {row['steps']} steps of {eps_text(row['alpha'])}"
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


def robustness_preface(q, rob_files: dict) -> list[str]:
    found = next((protocol(r[0]) for r in rob_files.values() if r), "")
    return [f"The study's adversarial column is {q.reference_threat}."
            + (f" Ours, as the results files record it: {found}." if found else ""),
            "Each cell: mean (± seed std), the number of test images, and the 95% Wilson interval. AutoAttack (the "
            "authors' standard version, pyautoattack: APGD-CE, APGD-T, FAB-T and Square, 100 iterations, in fp32) "
            "and the worst case run on the audit's fixed subset; the worst case counts an image as robust only if no "
            "attack there broke it (AutoAttack's convention; for a kNN model, the attacks on the kNN itself "
            "included). Comparisons of attacks on the same images use the exact McNemar test on per-image records."]


def knn_line(name: str, knn: list[dict]) -> str:
    """The kNN evaluation of a section's model: clean and attacked accuracy over seeds, with n and intervals."""
    attacked: dict = {}
    for k in knn:
        for r in k["results"]:
            attacked.setdefault((r["threat_model"], r["method"]), []).append(r["robust_acc"])
    n = test_n(knn)
    return (f"kNN (k={knn[0]['k']}) on the {name} model's features: clean "
            f"{ours(knn, stats([k['clean_acc'] for k in knn]), n)}"
            + "".join(f"; {t} {m} {ours(knn, stats(v), n)}" for (t, m), v in attacked.items()))


def curve_line(study: str, points: list, n_test: int | None, found: list[dict]) -> str:
    cells = " | ".join(f"{size}: {ours(found, s, n_test)}" for size, s in points)
    return f"{study.upper()} accuracy by number of fine-tuning images — {cells}"


def what_ran(rs: list[dict]) -> str:
    """What the runs did, read from their configs and datasets (never from the section's prose)."""
    def one_of(values) -> str:
        found = sorted({str(v) for v in values})
        return found[0] if len(found) == 1 else " / ".join(found)

    cfgs = [r.get("config", {}) for r in rs]
    train = [r.get("datasets", {}).get("train", {}) for r in rs]
    tested = one_of(", ".join(f"{shown(k[:-5], stand_ins(r))} ({v.get('size', 0):,} images)"
                              for k, v in r.get("datasets", {}).items() if k.endswith("_test") and v.get("size"))
                    for r in rs)
    init = one_of("ImageNet weights" if c.get("pretrained") else "from the run " + Path(c["init_from"]).name
                  if c.get("init_from") else "random initialisation" for c in cfgs)
    size = one_of((f"{c['image_size']} px" if c.get("image_size") else "native size")
                  + (f", resized to {c['model_input_size']} px inside the model (attacks act on the batches' pixels)"
                     if c.get("model_input_size") else "") for c in cfgs)
    on = one_of(shown(t.get("dataset", "?"), stand_ins(r)) for t, r in zip(train, rs))
    images = one_of(format(t.get("size", 0), ",") for t in train)
    epochs = one_of(c.get("epochs") for c in cfgs)
    recipe = [part for part in (
        one_of(f"lr {c.get('lr'):g} ({c.get('lr_schedule')})" for c in cfgs) if any(
            c.get("lr_schedule", "exponential") != "exponential" for c in cfgs) else "",
        one_of(f"weight decay {c['weight_decay']:g}" for c in cfgs) if any(c.get("weight_decay") for c in cfgs) else "",
        "random crop and flip" if any(c.get("crop_flip") for c in cfgs) else "",
        "the training attack crafted in train mode" if any(c.get("attack_train_mode") for c in cfgs) else "",
        "RandConv's later views drawn from the batch, not from the first view as the authors' code draws them"
        if any(c.get("randconv") and not c.get("randconv_progressive") and not c.get("randconv_chain")
               for c in cfgs) else "",
        "kept epoch " + one_of(f"{r.get('selected_epoch')} ({r.get('selected_by')})" for r in rs)
        if any(c.get("keep_best") for c in cfgs) else "") if part]
    return (f"*This section's runs, as their configs record them:* trained on {on} ({images} images), {epochs} epochs, "
            f"{init}, images at {size}" + (f"; {', '.join(recipe)}" if recipe else "") + f"; tested on {tested}.")


def resumed(rs: list[dict]) -> str:
    """For each seed trained in more than one process (a --resume), which epochs ran at which commit, from the
    results file's provenance.segments; '' when every run ran in one process."""
    def commit(c) -> str:
        c = str(c)
        return c[:7] + c[40:] if re.fullmatch(r"[0-9a-f]{40}(-dirty)?", c) else c  # a hash, shortened, keeping '-dirty'

    def epochs(e) -> str:
        if not isinstance(e, list) or not e:
            return "epochs ?"
        return f"epoch {e[0]}" if e[0] == e[-1] else f"epochs {e[0]}-{e[-1]}"

    parts = []
    for r in sorted(rs, key=lambda r: r["seed"]):
        prov = r.get("provenance") if isinstance(r.get("provenance"), dict) else {}
        segs = prov.get("segments") if isinstance(prov.get("segments"), list) else []
        segs = [s for s in segs if isinstance(s, dict)]
        if len(segs) > 1:
            parts.append(f"seed {r['seed']} in {len(segs)} processes (" + ", ".join(
                f"{epochs(s.get('epochs'))} at {commit(s.get('git_commit'))}" for s in segs) + ")")
    return ("Resumed with --resume: " + "; ".join(parts) + ".") if parts else ""


def seeds_line(rs: list[dict]) -> str:
    """The seeds, which of them were resumed (and at which commits), and for runs that kept their best validation
    checkpoint (`selection` in metrics.json), which iteration each seed kept and its validation accuracy."""
    line = " ".join(part for part in (f"Seeds: {', '.join(map(str, sorted({r['seed'] for r in rs})))}.",
                                      resumed(rs)) if part)
    chosen = sorted(((r["seed"], r["selection"]) for r in rs if isinstance(r.get("selection"), dict)),
                    key=lambda pair: pair[0])
    if not chosen:
        return line
    every = " / ".join(sorted({f"{e:,}" if isinstance(e, int) else str(e) for e in (c.get("every") for _, c in chosen)}))
    draws = max((c["draws"] for _, c in chosen if isinstance(c.get("draws"), int)), default=1)

    def one(seed, c):
        it, val = c.get("iteration"), c.get("val_acc")
        return (f"seed {seed} at iteration " + (f"{it:,}" if isinstance(it, int) else str(it))
                + (f" (validation {val:.2f}%)" if isinstance(val, (int, float)) else ""))
    return (f"{line} Kept checkpoint, the best validation accuracy checked every {every} iterations"
            + (f" (RandConv on, the mean of {draws} draws)" if draws > 1 else "")
            + ": " + "; ".join(one(seed, c) for seed, c in chosen) + ".")


FIGURES = (("curves.png", "training curves"), ("robustness-examples.png", "adversarial examples"),
           ("robustness-eps.png", "robust accuracy vs eps"), ("umap.png", "UMAP, clean vs adversarial"))


def run_figures(root: Path, out_dir: Path, name: str, rs: list[dict]) -> list[tuple[str, str]]:
    """(alt text, link from the report) of the first four figures the section's run folders hold."""
    folders = [run_dir(root.parent, root.name, name)] + \
        [run_dir(root.parent, root.name, name, s) for s in sorted({r["seed"] for r in rs})]
    found = [(f"{name} {caption}", os.path.relpath(folder / file, out_dir))
             for folder in folders for file, caption in FIGURES if (folder / file).is_file()]
    return found[:4]


def axis_label(study: str, result: dict) -> str:
    """A figure axis naming the study's dataset, and the stand-in that ran for it."""
    used = stand_ins(result).get(study, study)
    return f"{label(study)} test accuracy (%)" + (f"\n(stand-in: {label(used)})" if used != study else "")
