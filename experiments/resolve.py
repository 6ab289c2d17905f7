"""From a section, a profile and the user's options, or from a stamp and the options given on top, to
fully resolved configs and evaluations: the policy that the CLI and the Makefile share (defaults,
refusals, the transfer source). Notes for the user are returned, never printed."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from attacks import ATTACKS, THREATS, AttackSpec, parse_eps
from core.config import RunConfig, check_device, check_seed
from core.errors import UsageError
from eval.plan import AttackPlan, Evaluation, KnnPlan, UmapPlan
from experiments import stamps
from experiments.profiles import PROFILES
from experiments.sections import SECTIONS
from loaders import DATASETS
from losses import LOSSES
from models import ARCHS, HEADS, NORMS
from runs import layout

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


def resolve(name: str, profile: str = "paper", **overrides: Any) -> RunConfig:
    """The fully resolved config of section `name`: defaults <- section <- profile scale <- explicit overrides
    (None = not given). A profile caps epochs (never adds any) and sets finetune_samples and val_size only for
    sections that fine-tune or hold out a val split.
    RunConfig.preset records the section's name (the results files' key since the first release)."""
    _check_name("preset", name, SECTIONS)  # "preset": the word older scripts match on
    _check_name("profile", profile, PROFILES)
    section, prof = SECTIONS[name], PROFILES[profile]
    values = dict(section.overrides)
    arch = values.get("arch", RunConfig.arch)  # a question's scale, or its architecture-specific one
    for key, value in prof.scale.get(f"{section.question}:{arch}", prof.scale.get(section.question, {})).items():
        if key == "epochs":
            value = min(value, values.get("epochs", RunConfig.epochs))
        if key == "finetune_samples" and "finetune_samples" not in values:
            continue
        if key == "val_size" and not values.get("val_size"):  # a profile sizes the val split, never adds one
            continue
        values[key] = value
    values.update({k: v for k, v in overrides.items() if v is not None})
    cfg = RunConfig(preset=name, profile=profile, question=section.question, **values)
    if prof.dataset_map:
        remap = lambda dataset: prof.dataset_map.get(dataset, dataset)
        used = {cfg.train_on, *cfg.eval_on}  # the stand-ins this run uses, so each stands for one study dataset
        cfg.train_on = remap(cfg.train_on)
        cfg.eval_on = tuple(dict.fromkeys(remap(n) for n in cfg.eval_on))
        cfg.stand_ins = {k: v for k, v in prof.dataset_map.items() if k in used}
    return check_names(cfg)


def resolve_training(name: str | None = None, profile: str | None = None, *, command: str = "train",
                     stamp: str | Path | None = None, **overrides: Any) -> tuple[RunConfig, tuple[str, ...]]:
    """resolve() of section `name`, or the resolved config a stamp holds (`stamp`, RUN/stamps/metrics.json)
    with `overrides` on top, plus what the train and finetune-fc commands need: a finetune section only through
    finetune-fc (fc trainable unless the section says otherwise, a sample count required), and a --weights file
    dropped with a note when the run does not start from ImageNet weights. Returns the config and the notes
    to show."""
    notes: list[str] = []
    base = None
    if stamp is not None:
        if name is not None or profile is not None:
            raise UsageError(f"--config {stamp} names the section and profile already: drop --section and --profile")
        data = stamps.read(stamp, "config")
        base, notes = data["config"], list(data.get("notes", []))
        name = base.get("preset")
    elif name is None:
        raise UsageError("give --section NAME (or --config STAMP, a resolved config that make wrote)")
    section = SECTIONS.get(name)
    if section is not None and section.kind == "none":
        raise UsageError(f"section {name} trains nothing: it evaluates the {section.needs} run (make {name})")
    if command == "train" and section is not None and section.kind == "finetune":
        raise UsageError(f"section {name} fine-tunes a trained run: use `cli.py finetune-fc`")
    if command == "finetune-fc" and not (overrides.get("init_from") or (base or {}).get("init_from")):
        raise UsageError("give --from-run RUN: the finished run whose model is fine-tuned")
    if base is None:
        cfg = resolve(name, profile or "paper", **overrides)
    else:  # a stamp is resolved already: what the command line gives replaces its values as they are
        cfg = check_names(RunConfig.from_dict({**base, **{k: v for k, v in overrides.items() if v is not None}}))
    if command == "finetune-fc":
        cfg.trainable = cfg.trainable or ("fc",)
        if not cfg.finetune_samples:
            raise UsageError("give --samples N: how many training images to fine-tune on")
    if cfg.weights and not cfg.pretrained:
        notes.append(f"--weights unused: {cfg.preset} does not start from ImageNet weights "
                     "(add --pretrained to use them)")
        cfg.weights = None
    return cfg, tuple(notes)


def transfer_source(model_dir: str | Path, cfg: RunConfig) -> str:
    """The study's source (the ImageNet model before fine-tuning) when the run used ImageNet weights;
    otherwise the trained run of the section's transfer_source beside this one (the same seed)."""
    if cfg.pretrained:
        return "pretrained"
    section = SECTIONS.get(cfg.preset)
    if section is None or section.transfer_source is None:
        raise UsageError(f"{model_dir} did not start from ImageNet weights and its section names no transfer "
                         "source: pass --source RUN")
    return str(layout.sibling(model_dir, section.transfer_source))


