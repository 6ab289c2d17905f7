"""A run folder, results/<profile>/<preset>[/seed-<n>]/, and everything that reads or writes one.

  checkpoint.pt  after every epoch (model, optimizer, scheduler, RNG states, history), for --resume
  model.pt       the final state dict (torch.load(weights_only=True) only)
  metrics.json   written last and atomically: its presence means the run finished
  .lock          while a process trains into the folder: its pid and host (one writer at a time)
Evaluations (eval/) write their own results files beside these and never touch them.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

from core.config import RUNTIME_FIELDS, RunConfig, saved_method
from core.errors import DataMissing, RunFailure, UsageError
from core.io import load_torch, read_json, save_torch, to_jsonable, write_json
from core.seed import rng_state, set_rng_state
from loaders.datasets import load_split, random_subset, stratified_subset, train_val_split
from models.resnet import build_model
from runs.layout import require_finished

METRICS, MODEL, CHECKPOINT, LOCK = "metrics.json", "model.pt", "checkpoint.pt", ".lock"
# The files a training run writes into its folder; no other command may write over them.
RUN_FILES = (METRICS, MODEL, CHECKPOINT, "curves.png", LOCK)
CHECKPOINT_FORMAT = "trustlab-checkpoint-1"
# What a model built from a finished run takes from that run's config.
ARCH_FIELDS = ("arch", "norm", "dropout", "head", "input_mean", "input_std")


def _gpus_torch_cannot_see() -> int:
    """How many GPUs nvidia-smi lists when torch sees none (0 without nvidia-smi, or when it fails)."""
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return 0
    try:
        done = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(line.startswith("GPU ") for line in done.stdout.splitlines()) if done.returncode == 0 else 0


def pick_device(name: str, local_rank: int = 0, world: int = 1) -> torch.device:
    """The torch device for --device: auto (this rank's GPU, else the CPU), cpu, cuda (this rank's GPU),
    cuda:N (checked against the GPUs torch sees; refused under torchrun, where each rank takes its own), mps.
    A GPU becomes the current device: its random state is the one a checkpoint saves and --resume restores
    (core/seed.py), and unplaced tensors and the bf16 check go to it, not to cuda:0."""
    device = _pick_device(name, local_rank, world)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def _pick_device(name: str, local_rank: int = 0, world: int = 1) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device(f"cuda:{local_rank}")
        unseen = _gpus_torch_cannot_see()
        if unseen:
            print(f"warning: nvidia-smi lists {unseen} GPU(s) but torch {torch.__version__} sees none (a driver too "
                  "old for its CUDA build, or CUDA_VISIBLE_DEVICES?): --device auto runs on the CPU; pass --device "
                  "cuda to make this an error", file=sys.stderr)
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"device {name!r} asked for, but CUDA is not available here")
    if name == "cuda":
        return torch.device(f"cuda:{local_rank}")
    if name.startswith("cuda:"):
        index, count = int(name.split(":")[1]), torch.cuda.device_count()
        if index >= count:
            raise UsageError(f"device {name!r} asked for, but torch sees {count} GPU(s) (cuda:0 to cuda:{count - 1}; "
                             "CUDA_VISIBLE_DEVICES renumbers them)")
        if world > 1:
            raise UsageError(f"device {name!r} under torchrun would put every rank on one GPU: use --device auto "
                             "(or cuda), and each rank takes its LOCAL_RANK's GPU")
    return torch.device(name)


# ---------------------------------------------------------------- data

def prepare_data(cfg: RunConfig, data_root, cache_dir, download: bool):
    """(train, {eval name: set}, {dataset: description}) for cfg, subsets applied."""
    load = lambda name, split: load_split(name, split, data_root, download=download, cache_dir=cache_dir)
    train = load(cfg.train_on, "train")
    evals = {}
    first = cfg.train_take == "first" and cfg.train_size is not None and not cfg.finetune_samples
    if cfg.val_size and first:  # MNIST-10K: the first train_size images train, the val split comes from the rest
        rest = train.take(torch.arange(min(cfg.train_size, len(train)), len(train)))
        if len(rest) == 0:
            raise UsageError(f"{cfg.train_on} train has {len(train)} images: none is left beyond the first "
                             f"{cfg.train_size} for the val split")
        evals[f"{cfg.train_on}_val"] = stratified_subset(rest, cfg.val_size, cfg.data_seed)
    elif cfg.val_size:
        train, val = train_val_split(train, cfg.val_size, cfg.data_seed)
        evals[f"{cfg.train_on}_val"] = stratified_subset(val, cfg.eval_size, cfg.data_seed)
    if cfg.finetune_samples:
        train = random_subset(train, cfg.finetune_samples, cfg.seed)
    elif first:
        train = train.take(torch.arange(min(cfg.train_size, len(train))))
    else:
        train = stratified_subset(train, cfg.train_size, cfg.data_seed)
    skipped = {}
    for name in cfg.eval_on:
        try:
            full = load(name, "test")
        except DataMissing as err:
            if name not in cfg.optional_eval:
                raise
            skipped[f"{name}_test"] = {"dataset": name, "size": 0, "skipped": str(err)}
            print(f"note: {name} is skipped as a target: {err}", file=sys.stderr)
            continue
        test = stratified_subset(full, cfg.eval_size, cfg.data_seed)
        if len(test) == 0:
            raise UsageError(f"eval set {name} test is empty after subsetting")
        evals[f"{name}_test"] = test
    if len(train) < 2:
        raise UsageError(f"train set {cfg.train_on} has {len(train)} image(s) after subsetting; need at least 2")
    described = {"train": {"dataset": train.name, "size": len(train), "source": train.source}}
    described.update({k: {"dataset": v.name, "size": len(v), "source": v.source} for k, v in evals.items()})
    described.update(skipped)
    if not any(k.endswith("_test") for k in evals):
        raise DataMissing(f"none of the eval sets {', '.join(cfg.eval_on)} is present")
    return train, evals, described


# ---------------------------------------------------------------- models

def load_state(model: nn.Module, state, path) -> None:
    """load_state_dict(strict=True), with a one-line message naming what does not fit."""
    if not isinstance(state, dict):
        raise RunFailure(f"{path} is not a state dict")
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    shapes = [k for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        hint = ""
        if any(".bn" in k or k.startswith("bn") for k in unexpected):
            hint = " (it holds BatchNorm weights: a norm=batch model, loaded into norm=none?)"
        elif any(".bn" in k or k.startswith("bn") for k in missing):
            hint = " (it lacks BatchNorm weights: a norm=none model, loaded into norm=batch?)"
        raise RunFailure(f"{path} does not fit this ResNet18{hint}: " + "; ".join(filter(None, [
            f"missing {', '.join(missing[:3])}" if missing else "",
            f"unexpected {', '.join(unexpected[:3])}" if unexpected else "",
            f"wrong shape {', '.join(shapes[:3])}" if shapes else ""])))
    model.load_state_dict(state)


def _built(cfg: RunConfig, state_path: Path) -> nn.Module:
    """The architecture cfg describes (no ImageNet download: the weights come from state_path)."""
    model = build_model(RunConfig.from_dict({**cfg.to_dict(), "pretrained": False}))
    load_state(model, load_torch(state_path, what="model file"), state_path)
    return model


def init_model(cfg: RunConfig) -> nn.Module:
    """A fresh model, or the model of the run folder cfg.init_from (whose architecture cfg takes on)."""
    if not cfg.init_from:
        return build_model(cfg)
    src = Path(cfg.init_from)
    require_finished(src)
    src_cfg = saved_method(read_json(src / METRICS)["config"])  # a field the source predates: its default
    for name in ARCH_FIELDS:
        value = src_cfg[name]
        setattr(cfg, name, tuple(value) if isinstance(value, list) else value)
    return _built(cfg, src / MODEL)


def load_run(run_dir: str | Path):
    """(results dict, RunConfig, model in eval mode on the CPU) of a finished run folder."""
    run_dir = Path(run_dir)
    require_finished(run_dir)
    results = read_json(run_dir / METRICS)
    cfg = RunConfig.from_dict(results["config"])
    return results, cfg, _built(cfg, run_dir / MODEL).eval()


def source_model(cfg: RunConfig, source: str, seed: int):
    """The fixed model that transfer attacks are crafted on: 'pretrained' (the ImageNet ResNet18 with a
    fresh, seeded 10-way fc, before any fine-tuning: the study's source) or a run folder.
    Returns (model in eval mode, description)."""
    if source == "pretrained":
        torch.manual_seed(seed)
        model = build_model(RunConfig.from_dict({**cfg.to_dict(), "pretrained": True, "head": "fc",
                                                 "loss": "ce", "dropout": 0.0}))
        return model.eval(), f"ImageNet ResNet18, fc untrained (seed {seed})"
    _, _, model = load_run(source)
    if getattr(model, "head", "fc") != "fc":
        raise UsageError(f"transfer source {source} is an embedding model; use a model with an fc head")
    return model, str(source)


# ---------------------------------------------------------------- checkpoints and the finished run

def check_finite(model, when: str) -> None:
    """Refuse to save a diverged model: every float parameter and buffer (BatchNorm's running statistics
    too, which can overflow while the loss still looks finite) must be finite."""
    state = model.state_dict()
    flags = [(k, torch.isfinite(v).all()) for k, v in state.items() if v.is_floating_point()]
    bad = [k for k, ok in zip([k for k, _ in flags], torch.stack([ok for _, ok in flags]).tolist()) if not ok] \
        if flags else []
    if bad:
        raise RunFailure(f"the model diverged {when}: {len(bad)} parameter/buffer tensors hold NaN or inf "
                         f"({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}); lr too high? "
                         "Nothing was saved over the last good checkpoint")


def save_checkpoint(out: Path, cfg: RunConfig, model, optimizer, scheduler, epoch: int, history: list,
                    extra: dict | None = None, segments: list | None = None) -> None:
    """extra: what else a resumed run needs (the kept epoch's model state under keep_best). segments: which
    process trained which epochs, at which commit (built in trainers.loop._run), carried into the results file.
    The caller has checked the model (check_finite, on every rank: trainers.loop.finite_on_every_rank)."""
    save_torch(Path(out) / CHECKPOINT, {
        "format": CHECKPOINT_FORMAT, "method": to_jsonable(cfg.method()), "epoch": epoch,
        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(), "rng": rng_state(), "history": history, "extra": extra or {},
        "segments": segments or []})


def restore_checkpoint(out: Path, cfg: RunConfig, model, optimizer, scheduler, rank: int = 0,
                       extra: dict | None = None, segments: list | None = None) -> tuple[int, list]:
    """(first epoch to run, history so far); refuses a checkpoint of another configuration. `extra`, a dict, is
    filled with what save_checkpoint stored beside the state; `segments`, a list, with the earlier processes'
    records (one of unknown commit for a checkpoint written before they were kept)."""
    path = Path(out) / CHECKPOINT
    ckpt = load_torch(path, what="checkpoint")
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise RunFailure(f"{path} is not a trustlab checkpoint")
    ours, theirs = to_jsonable(cfg.method()), saved_method(ckpt["method"])
    diff = [k for k in sorted(set(ours) | set(theirs)) if ours.get(k) != theirs.get(k)]
    if diff:
        k = diff[0]
        raise UsageError(f"checkpoint {path} is from a different run: {k} is {theirs.get(k)!r} "
                         f"there but {ours.get(k)!r} here" + (f" (and {len(diff) - 1} more)" if len(diff) > 1 else ""))
    load_state(model, ckpt["model"], path)
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    set_rng_state(ckpt["rng"], rank)
    if extra is not None:
        extra.update(ckpt.get("extra") or {})
    if segments is not None:
        segments.extend(ckpt.get("segments") or [{"epochs": [1, ckpt["epoch"] + 1], "git_commit": "unknown (the "
                                                  "checkpoint predates segment records)"}])
    return ckpt["epoch"] + 1, ckpt["history"]


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes (a model's identity: an evaluation records the one it read)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def config_sha256(config: dict) -> str:
    """The SHA-256 of a resolved config's method fields (what makes two runs the same experiment)."""
    import hashlib
    import json

    method = {k: v for k, v in config.items() if k not in RUNTIME_FIELDS}
    return hashlib.sha256(json.dumps(to_jsonable(method), sort_keys=True).encode()).hexdigest()


def run_identity(results: dict, model_file: Path) -> dict:
    """Whose results these are: section, profile, seed, the config's hash and the model file's."""
    return {"section": results.get("preset"), "profile": results.get("profile"), "seed": results.get("seed"),
            "config_sha256": config_sha256(results.get("config", {})), "model_sha256": file_sha256(model_file)}


def finish_run(out: Path, model, results: dict, draw=None) -> dict:
    """model.pt, then the figures (`draw(results, out)`), then metrics.json last (its presence marks a
    finished run, and its identity names the model file it goes with), then the checkpoint goes. The caller has
    checked the model (check_finite, on every rank: trainers.loop.finite_on_every_rank)."""
    out = Path(out)
    save_torch(out / MODEL, model.state_dict())
    results["identity"] = run_identity(results, out / MODEL)
    if draw is not None:
        draw(results, out)
    write_json(out / METRICS, results)
    (out / CHECKPOINT).unlink(missing_ok=True)
    return results
