"""Finished run folders: their config, model, and the data they were trained and tested on."""
from __future__ import annotations

from pathlib import Path

from core.errors import UsageError
from core.io import load_torch, read_json
from experiments import RunConfig
from models.resnet import build_model


def load_run(run_dir: str | Path):
    """(results dict, RunConfig, model in eval mode on the CPU) of a finished run folder."""
    run_dir = Path(run_dir)
    if not (run_dir / "metrics.json").is_file() or not (run_dir / "model.pt").is_file():
        raise UsageError(f"run folder {run_dir} has no finished model (model.pt and metrics.json)")
    from trainers.loop import load_state

    results = read_json(run_dir / "metrics.json")
    cfg = RunConfig.from_dict(results["config"])
    model = build_model(RunConfig.from_dict({**cfg.to_dict(), "pretrained": False}))
    load_state(model, load_torch(run_dir / "model.pt", what="model file"), run_dir / "model.pt")
    return results, cfg, model.eval()


def source_model(cfg: RunConfig, source: str, seed: int):
    """The fixed model that transfer attacks are crafted on: 'pretrained' (the ImageNet ResNet18 with a
    fresh, seeded 10-way fc, before any fine-tuning: the study's source) or a run folder."""
    import torch

    if source == "pretrained":
        torch.manual_seed(seed)
        model = build_model(RunConfig.from_dict({**cfg.to_dict(), "pretrained": True, "head": "fc",
                                                 "loss": "ce", "dropout": 0.0}))
        return model.eval(), "ImageNet ResNet18, fc untrained (seed %d)" % seed
    _, _, model = load_run(source)
    if getattr(model, "head", "fc") != "fc":
        raise UsageError(f"transfer source {source} is an embedding model; use a model with an fc head")
    return model, str(source)
