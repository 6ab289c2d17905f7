"""The CLI through typer's CliRunner: every command, its help, and its one-line errors."""
import json

import pytest
import torch
from typer.testing import CliRunner

from cli import app

runner = CliRunner()
TINY = ["--profile", "demo", "--no-pretrained", "--train-size", "64", "--eval-size", "40", "--epochs", "1",
        "--no-wandb", "--no-download"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("command", ["train", "finetune-fc", "attack", "knn-eval", "umap", "report"])
def test_help_explains_every_option(command):
    import typer.main

    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "250"})  # room for every option's name
    assert result.exit_code == 0
    cmd = typer.main.get_command(app).commands[command]
    for param in cmd.params:
        assert param.help and len(param.help) > 10, f"{command} {param.name} has no help"
        assert param.opts[0] in result.output, f"{command} --help does not show {param.opts[0]}"


def test_train_and_finetune_fc(tmp_path):
    result = invoke("train", "--preset", "q1-reverse-unsupervised", *TINY, "--no-augment", "--out", tmp_path / "src")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "src" / "metrics.json").read_text())
    assert metrics["config"]["train_on"] == "digits-inverted" and metrics["config"]["optimizer"] == "adam"
    result = invoke("finetune-fc", "--from-run", tmp_path / "src", "--profile", "demo", "--samples", "30",
                    "--epochs", "1", "--eval-size", "40", "--no-wandb", "--out", tmp_path / "ft")
    assert result.exit_code == 0, result.output
    ft = json.loads((tmp_path / "ft" / "metrics.json").read_text())
    assert ft["config"]["trainable"] == ["fc"] and ft["datasets"]["train"]["size"] == 30
    assert ft["config"]["init_from"] == str(tmp_path / "src")


def test_overrides_reach_the_config(tmp_path):
    result = invoke("train", "--preset", "q1-baseline", *TINY, "--optimizer", "adam", "--lr", "0.0005",
                    "--loss", "smooth-ce", "--norm", "none", "--batch-size", "8", "--eval", "digits",
                    "--seed", "3", "--out", tmp_path / "r")
    assert result.exit_code == 0, result.output
    cfg = json.loads((tmp_path / "r" / "metrics.json").read_text())["config"]
    assert (cfg["optimizer"], cfg["lr"], cfg["loss"], cfg["norm"], cfg["batch_size"], cfg["eval_on"], cfg["seed"]) == \
        ("adam", 0.0005, "smooth-ce", "none", 8, ["digits"], 3)


def test_weights_file_is_loaded(tmp_path, weights_file):
    result = invoke("train", "--preset", "q1-pretrained", "--profile", "demo", "--train-size", "32",
                    "--eval-size", "20", "--epochs", "1", "--lr", "1e-30", "--weights", weights_file,
                    "--no-wandb", "--out", tmp_path / "r")
    assert result.exit_code == 0, result.output
    saved = torch.load(tmp_path / "r" / "model.pt", weights_only=True)
    source = torch.load(weights_file, weights_only=True)
    assert torch.equal(saved["layer3.1.conv2.weight"], source["layer3.1.conv2.weight"])
    cfg = json.loads((tmp_path / "r" / "metrics.json").read_text())["config"]
    assert cfg["pretrained"] is True and cfg["weights"] == str(weights_file)


def test_unknown_preset_is_a_usage_error():
    result = invoke("train", "--preset", "q9-nothing")
    assert result.exit_code == 2
    assert "q9-nothing" in result.output


def test_missing_dataset_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    result = invoke("train", "--preset", "q1-baseline", "--data-root", tmp_path / "empty", "--no-download",
                    "--no-wandb", "--out", tmp_path / "r")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: svhn train not found; looked in")
    assert "Traceback" not in result.output


def test_finetune_preset_through_train_is_refused(tmp_path):
    result = invoke("train", "--preset", "q1-reverse-supervised", *TINY, "--out", tmp_path / "r")
    assert result.exit_code == 2 and "finetune-fc" in result.output


