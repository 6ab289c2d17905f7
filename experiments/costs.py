"""`make plan`: before a long run, what it will cost (the costs; eval/plan.py's plans are evaluation
steps). For a profile and the chosen sections (questions or section names), one row per training run of
the run matrix (experiments/matrix.py, the runs Make plans): training images x epochs, an estimated wall
time from the latest bench JSON of this machine (results/bench/<host>-gpu.json, else <host>.json;
"unknown: run make bench" without one), the disk its model and checkpoint take, and whether it is already
done (its metrics.json exists, so Make skips it unless its config changed). Torch-free: it answers in a
fraction of a second.

The estimate is a model, not a measurement: a training step costs the same per image as the bench's
(ResNet18 at 32 px, scaled by the pixel count at other sizes; the digits ConvNet at ARCH_COST of it),
RandConv multiplies by its views, adversarial training adds one forward-backward per adversarial sample
and attack step, evaluation costs a third of training per image.
"""
from __future__ import annotations

import argparse
import json
import socket
import sys
from pathlib import Path

from core.errors import TrustlabError
from experiments.matrix import runs
from experiments.sections import QUESTIONS, SECTIONS
from loaders.registry import sizes  # (train, test) images of each dataset's official splits
from runs import layout

MB = {"resnet18": 44.8, "digitnet": 17.6}
# Cost per image relative to ResNet18 at 32 px, measured side by side on this repository's 2-core CPU
# (dg-erm-digitnet: 10,000 images in ~25 s; dg-erm-resnet18 with augmentation: 5,000 in ~33 s).
ARCH_COST = {"resnet18": 1.0, "digitnet": 0.45}  # model.pt; checkpoint.pt holds the model and 1-2 optimizer moments


def _bench(bench_dir: Path, rows_gpu=None):
    """(images/s at 32 px for (batch 16, batch >= 128), 224-px images/s or None, source) or None."""
    host = socket.gethostname()
    for name, rows in ((f"{host}-gpu.json", rows_gpu), (f"{host}-gpu.json", None), (f"{host}.json", None)):
        if rows is None:
            try:
                rows = json.loads((bench_dir / name).read_text())["rows"]
            except (OSError, ValueError, KeyError):
                continue
        rate = lambda row, batch, rows=rows: next(  # noqa: E731 (bound to this iteration's rows)
            (r.get("img_s") or r.get("ours_img_s") for r in rows if r.get("row") == row and r.get("batch") == batch
             and not r.get("compiled") and r.get("bf16_channels_last", True)), None)
        small = rate("q1_train", 16) or rate("train_vs_bare", 16)
        large = rate("q1_train", 256) or rate("train_vs_bare", 128) or small
        if small:
            return small, large, rate("q2_train_slice", 128), ("this run's rows" if rows is rows_gpu else name)
    return None


def rows(profile: str, names: list[str], results: str = "results", seeds=(), pretrained: bool = True,
         bench_dir: str | Path = "results/bench", rows_gpu=None, seed: int = 0,
         weights: str | None = None) -> tuple[list[dict], str | None]:
    """One row per training run of the run matrix (experiments/matrix.py, as Make plans it) for `names`."""
    bench = _bench(Path(bench_dir), rows_gpu)
    out = []
    for name in names:
        if SECTIONS[name].kind == "none":
            continue
        try:
            planned = list(runs(profile, results, seed=seed, seeds=seeds, pretrained=pretrained, weights=weights,
                                sections=[name]))
        except TrustlabError as err:  # a section this profile cannot resolve: say so
            out.append({"run": str(layout.run_dir(results, profile, name)), "error": str(err)})
            continue
        for run in planned:
            cfg = run.config
            full_train, _ = sizes(cfg.train_on)
            # the validation split comes out of the full train split first, then the subset is drawn
            train = cfg.finetune_samples or min(cfg.train_size or full_train, full_train - cfg.val_size)
            evals = cfg.val_size + sum(min(cfg.eval_size or sizes(d)[1], sizes(d)[1])
                                       for d in cfg.eval_on)
            cost = train * (cfg.randconv_views if cfg.randconv else 1) * ARCH_COST.get(cfg.arch, 1.0)
            if cfg.loss == "trades":  # the KL steps, then one forward-backward of clean and adversarial
                cost *= 2 + cfg.attack_steps
            else:
                cost *= 1 + cfg.adv_prob * (cfg.attack_steps if "pgd" in cfg.adv_method else 1)
            cost += evals / 3 * (2 if cfg.val_attack else 1)
            seconds = None
            if bench:
                small, large, at224, _ = bench
                rate = small if cfg.batch_size <= 32 else large
                px = cfg.model_input_size or cfg.image_size or 32
                rate = at224 if px == 224 and at224 else rate * (32 / px) ** 2
                seconds = cost * cfg.epochs / rate
            arch_mb = MB.get(cfg.arch, 44.8)
            out.append({"run": str(run.folder), "images": train, "epochs": cfg.epochs, "seconds": seconds,
                        "disk_mb": round(arch_mb * (1 + (3 if cfg.optimizer == "adam" else 2))),
                        "done": _done(run.folder / "metrics.json", cfg)})
    return out, (bench[3] if bench else None)


