#!/usr/bin/env python
"""trustlab: the study's experiments from the command line. `python cli.py --help` lists the commands.

Each command declares its options and calls one function; errors come out as one line on stderr
(exit 2 for usage errors, 1 for failed runs, 130 when interrupted) unless --debug is given.
"""
from __future__ import annotations

import os
import sys
import traceback
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

sys.path.insert(0, str(Path(__file__).resolve().parent))

from core.errors import TrustlabError  # noqa: E402
from experiments import ATTACK_METHODS, DATASETS, LOSSES, NORMS, OPTIMIZERS, PRESETS, PROFILES  # noqa: E402

app = typer.Typer(help="trustlab: generalization and robustness experiments with ResNet18.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

_choices = lambda name, values: Enum(name, {v: v for v in values}, type=str)  # noqa: E731
PresetName = _choices("PresetName", PRESETS)
ProfileName = _choices("ProfileName", PROFILES)
Dataset = _choices("Dataset", DATASETS)
Optimizer = _choices("Optimizer", OPTIMIZERS)
Loss = _choices("Loss", LOSSES)
Norm = _choices("Norm", NORMS)
Method = _choices("Method", ATTACK_METHODS)
Threat = _choices("Threat", ("white-box", "transfer"))

STATE = {"debug": bool(os.environ.get("TRUSTLAB_DEBUG"))}


@app.callback()
def main(debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks instead of one-line errors.")] = False):
    STATE["debug"] = STATE["debug"] or debug


@contextmanager
def errors():
    """One line on stderr and a meaningful exit code, instead of a traceback."""
    try:
        yield
    except TrustlabError as err:
        if STATE["debug"]:
            traceback.print_exc()
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(err.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130)
    except (typer.Exit, typer.Abort):
        raise
    except Exception as err:  # an unexpected failure: still one line, traceback on --debug
        if STATE["debug"]:
            traceback.print_exc()
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        typer.echo(f"error: {type(err).__name__}: {first} (rerun with --debug for the traceback)", err=True)
        raise typer.Exit(1)


def _value(x):
    return x.value if isinstance(x, Enum) else x


# Options shared by the training commands.
ProfileOpt = Annotated[ProfileName, typer.Option(help="Scale: paper (the study's), quick (CPU, ~30 min per question), smoke (CI), demo (embedded digits).")]
DataRootOpt = Annotated[Path, typer.Option(help="Where datasets live (torchvision layout or <root>/<name>/{train,test}/<class>/).")]
CacheDirOpt = Annotated[Path, typer.Option(help="Where decoded uint8 tensors are cached, so later runs start in seconds.")]
OutOpt = Annotated[Optional[Path], typer.Option(help="Run folder to write; default results/<profile>/<preset>.")]
SeedOpt = Annotated[int, typer.Option(help="Seeds python, numpy and torch; the same seed gives the same numbers.")]
EpochsOpt = Annotated[Optional[int], typer.Option(help="Number of epochs (default: the preset's, capped by the profile).")]
EvalOpt = Annotated[Optional[list[Dataset]], typer.Option("--eval", help="Test set to evaluate on each epoch; repeat for several. Replaces the preset's test sets.")]
DownloadOpt = Annotated[bool, typer.Option(help="Download missing datasets through torchvision.")]
WandbOpt = Annotated[bool, typer.Option(help="Log to Weights & Biases (offline unless WANDB_MODE=online).")]
ResumeOpt = Annotated[bool, typer.Option(help="Continue from the run folder's checkpoint.pt (saved after every epoch).")]
OverwriteOpt = Annotated[bool, typer.Option(help="Train again even if the run folder holds a finished metrics.json.")]
DeviceOpt = Annotated[str, typer.Option(help="auto (CUDA if available), cpu, cuda or cuda:N.")]
DeterministicOpt = Annotated[bool, typer.Option(help="torch.use_deterministic_algorithms(True); slower, bit-reproducible.")]
CompileOpt = Annotated[bool, typer.Option(help="torch.compile the training forward/backward (worth it on CUDA for long runs; the first epoch pays the compile time; off by default).")]


@app.command()
def train(
    preset: Annotated[PresetName, typer.Option(help="The report section to run (its settings come from experiments.py).")],
    profile: ProfileOpt = ProfileName.paper,
    data_root: DataRootOpt = Path("data"),
    cache_dir: CacheDirOpt = Path("data/cache"),
    out: OutOpt = None,
    seed: SeedOpt = 0,
    epochs: EpochsOpt = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Training batch size (the study: 16 for Q1).")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Learning rate.")] = None,
    optimizer: Annotated[Optional[Optimizer], typer.Option(help="sgd (momentum 0.9) or adam.")] = None,
    loss: Annotated[Optional[Loss], typer.Option(help="ce, smooth-ce (the study's label smoothing, s=0.1) or circle.")] = None,
    norm: Annotated[Optional[Norm], typer.Option(help="batch, or none to remove every BatchNorm.")] = None,
    pretrained: Annotated[Optional[bool], typer.Option("--pretrained/--no-pretrained", help="Start from ImageNet weights (torchvision IMAGENET1K_V1).")] = None,
    weights: Annotated[Optional[Path], typer.Option(help="Load the ImageNet weights from this local state-dict file instead of downloading.")] = None,
    augment: Annotated[Optional[bool], typer.Option("--augment/--no-augment", help="The study's augmentation set (affine, jitter, perspective, crop).")] = None,
    train_on: Annotated[Optional[Dataset], typer.Option(help="Training dataset.")] = None,
    eval: EvalOpt = None,
    train_size: Annotated[Optional[int], typer.Option(help="Train on a stratified subset of this many images (default: the profile's).")] = None,
    eval_size: Annotated[Optional[int], typer.Option(help="Evaluate on a stratified subset of this many test images (default: the profile's).")] = None,
    download: DownloadOpt = True,
    wandb: WandbOpt = True,
    resume: ResumeOpt = False,
    overwrite: OverwriteOpt = False,
    device: DeviceOpt = "auto",
    deterministic: DeterministicOpt = False,
    compile: CompileOpt = False,
):
    """Train ResNet18 as a preset says, and write metrics.json, curves.png and model.pt."""
    with errors():
        from experiments import resolve
        from trainers import run

        cfg = resolve(_value(preset), _value(profile), seed=seed, epochs=epochs, batch_size=batch_size, lr=lr,
                      optimizer=_value(optimizer), loss=_value(loss), norm=_value(norm), pretrained=pretrained,
                      weights=str(weights) if weights else None, augment=augment, train_on=_value(train_on),
                      eval_on=tuple(_value(e) for e in eval) if eval else None, train_size=train_size,
                      eval_size=eval_size, device=device, deterministic=deterministic or None,
                      compile=compile or None)
        if weights and not cfg.pretrained:
            typer.echo(f"note: --weights unused: {cfg.preset} does not start from ImageNet weights "
                       "(add --pretrained to use them)", err=True)
            cfg.weights = None
        if cfg.preset in PRESETS and PRESETS[cfg.preset].kind == "finetune":
            raise_usage(f"preset {cfg.preset} fine-tunes a trained run: use `cli.py finetune-fc`")
        out = out or Path("results") / cfg.profile / cfg.preset
        results = run(cfg, out, data_root=data_root, cache_dir=cache_dir, download=download, wandb=wandb,
                      resume=resume, overwrite=overwrite)
        _report(results, out)


