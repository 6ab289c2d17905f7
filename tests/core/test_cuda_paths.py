"""The CUDA-only paths, tested on the CPU (issue 25): CPU bf16 autocast stands in for CUDA's where the
casting rules are the same, and torch.cuda's answers are faked where only the bookkeeping is under test."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]


def _features(seed=0):
    g = torch.Generator().manual_seed(seed)
    train = torch.randn(2000, 512, generator=g)
    return train, torch.randint(0, 10, (2000,), generator=g), torch.randn(500, 512, generator=g)


def test_knn_predictions_under_bf16_autocast_equal_fp32():
    from eval.knn import knn_predict

    train, labels, test = _features()
    fp32 = knn_predict(train, labels, test)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = knn_predict(train, labels, test)
    assert torch.equal(fp32, bf16)  # in bf16, |t|^2 - 2 q.t flips about 4% of these predictions


def test_circle_loss_runs_in_fp32_under_bf16_autocast():
    from losses.circle import CircleLoss

    g = torch.Generator().manual_seed(1)
    emb, labels = torch.randn(64, 512, generator=g), torch.randint(0, 10, (64,), generator=g)
    fp32 = CircleLoss()(emb, labels)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under = CircleLoss()(emb, labels)
    assert under.dtype == torch.float32 and torch.allclose(under, fp32, rtol=1e-6)


@pytest.fixture
def fake_cuda(monkeypatch):
    """torch.cuda answering as if `count` GPUs were visible; set_rng_state and manual_seed recorded."""
    calls = {"set": [], "seed": [], "count": 1, "current": []}
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls["current"].append(torch.device(device)))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: calls["count"])
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device="cuda": calls["set"].append(state))
    monkeypatch.setattr(torch.cuda, "manual_seed", lambda seed: calls["seed"].append(seed))
    return calls


def test_resume_with_fewer_gpus_than_the_checkpoint_saved(fake_cuda):
    from core.seed import rng_state, set_rng_state

    state = rng_state()
    # a checkpoint written with 4 visible GPUs (the old format: one state per GPU), resumed with 1
    state["cuda"] = [torch.full((8,), i, dtype=torch.uint8) for i in range(4)]
    set_rng_state(state)
    assert len(fake_cuda["set"]) == 1 and torch.equal(fake_cuda["set"][0], state["cuda"][0])
    # the current format: the one device's state
    state["cuda"] = torch.full((8,), 7, dtype=torch.uint8)
    set_rng_state(state)
    assert torch.equal(fake_cuda["set"][-1], state["cuda"])


def test_ranks_after_the_first_do_not_repeat_rank_0s_cuda_stream(fake_cuda):
    from core.seed import rng_state, set_rng_state

    state = {**rng_state(), "cuda": torch.zeros(8, dtype=torch.uint8)}
    set_rng_state(state, rank=1)
    set_rng_state(state, rank=2)
    assert fake_cuda["set"] == [] and len(set(fake_cuda["seed"])) == 2


def test_cuda_n_is_checked_against_the_device_count(fake_cuda):
    from runs.folder import pick_device

    fake_cuda["count"] = 2
    assert pick_device("cuda:1") == torch.device("cuda:1")
    assert pick_device("cuda", local_rank=1) == torch.device("cuda:1")
    # the chosen GPU is the current device: its RNG state is the one checkpoints save and restore
    assert fake_cuda["current"] == [torch.device("cuda:1")] * 2
    with pytest.raises(UsageError, match="torch sees 2 GPU"):
        pick_device("cuda:2")
    with pytest.raises(UsageError, match="every rank on one GPU"):
        pick_device("cuda:0", local_rank=1, world=2)


def test_torchattacks_fork_covers_the_images_gpu(monkeypatch):
    from attacks.context import own_rng

    seen = []
    monkeypatch.setattr(torch.random, "fork_rng", lambda devices: seen.append(list(devices)))

    class OnGpu:  # only the device is read
        device = torch.device("cuda:1")

    own_rng(OnGpu())
    own_rng(torch.zeros(1))
    assert seen == [[1], []]


def test_local_launcher_keeps_the_inherited_gpu(tmp_path):
    code = "import os; print('visible=' + os.environ.get('CUDA_VISIBLE_DEVICES', 'unset'))"
    done = subprocess.run([sys.executable, "-m", "trainers.launcher", "--executor", "local", "--gpus", "1", "--time", "2",
                           "--logs", str(tmp_path), "--", sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "CUDA_VISIBLE_DEVICES": "3"}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "visible=3" in done.stdout  # submitit alone would have set 0


def test_one_process_under_torchrun_initialises_the_backend(monkeypatch):
    """Issue 25, item 6: `make gpu-check`'s one-process torchrun step must bring the process group up (nccl on a
    GPU; gloo here), not return before it."""
    import socket

    import torch.distributed as td

    from core.dist import setup, teardown

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for k, v in {"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                 "MASTER_PORT": str(port), "TORCHELASTIC_RUN_ID": "test"}.items():
        monkeypatch.setenv(k, v)
    dist = setup("cpu")
    try:
        assert td.is_initialized() and td.get_backend() == "gloo" and not dist.enabled
    finally:
        teardown(dist)
    assert not td.is_initialized()


def test_gpu_checks_step_timeouts_fit_in_its_eight_minutes():
    """Issue 25, item 12: the step timeouts add up to less than the check's budget, leaving room for the rate rows,
    and a step never runs past what is left of the budget."""
    import time

    from bench import gpu_check

    assert sum(gpu_check.STEP_TIMEOUTS.values()) + 60 <= gpu_check.BUDGET_S
    log = []
    gpu_check.START = time.time() - gpu_check.BUDGET_S + 2  # 2 s of budget left
    gpu_check._step("sleeper", [sys.executable, "-c", "import time; time.sleep(30)"], 60, log)
    assert log[0]["rc"] == 124 and log[0]["seconds"] < 10


def test_auto_precision_never_picks_emulated_bf16(monkeypatch):
    from core import amp

    # a T4/V100: torch "supports" bf16 only by emulating it
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert amp.use_amp(torch.device("cuda"), "auto") is False
    assert amp.use_amp(torch.device("cuda"), "bf16") is True  # asked for explicitly: the user's choice
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)  # Ampere+
    assert amp.use_amp(torch.device("cuda"), "auto") is True


def test_auto_device_says_so_when_nvidia_smi_lists_gpus_torch_cannot_see(tmp_path, monkeypatch, capsys):
    from runs.folder import pick_device

    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H200 (UUID: GPU-x)'\necho 'GPU 1: NVIDIA H200 (UUID: GPU-y)'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))  # only the fake (its shebang and echo need no PATH)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto") == torch.device("cpu")
    assert "nvidia-smi lists 2 GPU(s) but torch" in capsys.readouterr().err
    fake.unlink()  # no nvidia-smi: a CPU machine, nothing to say
    assert pick_device("auto") == torch.device("cpu") and capsys.readouterr().err == ""