def _done(metrics: Path, cfg) -> bool:
    """Done as Make decides it: the results file exists and records this config (experiments/make.py dates a
    stamp before a results file made with the same config, and after it otherwise, so Make reruns it)."""
    from experiments.make import _same_config

    try:
        return metrics.is_file() and _same_config(metrics, cfg)
    except (OSError, ValueError, KeyError, TypeError):
        return False  # unreadable: Make's rule (a stamp newer than it) reruns it


def estimate_total(profile: str, rows_gpu=None, bench_dir="results/bench") -> float | None:
    """Hours of training for every section of `profile` (None without a bench file)."""
    table, source = rows(profile, list(SECTIONS), bench_dir=bench_dir, rows_gpu=rows_gpu)
    if source is None:
        return None
    return sum(r.get("seconds") or 0 for r in table) / 3600


def _names(targets: list[str]) -> list[str]:
    names = []
    for t in targets or list(QUESTIONS):
        if t in QUESTIONS:
            names += [n for n, s in SECTIONS.items() if s.question == t]
        elif t in SECTIONS:
            names.append(t)
        else:
            raise SystemExit(f"error: unknown target {t!r}; give questions ({', '.join(QUESTIONS)}) or sections")
    return list(dict.fromkeys(names))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="paper")
    ap.add_argument("--results", default="results")
    ap.add_argument("--seed", default="0", help="Make's SEED (the single-seed layout)")
    ap.add_argument("--seeds", default="", help="Make's SEEDS: space-separated seeds (the seed-<n> layout)")
    ap.add_argument("--pretrained", default="1")
    ap.add_argument("--weights", default="", help="Make's WEIGHTS")
    ap.add_argument("--bench-dir", default="results/bench")
    ap.add_argument("--audit-points", default="", help="Make's AUDIT_POINTS (checked like make's)")
    ap.add_argument("targets", nargs="*", help="questions (q1, q2, dg) or section names; default: all")
    args = ap.parse_args(argv)
    from experiments.make import make_variables

    try:
        v = make_variables(args.seed, args.seeds, args.pretrained, args.audit_points, args.results, args.profile)
    except TrustlabError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for note in v["notes"]:
        print(f"note: {note}", file=sys.stderr)
    table, source = rows(args.profile, _names(args.targets), args.results, v["seeds"], v["pretrained"],
                         args.bench_dir, seed=v["seed"], weights=args.weights or None)
    print("| run | train images x epochs | estimated time | disk | status |\n|---|---|---|---|---|")
    todo = [r for r in table if not r.get("done") and "error" not in r]
    for r in table:
        if "error" in r:
            print(f"| {r['run']} | – | – | – | cannot resolve: {r['error']} |")
            continue
        print(f"| {r['run']} | {r['images']:,} x {r['epochs']} | {_duration(r['seconds'])} | {r['disk_mb']} MB "
              f"| {'done (skipped)' if r['done'] else 'to run'} |")
    total = None if source is None else sum(r["seconds"] for r in todo)
    where = f"from {args.bench_dir}/{source}" if source else "unknown: run `make bench` (or `make gpu-check`) first"
    print(f"\nmake {' '.join(args.targets) or 'all'} PROFILE={args.profile}: {len(todo)} of {len(table)} runs to go, "
          f"about {_duration(total)} of training on this machine ({where}); disk about "
          f"{sum(r['disk_mb'] for r in todo) / 1024:.1f} GB while they run. Evaluations (attacks, kNN, UMAP) "
          "come on top.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