def test_finetune_from_a_folder_without_a_model(tmp_path):
    (tmp_path / "nothing").mkdir()
    result = invoke("finetune-fc", "--from-run", tmp_path / "nothing", "--profile", "demo", "--no-wandb",
                    "--out", tmp_path / "ft")
    assert result.exit_code == 2 and "has no finished model" in result.output


def test_wandb_offline_run_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wb"))
    monkeypatch.setenv("WANDB_API_KEY", "secret-key-that-must-not-leak-0123456789")
    args = [a for a in TINY if a != "--no-wandb"]
    result = invoke("train", "--preset", "q1-baseline", *args, "--wandb", "--out", tmp_path / "r")
    assert result.exit_code == 0, result.output
    runs = list((tmp_path / "wb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert "secret-key-that-must-not-leak" not in (tmp_path / "r" / "metrics.json").read_text()


@pytest.fixture(scope="module")
def q2_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("q2") / "q2-baseline"
    result = invoke("train", "--preset", "q2-baseline", "--profile", "demo", "--no-pretrained", "--train-size", "96",
                    "--eval-size", "40", "--epochs", "1", "--no-wandb", "--out", out)
    assert result.exit_code == 0, result.output
    return out


def test_attack_command_writes_json_grid_and_sweep(q2_run):
    result = invoke("attack", "--model", q2_run, "--method", "fgsm", "--method", "pgd", "--threat", "white-box",
                    "--threat", "transfer", "--source", q2_run, "--eps", "8/255", "--steps", "3",
                    "--eps-sweep", "0,4/255,8/255", "--out", q2_run / "rob.json")
    assert result.exit_code == 0, result.output
    report = json.loads((q2_run / "rob.json").read_text())
    rows = {(r["threat_model"], r["method"]): r for r in report["results"]}
    assert set(rows) == {("white-box", "fgsm"), ("transfer", "fgsm"), ("white-box", "pgd"), ("transfer", "pgd")}
    assert rows[("white-box", "pgd")]["eps_label"] == "8/255" and rows[("white-box", "pgd")]["steps"] == 3
    # a run attacked through itself as the source is the white-box attack
    assert rows[("transfer", "fgsm")]["robust_acc"] == rows[("white-box", "fgsm")]["robust_acc"]
    assert [s["eps"] for s in report["eps_sweep"]] == pytest.approx([0, 4 / 255, 8 / 255])
    assert report["eps_sweep"][0]["robust_acc"] == report["clean_acc"]
    assert (q2_run / "rob-examples.png").is_file() and (q2_run / "rob-eps.png").is_file()


def test_knn_eval_command(q2_run):
    result = invoke("knn-eval", "--model", q2_run, "--k", "3", "--attack", "noise+fgsm", "--out", q2_run / "knn.json")
    assert result.exit_code == 0, result.output
    report = json.loads((q2_run / "knn.json").read_text())
    assert report["k"] == 3 and report["results"][0]["threat_model"] == "white-box"
    assert 0 <= report["clean_acc"] <= 100


def test_umap_command(q2_run, monkeypatch):
    import eval.umap_run as rob

    class QuickMap:  # the real UMAP runs in the Make pipeline test; here only the command's wiring
        def __init__(self, feats):
            self.embedding_ = feats[:, :2]

        def transform(self, feats):
            return feats[:, :2]

    monkeypatch.setattr(rob, "fit_umap", lambda feats, **kw: QuickMap(feats))
    result = invoke("umap", "--model", q2_run, "--max-points", "30", "--no-wandb", "--out", q2_run / "u.json")
    assert result.exit_code == 0, result.output
    assert (q2_run / "u.png").is_file()
    assert json.loads((q2_run / "u.json").read_text())["umap"]["n_neighbors"] == 10


@pytest.mark.parametrize("eps", ["8//255", "abc", "-1", "1.5"])
def test_attack_bad_eps(q2_run, eps):
    result = invoke("attack", "--model", q2_run, "--eps", eps, "--out", q2_run / "never.json")
    assert result.exit_code == 2 and eps in result.output
    assert not (q2_run / "never.json").exists()


def test_version_prints_the_commit_and_library_versions():
    result = invoke("--version")
    assert result.exit_code == 0 and result.output.startswith("trustlab ") and "torch " in result.output


def test_json_puts_only_the_summary_on_stdout_and_quiet_prints_nothing(q2_run):
    result = runner.invoke(app, ["attack", "--model", str(q2_run), "--method", "fgsm", "--eval-size", "20",
                                 "--out", str(q2_run / "j.json"), "--json"], env={"TRUSTLAB_PROGRESS_EVERY": "1e-9"})
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # stdout is the JSON object alone: progress lines went to stderr
    assert "FGSM" in result.stderr and " batch (" in result.stderr, result.stderr  # a line per batch, at 1e-9 s
    assert summary["out"] == str(q2_run / "j.json") and summary["results"][0]["method"] == "fgsm"
    assert summary["results"][0]["n"] == 20
    quiet = runner.invoke(app, ["knn-eval", "--model", str(q2_run), "--method", "fgsm", "--n", "20", "--quiet",
                                "--out", str(q2_run / "q.json")])
    assert quiet.exit_code == 0 and quiet.output == "" and (q2_run / "q.json").is_file()
    # --quiet still prints the error, and leaves no state behind for the next command
    failed = runner.invoke(app, ["attack", "--model", str(q2_run), "--eps", "2", "--quiet"])
    assert failed.exit_code == 2 and failed.output.startswith("error: eps must be in [0, 1)")
    from cli_options import STATE

    assert not STATE.get("quiet") and not STATE.get("json")


def test_one_name_per_thing_across_commands():
    """The test subset, the attack and the training set have one canonical option in every command that has
    them (older spellings still work as aliases)."""
    import typer.main

    commands = typer.main.get_command(app).commands
    names = {c: {p.name: p.opts for p in cmd.params} for c, cmd in commands.items()}
    for c in ("attack", "knn-eval", "umap", "train", "finetune-fc"):
        assert any("--eval-size" in opts for opts in names[c].values()), c
    for c in ("attack", "knn-eval", "umap"):
        assert any("--method" in opts for opts in names[c].values()), c
    for c in ("train", "finetune-fc"):
        assert any("--train-on" in opts for opts in names[c].values()), c
    for c in commands:
        flat = {o for opts in names[c].values() for o in opts}
        assert {"--json", "--quiet", "--verbose"} <= flat, c
        assert "--wandb" in flat, c
    assert "--compile" in {o for opts in names["finetune-fc"].values() for o in opts}


def test_set_overrides_a_research_knob_checked_against_runconfig(tmp_path):
    result = invoke("train", "--preset", "q2-adversarial", "--profile", "demo", "--no-pretrained", "--train-size",
                    "48", "--eval-size", "20", "--epochs", "1", "--no-wandb", "--set", "adv_prob=0.25",
                    "--set", "dropout=0.1", "--set", "attack_eps=4/255", "--out", tmp_path / "r")
    assert result.exit_code == 0, result.output
    cfg = json.loads((tmp_path / "r" / "metrics.json").read_text())["config"]
    assert (cfg["adv_prob"], cfg["dropout"]) == (0.25, 0.1) and cfg["attack_eps"] == pytest.approx(4 / 255)
    for bad, message in ((["adv_probb=0.3"], "did you mean adv_prob"), (["dropout=high"], "expected float"),
                         (["adv_prob"], "write key=value"), (["seed=3"], "has its own option"),
                         (["lr=0.1"], "given both"), (["pretrained=true"], "given both")):
        extra = {"lr=0.1": ["--lr", "0.2"], "pretrained=true": []}.get(bad[0], [])  # TINY has --no-pretrained
        result = invoke("train", "--preset", "q1-baseline", *TINY, *extra, "--set", *bad, "--out", tmp_path / "x")
        assert result.exit_code == 2 and message in result.output, (bad, result.output)
    assert not (tmp_path / "x").exists()


def test_an_evaluation_logs_its_table_summary_and_figures_to_an_offline_wandb_run(q2_run, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wb"))
    result = invoke("attack", "--model", q2_run, "--method", "fgsm", "--eval-size", "20", "--eps-sweep", "0,8/255",
                    "--wandb", "--out", q2_run / "wb.json")
    assert result.exit_code == 0, result.output
    (run,) = (tmp_path / "wb" / "wandb").glob("offline-run-*")
    tables = list(run.rglob("robustness_*.table.json"))
    assert tables, sorted(p.name for p in run.rglob("*"))
    table = json.loads(tables[0].read_text())
    assert table["columns"] == ["attack", "threat", "eps", "steps", "n", "accuracy", "ci95_low", "ci95_high"]
    assert table["data"][0][:2] == ["FGSM", "white-box"] and table["data"][0][4] == 20
    assert list(run.rglob("eps_sweep_*.table.json")) and list(run.rglob("examples_*.png"))


def test_report_writes_the_wandb_report_spec_and_says_how_to_publish(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    (tmp_path / "smoke").mkdir()
    result = invoke("report", "--profile", "smoke", "--results", tmp_path, "--wandb-report", "--no-wandb")
    assert result.exit_code == 0, result.output
    spec = json.loads((tmp_path / "smoke" / "wandb-report.json").read_text())
    assert spec["title"] == "trustlab · profile smoke" and any(b["type"] == "PanelGrid" for b in spec["blocks"])
    assert "make wandb-report PROFILE=smoke PUBLISH=1" in result.output


def test_train_from_a_stamp_with_options_on_top(tmp_path):
    """`train --config STAMP` (what Make's rules run): the stamp is the config, options given replace its values,
    options left at their defaults do not, and the stamp's notes are shown."""
    from experiments.make import rules

    rules("demo", str(tmp_path / "results"), 0, [3], False, "unused-weights.pth")
    stamp = tmp_path / "results" / "demo" / "q1-baseline" / "seed-3" / "stamps" / "metrics.json"
    stamped = json.loads(stamp.read_text())["config"]
    from experiments import PROFILES

    assert (stamped["seed"], stamped["train_size"], stamped["weights"]) == \
        (3, PROFILES["demo"].scale["q1"]["train_size"], None)
    result = invoke("train", "--config", stamp, "--train-size", "64", "--eval-size", "40", "--epochs", "1",
                    "--lr", "0.0005", "--no-wandb", "--no-download")
    assert result.exit_code == 0, result.output
    assert "note: --weights unused: q1-baseline does not start from ImageNet weights" in result.output
    cfg = json.loads((stamp.parent.parent / "metrics.json").read_text())["config"]  # --out: the stamp's run
    assert (cfg["preset"], cfg["profile"], cfg["seed"], cfg["train_on"], cfg["optimizer"]) == \
        ("q1-baseline", "demo", 3, "digits", "sgd")  # the stamp's, though --seed's default is 0
    assert (cfg["train_size"], cfg["eval_size"], cfg["epochs"], cfg["lr"]) == (64, 40, 1, 0.0005)
    for option in ("--section", "--preset"):  # --preset: the older spelling of --section
        refused = invoke("train", "--config", stamp, option, "q1-adam", "--out", tmp_path / "x")
        assert refused.exit_code == 2 and "drop --section" in refused.output
    missing = invoke("train", "--config", tmp_path / "nope.json")
    assert missing.exit_code == 2 and "nope.json does not exist" in missing.output
    assert invoke("train").exit_code == 2 and "give --section" in invoke("train").output


def test_attack_from_a_stamp_with_options_on_top(q2_run, tmp_path):
    """`attack --plan STAMP`: the stamp's attacks, subset, seed and results file; --eps given on top replaces
    every attack's eps; the command's defaults (--method pgd, --eval-size all) do not override the stamp."""
    from attacks.base import AttackSpec
    from eval.plan import Evaluation
    from experiments import stamps

    planned = Evaluation(kind="attack", model=str(q2_run), out=str(tmp_path / "planned.json"), n=20, seed=2,
                         attacks=[AttackSpec("fgsm", seed=2), AttackSpec("noise+fgsm", seed=2)])
    stamp = tmp_path / "stamps" / "planned.json"
    stamp.parent.mkdir()
    stamp.write_text(stamps.evaluation(planned))
    result = invoke("attack", "--plan", stamp, "--eps", "4/255", "--no-wandb")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "planned.json").read_text())
    assert [(r["method"], r["eps_label"], r["n"]) for r in report["results"]] == \
        [("fgsm", "4/255", 20), ("noise+fgsm", "4/255", 20)]
    assert {r["seed"] for r in report["results"]} == {2} and report["model"] == str(q2_run)
    wrong = invoke("knn-eval", "--plan", stamp)
    assert wrong.exit_code == 2 and "plans a attack evaluation, not knn" in wrong.output
    knn = stamp.with_name("knn.json")
    knn.write_text(stamps.evaluation(Evaluation(kind="knn", model=str(q2_run), out=str(tmp_path / "knn.json"), k=1)))
    result = invoke("knn-eval", "--plan", knn, "--eval-size", "20")  # the stamp's k, not the option's default 3
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "knn.json").read_text())
    assert report["k"] == 1 and report["test"]["n"] == 20 and report["results"] == []
    assert invoke("attack").exit_code == 2 and "give --model" in invoke("attack").output


