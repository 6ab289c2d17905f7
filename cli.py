#!/usr/bin/env python
"""trustlab: the study's experiments from the command line. `python cli.py --help` lists the commands.

Each command declares its options and calls one function with a resolved config (policy lives in
experiments/resolve.py); errors come out as one line on stderr (exit 2 for usage errors, 1 for failed
runs, 130 when interrupted) unless --debug is given.
"""
from __future__ import annotations

import functools
import inspect
import os
import sys
import traceback
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
import typer.core

sys.path.insert(0, str(Path(__file__).resolve().parent))

from attacks import ATTACKS, THREATS  # noqa: E402
from core.errors import TrustlabError  # noqa: E402
from experiments import OPTIMIZERS, PROFILES, SECTIONS  # noqa: E402
from loaders import DATASETS  # noqa: E402
from losses import LOSSES  # noqa: E402
from models import NORMS  # noqa: E402

class OneLineErrors(typer.core.TyperGroup):
    """Usage errors that Typer and Click find themselves (a bad choice, a missing option) also come out as
    one line, `error: ...` on stderr with exit 2, instead of a multi-line box."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        from typer._click import exceptions as click  # Typer's own Click (typer>=0.29 vendors it)

        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click.NoArgsIsHelpError as err:  # no arguments at all: the help
            err.show()
            code = err.exit_code
        except click.ClickException as err:
            typer.echo(f"error: {err.format_message().replace('Value error, ', '')} (see --help)", err=True)
            code = err.exit_code
        except typer.Abort:
            typer.echo("interrupted", err=True)
            code = 130
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(help="trustlab: generalization and robustness experiments with ResNet18.", cls=OneLineErrors,
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
STATE = {"debug": bool(os.environ.get("TRUSTLAB_DEBUG"))}


def _choices(name, values):  # a Typer choice type from a registry's names
    return Enum(name, {v: v for v in values}, type=str)


PresetName, ProfileName, Dataset = _choices("PresetName", SECTIONS), _choices("ProfileName", PROFILES), _choices("Dataset", DATASETS)
Optimizer, Loss, Norm = _choices("Optimizer", OPTIMIZERS), _choices("Loss", LOSSES), _choices("Norm", NORMS)
Method, Threat = _choices("Method", ATTACKS), _choices("Threat", THREATS)


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


def _plain(options: dict) -> dict:
    """Enum choices to their values, lists of them to tuples."""
    value = lambda x: x.value if isinstance(x, Enum) else x  # noqa: E731
    return {k: tuple(map(value, v)) if isinstance(v, list) else value(v) for k, v in options.items()}


# ---------------------------------------------------------------- options, each declared once

ProfileOpt = Annotated[ProfileName, typer.Option(help="Scale: paper (the study's), quick (CPU, ~30 min per question), smoke (CI), demo (embedded digits).")]
DataRootOpt = Annotated[Path, typer.Option(help="Where datasets live (torchvision layout or <root>/<name>/{train,test}/<class>/).")]
CacheDirOpt = Annotated[Path, typer.Option(help="Where decoded uint8 tensors are cached, so later runs start in seconds.")]
OutOpt = Annotated[Optional[Path], typer.Option(help="Run folder to write; default results/<profile>/<preset>.")]
SeedOpt = Annotated[int, typer.Option(help="Seeds python, numpy and torch; the same seed gives the same numbers.")]
EpochsOpt = Annotated[Optional[int], typer.Option(help="Number of epochs (default: the preset's, capped by the profile).")]
LrOpt = Annotated[Optional[float], typer.Option(help="Learning rate.")]
EvalOpt = Annotated[Optional[list[Dataset]], typer.Option("--eval", help="Test set to evaluate on each epoch; repeat for several. Replaces the preset's test sets.")]
EvalSizeOpt = Annotated[Optional[int], typer.Option(help="Evaluate on a stratified subset of this many test images (default: the profile's).")]
DownloadOpt = Annotated[bool, typer.Option(help="Download missing datasets through torchvision.")]
WandbOpt = Annotated[bool, typer.Option(help="Log to Weights & Biases (offline unless WANDB_MODE=online).")]
ResumeOpt = Annotated[bool, typer.Option(help="Continue from the run folder's checkpoint.pt (saved after every epoch).")]
OverwriteOpt = Annotated[bool, typer.Option(help="Train again even if the run folder holds a finished metrics.json.")]
DeviceOpt = Annotated[str, typer.Option(help="auto (CUDA if available), cpu, cuda or cuda:N.")]
DeterministicOpt = Annotated[bool, typer.Option(help="torch.use_deterministic_algorithms(True); slower, bit-reproducible.")]
CompileOpt = Annotated[bool, typer.Option(help="torch.compile the training forward/backward (worth it on CUDA for long runs; the first epoch pays the compile time; off by default).")]
# the evaluation commands
ModelOpt = Annotated[Path, typer.Option("--model", help="A finished run folder (metrics.json + model.pt).")]
ThreatOpt = Annotated[Threat, typer.Option(help="white-box (crafted on this model) or transfer (on --source).")]
EpsOpt = Annotated[str, typer.Option(help="L-inf radius on the [0,1] pixel scale, e.g. 8/255 or 0.03.")]
AlphaOpt = Annotated[str, typer.Option(help="PGD step size on the [0,1] pixel scale, e.g. 2/255.")]
StepsOpt = Annotated[int, typer.Option(help="PGD iterations.")]
RandomStartOpt = Annotated[bool, typer.Option(help="PGD: start from a uniform random point in the eps ball.")]
PixelsOpt = Annotated[int, typer.Option(help="noise: white pixels (1.0 in every channel) per image.")]
SourceOpt = Annotated[Optional[str], typer.Option(help="Transfer source: 'pretrained' (ImageNet ResNet18 before fine-tuning, the study's) or a run folder. Default: pretrained if the run used ImageNet weights, else the run its section names as transfer source (q2-baseline), beside it.")]
NOpt = Annotated[Optional[int], typer.Option("--n", help="Evaluate on a stratified subset of this many test images.")]
BatchOpt = Annotated[Optional[int], typer.Option(help="Evaluation batch size.")]


def _group(*functions):
    """Add the options of each function in `functions` (an option group, declared once) to a command
    that takes them as **options."""
    extra = [p for f in functions for p in inspect.signature(f, eval_str=True).parameters.values()]

    def decorate(command):
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.kind != p.VAR_KEYWORD]

        @functools.wraps(command)
        def wrapper(**kwargs):
            return command(**kwargs)
        wrapper.__signature__ = inspect.Signature(own + extra)
        wrapper.__annotations__ = {p.name: p.annotation for p in own + extra}
        return wrapper
    return decorate


def data_options(data_root: DataRootOpt = Path("data"), cache_dir: CacheDirOpt = Path("data/cache"),
                 download: DownloadOpt = True, device: DeviceOpt = "auto"): ...


def run_options(out: OutOpt = None, wandb: WandbOpt = True, resume: ResumeOpt = False,
                overwrite: OverwriteOpt = False, deterministic: DeterministicOpt = False, seed: SeedOpt = 0): ...


def attack_options(eps: EpsOpt = "8/255", alpha: AlphaOpt = "2/255", steps: StepsOpt = 10,
                   noise_pixels: PixelsOpt = 20, source: SourceOpt = None, seed: SeedOpt = 0): ...


def _train(command: str, options: dict) -> None:
    from experiments import resolve_training, run_dir
    from trainers import run

    options = _plain(options)
    run_flags = {k: options.pop(k) for k in ("data_root", "cache_dir", "download", "wandb", "resume", "overwrite")}
    out, weights = options.pop("out"), options.pop("weights", None)
    options.update(weights=str(weights) if weights else None, deterministic=options["deterministic"] or None)
    if "compile" in options:
        options["compile"] = options["compile"] or None
    cfg = resolve_training(options.pop("preset"), options.pop("profile"), command=command, **options)
    out = out or run_dir("results", cfg.profile, cfg.preset)
    results = run(cfg, out, job_type=command, **run_flags)
    if results:  # a DDP rank other than 0 returns nothing: rank 0 reports
        shown = ", ".join(f"{k} {v:.2f}" for k, v in results["metrics"].items() if isinstance(v, (int, float)))
        typer.echo(f"{results['preset']}: {shown}")
        typer.echo(f"wrote {out / 'metrics.json'}")


@app.command()
@_group(data_options, run_options)
def train(
    preset: Annotated[PresetName, typer.Option(help="The report section to run (its settings come from experiments/sections.py).")],
    profile: ProfileOpt = ProfileName.paper,
    epochs: EpochsOpt = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Training batch size (the study: 16 for Q1).")] = None,
    lr: LrOpt = None,
    optimizer: Annotated[Optional[Optimizer], typer.Option(help="sgd (momentum 0.9) or adam.")] = None,
    loss: Annotated[Optional[Loss], typer.Option(help="ce, smooth-ce (the study's label smoothing, s=0.1) or circle.")] = None,
    norm: Annotated[Optional[Norm], typer.Option(help="batch, or none to remove every BatchNorm.")] = None,
    pretrained: Annotated[Optional[bool], typer.Option("--pretrained/--no-pretrained", help="Start from ImageNet weights (torchvision IMAGENET1K_V1).")] = None,
    weights: Annotated[Optional[Path], typer.Option(help="Load the ImageNet weights from this local state-dict file instead of downloading.")] = None,
    augment: Annotated[Optional[bool], typer.Option("--augment/--no-augment", help="The study's augmentation set (affine, jitter, perspective, crop).")] = None,
    train_on: Annotated[Optional[Dataset], typer.Option(help="Training dataset.")] = None,
    eval_on: EvalOpt = None,
    train_size: Annotated[Optional[int], typer.Option(help="Train on a stratified subset of this many images (default: the profile's).")] = None,
    eval_size: EvalSizeOpt = None,
    compile: CompileOpt = False,
    **options,
):
    """Train ResNet18 as a preset says, and write metrics.json, curves.png and model.pt."""
    with errors():
        _train("train", dict(options, preset=preset, profile=profile, epochs=epochs, batch_size=batch_size, lr=lr,
                             optimizer=optimizer, loss=loss, norm=norm, pretrained=pretrained, weights=weights,
                             augment=augment, train_on=train_on, eval_on=eval_on, train_size=train_size,
                             eval_size=eval_size, compile=compile))


@app.command("finetune-fc")
@_group(data_options, run_options)
def finetune_fc(
    from_run: Annotated[Path, typer.Option(help="A finished run folder (with model.pt) to start from.")],
    preset: Annotated[PresetName, typer.Option(help="Preset giving the fine-tuning settings.")] = PresetName["q1-reverse-supervised"],
    dataset: Annotated[Optional[Dataset], typer.Option(help="Dataset whose train split the fc is trained on (default: the preset's, svhn).")] = None,
    samples: Annotated[Optional[int], typer.Option(help="Number of random training images (the study: 800).")] = None,
    profile: ProfileOpt = ProfileName.paper,
    epochs: EpochsOpt = None,
    lr: LrOpt = None,
    eval_on: EvalOpt = None,
    eval_size: EvalSizeOpt = None,
    **options,
):
    """Freeze everything but fc, train fc on a few labelled images (the same training loop)."""
    with errors():
        _train("finetune-fc", dict(options, preset=preset, profile=profile, epochs=epochs, lr=lr, train_on=dataset,
                                   finetune_samples=samples, eval_on=eval_on, eval_size=eval_size,
                                   init_from=str(from_run)))


@app.command()
@_group(attack_options, data_options)
def attack(
    model: ModelOpt,
    methods: Annotated[list[Method], typer.Option("--method", help="Attack; repeat for several. noise+fgsm is the study's (20 white pixels, then FGSM).")] = [Method.pgd],  # noqa: B006
    threats: Annotated[list[Threat], typer.Option("--threat", help="white-box (crafted on this model) or transfer (on --source); repeat for both.")] = [Threat["white-box"]],  # noqa: B006
    random_start: RandomStartOpt = True,
    eps_sweep: Annotated[Optional[str], typer.Option(help="Comma-separated eps values, e.g. '0,2/255,4/255,8/255': robust accuracy of the first --method (white-box) at each, drawn as a curve.")] = None,
    n: NOpt = None,
    out: Annotated[Optional[Path], typer.Option(help="Results JSON; default <model>/robustness.json. The example grid and eps curve go beside it.")] = None,
    batch_size: BatchOpt = None,
    **options,
):
    """Robust accuracy of a trained run under FGSM, PGD, noise or AutoAttack, per threat model."""
    with errors():
        from eval.robustness import attack_run
        from experiments import resolve_evaluation

        ev = resolve_evaluation("attack", **_plain(dict(options, model=model, methods=methods, threats=threats,
                                                        random_start=random_start, eps_sweep=eps_sweep, n=n, out=out,
                                                        batch_size=batch_size)))
        attack_run(ev)
        typer.echo(f"wrote {ev.out}")


@app.command("knn-eval")
@_group(attack_options, data_options)
def knn_eval(
    model: ModelOpt,
    k: Annotated[int, typer.Option(help="Neighbours (scikit-learn KNeighborsClassifier semantics).")] = 3,
    attack: Annotated[Optional[Method], typer.Option("--attack", help="Also report kNN accuracy under this attack.")] = None,
    threat: ThreatOpt = Threat["white-box"],
    n: NOpt = None,
    out: Annotated[Optional[Path], typer.Option(help="Results JSON; default <model>/knn.json.")] = None,
    batch_size: BatchOpt = None,
    **options,
):
    """Clean and adversarial kNN accuracy on the 512-d features, fitted on the train embeddings."""
    with errors():
        from eval.robustness import knn_run
        from experiments import resolve_evaluation

        ev = resolve_evaluation("knn", **_plain(dict(options, model=model, k=k, methods=[attack] if attack else [],
                                                     threats=[threat], n=n, out=out, batch_size=batch_size)))
        report = knn_run(ev)
        shown = "".join(f", {r['threat_model']} {r['method']} {r['robust_acc']:.2f}%" for r in report["results"])
        typer.echo(f"{report['preset']}: kNN (k={k}) clean {report['clean_acc']:.2f}%{shown}")
        typer.echo(f"wrote {ev.out}")


@app.command()
@_group(attack_options, data_options)
def umap(
    model: ModelOpt,
    attack: Annotated[Method, typer.Option("--attack", help="Attack whose features are placed into the clean map.")] = Method["noise+fgsm"],
    threat: ThreatOpt = Threat["white-box"],
    max_points: Annotated[int, typer.Option(help="Test images to embed (a stratified subset).")] = 2000,
    out: Annotated[Optional[Path], typer.Option(help="Results JSON with the 2-d points; default <model>/umap.json (the PNG goes beside it).")] = None,
    wandb: WandbOpt = True,
    **options,
):
    """UMAP (n_neighbors=10, min_dist=0.3, random_state=42) of clean and adversarial test features."""
    with errors():
        from eval.robustness import umap_run
        from experiments import resolve_evaluation

        ev = resolve_evaluation("umap", **_plain(dict(options, model=model, methods=[attack], threats=[threat],
                                                      n=max_points, out=out, wandb=wandb)))
        umap_run(ev)
        typer.echo(f"wrote {ev.out} and {Path(ev.out).with_suffix('.png')}")


@app.command()
def report(
    profile: ProfileOpt = ProfileName.paper,
    results: Annotated[Path, typer.Option(help="Results root holding <profile>/<preset>/... folders.")] = Path("results"),
    out: Annotated[Optional[Path], typer.Option(help="Markdown file to write; default results/<profile>/REPORT.md.")] = None,
):
    """REPORT.md from the results files: the study's numbers beside ours (mean ± std over seeds), Δ, figures."""
    with errors():
        from eval.report import write_report
        from experiments import QUESTIONS

        path = write_report(PROFILES[_plain({"p": profile})["p"]], SECTIONS, QUESTIONS, results, out)
        typer.echo(f"report: {path}")


if __name__ == "__main__":
    app()