def _run_config(model: str | Path) -> RunConfig:
    from core.io import read_json

    layout.require_finished(model, model=False)  # the config is all this reads
    return RunConfig.from_dict(read_json(Path(model) / "metrics.json")["config"])


# ---------------------------------------------------------------- evaluations

KINDS = {"attack": AttackPlan, "knn": KnnPlan, "umap": UmapPlan}
# The evaluation options that set a field of every attack (option -> AttackSpec field).
_SPEC_OPTIONS = {"eps": "eps", "alpha": "alpha", "steps": "steps", "random_start": "random_start",
                 "noise_pixels": "n_pixels", "seed": "seed"}


def resolve_evaluation(kind: str, *, plan: str | Path | None = None, methods=None, threats=None,
                       eps_sweep: str | None = None, **options: Any) -> Evaluation:
    """An Evaluation from an evaluation command's options, or from an evaluation stamp (`plan`, written by
    experiments/make.py) with the options given replacing what it says. Options left at None are not given.

    Methods and threats: every method under every threat model (either one given on top of a stamp keeps
    the stamp's other one); eps, alpha, steps, random start, noise pixels and seed set every attack's field,
    eps on the pixel scale. The results file goes next to the run unless `out` says otherwise, and the
    transfer source defaults as transfer_source() says."""
    _check_name("evaluation", kind, KINDS)
    planned = stamps.read(plan, "evaluation")["evaluation"] if plan is not None else {"kind": kind}
    if planned.get("kind") != kind:
        raise UsageError(f"{plan} plans a {planned.get('kind')} evaluation, not {kind}")
    options = {k: v for k, v in options.items() if v is not None}
    settings = {_SPEC_OPTIONS[k]: options.pop(k) for k in list(options) if k in _SPEC_OPTIONS}
    seed = check_seed(settings.get("seed", planned.get("seed", 0)))
    check_device(options.get("device", "auto"))
    for name in ("eps", "alpha"):
        if name in settings:
            settings[name] = parse_eps(settings[name], name)
    specs = [AttackSpec(**a) for a in planned.get("attacks", [])]
    if methods is not None or threats is not None:
        methods = list(dict.fromkeys(s.method for s in specs)) if methods is None else list(methods)
        threats = (list(dict.fromkeys(s.threat for s in specs)) or ["white-box"]) if threats is None else list(threats)
        for t in threats:
            _check_name("threat model", t, THREATS)
        first = specs[0] if specs else AttackSpec()
        specs = [replace(first, method=m, threat=t) for m in methods for t in threats]
    specs = [replace(s, **settings).validate() for s in specs]
    if kind == "attack" and not specs:
        raise UsageError("give at least one --method")
    ev = {**planned, **options, "attacks": specs, "seed": seed}
    if eps_sweep is not None:
        ev["eps_sweep"] = [parse_eps(e.strip(), "eps-sweep value") for e in eps_sweep.split(",")] if eps_sweep else []
    ev["sweep_methods"] = list(ev.get("sweep_methods", []))
    for m in ev["sweep_methods"]:
        _check_name("sweep method", m, ATTACKS)
    if ev["sweep_methods"] and not ev.get("eps_sweep"):
        raise UsageError("--sweep-method needs --eps-sweep: the radii to sweep")
    if ev.get("square_queries", 1) < 1:
        raise UsageError(f"square-queries must be at least 1, got {ev['square_queries']}")
    if ev.get("audit") and kind != "attack":
        raise UsageError("--audit belongs to the attack command")
    if ev.get("k", 1) < 1:
        raise UsageError(f"k must be at least 1, got {ev['k']}")
    if ev.get("model") is None:
        raise UsageError("give --model RUN (a finished run folder) or --plan STAMP")
    if any(s.threat == "transfer" for s in specs) and ev.get("source") is None:
        ev["source"] = transfer_source(ev["model"], _run_config(ev["model"]))
    ev["out"] = ev.get("out") or Path(ev["model"]) / KINDS[kind].file
    return Evaluation(**{k: (str(v) if isinstance(v, Path) else v) for k, v in ev.items()})