def test_every_command_runs_under_cpu_bf16_autocast(tmp_path):
    """The CUDA default (bf16 autocast) on the CPU, on a handful of images: training a Circle-loss embedding,
    white-box attacks, the kNN evaluation and UMAP's feature pass. (The Make pipeline runs fp32: bf16 on a
    CPU without bf16 units is 7-50x slower.)"""
    bf16 = ["--precision", "bf16", "--channels-last"]
    out = tmp_path / "q2-circle"
    result = invoke("train", "--preset", "q2-circle", "--profile", "demo", "--no-pretrained", "--train-size", "24",
                    "--eval-size", "8", "--set", "val_size=8", "--set", "val_attack=none", "--epochs", "1", "--no-wandb",
                    *bf16, "--out", out)
    assert result.exit_code == 0, result.output
    for name, args in (("rob.json", ["attack", "--method", "fgsm", "--method", "pgd", "--steps", "1", "--eval-size", "4"]),
                       ("knn.json", ["knn-eval", "--k", "3", "--attack", "noise+fgsm"]),
                       ("u.json", ["umap", "--max-points", "12", "--no-wandb"])):
        result = invoke(*args, "--model", out, *bf16, "--out", out / name)
        assert result.exit_code == 0, result.output
        prov = json.loads((out / name).read_text())["provenance"]
        assert (prov["precision"], prov["channels_last"]) == ("bf16", True), name
    prov = json.loads((out / "metrics.json").read_text())["provenance"]
    assert (prov["precision"], prov["channels_last"]) == ("bf16", True)


