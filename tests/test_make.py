"""The Make pipeline end to end at the smoke profile, on datasets written in their official formats."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

Q1 = ["q1-baseline", "q1-no-bn", "q1-label-smoothing", "q1-augmentation", "q1-pretrained", "q1-adam",
      "q1-reverse-unsupervised", "q1-reverse-supervised", "q1-randconv", "q1-reverse-randconv"]


def make(*args, check=True, env=None, served=False):
    """make ARGS; served: inside `make demo`'s fork server (runs/zygote.py), so each command forks from one warm
    process instead of importing torch anew (the same commands: tests/runs/test_zygote.py compares the numbers,
    and the q1 pipeline below checks its served run against a plain -j2 one)."""
    server = [sys.executable, str(ROOT / "runs" / "zygote.py"), "serve", "--"] if served else []
    return subprocess.run([*server, "make", "--no-print-directory", f"PYTHON={sys.executable}", *args], cwd=ROOT,
                          capture_output=True, text=True, check=check, env=env)


def test_help_is_the_default_goal():
    out = make().stdout
    assert "q1" in out and "demo" in out and "test" in out


@pytest.mark.slow(cost=220)
def test_make_q1_smoke_end_to_end(tmp_path, data_root, weights_file):
    # channels_last on the CPU here (fp32, as users' CPUs run it); make q2 below runs bf16 autocast
    args = ["q1", "PROFILE=smoke", f"DATA_ROOT={data_root}", f"CACHE_DIR={tmp_path / 'cache'}",
            f"RESULTS={tmp_path / 'results'}", f"WEIGHTS={weights_file}", "WANDB=0", "DOWNLOAD=0",
            "CHANNELS_LAST=1"]
    done = make(*args, check=False, served=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "runs/zygote.py -- cli.py train" in done.stdout  # forked from the server; the -j2 run below is plain
    results = {p: json.loads((tmp_path / "results" / "smoke" / p / "metrics.json").read_text()) for p in Q1}
    for preset, r in results.items():
        assert r["preset"] == preset and r["profile"] == "smoke"
        assert (tmp_path / "results" / "smoke" / preset / "curves.png").is_file()
        assert {"svhn_test_acc", "mnist_test_acc"} <= set(r["metrics"])
    assert results["q1-pretrained"]["config"]["weights"] == str(weights_file)
    assert results["q1-baseline"]["config"]["weights"] is None
    assert results["q1-no-bn"]["config"]["norm"] == "none"
    assert results["q1-reverse-randconv"]["config"]["randconv"] is True
    assert all(r["provenance"]["precision"] == "fp32" and r["provenance"]["channels_last"] for r in results.values())
    assert results["q1-reverse-unsupervised"]["config"]["train_on"] == "mnist"
    sup = results["q1-reverse-supervised"]
    assert sup["config"]["init_from"].endswith("q1-reverse-unsupervised")
    assert sup["datasets"]["train"]["size"] == 100 and sup["config"]["trainable"] == ["fc"]
    # Finished sections are files: nothing is rerun.
    assert make("-q", *args, check=False).returncode == 0
    # make -j2 with plain processes gives the same results as the served make -j1 (the shared tensor cache is
    # built concurrently); one independent section beside the dependent pair keeps this quick
    sections = ["q1-baseline", "q1-reverse-supervised"]
    parallel = [a.replace(str(tmp_path / "results"), str(tmp_path / "par")).replace(str(tmp_path / "cache"),
                                                                                    str(tmp_path / "cache2"))
                for a in args if a != "q1"]
    done = make("-j2", *sections, *parallel, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    for p in sections + ["q1-reverse-unsupervised"]:
        again = json.loads((tmp_path / "par" / "smoke" / p / "metrics.json").read_text())
        assert again["metrics"] == results[p]["metrics"], p
        assert [{k: v for k, v in h.items() if k != "seconds"} for h in again["history"]] == \
            [{k: v for k, v in h.items() if k != "seconds"} for h in results[p]["history"]]
    assert sorted(p.parent.name for p in (tmp_path / "par" / "smoke").glob("*/metrics.json")) == \
        sorted(sections + ["q1-reverse-unsupervised"])
    curve = [json.loads((tmp_path / "results" / "smoke" / "q1-finetune-curve" / f"samples-{n}" / "metrics.json")
                        .read_text()) for n in (25, 50)]
    assert [c["datasets"]["train"]["size"] for c in curve] == [25, 50]


@pytest.mark.slow(cost=25)
def test_a_section_through_submitit_local_executor(tmp_path, data_root):
    args = ["q1-baseline", "PROFILE=smoke", f"DATA_ROOT={data_root}", f"CACHE_DIR={tmp_path / 'cache'}",
            f"RESULTS={tmp_path / 'results'}", "WANDB=0", "DOWNLOAD=0", "LAUNCHER=local", "GPUS_PER_JOB=0"]
    sentinel = "sentinel-secret-7f3a9c"
    done = make(*args, check=False, env={**os.environ, "WANDB_API_KEY": sentinel})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "submitted job" in done.stderr
    r = json.loads((tmp_path / "results" / "smoke" / "q1-baseline" / "metrics.json").read_text())
    assert r["preset"] == "q1-baseline"
    # no secret on disk: submitit's pickles and logs, and every results file, are free of the key
    written = [p for p in (tmp_path / "results").rglob("*") if p.is_file()]
    assert any(p.name.endswith("_submitted.pkl") for p in written)
    assert [p for p in written if sentinel.encode() in p.read_bytes()] == []


@pytest.mark.slow(cost=400)
def test_make_q2_smoke_end_to_end(tmp_path, data_root):
    args = ["q2", "PROFILE=smoke", f"DATA_ROOT={data_root}", f"CACHE_DIR={tmp_path / 'cache'}",
            f"RESULTS={tmp_path / 'results'}", "PRETRAINED=0", "WANDB=0", "DOWNLOAD=0",
            "PRECISION=fp32", "CHANNELS_LAST=1"]  # bf16 on this CPU is 7-50x slower: tests/test_cli.py runs
    # every evaluation command under CPU bf16 autocast on a handful of images instead
    done = make(*args, check=False, served=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "runs/zygote.py -- cli.py attack" in done.stdout
    base = tmp_path / "results" / "smoke"
    for name in ("metrics.json", "robustness.json"):
        prov = json.loads((base / "q2-circle" / name).read_text())["provenance"]
        assert (prov["precision"], prov["channels_last"]) == ("fp32", True)
    for preset in ("q2-baseline", "q2-adversarial", "q2-circle"):
        assert json.loads((base / preset / "metrics.json").read_text())["preset"] == preset
        rob = json.loads((base / preset / "robustness.json").read_text())
        kinds = {(r["threat_model"], r["method"]) for r in rob["results"]}
        assert kinds == {(t, m) for t in ("white-box", "transfer") for m in ("fgsm", "pgd", "noise+fgsm")}
        assert all(r["eps_label"] == "8/255" for r in rob["results"])
        transfer = [r for r in rob["results"] if r["threat_model"] == "transfer"]
        assert all(r["source"].endswith("q2-baseline") for r in transfer)
    assert json.loads((base / "q2-circle" / "metrics.json").read_text())["config"]["loss"] == "circle"
    for preset in ("q2-fast-at", "q2-pgd-at", "q2-trades"):  # the defences that work, with the same evaluations
        r = json.loads((base / preset / "metrics.json").read_text())
        assert r["metrics"].get("train_adv_fraction", 1.0) == 1.0 or r["config"]["loss"] == "trades"
        if preset == "q2-fast-at":  # not audited at smoke (experiments/profiles.py says why)
            assert not (base / preset / "audit.json").exists()
            continue
        aud = json.loads((base / preset / "audit.json").read_text())
        assert [row["method"] for row in aud["results"]] == ["autoattack", "fgsm", "pgd", "pgd", "square", "uniform"]
        assert aud["test"]["n"] == 8 and {c["check"] for c in aud["audit"]} >= {1, 2, 3, 6, 8}
        aa = aud["results"][0]  # the authors' standard AutoAttack, with the robust accuracy after each attack
        assert aa["label"] == "AutoAttack, standard" and aa["steps"] == 100 and aa["threat_pixels"] == "32x32"
        assert [b["attack"] for b in aa["breakdown"]] == ["APGD-CE", "APGD-T", "FAB-T", "Square"]
        assert aa["breakdown"][-1]["correct"] == aa["correct"]
    # the smoke profile audits every model but the kNN and Fast-AT ones (see experiments/profiles.py), and says so
    assert not (base / "q2-circle" / "audit.json").exists()
    rob = json.loads((base / "q2-baseline" / "robustness.json").read_text())
    assert {row["method"] for row in rob["eps_sweep"]} == {"fgsm", "pgd"}
    assert make("report", "PROFILE=smoke", f"RESULTS={tmp_path / 'results'}", check=False).returncode == 0
    report = (base / "REPORT.md").read_text()
    for preset in ("q2-baseline", "q2-circle", "q2-trades", "q2-fast-at"):
        assert f"Gradient-masking audit of {preset}: " in report
    assert "AutoAttack and checks 1-4, 6 and 8 not run for this model at this profile" in report
    assert (base / "q2-eps.png").is_file()
    assert json.loads((base / "q2-trades" / "metrics.json").read_text())["config"]["loss"] == "trades"
    assert json.loads((base / "q2-pgd-at" / "metrics.json").read_text())["config"]["attack_steps"] == 7
    assert json.loads((base / "q2-adversarial" / "metrics.json").read_text())["metrics"]["train_adv_fraction"] > 0.3
    assert (base / "q2-examples" / "robustness-examples.png").is_file()
    for preset in ("q2-baseline", "q2-circle"):
        umap = json.loads((base / preset / "umap.json").read_text())
        assert len(umap["clean"]["xy"]) == len(umap["adversarial"]["xy"]) == len(umap["labels"])
    assert json.loads((base / "q2-circle" / "knn.json").read_text())["k"] == 3
    assert make("-q", *args, check=False).returncode == 0


def test_help_lists_every_section_and_variable():
    from experiments import SECTIONS

    out = make("help").stdout
    for name in SECTIONS:
        assert f"  {name} " in out, name
    for variable in ("PROFILE", "SEEDS", "PRETRAINED", "EXTRA"):
        assert variable in out


def _planned(out: str) -> set[str]:
    """The run folders whose commands `make -n` prints (a training's --out, an evaluation's stamp's run)."""
    import re

    return {m.group(1) for m in re.finditer(r"--out (\S+)", out)} | \
        {m.group(1) for m in re.finditer(r"--plan (\S+)/stamps/\S+", out)}


def _copy_repo(tmp_path) -> Path:
    import shutil

    repo = tmp_path / "repo"
    shutil.copytree(ROOT, repo, ignore=shutil.ignore_patterns(".git", ".venv", "results", "data", "__pycache__",
                                                               "*.pyc"))
    return repo


# Source files whose comments an edit may change: none of them may make Make plan anything.
EDITED = ("cli.py", "cli_options.py", "experiments/sections.py", "experiments/make.py", "experiments/resolve.py",
          "eval/plan.py", "trainers/loop.py", "attacks/base.py", "core/config.py")


def _comment_edit(repo: Path) -> None:
    for name in EDITED:
        path = repo / name
        path.write_text(path.read_text() + "\n# a comment\n")


def _finish_every_stamped_run(results: Path) -> None:
    """Pretend every results file was made together, after its stamp was written."""
    import time

    done_at = time.time()
    for stamp in results.rglob("stamps/*"):
        made = stamp.parent.parent / stamp.name
        made.write_text("{}")
        os.utime(made, (done_at, done_at))


def test_make_reruns_only_what_changed(tmp_path):
    """Results depend on their resolved-config stamps and upstream results, not on source files."""
    repo = _copy_repo(tmp_path)
    results = tmp_path / "results"

    def plan():
        done = subprocess.run(["make", "-n", "--no-print-directory", f"PYTHON={sys.executable}", "q1",
                               "PROFILE=smoke", f"RESULTS={results}", "WANDB=0"], cwd=repo,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return _planned(done.stdout)

    first = plan()
    assert len(first) == 10 + 2  # ten Q1 sections (two of them RandConv), two fine-tuning-curve points at smoke
    import os
    import time

    done_at = time.time()  # pretend every run finished together, after its stamp was written
    for path in first:
        for stamp in (Path(path) / "stamps").iterdir():
            (Path(path) / stamp.name).write_text("{}")
            os.utime(Path(path) / stamp.name, (done_at, done_at))
    assert plan() == set()
    _comment_edit(repo)
    assert plan() == set()  # a source edit plans nothing
    sections = repo / "experiments" / "sections.py"
    text = sections.read_text()
    assert 'dict(_BEST, train_on="mnist", eval_on=("mnist", "svhn"))' in text
    sections.write_text(text.replace('dict(_BEST, train_on="mnist", eval_on=("mnist", "svhn"))',
                                     'dict(_BEST, train_on="mnist", eval_on=("mnist", "svhn"), lr=0.01)'))
    smoke = results / "smoke"
    assert plan() == {str(smoke / "q1-reverse-unsupervised"), str(smoke / "q1-reverse-supervised"),
                      str(smoke / "q1-finetune-curve" / "samples-25"), str(smoke / "q1-finetune-curve" / "samples-50")}


def test_a_comment_edit_plans_no_evaluation_either(tmp_path):
    """The evaluations' rules (cli.py attack/knn-eval/umap --plan STAMP) behave as the trainings' do."""
    from experiments import SECTIONS

    repo = _copy_repo(tmp_path)
    results = tmp_path / "results"

    def plan() -> str:
        done = subprocess.run(["make", "-n", "--no-print-directory", f"PYTHON={sys.executable}", "q2", "dg",
                               "PROFILE=smoke", f"RESULTS={results}", "WANDB=0", "PRETRAINED=0", "SEEDS=0 1"],
                              cwd=repo, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    first = plan()
    assert "--plan" in first
    assert len(_planned(first)) == 2 * len([n for n, s in SECTIONS.items() if s.question in ("q2", "dg")])
    _finish_every_stamped_run(results)
    assert _planned(plan()) == set()
    _comment_edit(repo)
    assert _planned(plan()) == set()


@pytest.mark.parametrize("variables", [
    ["PROFILE=smoke"],
    ["PROFILE=demo", "SEEDS=0 1", "WEIGHTS=w.pth"],
    ["PROFILE=quick", "SEED=3", "PRETRAINED=0", "WEIGHTS=w.pth"],
    ["PROFILE=paper", "SEEDS=2 5", "PRETRAINED=0"],
])
def test_make_plan_and_make_list_the_same_run_folders(tmp_path, variables):
    """`make plan` (experiments/costs.py) prices exactly the trainings `make all` runs: one run matrix."""
    import re

    results = tmp_path / "results"
    args = [*variables, f"RESULTS={results}", "WANDB=0"]
    priced = [line.split(" | ")[0][2:] for line in make("plan", *args).stdout.splitlines()
              if line.startswith(f"| {results}")]
    dry = make("-n", "all", *args).stdout
    trained = [m.group(2) for m in re.finditer(r"cli\.py (train|finetune-fc) .*?--out (\S+)", dry)]
    assert priced and sorted(priced) == sorted(trained)
    seeds = {json.loads((Path(run) / "stamps" / "metrics.json").read_text())["config"]["seed"] for run in trained}
    layout = [v.split("=", 1)[1] for v in variables if v.startswith(("SEED=", "SEEDS="))]
    assert seeds == {int(s) for s in (layout[0].split() if layout else ["0"])}


@pytest.mark.slow(cost=85)
def test_make_dg_smoke_runs_every_present_target_and_names_the_missing_ones(tmp_path, data_root):
    data = tmp_path / "data"  # the fixture datasets without SynDigits
    data.mkdir()
    for entry in data_root.iterdir():
        if entry.name != "syn":
            (data / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    args = ["dg", "PROFILE=smoke", f"DATA_ROOT={data}", f"CACHE_DIR={tmp_path / 'cache'}",
            f"RESULTS={tmp_path / 'results'}", "PRETRAINED=0", "WANDB=0", "DOWNLOAD=0"]
    done = make(*args, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    base = tmp_path / "results" / "smoke"
    dg = ("dg-erm-digitnet", "dg-randconv-digitnet", "dg-randconv-img-digitnet", "dg-prorandconv-digitnet",
          "dg-erm-resnet18", "dg-randconv-resnet18")
    for preset in dg:
        r = json.loads((base / preset / "metrics.json").read_text())
        tested = {k for k in r["metrics"] if k.endswith("_test_acc")}
        assert tested == {f"{d}_test_acc" for d in ("mnist", "usps", "svhn", "mnistm")}
        assert "synth_test_32x32.mat" in r["datasets"]["syn_test"]["skipped"]
        # the RandConv ConvNet rows keep the authors' checkpoint (best MNIST val accuracy every 250 iterations; at
        # smoke's 10 iterations the one check after the last), the ResNet18 and Pro-RandConv rows their last epoch
        selects = "digitnet" in preset and "prorandconv" not in preset
        assert (r.get("selection", {}).get("every"), r["selected_by"] == "last epoch") == \
            ((250, False) if selects else (None, True)), preset
        assert set(r["correct"]) == {f"{d}_test" for d in ("mnist", "usps", "svhn", "mnistm")}
    assert "targets skipped for missing data: syn" in done.stdout
    # one line per run folder, never for its stamps (the commands Make echoes read the stamps: --config STAMP)
    assert not [line for line in done.stdout.splitlines() if "tested on" in line and "stamps" in line]
    assert len([line for line in done.stdout.splitlines() if ": tested on " in line]) == len(dg)
    report = subprocess.run([sys.executable, "cli.py", "report", "--profile", "smoke", "--results", str(tmp_path / "results")],
                            cwd=ROOT, capture_output=True, text=True)
    assert report.returncode == 0, report.stderr
    text = (base / "REPORT.md").read_text()
    assert "| dg-randconv-digitnet |" in text and "skipped (data missing)" in text and (base / "dg-targets.png").is_file()


def test_make_plan_estimates_from_this_machines_bench_file_and_marks_done_runs(tmp_path):
    import socket

    results = tmp_path / "results"
    (results / "bench").mkdir(parents=True)
    (results / "bench" / f"{socket.gethostname()}.json").write_text(json.dumps({"rows": [
        {"row": "train_vs_bare", "batch": 16, "ours_img_s": 100.0},
        {"row": "train_vs_bare", "batch": 128, "ours_img_s": 400.0}]}))
    from experiments import resolve

    done, changed = results / "quick" / "dg-erm-digitnet", results / "quick" / "dg-randconv-digitnet"
    for folder, cfg in ((done, resolve("dg-erm-digitnet", "quick", pretrained=False)),
                        (changed, resolve("dg-randconv-digitnet", "quick", pretrained=False, lr=0.5))):
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps({"config": cfg.to_dict()}))
    out = make("plan", "PROFILE=quick", f"RESULTS={results}", "TARGETS=dg").stdout
    rows = [line for line in out.splitlines() if line.startswith(f"| {results}")]
    # done as Make decides: the results file records this config; another config (lr 0.5) is to run again
    assert len(rows) == 6 and "done (skipped)" in rows[0] and all("to run" in r for r in rows[1:])
    # dg-erm-resnet18 at quick: (5,000 train + 5 targets x 2,000 test / 3) x 5 epochs at 100 img/s = 417 s
    assert next(r for r in rows if "dg-erm-resnet18" in r).split(" | ")[2] == "7 min"
    assert "make dg PROFILE=quick: 5 of 6 runs to go" in out and f"from {results}/bench/" in out
    no_bench = make("plan", "PROFILE=quick", f"RESULTS={tmp_path / 'elsewhere'}", "TARGETS=q2").stdout
    assert "unknown: run `make bench`" in no_bench


@pytest.mark.parametrize("variable,message", [
    ("SEEDS=a", "SEEDS='a': give a whole number from 0"), ("SEED=abc", "SEED='abc': give a whole number"),
    ("AUDIT_POINTS=-5", "AUDIT_POINTS='-5': give a whole number from 1 up"),
    ("AUDIT_POINTS=abc", "AUDIT_POINTS='abc'"), ("AUDIT_POINTS=0", "AUDIT_POINTS='0'"),
    ("PRETRAINED=2", "PRETRAINED='2': give 1"), ("RESULTS=/tmp/with space", "holds a space")])
def test_make_variables_are_checked_before_any_work_in_one_line(tmp_path, variable, message):
    args = [f"RESULTS={tmp_path}", variable] if not variable.startswith("RESULTS") else [variable]
    for target in ("q1-baseline", "plan"):
        done = make(*(["-n"] if target != "plan" else []), target, "PROFILE=smoke", *args, check=False)  # plan: read-only
        assert done.returncode != 0 and message in done.stderr, done.stderr
        ours = [line for line in done.stderr.splitlines() if "error" in line and not line.startswith("make: ***")]
        assert len(ours) == 1 and "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "smoke").exists()


def test_a_seed_named_twice_runs_once_with_a_note(tmp_path):
    done = make("-n", "q1-baseline", "PROFILE=smoke", f"RESULTS={tmp_path}", "SEEDS=0 0 1", "WANDB=0", check=False)
    assert done.returncode == 0 and "note: SEEDS='0 0 1' names a seed twice; each runs once: 0 1" in done.stdout
    assert "overriding recipe" not in done.stderr and done.stdout.count("seed-0/stamps/metrics.json --out") == 1


def test_make_gpu_check_on_a_cpu_stops_at_once_with_one_line():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here: the check would run")
    done = subprocess.run([sys.executable, "bench/gpu_check.py"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "error: make gpu-check needs a CUDA GPU and there is none here (on the CPU, `make test` runs the bf16 and "
        "channels_last paths)"]


@pytest.mark.slow(cost=20)
def test_a_second_make_waits_for_the_writer_and_never_deletes_its_file(tmp_path, data_root):
    """The race of issue 23: another process holds the run folder's lock and writes metrics.json while a `make` of
    the same target runs. The make's command waits for the lock, finds the file done, leaves it alone; Make's
    .DELETE_ON_ERROR never fires."""
    import time

    run = tmp_path / "results" / "smoke" / "q1-baseline"
    go = tmp_path / "go"
    writer = subprocess.Popen([sys.executable, "-c", f"""
import pathlib, time
from core.io import exclusive
run, go = pathlib.Path({str(run)!r}), pathlib.Path({str(go)!r})
with exclusive(run / ".lock", "run folder"):
    print("holding", flush=True)
    while not go.exists():
        time.sleep(0.05)
    (run / "metrics.json").write_text('{{"written by": "the other process"}}')
    time.sleep(1)  # still holding the lock after the write (as a run does through its W&B finish)
"""], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "holding"
    second = subprocess.Popen(["make", "--no-print-directory", f"PYTHON={sys.executable}", "q1-baseline",
                               "PROFILE=smoke", f"DATA_ROOT={data_root}", f"CACHE_DIR={tmp_path / 'cache'}",
                               f"RESULTS={tmp_path / 'results'}", "WANDB=0", "DOWNLOAD=0"], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    waited = ""
    deadline = time.time() + 120
    while "waiting for pid" not in waited and time.time() < deadline:
        line = second.stderr.readline()
        if not line:
            break
        waited += line
    assert "waiting for pid" in waited, waited
    go.touch()  # the other process writes metrics.json now, while the make's command waits
    out, err = second.communicate(timeout=300)
    assert writer.wait(timeout=60) == 0
    assert second.returncode == 0, waited + err
    assert json.loads((run / "metrics.json").read_text()) == {"written by": "the other process"}
    assert "written by another process while this one waited; nothing to do" in err
