"""core/: the config's round trip and checks, atomic files, safe torch loading, seeding, provenance, errors."""
import importlib.metadata
import os
import pickle
import subprocess
import time

import pytest
import torch

from core.config import RunConfig
from core.errors import RunFailure, UsageError, require
from core.io import atomic_write, load_torch, read_json, save_torch, write_json
from core.provenance import ROOT, cpu_model, device_name, git_commit, versions
from core.seed import rng_state, seed_everything, set_rng_state


def test_config_round_trips_through_json_and_rejects_unknown_keys():
    cfg = RunConfig(eval_on=("a", "b"), trainable=("fc",), input_mean=(0.5, 0.5, 0.5), stand_ins={"svhn": "digits"})
    again = RunConfig.from_dict(read_json(write_json("/tmp/cfg-test.json", cfg.to_dict())))
    assert again == cfg
    with pytest.raises(UsageError, match="unknown config keys: bogus"):
        RunConfig.from_dict({"bogus": 1})
    assert "device" not in cfg.method() and "lr" in cfg.method()


@pytest.mark.parametrize("field, value, needle", [
    ("lr", 0.0, "lr must be positive"), ("smoothing", 1.0, "smoothing"), ("adv_prob", 2.0, "adv-prob"),
    ("attack_eps", 8.0, "pixel scale"), ("batch_size", 0, "batch-size"), ("eval_on", (), "no eval set"),
    ("loss", "circle", "goes with head 'none'"),
])
def test_config_validation(field, value, needle):
    with pytest.raises(UsageError, match=needle):
        RunConfig(**{field: value}).validate()


def test_atomic_write_leaves_the_old_file_when_the_writer_fails(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old")

    def failing(tmp):
        open(tmp, "w").write("half")
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        atomic_write(path, failing)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_load_torch_refuses_pickled_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pt"
    with open(path, "wb") as fh:
        pickle.dump(Evil(), fh)
    with pytest.raises(RunFailure):
        load_torch(path, what="model file")
    save_torch(tmp_path / "ok.pt", {"w": torch.ones(2)})
    assert torch.equal(load_torch(tmp_path / "ok.pt")["w"], torch.ones(2))


def test_rng_state_round_trip():
    seed_everything(5)
    state = rng_state()
    a = torch.rand(3)
    set_rng_state(state)
    assert torch.equal(torch.rand(3), a)


def test_provenance_names_the_real_commit_and_versions():
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert git_commit().split("-")[0] == head
    found = versions()
    assert found["torch"] == importlib.metadata.version("torch")
    assert found["advertorch"] == "0.2.3"


def test_provenance_names_what_decides_a_cpu_runs_last_bits():
    # the same seed trains another model on another processor's kernels or thread count: both are recorded
    name = device_name(torch.device("cpu"))
    assert torch.backends.cpu.get_cpu_capability() in name and f"{torch.get_num_threads()} threads" in name
    assert name.startswith(f"cpu ({cpu_model()},") and cpu_model()


def test_require():
    require(True, "fine")
    with pytest.raises(UsageError, match="bad"):
        require(False, "bad")


@pytest.mark.parametrize("text", ["root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin\n", "", "{}", "\x80\x02."])
def test_load_torch_names_a_file_that_is_not_a_torch_file(tmp_path, text):
    path = tmp_path / "weights.pth"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(RunFailure, match=r"weights file .*weights\.pth (is not a PyTorch file|is truncated or corrupt"
                                         r"|holds pickled Python objects)"):
        load_torch(path, what="weights file")


def test_a_full_disk_is_said_in_one_line_whatever_the_library_calls_it(tmp_path, monkeypatch):
    import errno
    import shutil
    from collections import namedtuple

    def enospc(tmp):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(RunFailure, match=r"no space left on the device writing .*m\.pt \(\d[\d,]* MB free in"):
        atomic_write(tmp_path / "m.pt", enospc)
    # torch.save's own words on a full device, with (almost) nothing free
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda folder: usage(10**9, 10**9, 4096))

    def torch_full(tmp):
        raise RuntimeError("[enforce fail at inline_container.cc:664] . PytorchStreamWriter failed writing file "
                           "data/0: file write failed")

    with pytest.raises(RunFailure, match=r"no space left on the device writing .*model\.pt \(0 MB free"):
        atomic_write(tmp_path / "model.pt", torch_full)
    assert [p.name for p in tmp_path.iterdir()] == []  # nothing half-written
    # the same words with space to spare are another failure, passed on as it is
    monkeypatch.setattr(shutil, "disk_usage", lambda folder: usage(10**12, 0, 10**12))
    with pytest.raises(RuntimeError, match="enforce fail"):
        atomic_write(tmp_path / "model.pt", torch_full)


def _slow(n, pause=0.02):
    for i in range(n):
        time.sleep(pause)
        yield i


def test_progress_in_a_log_is_a_plain_line_now_and_then(monkeypatch, capsys):
    from core.progress import EVERY_ENV, bar

    monkeypatch.setenv(EVERY_ENV, "0.03")  # capsys's stderr is not a terminal: lines, not a bar
    assert list(bar(_slow(8), total=8, desc="epoch 3", unit="batch")) == list(range(8))
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert "\r" not in err and 1 <= len(lines) <= 8, err
    assert all(line.startswith("epoch 3: ") and "/8 batch" in line and "left" in line for line in lines), err
    monkeypatch.setenv(EVERY_ENV, "60")  # a loop shorter than the interval says nothing, forced refreshes or not
    shown = bar(_slow(3, 0.0), total=3, desc="clean")
    for _ in shown:
        shown.set_postfix(loss="0.5")  # refresh=True: tqdm writes at once; the log still gets no line
    monkeypatch.setenv(EVERY_ENV, "0.05")
    started = time.monotonic()
    shown = bar(_slow(6), total=6, desc="epoch 4")
    for _ in shown:
        shown.set_postfix(loss="0.25")
    most = (time.monotonic() - started) / (0.9 * 0.05)  # the writer's floor between lines, however slow the machine
    lines = capsys.readouterr().err.splitlines()
    assert 1 <= len(lines) <= most and all(line.startswith("epoch 4: ") for line in lines), lines
    assert "loss=0.25" in lines[-1]
    monkeypatch.setenv("WORLD_SIZE", "2")  # under torchrun, rank 1 shows nothing
    monkeypatch.setenv("RANK", "1")
    assert list(bar(_slow(5), total=5, desc="clean")) == list(range(5))
    assert capsys.readouterr().err == ""
    monkeypatch.delenv("WORLD_SIZE")
    for off in ({EVERY_ENV: "0"}, {}):  # 0 turns the lines off; enabled=False (--quiet, DDP's other ranks) too
        monkeypatch.setenv(EVERY_ENV, off.get(EVERY_ENV, "0.03"))
        assert list(bar(_slow(5), total=5, desc="x", enabled=bool(off))) == list(range(5))
    assert capsys.readouterr().err == ""
    for bad in ("soon", "nan", "inf"):
        monkeypatch.setenv(EVERY_ENV, bad)
        with pytest.raises(UsageError, match=EVERY_ENV):
            bar(range(2), total=2)