@app.command("finetune-fc")
def finetune_fc(
    from_run: Annotated[Path, typer.Option(help="A finished run folder (with model.pt) to start from.")],
    preset: Annotated[PresetName, typer.Option(help="Preset giving the fine-tuning settings.")] = PresetName["q1-reverse-supervised"],
    dataset: Annotated[Optional[Dataset], typer.Option(help="Dataset whose train split the fc is trained on (default: the preset's, svhn).")] = None,
    samples: Annotated[Optional[int], typer.Option(help="Number of random training images (the study: 800).")] = None,
    profile: ProfileOpt = ProfileName.paper,
    data_root: DataRootOpt = Path("data"),
    cache_dir: CacheDirOpt = Path("data/cache"),
    out: OutOpt = None,
    seed: SeedOpt = 0,
    epochs: EpochsOpt = None,
    lr: Annotated[Optional[float], typer.Option(help="Learning rate.")] = None,
    eval: EvalOpt = None,
    eval_size: Annotated[Optional[int], typer.Option(help="Evaluate on a stratified subset of this many test images (default: the profile's).")] = None,
    download: DownloadOpt = True,
    wandb: WandbOpt = True,
    resume: ResumeOpt = False,
    overwrite: OverwriteOpt = False,
    device: DeviceOpt = "auto",
    deterministic: DeterministicOpt = False,
):
    """Freeze everything but fc, train fc on a few labelled images (the same training loop)."""
    with errors():
        from experiments import resolve
        from trainers import run

        cfg = resolve(_value(preset), _value(profile), seed=seed, epochs=epochs, lr=lr, train_on=_value(dataset),
                      finetune_samples=samples, eval_on=tuple(_value(e) for e in eval) if eval else None,
                      eval_size=eval_size, init_from=str(from_run), device=device, deterministic=deterministic or None)
        if not cfg.trainable:
            cfg.trainable = ("fc",)
        if not cfg.finetune_samples:
            raise_usage("give --samples N: how many training images to fine-tune on")
        out = out or Path("results") / cfg.profile / cfg.preset
        results = run(cfg, out, data_root=data_root, cache_dir=cache_dir, download=download, wandb=wandb,
                      resume=resume, overwrite=overwrite, job_type="finetune-fc")
        _report(results, out)


