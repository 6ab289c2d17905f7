"""From a section, a profile and the user's options to fully resolved configs: the policy that the
CLI and the Makefile share (defaults, refusals, the transfer source, where a run folder lives)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from attacks import ATTACKS, THREATS, AttackSpec, parse_eps
from core.config import RunConfig, check_device, check_seed
from core.errors import UsageError
from eval.plan import AttackPlan, Evaluation, KnnPlan, UmapPlan
from experiments.profiles import PROFILES
from experiments.sections import SECTIONS
from loaders import DATASETS
from losses import LOSSES
from models import ARCHS, HEADS, NORMS

OPTIMIZERS = ("sgd", "adam")  # trainers/loop.py build_optimizer


def _check_name(kind: str, name: Any, valid) -> None:
    if name not in valid:
        raise UsageError(f"unknown {kind} {name!r}; choose one of {', '.join(valid)}")


def check_names(cfg: RunConfig) -> RunConfig:
    """Every name in cfg is one its registry knows."""
    _check_name("dataset", cfg.train_on, DATASETS)
    for name in cfg.eval_on:
        _check_name("dataset", name, DATASETS)
    _check_name("optimizer", cfg.optimizer, OPTIMIZERS)
    _check_name("loss", cfg.loss, LOSSES)
    _check_name("norm", cfg.norm, NORMS)
    _check_name("architecture", cfg.arch, ARCHS)
    for name in cfg.optional_eval:
        _check_name("dataset", name, DATASETS)
    _check_name("head", cfg.head, HEADS)
    _check_name("attack method", cfg.adv_method, ATTACKS)
    if cfg.val_attack is not None:
        _check_name("attack method", cfg.val_attack, ATTACKS)
    return cfg.validate()


def resolve(preset: str, profile: str = "paper", **overrides: Any) -> RunConfig:
    """The fully resolved config: defaults <- section <- profile scale <- explicit overrides (None = not given).
    A profile caps epochs (never adds any) and sets finetune_samples only for sections that fine-tune."""
    _check_name("preset", preset, SECTIONS)
    _check_name("profile", profile, PROFILES)
    section, prof = SECTIONS[preset], PROFILES[profile]
    values = dict(section.overrides)
    arch = values.get("arch", RunConfig.arch)  # a question's scale, or its architecture-specific one
    for key, value in prof.scale.get(f"{section.question}:{arch}", prof.scale.get(section.question, {})).items():
        if key == "epochs":
            value = min(value, values.get("epochs", RunConfig.epochs))
        if key == "finetune_samples" and "finetune_samples" not in values:
            continue
        values[key] = value
    values.update({k: v for k, v in overrides.items() if v is not None})
    cfg = RunConfig(preset=preset, profile=profile, question=section.question, **values)
    if prof.dataset_map:
        remap = lambda name: prof.dataset_map.get(name, name)  # noqa: E731
        used = {cfg.train_on, *cfg.eval_on}  # the stand-ins this run uses, so each stands for one study dataset
        cfg.train_on = remap(cfg.train_on)
        cfg.eval_on = tuple(dict.fromkeys(remap(n) for n in cfg.eval_on))
        cfg.stand_ins = {k: v for k, v in prof.dataset_map.items() if k in used}
    return check_names(cfg)


def resolve_training(preset: str, profile: str, *, command: str = "train", **overrides: Any) -> RunConfig:
    """resolve(), plus what the train and finetune-fc commands need: a finetune section only through
    finetune-fc (fc trainable unless the section says otherwise, a sample count required), and a
    --weights file dropped with a note when the run does not start from ImageNet weights."""
    section = SECTIONS.get(preset)
    if section is not None and section.kind == "none":
        raise UsageError(f"preset {preset} trains nothing: it evaluates the {section.needs} run (make {preset})")
    if command == "train" and section is not None and section.kind == "finetune":
        raise UsageError(f"preset {preset} fine-tunes a trained run: use `cli.py finetune-fc`")
    if command == "finetune-fc" and not overrides.get("init_from"):
        raise UsageError("give --from-run RUN: the finished run whose model is fine-tuned")
    cfg = resolve(preset, profile, **overrides)
    if command == "finetune-fc":
        cfg.trainable = cfg.trainable or ("fc",)
        if not cfg.finetune_samples:
            raise UsageError("give --samples N: how many training images to fine-tune on")
    if cfg.weights and not cfg.pretrained:
        print(f"note: --weights unused: {cfg.preset} does not start from ImageNet weights "
              "(add --pretrained to use them)", file=sys.stderr)
        cfg.weights = None
    return cfg


# ---------------------------------------------------------------- where runs live

def run_dir(root: str | Path, profile: str, section: str, seed: int | None = None,
            samples: int | None = None) -> Path:
    """results/<profile>/<section>[/samples-<n>][/seed-<s>]; seed None = the single-seed layout."""
    path = Path(root) / profile / section
    if samples is not None:
        path = path / f"samples-{samples}"
    return path / f"seed-{seed}" if seed is not None else path


def transfer_source(model_dir: str | Path, cfg: RunConfig) -> str:
    """The study's source (the ImageNet model before fine-tuning) when the run used ImageNet weights;
    otherwise the trained run of the section's transfer_source beside this one (the same seed)."""
    if cfg.pretrained:
        return "pretrained"
    section = SECTIONS.get(cfg.preset)
    if section is None or section.transfer_source is None:
        raise UsageError(f"{model_dir} did not start from ImageNet weights and its section names no transfer "
                         "source: pass --source RUN")
    model_dir = Path(model_dir)
    if model_dir.name.startswith("seed-"):
        return str(model_dir.parent.parent / section.transfer_source / model_dir.name)
    return str(model_dir.parent / section.transfer_source)


