#!/usr/bin/env python
"""trustlab: the study's experiments from the command line. `python cli.py --help` lists the commands.

Each command declares its options and calls one function with a resolved config (policy lives in
experiments/resolve.py); errors come out as one line on stderr (exit 2 for usage errors, 1 for failed
runs, 130 when interrupted) unless --debug is given.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cli_options import (  # noqa: E402 (after the repository is on sys.path)
    STATE,
    BatchOpt,
    CompileOpt,
    EpochsOpt,
    EvalOpt,
    EvalSizeOpt,
    EvalWandbOpt,
    Loss,
    LrOpt,
    Method,
    ModelOpt,
    NOpt,
    Norm,
    OneLineErrors,
    Optimizer,
    ProfileName,
    ProfileOpt,
    RandomStartOpt,
    SectionName,
    Threat,
    ThreatOpt,
    TrainOnOpt,
    _group,
    _plain,
    attack_options,
    data_options,
    emit,
    errors,
    given_options,
    run_options,
    verbose,
    version_text,
)
from experiments import PROFILES, SECTIONS  # noqa: E402 (after the repository is on sys.path)

app = typer.Typer(help="trustlab: generalization and robustness experiments with ResNet18.", cls=OneLineErrors,
                  no_args_is_help=True, add_completion=True, pretty_exceptions_enable=False)


def _version(value: bool) -> None:
    if value:
        typer.echo(version_text())
        raise typer.Exit()


@app.callback()
def main(debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks instead of one-line errors.")] = False,
         version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_version,
                                               help="Print trustlab's git commit and the library versions, then exit.")] = False):
    """trustlab: generalization and robustness experiments with ResNet18. Shell completion: --install-completion."""
    STATE["debug"] = STATE["debug"] or debug


def _train(ctx: typer.Context, command: str, options: dict, renamed: dict | None = None) -> None:
    """Resolve the config (from the options, or from --config's stamp with the options given on top) and train."""
    from core.config import parse_settings
    from core.errors import UsageError
    from experiments import resolve_training
    from runs.layout import run_dir, run_of_stamp
    from trainers import run

    options = _plain(options)
    stamp = options.pop("config")
    given = given_options(ctx, options, renamed)
    run_flags = {k: options.pop(k) for k in ("data_root", "cache_dir", "download", "wandb", "resume", "overwrite")}
    out, weights = options.pop("out"), options.pop("weights", None)
    options.update(weights=str(weights) if weights else None, deterministic=options["deterministic"] or None)
    if "compile" in options:
        options["compile"] = options["compile"] or None
    settings = parse_settings(options.pop("settings") or ())
    both = sorted(k for k in settings if k in given)
    if both:
        raise UsageError(f"{', '.join(both)} given both as an option and with --set; give it once")
    if stamp is not None:  # the stamp holds the resolved config: only what the command line gives goes on top
        options = {k: v for k, v in options.items() if k in given}
    options.update(settings)
    cfg, notes = resolve_training(options.pop("section", None), options.pop("profile", None), command=command,
                                  stamp=stamp, **options)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    verbose("config", cfg)
    out = out or (run_of_stamp(stamp) if stamp is not None else run_dir("results", cfg.profile, cfg.preset))
    from report.run_figures import plot_curves

    results = run(cfg, out, job_type=command, draw_curves=plot_curves, **run_flags)
    if results.get("metrics") is not None:  # a DDP rank other than 0 returns nothing: rank 0 reports
        shown = ", ".join(f"{k} {v:.2f}" for k, v in results["metrics"].items() if isinstance(v, (int, float)))
        emit({"command": command, "preset": results["preset"], "seed": results["seed"], "metrics": results["metrics"],
              "out": str(out / "metrics.json")}, f"{results['preset']}: {shown}\nwrote {out / 'metrics.json'}")


@app.command()
@_group(data_options, run_options)
def train(
    ctx: typer.Context,
    section: Annotated[SectionName | None, typer.Option("--section", "--preset", help="The report section to run (its settings come from experiments/sections.py); required unless --config gives a resolved one.")] = None,
    profile: ProfileOpt = ProfileName.paper,
    epochs: EpochsOpt = None,
    batch_size: Annotated[int | None, typer.Option(help="Training batch size (the study: 16 for Q1).")] = None,
    lr: LrOpt = None,
    optimizer: Annotated[Optimizer | None, typer.Option(help="sgd (momentum 0.9) or adam.")] = None,
    loss: Annotated[Loss | None, typer.Option(help="ce, smooth-ce (the study's label smoothing, s=0.1) or circle.")] = None,
    norm: Annotated[Norm | None, typer.Option(help="batch, or none to remove every BatchNorm.")] = None,
    pretrained: Annotated[bool | None, typer.Option("--pretrained/--no-pretrained", help="Start from ImageNet weights (torchvision IMAGENET1K_V1).")] = None,
    weights: Annotated[Path | None, typer.Option(help="Load the ImageNet weights from this local state-dict file instead of downloading.")] = None,
    augment: Annotated[bool | None, typer.Option("--augment/--no-augment", help="The study's augmentation set (affine, jitter, perspective, crop).")] = None,
    train_on: TrainOnOpt = None,
    eval_on: EvalOpt = None,
    train_size: Annotated[int | None, typer.Option(help="Train on a stratified subset of this many images (default: the profile's).")] = None,
    eval_size: EvalSizeOpt = None,
    compile: CompileOpt = False,
    **options,
):
    """Train ResNet18 as a section says, and write metrics.json, curves.png and model.pt."""
    with errors():
        _train(ctx, "train", dict(options, section=section, profile=profile, epochs=epochs, batch_size=batch_size,
                                  lr=lr, optimizer=optimizer, loss=loss, norm=norm, pretrained=pretrained,
                                  weights=weights, augment=augment, train_on=train_on, eval_on=eval_on,
                                  train_size=train_size, eval_size=eval_size, compile=compile))


@app.command("finetune-fc")
@_group(data_options, run_options)
def finetune_fc(
    ctx: typer.Context,
    from_run: Annotated[Path | None, typer.Option(help="A finished run folder (with model.pt) to start from; required unless --config names it.")] = None,
    section: Annotated[SectionName, typer.Option("--section", "--preset", help="Section giving the fine-tuning settings.")] = SectionName["q1-reverse-supervised"],
    train_on: TrainOnOpt = None,
    samples: Annotated[int | None, typer.Option(help="Number of random training images (the study: 800).")] = None,
    profile: ProfileOpt = ProfileName.paper,
    epochs: EpochsOpt = None,
    lr: LrOpt = None,
    eval_on: EvalOpt = None,
    eval_size: EvalSizeOpt = None,
    compile: CompileOpt = False,
    **options,
):
    """Freeze everything but fc, train fc on a few labelled images (the same training loop)."""
    with errors():
        _train(ctx, "finetune-fc", dict(options, section=section, profile=profile, epochs=epochs, lr=lr,
                                        train_on=train_on, finetune_samples=samples, eval_on=eval_on,
                                        eval_size=eval_size, init_from=str(from_run) if from_run else None,
                                        compile=compile),
               renamed={"finetune_samples": "samples", "init_from": "from_run"})


@app.command()
@_group(attack_options, data_options)
def attack(
    ctx: typer.Context,
    model: ModelOpt = None,
    methods: Annotated[list[Method], typer.Option("--method", help="Attack; repeat for several. noise+fgsm is the study's (20 white pixels, then FGSM).")] = [Method.pgd],  # noqa: B006 (Typer reads the default; it is never mutated)
    threats: Annotated[list[Threat], typer.Option("--threat", help="white-box (crafted on this model), transfer (on --source) or black-box (output scores only: square, uniform); repeat for several.")] = [Threat["white-box"]],  # noqa: B006 (Typer reads the default; it is never mutated)
    random_start: RandomStartOpt = True,
    eps_sweep: Annotated[str | None, typer.Option(help="Comma-separated eps values, e.g. '0,2/255,4/255,8/255': white-box robust accuracy of each --sweep-method at each, drawn as a curve (PGD's step scales with eps).")] = None,
    sweep_methods: Annotated[list[Method], typer.Option("--sweep-method", help="Attack swept over --eps-sweep; repeat for several (default: the first --method).")] = [],  # noqa: B006 (Typer reads the default; it is never mutated)
    audit: Annotated[bool, typer.Option("--audit/--no-audit", help="Add the gradient-masking audit on the same images: FGSM, PGD-10, PGD-50 with 5 restarts, Square alone, uniform noise (for a kNN model also PGD and Square on the kNN itself), determinism, input range and zero-gradient checks; each check passes or is flagged against the test-set noise.")] = False,
    square_queries: Annotated[int, typer.Option(help="The audit's Square attack: queries per image (AutoAttack's standard: 5000).")] = 5000,
    n: NOpt = None,
    out: Annotated[Path | None, typer.Option(help="Results JSON; default <model>/robustness.json. The example grid and eps curve go beside it.")] = None,
    batch_size: BatchOpt = None,
    wandb: EvalWandbOpt = False,
    **options,
):
    """Robust accuracy of a trained run under FGSM, PGD, noise, Square or AutoAttack, per threat model."""
    with errors():
        from eval.attack_run import attack_run
        from report import run_figures as figures

        ev = _evaluation(ctx, "attack", dict(options, model=model, methods=methods, threats=threats,
                                             random_start=random_start, eps_sweep=eps_sweep, n=n, out=out,
                                             sweep_methods=sweep_methods, audit=audit, square_queries=square_queries,
                                             batch_size=batch_size, wandb=wandb))
        report = attack_run(ev, figures=figures)
        emit(_summary(report, ev.out), f"wrote {ev.out}")


@app.command("knn-eval")
@_group(attack_options, data_options)
def knn_eval(
    ctx: typer.Context,
    model: ModelOpt = None,
    k: Annotated[int, typer.Option(help="Neighbours (scikit-learn KNeighborsClassifier semantics).")] = 3,
    attack: Annotated[Method | None, typer.Option("--method", "--attack", help="Also report kNN accuracy under this attack.")] = None,
    threat: ThreatOpt = Threat["white-box"],
    n: NOpt = None,
    out: Annotated[Path | None, typer.Option(help="Results JSON; default <model>/knn.json.")] = None,
    batch_size: BatchOpt = None,
    wandb: EvalWandbOpt = False,
    **options,
):
    """Clean and adversarial kNN accuracy on the 512-d features, fitted on the train embeddings."""
    with errors():
        from eval.knn_run import knn_run

        ev = _evaluation(ctx, "knn", dict(options, model=model, k=k, methods=[attack] if attack else [],
                                          threats=[threat], n=n, out=out, batch_size=batch_size, wandb=wandb),
                         renamed={"methods": "attack", "threats": "threat"})
        report = knn_run(ev)
        shown = "".join(f", {r['threat_model']} {r['method']} {r['robust_acc']:.2f}%" for r in report["results"])
        emit(_summary(report, ev.out), f"{report['preset']}: kNN (k={ev.k}) clean {report['clean_acc']:.2f}%{shown}\n"
                                       f"wrote {ev.out}")


@app.command()
@_group(attack_options, data_options)
def umap(
    ctx: typer.Context,
    model: ModelOpt = None,
    attack: Annotated[Method, typer.Option("--method", "--attack", help="Attack whose features are placed into the clean map.")] = Method["noise+fgsm"],
    threat: ThreatOpt = Threat["white-box"],
    max_points: Annotated[int, typer.Option("--eval-size", "--max-points", help="Test images to embed (a stratified subset).")] = 2000,
    out: Annotated[Path | None, typer.Option(help="Results JSON with the 2-d points; default <model>/umap.json (the PNG goes beside it).")] = None,
    wandb: EvalWandbOpt = False,
    **options,
):
    """UMAP (n_neighbors=10, min_dist=0.3, random_state=42) of clean and adversarial test features."""
    with errors():
        from eval.umap_run import umap_run
        from report import run_figures as figures

        ev = _evaluation(ctx, "umap", dict(options, model=model, methods=[attack], threats=[threat], n=max_points,
                                           out=out, wandb=wandb),
                         renamed={"methods": "attack", "threats": "threat", "n": "max_points"})
        umap_run(ev, figures=figures)
        png = Path(ev.out).with_suffix(".png")
        emit({"command": "umap", "out": str(ev.out), "figure": str(png)}, f"wrote {ev.out} and {png}")


@app.command()
@_group()
def report(
    profile: ProfileOpt = ProfileName.paper,
    results: Annotated[Path, typer.Option(help="Results root holding <profile>/<section>/... folders.")] = Path("results"),
    out: Annotated[Path | None, typer.Option(help="Markdown file to write; default results/<profile>/REPORT.md.")] = None,
    wandb: EvalWandbOpt = False,
    wandb_report: Annotated[bool, typer.Option(help="Also build a W&B Report (wandb-workspaces): one section per question with its tables and a panel grid over its runs; written as wandb-report.json beside REPORT.md.")] = False,
    publish: Annotated[bool, typer.Option(help="Publish that W&B Report to W&B (needs `wandb login` or WANDB_API_KEY).")] = False,
    entity: Annotated[str, typer.Option(help="W&B entity (user or team) that owns the published report; default: your default entity.")] = "",
):
    """REPORT.md from the results files: the study's numbers beside ours (mean ± std over seeds), Δ, figures."""
    with errors():
        import report as reporting
        from experiments import QUESTIONS

        prof = PROFILES[_plain({"p": profile})["p"]]
        path, document = reporting.write(prof, SECTIONS, QUESTIONS, results, out)
        reporting.track_report(wandb, prof.name, path)
        summary, lines = {"command": "report", "out": str(path)}, [f"report: {path}"]
        if wandb_report or publish:
            built = reporting.build(prof.name, SECTIONS, QUESTIONS, document, entity=entity)
            summary["wandb_report_spec"] = str(reporting.write_spec(built, path.with_name("wandb-report.json")))
            lines.append(f"W&B Report spec: {summary['wandb_report_spec']} ({len(built.blocks)} blocks)")
            if publish:
                built.save()
                summary["wandb_report_url"] = built.url
                lines.append(f"W&B Report published: {built.url}")
            else:
                lines.append(f"publish it with `make wandb-report PROFILE={prof.name} PUBLISH=1` after `wandb login`")
        emit(summary, "\n".join(lines))


def _evaluation(ctx: typer.Context, kind: str, options: dict, renamed: dict | None = None):
    """The command's Evaluation: from its options, or from --plan's stamp with the options given on top.
    renamed: resolve_evaluation's name -> the command's parameter name, where they differ."""
    from experiments import resolve_evaluation

    options = _plain(options)
    if options.get("plan") is not None:  # the stamp holds the resolved evaluation
        given = given_options(ctx, options, renamed)
        options = {k: v for k, v in options.items() if k in given or k == "plan"}
    ev = resolve_evaluation(kind, **options)
    verbose("evaluation", ev)
    return ev


def _summary(report: dict, out) -> dict:
    """An evaluation's --json summary: what a script needs, not the whole results file."""
    keep = ("evaluation", "preset", "profile", "seed", "clean_acc", "k", "audit")
    rows = [{k: r.get(k) for k in ("label", "method", "threat_model", "eps", "robust_acc", "n")}
            for r in report.get("results", [])]
    return {**{k: report[k] for k in keep if k in report}, "results": rows, "out": str(out)}


if __name__ == "__main__":
    app()
