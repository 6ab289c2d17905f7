"""The Makefile's rules, generated from SECTIONS: `python -m experiments.make --profile P ...`.

The Makefile runs this once as it starts (it imports no torch, so it takes a fraction of a second)
and includes the rules it writes. For every run folder of every section it writes:
  - one rule per results file: metrics.json (train or finetune-fc) and one per evaluation step
    (robustness.json, knn.json, umap.json), with the command that makes it;
  - a stamp per results file, <run>/stamps/<file>, holding the resolved config (or evaluation plan).
    A stamp is rewritten only when its content changes, and a results file depends on its stamp and on
    the results it starts from, never on source files: editing a comment plans nothing, changing a
    section's lr plans that section and those that depend on it. A code change that alters results
    bumps RunConfig.version (or EVAL_VERSION) on purpose.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import sys
from dataclasses import asdict, replace
from pathlib import Path

from attacks.base import eps_label
from core.config import RunConfig
from core.errors import TrustlabError
from eval.plan import AttackPlan, KnnPlan, UmapPlan
from experiments.profiles import PROFILES
from experiments.resolve import resolve_training, run_dir, transfer_source
from experiments.sections import QUESTIONS, SECTIONS

EVAL_VERSION = 3  # bump when a change to eval/ alters the numbers an evaluation writes


def _write_if_changed(path: Path, text: str, results: Path | None = None, same_as_results=None) -> None:
    """Write text to path unless it already holds it. A new or changed stamp for a results file that was
    made with this very config is dated before that file, so existing results are not redone (a field that
    a newer trustlab added, at its default value, changes the stamp's text but not the results)."""
    if path.is_file() and path.read_text() == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    if results is not None and results.is_file() and same_as_results is not None:
        try:
            if same_as_results(json.loads(results.read_text())):
                old = results.stat().st_mtime - 1
                os.utime(path, (old, old))
        except (OSError, ValueError, KeyError, TypeError):
            pass


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=lambda o: list(o) if isinstance(o, tuple) else str(o)))


# RunConfig's defaults: what a results file written before a field existed implies for that field.
_DEFAULTS = _jsonable(RunConfig().method())


def _flags(pairs) -> str:
    return " ".join(f"--{k} {v}" for k, v in pairs)


def _attack_flags(specs, option: str = "method") -> str:
    """CLI options for specs that are every method under every threat, with one set of settings."""
    methods = list(dict.fromkeys(s.method for s in specs))
    threats = list(dict.fromkeys(s.threat for s in specs))
    first = specs[0]
    if len(specs) != len(methods) * len(threats) or any(
            (s.eps, s.alpha, s.steps, s.n_pixels, s.random_start) !=
            (first.eps, first.alpha, first.steps, first.n_pixels, first.random_start) for s in specs):
        raise ValueError("an evaluation step's attacks must be every method under every threat, with one "
                         "set of settings (the CLI's shape)")
    pairs = [(option, m) for m in methods] + [("threat", t) for t in threats]
    pairs += [("eps", eps_label(first.eps)), ("alpha", eps_label(first.alpha)), ("steps", first.steps),
              ("noise-pixels", first.n_pixels)]
    return _flags(pairs) + ("" if first.random_start else " --no-random-start")


def _eval_command(plan, profile) -> tuple[str, dict]:
    """(command-line options, what the stamp records) for one evaluation step."""
    recorded = {"attacks": [asdict(s) for s in plan.specs]}
    if isinstance(plan, AttackPlan):
        flags = _attack_flags(plan.specs)
        if plan.eps_sweep:
            flags += " --eps-sweep " + ",".join(eps_label(e) for e in plan.eps_sweep)
            flags += "".join(f" --sweep-method {m}" for m in plan.sweep_methods)
            recorded["sweep_methods"] = list(plan.sweep_methods)
        if plan.subset:
            flags += f" --eval-size {getattr(profile, plan.subset)}"
            recorded["n"] = getattr(profile, plan.subset)
        if plan.audit:
            flags += f" --audit --square-queries {profile.square_queries}"
            recorded["audit"] = {"square_queries": profile.square_queries}
        return flags, {**recorded, "eps_sweep": list(plan.eps_sweep)}
    if isinstance(plan, KnnPlan):
        flags = f"--k {plan.k}" + (" " + _attack_flags(plan.specs) if plan.specs else "")
        return flags, {"k": plan.k, **recorded}
    if isinstance(plan, UmapPlan):
        flags = _attack_flags(plan.specs) + f" --eval-size {profile.umap_points}"
        return flags, {**recorded, "points": profile.umap_points}
    raise TypeError(f"unknown evaluation step {plan!r}")


