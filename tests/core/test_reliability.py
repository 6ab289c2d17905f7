"""One writer at a time, no partial files left behind, files readable by colleagues, clean stops."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from core.errors import RunFailure
from core.io import LockBusy, atomic_write, clean_partial, exclusive, write_json
from loaders.datasets import load_split
from tests.conftest import ROOT


def test_a_second_writer_stops_while_the_first_holds_the_lock(tmp_path):
    lock = tmp_path / ".lock"
    with exclusive(lock, "run folder x"):
        owner = json.loads(lock.read_text())
        assert owner["pid"] == os.getpid() and owner["host"] == socket.gethostname()
        with pytest.raises(LockBusy, match=f"in use by pid {os.getpid()}"):
            with exclusive(lock, "run folder x"):
                pass
        assert lock.is_file()  # the refused writer leaves the owner's lock alone
    assert not lock.exists()  # released on the way out


def test_a_lock_left_by_a_dead_process_is_reported_and_taken_over(tmp_path, capsys):
    lock = tmp_path / ".lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(LockBusy, match=f"in use by pid {holder.pid} on {socket.gethostname()}"):
        with exclusive(lock, "run folder x"):
            pass
    holder.kill()  # SIGKILL: no cleanup runs, the lock file stays behind, the kernel drops the flock
    holder.wait()
    assert json.loads(lock.read_text())["pid"] == holder.pid
    with exclusive(lock, "run folder x"):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert f"stale lock {lock} (pid {holder.pid} on {socket.gethostname()} died holding it)" in capsys.readouterr().err
    assert not lock.exists()


# a process that takes the lock, says so, and holds it until killed
HOLD = (f"import sys, time; sys.path.insert(0, {str(ROOT)!r}); from core.io import exclusive\n"
        "with exclusive(sys.argv[1], 'x'):\n    print('held', flush=True); time.sleep(600)")


def test_files_respect_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        os.umask(0o077)
        write_json(tmp_path / "b.json", {"x": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.json").stat().st_mode & 0o777 == 0o600


def test_partial_writes_are_cleaned_only_for_the_named_file(tmp_path):
    (tmp_path / ".metrics.json.abc123.tmp").write_text("half")
    (tmp_path / ".knn.json.def456.tmp").write_text("someone else's")
    assert [p.name for p in clean_partial(tmp_path / "metrics.json")] == [".metrics.json.abc123.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".knn.json.def456.tmp"]
    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "c.json", lambda tmp: (_ for _ in ()).throw(RuntimeError("disk full")))
    assert sorted(p.name for p in tmp_path.iterdir()) == [".knn.json.def456.tmp"]


@pytest.mark.parametrize("blob", [{"pictures": torch.zeros(1)},
                                  {"images": torch.zeros(5, 1, 28, 28, dtype=torch.uint8),
                                   "labels": torch.zeros(4, dtype=torch.int64), "source": "x"},
                                  [1, 2, 3]], ids=["wrong-keys", "count-mismatch", "not-a-dict"])
def test_a_cache_entry_with_the_wrong_contents_is_rebuilt(tmp_path, data_root, blob, capsys):
    cache = tmp_path / "cache"
    good = load_split("mnist", "test", data_root, cache_dir=cache)
    (entry,) = cache.glob("mnist-test-*.pt")
    torch.save(blob, entry)
    (cache / f".{entry.name}.xyz.tmp").write_bytes(b"interrupted")
    again = load_split("mnist", "test", data_root, cache_dir=cache)
    assert torch.equal(again.images, good.images) and torch.equal(again.labels, good.labels)
    assert "rebuilding the dataset cache" in capsys.readouterr().err
    assert sorted(p.name for p in cache.iterdir()) == [entry.name]  # rebuilt, the .tmp gone
    assert torch.load(entry, weights_only=True)["images"].shape == good.images.shape


def test_a_cache_entry_being_written_by_another_process_is_left_to_it(tmp_path, data_root):
    cache = tmp_path / "cache"
    load_split("mnist", "test", data_root, cache_dir=cache)
    (entry,) = cache.glob("mnist-test-*.pt")
    entry.unlink()
    with exclusive(entry.with_name(entry.name + ".lock"), "cache"):
        data = load_split("mnist", "test", data_root, cache_dir=cache)  # decodes, does not write
        assert len(data) > 0 and not entry.exists()


def test_a_run_folder_start_clears_its_own_interrupted_writes(tmp_path):
    from typer.testing import CliRunner

    from cli import app

    out = tmp_path / "run"
    out.mkdir()
    (out / ".model.pt.q1w2e3.tmp").write_bytes(b"half a model")
    result = CliRunner().invoke(app, ["train", "--preset", "q1-baseline", "--profile", "demo", "--no-pretrained",
                                      "--train-size", "32", "--eval-size", "20", "--epochs", "1", "--no-wandb",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["curves.png", "metrics.json", "model.pt"]


def test_sigterm_stops_any_command_with_130_and_one_line(tmp_path):
    """SIGTERM outside the training loop (here during an evaluation) ends the command as Ctrl-C does."""
    script = (
        f"import sys, time; sys.argv = ['cli.py', 'report', '--profile', 'demo', '--results', {str(tmp_path)!r}];"
        "import report as r; r.write = lambda *a, **k: (print('ready', flush=True), time.sleep(60));"
        "import cli; cli.app()")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["interrupted"]


def test_a_diverged_model_is_never_saved(tmp_path):
    from runs.folder import check_finite

    model = torch.nn.BatchNorm2d(3)
    check_finite(model, "x")
    model.running_var[1] = float("inf")
    with pytest.raises(RunFailure, match="1 parameter/buffer tensors hold NaN or inf .running_var."):
        check_finite(model, "in epoch 2")
