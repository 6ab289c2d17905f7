"""Crash safety: SIGKILL partway through an epoch loses at most that epoch, and --resume then ends
exactly where an uninterrupted run with the same seed ends (CPU, --deterministic)."""
import json
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT

ARGS = ["train", "--preset", "q1-baseline", "--profile", "demo", "--no-pretrained", "--train-size", "160",
        "--eval-size", "60", "--epochs", "3", "--no-wandb", "--no-download", "--deterministic"]


def cli(*args, **kw):
    return subprocess.Popen([sys.executable, str(ROOT / "cli.py"), *map(str, args)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def comparable(path):
    r = json.loads(path.read_text())
    return r["metrics"], [{k: v for k, v in row.items() if k != "seconds"} for row in r["history"]]


def wait_for(path, proc, timeout=120):
    start = time.time()
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() - start < timeout
        time.sleep(0.05)


@pytest.mark.slow(cost=45)
def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path):
    full = cli(*ARGS, "--out", tmp_path / "full")
    assert full.wait(timeout=300) == 0, full.communicate()
    victim = cli(*ARGS, "--out", tmp_path / "cut")
    wait_for(tmp_path / "cut" / "checkpoint.pt", victim)  # epoch 1 is saved...
    time.sleep(1.0)                                       # ...and epoch 2 is under way
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert not (tmp_path / "cut" / "metrics.json").exists()
    resumed = cli(*ARGS, "--resume", "--out", tmp_path / "cut")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert "resuming q1-baseline from epoch" in err
    assert comparable(tmp_path / "cut" / "metrics.json") == comparable(tmp_path / "full" / "metrics.json")


@pytest.mark.slow(cost=20)
def test_sigint_stops_cleanly_and_keeps_the_checkpoint(tmp_path):
    proc = cli(*ARGS, "--out", tmp_path / "int")
    wait_for(tmp_path / "int" / "checkpoint.pt", proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "--resume" in lines[0]
    assert (tmp_path / "int" / "checkpoint.pt").exists() and not (tmp_path / "int" / "metrics.json").exists()