def rules(profile: str, results: str, seed: int, seeds: list[int], pretrained: bool, weights: str | None,
          extra: str = "", source: str | None = None, audit_points: int | None = None) -> str:
    """The Make fragment for one profile and seed layout; writes the stamps as a side effect. audit_points
    replaces the profile's AutoAttack/audit subset size (Make's AUDIT_POINTS)."""
    prof = PROFILES[profile]
    if audit_points:
        prof = replace(prof, autoattack_points=audit_points)
    layout = seeds or [None]
    lines = ["# Generated by experiments/make.py from experiments/ (do not edit; rewritten by every make).", ""]
    targets: dict[str, list[str]] = {}
    run_dirs: list[str] = []

    def folder(name, s, samples=None):
        return run_dir(results, profile, name, s, samples)

    for name, sec in SECTIONS.items():
        files = targets.setdefault(name, [])
        for s in layout:
            run_seed = seed if s is None else s
            points = prof.curve_samples if sec.sweep else [None]
            for samples in points:
                out = folder(name, s, samples)
                run_dirs.append(str(out))
                needs = folder(sec.needs, s) if sec.needs else None
                model = out if sec.kind != "none" else needs
                overrides = dict(seed=run_seed, pretrained=False if not pretrained else None, weights=weights)
                if sec.kind == "finetune":
                    overrides.update(init_from=str(needs), finetune_samples=samples)
                # the config of the model this folder trains, or (kind "none") of the run it evaluates
                cfg = resolve_training(name if sec.kind != "none" else sec.needs, profile,
                                       command="finetune-fc" if sec.kind == "finetune" else "train", **overrides)
                if sec.kind != "none":
                    stamp = out / "stamps" / "metrics.json"
                    method = _jsonable(cfg.method())
                    _write_if_changed(stamp, json.dumps({"config": method, "extra": extra}, indent=1),
                                      out / "metrics.json",
                                      lambda r, m=method: not extra and _jsonable(
                                          {k: r["config"].get(k, _DEFAULTS.get(k)) for k in m}) == m)
                    deps = [str(stamp)] + ([str(needs / "metrics.json")] if sec.kind == "finetune" else [])
                    files.append(str(out / "metrics.json"))
                    lines.append(f"{out}/metrics.json: {' '.join(deps)} | $(VENV_STAMP)")
                    if sec.kind == "train":
                        lines.append(f"\t$(RUN) cli.py train --preset {name} --profile {profile} --seed {run_seed} "
                                     f"--out {out} $(TRAIN_FLAGS) $(RESUME)")
                    else:
                        sample_flag = f" --samples {samples}" if samples is not None else ""
                        lines.append(f"\t$(RUN) cli.py finetune-fc --preset {name} --profile {profile} "
                                     f"--seed {run_seed} --from-run {needs}{sample_flag} --out {out} "
                                     f"$(COMMON_FLAGS) $(RESUME)")
                for plan in sec.evals:
                    flags, recorded = _eval_command(plan, prof)
                    deps = [str(model / "metrics.json")]
                    src = None
                    if any(a.threat == "transfer" for a in plan.specs):
                        src = source or transfer_source(model, cfg)
                        flags += f" --source {src}"
                        if src != "pretrained":
                            deps.append(f"{src}/metrics.json")
                    stamp = out / "stamps" / plan.file
                    _write_if_changed(stamp, json.dumps({"version": EVAL_VERSION, "command": plan.command,
                                                         **recorded, "source": src, "extra": extra}, indent=1))
                    deps.append(str(stamp))
                    files.append(str(out / plan.file))
                    lines.append(f"{out}/{plan.file}: {' '.join(dict.fromkeys(deps))} | $(VENV_STAMP)")
                    lines.append(f"\t$(RUN) cli.py {plan.command} --model {model} {flags} --seed {run_seed} "
                                 f"$(EVAL_FLAGS) --out {out}/{plan.file}")
    lines.append("")
    for q in QUESTIONS:
        names = [n for n, sec in SECTIONS.items() if sec.question == q]
        lines.append(f"SECTIONS_{q} := {' '.join(names)}")
    lines.append(f"RUN_DIRS := {' '.join(run_dirs)}")
    lines.append(f".PHONY: {' '.join(SECTIONS)}")
    for name, files in targets.items():
        lines.append(f"{name}: {' '.join(files)}")
    return "\n".join(lines) + "\n"