# Options shared by the evaluation commands.
ModelOpt = Annotated[Path, typer.Option("--model", help="A finished run folder (metrics.json + model.pt).")]
EpsOpt = Annotated[str, typer.Option(help="L-inf radius on the [0,1] pixel scale, e.g. 8/255 or 0.03.")]
AlphaOpt = Annotated[str, typer.Option(help="PGD step size on the [0,1] pixel scale, e.g. 2/255.")]
StepsOpt = Annotated[int, typer.Option(help="PGD iterations.")]
RandomStartOpt = Annotated[bool, typer.Option(help="PGD: start from a uniform random point in the eps ball.")]
PixelsOpt = Annotated[int, typer.Option(help="noise: white pixels (1.0 in every channel) per image.")]
SourceOpt = Annotated[Optional[str], typer.Option(help="Transfer source: 'pretrained' (ImageNet ResNet18 before fine-tuning, the study's) or a run folder. Default: pretrained if the run used ImageNet weights, else the q2-baseline run beside it.")]
NOpt = Annotated[Optional[int], typer.Option("--n", help="Evaluate on a stratified subset of this many test images.")]
BatchOpt = Annotated[Optional[int], typer.Option(help="Evaluation batch size.")]


def _spec(method, threat, eps, alpha, steps, random_start, noise_pixels, seed):
    from attacks import AttackSpec, parse_eps

    return AttackSpec(method=_value(method), eps=parse_eps(eps), alpha=parse_eps(alpha, "alpha"), steps=steps,
                      random_start=random_start, n_pixels=noise_pixels, threat=_value(threat), seed=seed).validate()


@app.command()
def attack(
    model: ModelOpt,
    method: Annotated[list[Method], typer.Option(help="Attack; repeat for several. noise+fgsm is the study's (20 white pixels, then FGSM).")] = [Method.pgd],  # noqa: B006
    threat: Annotated[list[Threat], typer.Option(help="white-box (crafted on this model) or transfer (on --source); repeat for both.")] = [Threat["white-box"]],  # noqa: B006
    eps: EpsOpt = "8/255",
    alpha: AlphaOpt = "2/255",
    steps: StepsOpt = 10,
    random_start: RandomStartOpt = True,
    noise_pixels: PixelsOpt = 20,
    source: SourceOpt = None,
    eps_sweep: Annotated[Optional[str], typer.Option(help="Comma-separated eps values, e.g. '0,2/255,4/255,8/255': robust accuracy of the first --method (white-box) at each, drawn as a curve.")] = None,
    n: NOpt = None,
    out: Annotated[Optional[Path], typer.Option(help="Results JSON; default <model>/robustness.json. The example grid and eps curve go beside it.")] = None,
    seed: SeedOpt = 0,
    data_root: DataRootOpt = Path("data"),
    cache_dir: CacheDirOpt = Path("data/cache"),
    download: DownloadOpt = True,
    device: DeviceOpt = "auto",
    batch_size: BatchOpt = None,
):
    """Robust accuracy of a trained run under FGSM, PGD, noise or AutoAttack, per threat model."""
    with errors():
        from attacks import parse_eps
        from eval.robustness import attack_run

        specs = [_spec(m, t, eps, alpha, steps, random_start, noise_pixels, seed) for m in method for t in threat]
        sweep = [parse_eps(e.strip(), "eps-sweep value") for e in eps_sweep.split(",")] if eps_sweep else None
        out = out or model / "robustness.json"
        attack_run(model, specs, out, source=source, eps_sweep=sweep, n=n, data_root=data_root,
                   cache_dir=cache_dir, download=download, device=device, batch_size=batch_size)
        typer.echo(f"wrote {out}")


