"""The CLI's shared parts: one-line errors, option groups declared once, and the choices the registries
own. cli.py holds only the commands; each declares its options from here and calls one function."""
import functools
import inspect
import io
import json
import os
import signal
import sys
import traceback
from contextlib import contextmanager, nullcontext, redirect_stderr, redirect_stdout
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
import typer.core

from attacks import ATTACKS, THREATS
from core.errors import TrustlabError
from experiments import OPTIMIZERS, PROFILES, SECTIONS
from loaders import DATASETS
from losses import LOSSES
from models import NORMS


class OneLineErrors(typer.core.TyperGroup):
    """Usage errors that Typer and Click find themselves (a bad choice, a missing option) also come out as
    one line, `error: ...` on stderr with exit 2, instead of a multi-line box."""

    def main(self, args=None, *rest, standalone_mode: bool = True, **kwargs):
        previous = _term_is_interrupt()
        wants_json = "--json" in (sys.argv[1:] if args is None else list(args))
        try:
            code = super().main(args, *rest, standalone_mode=False, **kwargs)
        except typer.TyperException as err:  # the public base of Typer's (vendored) Click usage errors
            if type(err).__name__ == "NoArgsIsHelpError":  # no arguments at all: the help (not public by itself)
                err.show()
            else:
                _fail(f"error: {err.format_message().replace('Value error, ', '')} (see --help)", err.exit_code, wants_json)
            code = err.exit_code
        except typer.Abort:
            _fail("interrupted", 130, wants_json)
            code = 130
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


STATE = {"debug": bool(os.environ.get("TRUSTLAB_DEBUG"))}


def _term_is_interrupt():
    """SIGTERM (a scheduler's or `kill`'s stop) ends any command as Ctrl-C does: locks released, no
    partial results file, `interrupted` and exit 130. The training loop installs its own, gentler handler
    (finish the step, keep the checkpoint) while it runs."""
    def stop(signum, frame):
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, stop)  # the previous handler, restored when the command ends
    except ValueError:  # not the main thread (some test runners): leave signals alone
        return None


def _choices(name, values):  # a Typer choice type from a registry's names
    return Enum(name, {v: v for v in values}, type=str)


SectionName, ProfileName = _choices("SectionName", SECTIONS), _choices("ProfileName", PROFILES)
Dataset = _choices("Dataset", DATASETS)
Optimizer, Loss, Norm = _choices("Optimizer", OPTIMIZERS), _choices("Loss", LOSSES), _choices("Norm", NORMS)
Method, Threat = _choices("Method", ATTACKS), _choices("Threat", THREATS)
Precision = _choices("Precision", ("auto", "bf16", "fp32"))


@contextmanager
def errors():
    """One line on stderr and a meaningful exit code, instead of a traceback."""
    try:
        yield
    except TrustlabError as err:
        if STATE["debug"]:
            traceback.print_exc(file=_stderr())
        _fail(f"error: {err}", err.exit_code)
        raise typer.Exit(err.exit_code) from None  # the one line is the message; --debug shows the traceback
    except KeyboardInterrupt:
        _fail("interrupted", 130)
        raise typer.Exit(130) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as err:  # an unexpected failure: still one line, traceback on --debug
        if STATE["debug"]:
            traceback.print_exc(file=_stderr())
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        _fail(f"error: {type(err).__name__}: {first} (for the traceback, rerun as `python cli.py --debug COMMAND ...` or with TRUSTLAB_DEBUG=1)", 1)
        raise typer.Exit(1) from None


def _fail(line: str, code: int, json_out: bool | None = None) -> None:
    """A failure's one line on stderr; with --json, also {"error": ..., "exit_code": ...} on stdout, so a script
    reading stdout sees why there is no summary."""
    _stderr().write(line + "\n")
    if STATE.get("json") if json_out is None else json_out:
        out = STATE.get("stdout") or sys.stdout
        out.write(json.dumps({"error": line.removeprefix("error: "), "exit_code": code}) + "\n")
        out.flush()


def _stderr():
    """Where errors go: the real stderr, even while --quiet silences everything else."""
    return STATE.get("stderr") or sys.stderr


def _plain(options: dict) -> dict:
    """Enum choices to their values, lists of them to tuples."""
    value = lambda x: x.value if isinstance(x, Enum) else x
    return {k: tuple(map(value, v)) if isinstance(v, list) else value(v) for k, v in options.items()}


def given_options(ctx: typer.Context, options: dict, renamed: dict | None = None) -> set[str]:
    """The keys of `options` that the command line (or an environment variable) gave, rather than left at
    their defaults: what goes on top of a stamp. renamed: option key -> the command's parameter name, where
    the two differ."""
    renamed = renamed or {}
    given = set()
    for key in options:
        source = ctx.get_parameter_source(renamed.get(key, key))
        if source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT"):
            given.add(key)
    return given


