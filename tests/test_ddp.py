"""DDP on the CPU: torchrun with gloo, two ranks, on the embedded digits."""
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

ARGS = ["train", "--preset", "q1-baseline", "--profile", "demo", "--no-pretrained", "--optimizer", "adam",
        "--train-size", "400", "--eval-size", "200", "--epochs", "3", "--no-wandb", "--no-download"]


@pytest.mark.slow(cost=80)
def test_torchrun_two_ranks_gloo(tmp_path):
    env = {**os.environ, "TRUSTLAB_TRACE_SAMPLES": str(tmp_path / "trace"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(ROOT / "cli.py"), *ARGS, "--out", str(tmp_path / "ddp")]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    # every sample exactly once per epoch, across the two ranks
    for epoch in (1, 2, 3):
        shards = [list(map(int, (tmp_path / "trace" / f"epoch{epoch}-rank{r}.txt").read_text().split()))
                  for r in (0, 1)]
        assert not set(shards[0]) & set(shards[1])
        assert sorted(shards[0] + shards[1]) == list(range(400))
    # only rank 0 wrote results
    written = sorted(p.name for p in (tmp_path / "ddp").iterdir())
    assert written == ["curves.png", "metrics.json", "model.pt"]
    ddp = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert ddp["provenance"]["world_size"] == 2
    # the section's batch of 16 split over the ranks: the same optimizer steps as one process
    assert (ddp["provenance"]["batch_per_rank"], ddp["provenance"]["batchnorm"]) == \
        (8, "per rank (gloo: SyncBatchNorm needs GPUs)")
    # each rank scored half of the test set; the gathered per-image records cover all 200 images, in order
    bits = ddp["correct"]["digits_test"]
    assert len(bits) == 200 and 100 * bits.count("1") / 200 == pytest.approx(ddp["metrics"]["digits_test_acc"])
    # close to a single process with the same settings
    single = subprocess.run([sys.executable, str(ROOT / "cli.py"), *ARGS, "--out", str(tmp_path / "one")],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    assert ddp["metrics"]["digits_test_acc"] > 50  # chance is 10
    assert abs(ddp["metrics"]["digits_test_acc"] - one["metrics"]["digits_test_acc"]) < 20, (ddp["metrics"], one["metrics"])


@pytest.mark.slow(cost=40)
def test_torchrun_with_checkpoint_selection_ends_and_keeps_the_same_iteration_on_every_rank(tmp_path):
    """The selection's measurement of the kept checkpoint gathers every rank's shard of the test sets, so every
    rank must take part: measured on rank 0 alone it waited forever for ranks already at the closing barrier."""
    args = [*ARGS[:ARGS.index("--epochs")], "--epochs", "2", "--no-wandb", "--no-download",
            "--set", "val_size=100", "--set", "select_every=10", "--set", "select_draws=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(ROOT / "cli.py"), *args, "--out", str(tmp_path / "ddp")]
    try:
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=150)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"torchrun with select_every hung: {str(e.stderr)[-2000:]}")
    assert done.returncode == 0, done.stderr[-3000:]
    ddp = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    it = ddp["selection"]["iteration"]  # 2 epochs of 400 images in batches of 16 (8 a rank): 50 steps
    assert ddp["selection"]["every"] == 10 and it in (10, 20, 30, 40, 50)
    assert len(ddp["correct"]["digits_test"]) == 200
