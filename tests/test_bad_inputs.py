"""The bad-input matrix: every bad input gets a one-line error naming the bad value, the right exit
code (2 usage, 1 runtime), and leaves earlier results intact."""
import collections
import contextlib
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from typer.testing import CliRunner

from cli import app
from core.io import exclusive
from tests.fixtures import write_idx

runner = CliRunner()
FAST = ["--profile", "demo", "--no-pretrained", "--train-size", "48", "--eval-size", "30", "--epochs", "1",
        "--no-wandb", "--no-download"]


@pytest.fixture(scope="module")
def env(tmp_path_factory, data_root):
    """A finished fc run, a finished no-BN run, and broken data and weights files."""
    base = tmp_path_factory.mktemp("bad")
    for name, extra in (("run", []), ("nobn", ["--norm", "none"])):
        result = runner.invoke(app, ["train", "--preset", "q2-baseline", *FAST, *extra, "--out", str(base / name)])
        assert result.exit_code == 0, result.output
    bad = base / "data"
    shutil.copytree(data_root, bad, ignore=shutil.ignore_patterns("*.pth"))
    mat = bad / "svhn" / "train_32x32.mat"
    mat.write_bytes(mat.read_bytes()[:1000])
    idx = bad / "MNIST" / "raw" / "train-images-idx3-ubyte"
    idx.write_bytes(idx.read_bytes()[:5000])
    wrong_classes = base / "wrongclasses"
    for c in range(4):
        (wrong_classes / "cifar10" / "train" / str(c)).mkdir(parents=True)
    state = torchvision.models.resnet18().state_dict()
    state["layer1.0.conv1.weight"] = torch.zeros(8, 64, 3, 3)
    torch.save(state, base / "wrong-shapes.pth")
    ckpt = base / "truncated"
    shutil.copytree(base / "run", ckpt)
    (ckpt / "model.pt").write_bytes((ckpt / "model.pt").read_bytes()[:2000])
    (base / "empty-run").mkdir()
    (base / "a-file").write_text("not a folder")
    mixed = base / "bn-config-nobn-weights"  # a no-BN model file in a BN run folder
    shutil.copytree(base / "run", mixed)
    shutil.copy(base / "nobn" / "model.pt", mixed / "model.pt")
    pickled = base / "pickled-model"  # a model.pt that is a pickle payload, not a state dict
    shutil.copytree(base / "run", pickled)
    torch.save(collections.OrderedDict(layer=torch.nn.Linear(2, 2)), pickled / "model.pt")
    raw = data_root / "MNIST" / "raw"
    for name, edit in (("label-200", lambda labels: labels[:8] + bytes([labels[8], 200]) + labels[10:]),
                       ("empty-idx", None)):
        (base / name / "MNIST" / "raw").mkdir(parents=True)
        for f in raw.iterdir():
            shutil.copy(f, base / name / "MNIST" / "raw" / f.name)
        if edit:
            labels = base / name / "MNIST" / "raw" / "train-labels-idx1-ubyte"
            labels.write_bytes(edit(labels.read_bytes()))
        else:
            write_idx(base / name / "MNIST" / "raw" / "train-images-idx3-ubyte", np.zeros((0, 28, 28), np.uint8))
    locked = base / "locked"  # a run folder another writer holds (here: this process, through its own lock)
    locked.mkdir()
    held = contextlib.ExitStack()
    held.enter_context(exclusive(locked / ".lock", "run folder"))
    held.enter_context(exclusive(base / ".locked-eval.json.lock", "results file"))
    (base / "notes.json").write_text('{"mine": 1}')  # a user's own JSON file
    (base / "unfinished").mkdir()  # an interrupted run: a checkpoint and no metrics.json
    (base / "unfinished" / "checkpoint.pt").write_bytes(b"an unfinished run's checkpoint")
    corrupt = base / "corrupt-results" / "demo" / "q1-baseline"
    corrupt.mkdir(parents=True)
    (corrupt / "metrics.json").write_text('{"preset": "q1-baseline", "metr')
    with held:
        yield base


def digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def T(*args):
    return list(args)