# ---------------------------------------------------------------- options, each declared once

ProfileOpt = Annotated[ProfileName, typer.Option(help="Scale: paper (the study's), quick (CPU, ~30 min per question), smoke (CI), demo (embedded digits).")]
DataRootOpt = Annotated[Path, typer.Option(help="Where datasets live (torchvision layout or <root>/<name>/{train,test}/<class>/).")]
CacheDirOpt = Annotated[Path, typer.Option(help="Where decoded uint8 tensors are cached, so later runs start in seconds.")]
OutOpt = Annotated[Path | None, typer.Option(help="Run folder to write; default results/<profile>/<section> (with --config: the stamp's run).")]
SeedOpt = Annotated[int, typer.Option(help="Seeds python, numpy and torch; the same seed gives the same numbers.")]
EpochsOpt = Annotated[int | None, typer.Option(help="Number of epochs (default: the section's, capped by the profile).")]
LrOpt = Annotated[float | None, typer.Option(help="Learning rate.")]
EvalOpt = Annotated[list[Dataset] | None, typer.Option("--eval", help="Test set to evaluate on each epoch; repeat for several. Replaces the section's test sets.")]
EvalSizeOpt = Annotated[int | None, typer.Option(help="Evaluate on a stratified subset of this many test images (default: the profile's).")]
DownloadOpt = Annotated[bool, typer.Option(help="Download missing datasets through torchvision.")]
WandbOpt = Annotated[bool, typer.Option(help="Log to Weights & Biases (offline unless WANDB_MODE=online).")]
ResumeOpt = Annotated[bool, typer.Option(help="Continue from the run folder's checkpoint.pt (saved after every epoch).")]
OverwriteOpt = Annotated[bool, typer.Option(help="Train again even if the run folder holds a finished metrics.json.")]
DeviceOpt = Annotated[str, typer.Option(help="auto (CUDA if available), cpu, cuda or cuda:N.")]
PrecisionOpt = Annotated[Precision | None, typer.Option(help="auto: bf16 autocast on CUDA, fp32 elsewhere; bf16: autocast on any device, the CPU included (the GPU's code paths, testable without a GPU); fp32: none. Training defaults to auto; evaluations (attacks, kNN, UMAP) default to fp32 on every device, as RobustBench evaluates.")]
ChannelsLastOpt = Annotated[bool | None, typer.Option("--channels-last/--no-channels-last", help="channels_last memory format for the model and batches (default: on CUDA only; evaluations: the run's own).", show_default=False)]
DeterministicOpt = Annotated[bool, typer.Option(help="torch.use_deterministic_algorithms(True); slower, bit-reproducible.")]
CompileOpt = Annotated[bool, typer.Option(help="torch.compile the training forward/backward (worth it on CUDA for long runs; the first epoch pays the compile time; off by default).")]
# the evaluation commands
ModelOpt = Annotated[Path | None, typer.Option("--model", help="A finished run folder (metrics.json + model.pt); required unless --plan names it.")]
PlanOpt = Annotated[Path | None, typer.Option("--plan", help="An evaluation stamp that make wrote (RUN/stamps/robustness.json, audit.json, knn.json, umap.json): the whole resolved evaluation (model, attacks, eps, sizes, source, seed). Options given on top replace its values.")]
ThreatOpt = Annotated[Threat, typer.Option(help="white-box (crafted on this model), transfer (on --source) or black-box (from the output scores only, e.g. Square).")]
EpsOpt = Annotated[str, typer.Option(help="L-inf radius on the [0,1] pixel scale, e.g. 8/255 or 0.03.")]
AlphaOpt = Annotated[str, typer.Option(help="PGD step size on the [0,1] pixel scale, e.g. 2/255.")]
StepsOpt = Annotated[int, typer.Option(help="PGD iterations.")]
RandomStartOpt = Annotated[bool, typer.Option(help="PGD: start from a uniform random point in the eps ball.")]
PixelsOpt = Annotated[int, typer.Option(help="noise: white pixels (1.0 in every channel) per image.")]
SourceOpt = Annotated[str | None, typer.Option(help="Transfer source: 'pretrained' (ImageNet ResNet18 before fine-tuning, the study's) or a run folder. Default: pretrained if the run used ImageNet weights, else the run its section names as transfer source (q2-baseline), beside it.")]
NOpt = Annotated[int | None, typer.Option("--eval-size", "--n", help="Evaluate on a stratified subset of this many test images (default: all of them).")]
TrainOnOpt = Annotated[Dataset | None, typer.Option("--train-on", "--dataset", help="Training dataset (default: the section's).")]
EvalWandbOpt = Annotated[bool, typer.Option(help="Log to Weights & Biases (offline unless WANDB_MODE=online): summary, tables, figures.")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="A resolved-config stamp that make wrote (RUN/stamps/metrics.json): the whole training config (section, profile, seed, sizes, ...), with --out defaulting to that run. Options given on top replace its values.")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override any RunConfig field, key=value, repeatable (e.g. --set adv_prob=0.3 --set dropout=0.2 --set circle_m=0.4); checked against the field's type and recorded in the config.")]
BatchOpt = Annotated[int | None, typer.Option(help="Evaluation batch size.")]