def help_lines() -> str:
    """One line per question and section target, for `make help`."""
    out = []
    for q, question in QUESTIONS.items():
        out.append(f"  {q:<26} {question.title}")
        for name, sec in SECTIONS.items():
            if sec.question == q:
                out.append(f"  {name:<26} {sec.title}")
    return "\n".join(out)


def skipped_lines(question: str, profile: str, results: str) -> list[str]:
    """After `make dg`: which targets each section's runs skipped because their data is missing."""
    lines = []
    for name, sec in SECTIONS.items():
        if sec.question != question:
            continue
        for path in sorted((Path(results) / profile / name).glob("**/metrics.json")):
            if "stamps" in path.relative_to(Path(results) / profile / name).parts:
                continue  # a stamp file is named after the results file it stands for
            try:
                datasets = json.loads(path.read_text()).get("datasets", {})
            except (OSError, ValueError):
                continue
            skipped = {v["dataset"]: v["skipped"] for v in datasets.values() if isinstance(v, dict) and "skipped" in v}
            ran = [v["dataset"] for k, v in datasets.items() if k.endswith("_test") and "skipped" not in v]
            line = f"{path.parent}: tested on {', '.join(ran) or 'nothing'}"
            if skipped:
                line += f"; skipped (data missing): {', '.join(skipped)}"
            lines.append(line)
    missing = sorted({d for line in lines if "skipped" in line for d in line.split("skipped (data missing): ")[1].split(", ")})
    if missing:
        lines.append(f"targets skipped for missing data: {', '.join(missing)} (see README, Data, for where to get them)")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--help-targets", action="store_true", help="print the section targets for `make help`")
    ap.add_argument("--profile", default="paper")
    ap.add_argument("--results", default="results")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", default="", help="space-separated seeds (the seed-<n> layout); empty: --seed")
    ap.add_argument("--pretrained", type=int, default=1)
    ap.add_argument("--weights", default="")
    ap.add_argument("--source", default="", help="transfer source for every section (Make's SOURCE)")
    ap.add_argument("--extra", default="", help="Make's EXTRA flags (recorded in every stamp)")
    ap.add_argument("--audit-points", default="", help="Make's AUDIT_POINTS: test images for AutoAttack and the audit "
                                                        "(empty: the profile's)")
    ap.add_argument("--out-dir", help="write the fragment here, named by its content's hash, and print its path")
    ap.add_argument("--skipped", metavar="QUESTION", help="list the targets the question's runs skipped for missing data")
    args = ap.parse_args(argv)
    if args.skipped:
        print("\n".join(skipped_lines(args.skipped, args.profile, args.results)) or f"{args.skipped}: no runs yet")
        return 0
    if args.help_targets:
        print(help_lines())
        return 0
    try:
        if args.profile not in PROFILES:
            raise TrustlabError(f"unknown profile {args.profile!r}; choose one of {', '.join(PROFILES)}")
        seeds = [int(s) for s in args.seeds.split()]
        with contextlib.redirect_stderr(io.StringIO()):  # the commands print resolve's notes themselves
            text = rules(args.profile, args.results, args.seed, seeds, bool(args.pretrained), args.weights or None,
                         args.extra, args.source or None, int(args.audit_points) if args.audit_points else None)
    except (TrustlabError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.out_dir:
        path = Path(args.out_dir) / f"rules-{hashlib.sha1(text.encode()).hexdigest()[:16]}.mk"
        _write_if_changed(path, text)
        print(path)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