def test_attack_given_a_run_s_model_file_says_to_pass_its_folder(q2_run):
    result = invoke("attack", "--model", q2_run / "model.pt", "--method", "fgsm", "--out", q2_run / "x.json")
    assert result.exit_code == 2, result.output
    assert f"--model takes the run folder, e.g. --model {q2_run}" in result.output


def test_shell_completion_works_for_the_executable_cli_py():
    """`./cli.py --install-completion` registers bash completion for `cli.py`; the shell then runs the command as
    typed with Typer's variables set. cli.py is executable (its shebang finds the venv's python first on PATH)."""
    import os
    import stat
    import subprocess
    import sys
    from pathlib import Path

    from tests.conftest import ROOT

    script = Path(ROOT) / "cli.py"
    assert script.stat().st_mode & stat.S_IXUSR and script.read_text().startswith("#!/usr/bin/env python")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "_CLI.PY_COMPLETE": "complete_bash"}
    for words, cword, expected in (("./cli.py tr", 1, ["train"]), ("./cli.py attack --method p", 3, ["pgd"])):
        done = subprocess.run([str(script)], cwd=ROOT, env={**env, "COMP_WORDS": words, "COMP_CWORD": str(cword)},
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stdout.split() == expected, (words, done.stdout, done.stderr)