CASES = [
    # (id, argv builder, exit code, text the message must contain)
    ("unknown-preset", lambda b: T("train", "--preset", "q7-magic"), 2, "q7-magic"),
    ("unknown-profile", lambda b: T("train", "--preset", "q1-baseline", "--profile", "huge"), 2, "huge"),
    ("unknown-dataset", lambda b: T("train", "--preset", "q1-baseline", "--train-on", "imagenet"), 2, "imagenet"),
    ("unknown-attack", lambda b: T("attack", "--model", b / "run", "--method", "cw"), 2, "cw"),
    ("unknown-optimizer", lambda b: T("train", "--preset", "q1-baseline", "--optimizer", "lbfgs"), 2, "lbfgs"),
    ("eps-negative", lambda b: T("attack", "--model", b / "run", "--eps", "-0.1"), 2, "-0.1"),
    ("eps-too-big", lambda b: T("attack", "--model", b / "run", "--eps", "1.5"), 2, "1.5"),
    ("eps-double-slash", lambda b: T("attack", "--model", b / "run", "--eps", "8//255"), 2, "8//255"),
    ("eps-text", lambda b: T("attack", "--model", b / "run", "--eps", "abc"), 2, "abc"),
    ("steps-zero", lambda b: T("attack", "--model", b / "run", "--steps", "0"), 2, "steps must be at least 1, got 0"),
    ("steps-negative", lambda b: T("attack", "--model", b / "run", "--steps", "-3"), 2, "got -3"),
    ("batch-size-zero", lambda b: T("train", "--preset", "q1-baseline", *FAST, "--batch-size", "0", "--out", b / "x"), 2,
     "batch-size must be at least 1, got 0"),
    ("k-zero", lambda b: T("knn-eval", "--model", b / "run", "--k", "0", "--out", b / "k.json"), 2, "k must be at least 1, got 0"),
    ("k-too-large", lambda b: T("knn-eval", "--model", b / "run", "--k", "100000", "--out", b / "k.json"), 2, "k=100000"),
    ("samples-too-many", lambda b: T("finetune-fc", "--from-run", b / "run", "--profile", "demo", "--samples", "999999",
                                     "--no-wandb", "--out", b / "ft"), 2, "999999"),
    ("data-root-missing", lambda b: T("train", "--preset", "q1-baseline", "--data-root", b / "nope", "--no-download",
                                      "--no-wandb", "--out", b / "x"), 2, str(Path("nope"))),
    ("svhn-mat-truncated", lambda b: T("train", "--preset", "q1-baseline", "--data-root", b / "data", "--no-download",
                                       "--no-wandb", "--profile", "smoke", "--out", b / "x"), 1, "train_32x32.mat"),
    ("mnist-idx-truncated", lambda b: T("train", "--preset", "q1-reverse-unsupervised", "--no-pretrained", "--data-root",
                                        b / "data", "--no-download", "--no-wandb", "--profile", "smoke", "--out", b / "x"),
     1, "train-images-idx3-ubyte is truncated"),
    ("imagefolder-wrong-classes", lambda b: T("train", "--preset", "q2-baseline", "--no-pretrained", "--data-root",
                                              b / "wrongclasses", "--no-download", "--no-wandb", "--profile", "smoke",
                                              "--out", b / "x"), 1, "missing airplane"),
    ("checkpoint-truncated", lambda b: T("attack", "--model", b / "truncated", "--out", b / "a.json"), 1, "truncated or corrupt"),
    ("nobn-into-bn", lambda b: T("attack", "--model", b / "bn-config-nobn-weights", "--out", b / "a.json"), 1,
     "lacks BatchNorm weights"),
    ("finished-run-not-overwritten", lambda b: T("finetune-fc", "--from-run", b / "nobn", "--profile", "demo",
                                                 "--samples", "20", "--no-wandb", "--out", b / "run"), 2, "exists already"),
    ("weights-wrong-shapes", lambda b: T("train", "--preset", "q1-pretrained", *FAST[:-4], "--weights",
                                         b / "wrong-shapes.pth", "--pretrained", "--no-wandb", "--out", b / "x"), 1,
     "layer1.0.conv1.weight"),
    ("output-not-writable", lambda b: T("train", "--preset", "q1-baseline", *FAST, "--out", b / "a-file" / "sub"), 1,
     "cannot create output folder"),
    ("resume-without-checkpoint", lambda b: T("train", "--preset", "q1-baseline", *FAST, "--resume", "--out", b / "fresh"),
     2, "no checkpoint"),
    ("attack-run-without-model", lambda b: T("attack", "--model", b / "empty-run"), 2, "empty-run"),
    ("knn-run-without-model", lambda b: T("knn-eval", "--model", b / "empty-run"), 2, "empty-run"),
    ("umap-run-without-model", lambda b: T("umap", "--model", b / "empty-run", "--no-wandb"), 2, "empty-run"),
    ("nan-loss", lambda b: T("train", "--preset", "q1-baseline", *FAST, "--lr", "1e12", "--out", b / "nan"), 1,
     "NaN or inf at epoch 1, step"),
    ("eval-empty", lambda b: T("train", "--preset", "q1-baseline", *FAST[:-6], "--eval-size", "0", "--no-wandb",
                               "--out", b / "x"), 2, "eval-size must be at least 1, got 0"),
    # an evaluation never writes over a file it did not create for that purpose
    ("out-over-model", lambda b: T("attack", "--model", b / "run", "--out", b / "run" / "model.pt"), 2, "would write over"),
    ("out-over-metrics", lambda b: T("knn-eval", "--model", b / "run", "--out", b / "run" / "metrics.json"), 2,
     "would write over"),
    ("out-is-a-folder", lambda b: T("attack", "--model", b / "run", "--out", b / "run"), 2, "is a folder"),
    ("umap-png-over-curves", lambda b: T("umap", "--model", b / "run", "--out", b / "run" / "curves.json",
                                         "--no-wandb"), 2, "curves.png"),
    ("out-over-another-evaluation", lambda b: T("knn-eval", "--model", b / "run", "--out", b / "run" / "umap.json"),
     2, "another evaluation"),
    ("out-over-a-foreign-file", lambda b: T("attack", "--model", b / "run", "--out", b / "notes.json"), 2,
     "is not a results file of this evaluation"),
    # one writer per run folder and per results file
    ("run-folder-locked", lambda b: T("train", "--preset", "q1-baseline", *FAST, "--out", b / "locked"), 1,
     "in use by pid"),
    ("results-file-locked", lambda b: T("attack", "--model", b / "run", "--out", b / "locked-eval.json"), 1,
     "in use by pid"),
    # validated at the edge
    ("seed-too-large", lambda b: T("train", "--preset", "q1-baseline", *FAST, "--seed", str(2**60), "--out", b / "x"), 2,
     "seed must be an integer from 0"),
    ("device-unknown", lambda b: T("train", "--preset", "q1-baseline", *FAST, "--device", "foo", "--out", b / "x"), 2,
     "device 'foo'"),
    ("device-unknown-attack", lambda b: T("attack", "--model", b / "run", "--device", "foo", "--out", b / "a.json"), 2,
     "device 'foo'"),
    ("mnist-label-200", lambda b: T("train", "--preset", "q1-reverse-unsupervised", "--no-pretrained", "--data-root",
                                    b / "label-200", "--no-download", "--no-wandb", "--profile", "smoke", "--out", b / "x"),
     1, "holds label 200 at index 1"),
    ("mnist-idx-no-images", lambda b: T("train", "--preset", "q1-reverse-unsupervised", "--no-pretrained", "--data-root",
                                        b / "empty-idx", "--no-download", "--no-wandb", "--profile", "smoke", "--out",
                                        b / "x"), 1, "train-images-idx3-ubyte holds no images"),
    ("pickled-model-one-line", lambda b: T("attack", "--model", b / "pickled-model", "--out", b / "a.json"), 1,
     "refused for safety"),
    ("bn-statistics-diverge", lambda b: T("train", "--preset", "q1-baseline", *FAST, "--lr", "1e6", "--out", b / "div"),
     1, "running_var"),
    ("report-corrupt-metrics", lambda b: T("report", "--profile", "demo", "--results", b / "corrupt-results",
                                           "--out", b / "r.md"), 1, "is corrupt"),
    ("report-results-root-missing", lambda b: T("report", "--profile", "demo", "--results", b / "nonexistent",
                                                "--out", b / "r.md"), 2, "does not exist"),
    # --set goes through the options' checks (issue 23)
    ("set-momentum-nan", lambda b: T("train", "--preset", "q1-baseline", *FAST, "--set", "momentum=nan", "--out",
                                     b / "x"), 2, "momentum must be a finite number, got nan"),
    ("set-lr-inf", lambda b: T("train", "--preset", "q1-baseline", *FAST, "--set", "lr_gamma=inf", "--out", b / "x"), 2,
     "lr-gamma must be a finite number"),
    ("set-momentum-range", lambda b: T("train", "--preset", "q1-baseline", *FAST, "--set", "momentum=1.5", "--out",
                                       b / "x"), 2, "momentum must be in [0, 1), got 1.5"),
    ("set-init-from-beside-from-run", lambda b: T("finetune-fc", "--from-run", b / "run", "--profile", "demo",
                                                  "--set", f"init_from={b / 'nobn'}", "--no-wandb", "--out", b / "ft2"),
     2, "init_from given both"),
    ("set-samples-beside-finetune-samples", lambda b: T("finetune-fc", "--from-run", b / "run", "--profile", "demo",
                                                        "--samples", "20", "--set", "finetune_samples=30", "--no-wandb",
                                                        "--out", b / "ft2"), 2, "finetune_samples given both"),
    # no quiet loss (issue 23)
    ("checkpoint-without-resume-or-overwrite", lambda b: T("train", "--preset", "q1-baseline", *FAST, "--out",
                                                           b / "unfinished"), 2, "pass --resume to continue it"),
    ("umap-too-few-points", lambda b: T("umap", "--model", b / "run", "--max-points", "3", "--no-wandb"), 2, "max-points"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(env, case):
    name, argv, code, needle = case
    before = {run: digest(env / run) for run in ("run", "nobn", "unfinished")}
    result = runner.invoke(app, [str(a) for a in argv(env)])
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert "Traceback" not in result.output
    assert needle in result.output, result.output
    # every case, those Typer rejects itself included, is one `error:` line and nothing else
    assert [line for line in lines if not line.startswith("note:")] == \
        [line for line in lines if line.startswith("error:")], result.output
    assert len(lines) == 1 or all(line.startswith("note:") for line in lines[:-1]), result.output
    assert {run: digest(env / run) for run in ("run", "nobn", "unfinished")} == before


def test_refusals_leave_no_partial_files(env, tmp_path):
    for argv in (T("train", "--preset", "q1-baseline", *FAST, "--lr", "1e6", "--out", tmp_path / "div"),
                 T("report", "--profile", "demo", "--results", env / "corrupt-results", "--out", tmp_path / "r.md"),
                 T("attack", "--model", env / "run", "--out", env / "notes.json")):
        assert runner.invoke(app, [str(a) for a in argv]).exit_code != 0
    assert not (tmp_path / "div").exists()  # no model.pt, checkpoint or lock: not even the folder it created
    assert not (tmp_path / "r.md").exists()
    missing = T("train", "--preset", "q1-baseline", "--data-root", tmp_path / "nope", "--no-download", "--no-wandb",
                "--out", tmp_path / "never")
    assert runner.invoke(app, [str(a) for a in missing]).exit_code == 2
    assert not (tmp_path / "never").exists()  # a run failing before its first epoch leaves no folder it created
    assert (env / "locked" / ".lock").is_file()  # another writer's lock is never removed
    assert (env / "notes.json").read_text() == '{"mine": 1}'


def test_a_last_batch_of_one_image_is_dropped_and_recorded(tmp_path):
    result = runner.invoke(app, ["train", "--preset", "q1-baseline", *FAST[:2], "--no-pretrained", "--train-size", "49",
                                 "--batch-size", "16", "--eval-size", "30", "--epochs", "1", "--no-wandb",
                                 "--no-download", "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["datasets"]["train"]["last_batch"] == "a final batch of one image is dropped each epoch"


@pytest.mark.parametrize("argv,code", [(("attack", "--json", "--model", "empty-run"), 2),
                                       (("attack", "--json", "--model", "run", "--method", "cw"), 2),
                                       (("train", "--json", "--preset", "q1-baseline", *FAST, "--out", "locked"), 1)])
def test_json_errors_are_one_json_object_on_stdout(env, argv, code):
    argv = [str(env / a) if a in ("empty-run", "run", "locked") else a for a in argv]
    result = runner.invoke(app, argv)
    assert result.exit_code == code
    assert json.loads(result.stdout) == {"error": result.stderr.strip().removeprefix("error: "), "exit_code": code}