@app.command("knn-eval")
def knn_eval(
    model: ModelOpt,
    k: Annotated[int, typer.Option(help="Neighbours (scikit-learn KNeighborsClassifier semantics).")] = 3,
    attack: Annotated[Optional[Method], typer.Option("--attack", help="Also report kNN accuracy under this attack.")] = None,
    threat: Annotated[Threat, typer.Option(help="white-box or transfer.")] = Threat["white-box"],
    eps: EpsOpt = "8/255",
    alpha: AlphaOpt = "2/255",
    steps: StepsOpt = 10,
    noise_pixels: PixelsOpt = 20,
    source: SourceOpt = None,
    n: NOpt = None,
    out: Annotated[Optional[Path], typer.Option(help="Results JSON; default <model>/knn.json.")] = None,
    seed: SeedOpt = 0,
    data_root: DataRootOpt = Path("data"),
    cache_dir: CacheDirOpt = Path("data/cache"),
    download: DownloadOpt = True,
    device: DeviceOpt = "auto",
    batch_size: BatchOpt = None,
):
    """Clean and adversarial kNN accuracy on the 512-d features, fitted on the train embeddings."""
    with errors():
        from eval.robustness import knn_run

        spec = _spec(attack, threat, eps, alpha, steps, True, noise_pixels, seed) if attack else None
        out = out or model / "knn.json"
        report = knn_run(model, out, k=k, attack=spec, source=source, n=n, data_root=data_root,
                         cache_dir=cache_dir, download=download, device=device, batch_size=batch_size)
        shown = "".join(f", {r['threat_model']} {r['method']} {r['robust_acc']:.2f}%" for r in report["results"])
        typer.echo(f"{report['preset']}: kNN (k={k}) clean {report['clean_acc']:.2f}%{shown}")
        typer.echo(f"wrote {out}")


@app.command()
def umap(
    model: ModelOpt,
    attack: Annotated[Method, typer.Option("--attack", help="Attack whose features are placed into the clean map.")] = Method["noise+fgsm"],
    threat: Annotated[Threat, typer.Option(help="white-box or transfer.")] = Threat["white-box"],
    eps: EpsOpt = "8/255",
    alpha: AlphaOpt = "2/255",
    steps: StepsOpt = 10,
    noise_pixels: PixelsOpt = 20,
    source: SourceOpt = None,
    max_points: Annotated[int, typer.Option(help="Test images to embed (a stratified subset).")] = 2000,
    out: Annotated[Optional[Path], typer.Option(help="Results JSON with the 2-d points; default <model>/umap.json (the PNG goes beside it).")] = None,
    seed: SeedOpt = 0,
    data_root: DataRootOpt = Path("data"),
    cache_dir: CacheDirOpt = Path("data/cache"),
    download: DownloadOpt = True,
    device: DeviceOpt = "auto",
    wandb: WandbOpt = True,
):
    """UMAP (n_neighbors=10, min_dist=0.3, random_state=42) of clean and adversarial test features."""
    with errors():
        from core.tracking import Tracker
        from eval.robustness import umap_run

        spec = _spec(attack, threat, eps, alpha, steps, True, noise_pixels, seed)
        out = out or model / "umap.json"
        report = umap_run(model, out, attack=spec, source=source, max_points=max_points, data_root=data_root,
                          cache_dir=cache_dir, download=download, device=device)
        tracker = Tracker(wandb, group=report["preset"], name=f"{report['preset']}-s{report['seed']}-umap",
                          job_type="umap", config={"model": str(model), "attack": report["attack"], **report["umap"]})
        tracker.image("umap", out.with_suffix(".png"), caption=f"{report['preset']} clean vs adversarial")
        tracker.finish()
        typer.echo(f"wrote {out} and {out.with_suffix('.png')}")


@app.command()
def report(
    profile: ProfileOpt = ProfileName.paper,
    results: Annotated[Path, typer.Option(help="Results root holding <profile>/<preset>/... folders.")] = Path("results"),
    out: Annotated[Optional[Path], typer.Option(help="Markdown file to write; default results/<profile>/REPORT.md.")] = None,
):
    """REPORT.md from the results files: the study's numbers beside ours (mean ± std over seeds), Δ, figures."""
    with errors():
        from eval.report import write_report

        path = write_report(_value(profile), results, out)
        typer.echo(f"report: {path}")


def raise_usage(message: str):
    from core.errors import UsageError

    raise UsageError(message)


def _report(results: dict, out: Path) -> None:
    if not results:  # a DDP rank other than 0: rank 0 reports
        return
    shown = ", ".join(f"{k} {v:.2f}" for k, v in results["metrics"].items() if isinstance(v, (int, float)))
    typer.echo(f"{results['preset']}: {shown}")
    typer.echo(f"wrote {out / 'metrics.json'}")


if __name__ == "__main__":
    app()