def _run_config(model: str | Path) -> RunConfig:
    from core.io import read_json

    path = Path(model) / "metrics.json"
    if not path.is_file():
        raise UsageError(f"run folder {model} has no finished model (model.pt and metrics.json)")
    return RunConfig.from_dict(read_json(path)["config"])


# ---------------------------------------------------------------- evaluations

KINDS = {"attack": AttackPlan, "knn": KnnPlan, "umap": UmapPlan}


def resolve_evaluation(kind: str, *, model, out=None, methods=(), threats=("white-box",), eps="8/255",
                       alpha="2/255", steps: int = 10, random_start: bool = True, noise_pixels: int = 20,
                       source: str | None = None, eps_sweep: str | None = None, sweep_methods=(),
                       n: int | None = None, k: int = 3, seed: int = 0, audit: bool = False,
                       square_queries: int = 5000, **runtime: Any) -> Evaluation:
    """An Evaluation from the evaluation commands' options: every method under every threat model, eps
    parsed on the pixel scale, the results file next to the run unless `out` says otherwise, and the
    transfer source defaulted as transfer_source() says."""
    _check_name("evaluation", kind, KINDS)
    check_seed(seed)
    check_device(runtime.get("device", "auto"))
    for t in threats:
        _check_name("threat model", t, THREATS)
    specs = [AttackSpec(method=m, eps=parse_eps(eps), alpha=parse_eps(alpha, "alpha"), steps=steps,
                        random_start=random_start, n_pixels=noise_pixels, threat=t, seed=seed).validate()
             for m in methods for t in threats]
    if kind == "attack" and not specs:
        raise UsageError("give at least one --method")
    sweep = [parse_eps(e.strip(), "eps-sweep value") for e in eps_sweep.split(",")] if eps_sweep else []
    for m in sweep_methods:
        _check_name("sweep method", m, ATTACKS)
    if sweep_methods and not sweep:
        raise UsageError("--sweep-method needs --eps-sweep: the radii to sweep")
    if square_queries < 1:
        raise UsageError(f"square-queries must be at least 1, got {square_queries}")
    if audit and kind != "attack":
        raise UsageError("--audit belongs to the attack command")
    if k < 1:
        raise UsageError(f"k must be at least 1, got {k}")
    if any(s.threat == "transfer" for s in specs) and source is None:
        source = transfer_source(model, _run_config(model))
    out = out or Path(model) / KINDS[kind].file
    return Evaluation(kind=kind, model=str(model), out=str(out), attacks=specs, eps_sweep=sweep,
                      sweep_methods=list(sweep_methods), audit=audit, square_queries=square_queries, source=source,
                      n=n, k=k, seed=seed, **{key: (str(v) if isinstance(v, Path) else v)
                                                for key, v in runtime.items()})