def _group(*functions):
    """Add the options of each function in `functions` (an option group, declared once) to a command
    that takes them as **options. Every command also gets output_options, which the wrapper handles itself."""
    functions = functions + (output_options,)
    extra = [p for f in functions for p in inspect.signature(f, eval_str=True).parameters.values()]

    def decorate(command):
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.kind != p.VAR_KEYWORD]

        @functools.wraps(command)
        def wrapper(**kwargs):
            with _output(kwargs.pop("json_out"), kwargs.pop("quiet"), kwargs.pop("verbose")):
                return command(**kwargs)
        wrapper.__signature__ = inspect.Signature(own + extra)
        wrapper.__annotations__ = {p.name: p.annotation for p in own + extra}
        return wrapper
    return decorate


JsonOpt = Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON summary on stdout, and nothing else there (messages go to stderr).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors (and the --json summary, if asked for).")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Print the resolved settings before running and full tracebacks on errors.")]


def output_options(json_out: JsonOpt = False, quiet: QuietOpt = False, verbose: VerboseOpt = False): ...


@contextmanager
def _output(json_out: bool, quiet: bool, verbose: bool):
    """--json: stdout holds the summary only (progress lines go to stderr); --quiet: everything but errors is
    dropped (progress lines, notes, bars); --verbose: the resolved settings and tracebacks on errors. emit()
    writes the command's summary to the real stdout, errors() to the real stderr. STATE is restored after."""
    saved = dict(STATE)
    STATE.update(json=json_out, quiet=quiet, verbose=verbose, stdout=sys.stdout, stderr=sys.stderr)
    STATE["debug"] = STATE["debug"] or verbose
    sink = io.StringIO()
    out = sink if quiet else sys.stderr if json_out else None
    try:
        with (redirect_stdout(out) if out is not None else nullcontext()), \
                (redirect_stderr(sink) if quiet else nullcontext()):
            yield
    finally:
        STATE.clear()
        STATE.update(saved)


def emit(summary: dict, text: str) -> None:
    """A command's result: `text` for people (unless --quiet), or `summary` as one JSON object with --json."""
    out = STATE.get("stdout") or sys.stdout
    if STATE.get("json"):
        out.write(json.dumps(summary, default=str) + "\n")
    elif not STATE.get("quiet"):
        out.write(text + "\n")
    out.flush()


def verbose(what: str, settings) -> None:
    """With --verbose, the resolved settings on stderr before the work starts."""
    if STATE.get("verbose"):
        data = settings.to_dict() if hasattr(settings, "to_dict") else getattr(settings, "__dict__", settings)
        typer.echo(f"{what}: {json.dumps(data, default=str, sort_keys=True)}", err=True)


def data_options(data_root: DataRootOpt = Path("data"), cache_dir: CacheDirOpt = Path("data/cache"),
                 download: DownloadOpt = True, device: DeviceOpt = "auto", precision: PrecisionOpt = None,
                 channels_last: ChannelsLastOpt = None): ...


def run_options(out: OutOpt = None, wandb: WandbOpt = True, resume: ResumeOpt = False,
                overwrite: OverwriteOpt = False, deterministic: DeterministicOpt = False, seed: SeedOpt = 0,
                settings: SetOpt = None, config: ConfigOpt = None): ...


def version_text() -> str:
    """trustlab's git commit and the versions of the libraries its numbers depend on."""
    from importlib import metadata

    from core.provenance import git_commit

    libs = ("torch", "torchvision", "advertorch", "torchattacks", "typer", "wandb")
    found = []
    for lib in libs:
        try:
            found.append(f"{lib} {metadata.version(lib)}")
        except metadata.PackageNotFoundError:
            found.append(f"{lib} missing")
    return f"trustlab {git_commit()} ({', '.join(found)})"


def attack_options(eps: EpsOpt = "8/255", alpha: AlphaOpt = "2/255", steps: StepsOpt = 10,
                   noise_pixels: PixelsOpt = 20, source: SourceOpt = None, seed: SeedOpt = 0,
                   plan: PlanOpt = None): ...
