#!/usr/bin/env python
"""`make gpu-check`: everything a GPU machine should show before `make all PROFILE=paper`, in under 8
minutes, offline, with data only from ../shared/datasets (real MNIST and CIFAR-10):

  1. throughput rows (bench/gpu.py's): Q1 training at batch 16 and 256 (32 px), Q2 at 224 px, PGD-10;
     fp32 and bf16+channels_last; torch.compile off and on (the loop's own mode, inductor's default, at
     batch 16; three warm-up calls before each timed window), each with its peak GPU memory;
  2. a real slice of the paper profile: q2-baseline and q2-adversarial at 224 px on 5,000 CIFAR-10 training
     images for one epoch (the paper's 10,000-image validation split and test set), then PGD-10 and
     AutoAttack on 500 test images; q1-reverse-unsupervised for one epoch on all of MNIST without
     ImageNet weights (tested on MNIST and USPS);
  3. torchrun with nccl and one process;
  4. results/bench/<host>-gpu.json with every row, each step's wall time, exit code and peak memory,
     and the projected wall time of `make all PROFILE=paper` on this GPU (experiments/costs.py).

On a machine without CUDA it stops at once with one line (exit 2). Each step runs with its own time
limit; a failed step is recorded with its last error line and the check goes on.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


BUDGET_S = 8 * 60  # the whole check, start to finish: each step's timeout is cut to what is left of it
# the steps' own limits, together under the budget with a minute left for the rate rows (tests check the sum)
STEP_TIMEOUTS = {"q2-baseline": 100, "q2-adversarial": 100, "attack": 80, "q1": 70, "nccl": 40}
START = time.time()


def _left(start: float | None = None) -> float:
    """Seconds left of BUDGET_S since the check started."""
    return BUDGET_S - (time.time() - (START if start is None else start))


def _step(name: str, argv: list[str], timeout: int, log: list, env: dict | None = None) -> dict:
    started = time.time()
    timeout = int(max(1, min(timeout, _left())))  # never past the check's own budget
    try:
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})})
        rc, tail = done.returncode, (done.stderr.strip().splitlines() or [""])[-1]
    except subprocess.TimeoutExpired:
        rc, tail = 124, f"timed out after {timeout} s"
    row = {"step": name, "rc": rc, "seconds": round(time.time() - started, 1), "last_line": tail[-300:]}
    log.append(row)
    print(f"{name}: rc {rc} in {row['seconds']} s" + (f" ({tail})" if rc else ""), flush=True)
    return row


def _peak(run_dir: Path, name: str = "metrics.json") -> float | None:
    try:
        return json.loads((run_dir / name).read_text())["provenance"].get("peak_gpu_memory_gib")
    except (OSError, ValueError, KeyError):
        return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", default=str(ROOT.parent / "shared" / "datasets"))
    ap.add_argument("--work", default="results/gpu-check", help="scratch results folder")
    ap.add_argument("--out", default=f"results/bench/{socket.gethostname()}-gpu.json")
    args = ap.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("error: make gpu-check needs a CUDA GPU and there is none here (on the CPU, `make test` runs the "
              "bf16 and channels_last paths)", file=sys.stderr)
        return 2
    global START
    START = started = time.time()
    steps = []
    py, work, data = sys.executable, Path(args.work), args.data_root
    common = ["--data-root", data, "--cache-dir", str(work / "cache"), "--no-download", "--no-wandb", "--overwrite"]

    from bench.gpu import pgd_rate, train_rate

    rows = []
    for amp in (False, True):
        for batch, size, n in ((16, 32, 200), (256, 32, 60), (128, 224, 20)):
            for compiled in (False, True) if batch == 16 else (False,):
                torch.cuda.reset_peak_memory_stats()
                rate = train_rate(batch, size, amp, n, compiled)
                rows.append({"row": "q1_train" if size == 32 else "q2_train_slice", "batch": batch, "px": size,
                             "bf16_channels_last": amp, "compiled": compiled, "img_s": round(rate, 1),
                             "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 3)})
                print(rows[-1], flush=True)
    torch.cuda.reset_peak_memory_stats()
    rows.append({"row": "pgd10", "batch": 128, "px": 224, "img_s": round(pgd_rate(128, 224, 3), 1),
                 "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 3)})

    q2 = ["--profile", "paper", "--train-size", "5000", "--epochs", "1", "--no-pretrained", "--precision", "auto"]
    for preset in ("q2-baseline", "q2-adversarial"):
        out = work / preset
        _step(f"paper slice: {preset}", [py, "cli.py", "train", "--preset", preset, *q2, *common, "--out", str(out)],
              STEP_TIMEOUTS[preset], steps)
        steps[-1]["peak_gpu_memory_gib"] = _peak(out)
    _step("paper slice: PGD-10 and AutoAttack on 500 test images",
          [py, "cli.py", "attack", "--model", str(work / "q2-baseline"), "--method", "pgd", "--method", "autoattack",
           "--n", "500", "--out", str(work / "q2-baseline" / "robustness.json"), *common[:-2]], STEP_TIMEOUTS["attack"],
          steps)
    steps[-1]["peak_gpu_memory_gib"] = _peak(work / "q2-baseline", "robustness.json")
    out = work / "q1-reverse-unsupervised"
    _step("paper slice: q1-reverse-unsupervised, 1 epoch of MNIST",
          [py, "cli.py", "train", "--preset", "q1-reverse-unsupervised", "--profile", "paper", "--epochs", "1",
           "--no-pretrained", "--eval", "mnist", "--eval", "usps", *common, "--out", str(out)], STEP_TIMEOUTS["q1"],
          steps)
    steps[-1]["peak_gpu_memory_gib"] = _peak(out)
    out = work / "ddp"
    _step("torchrun, nccl, one process", [py, "-m", "torch.distributed.run", "--nproc_per_node=1", "cli.py", "train",
                                          "--preset", "q1-reverse-unsupervised", "--profile", "smoke", "--no-pretrained",
                                          "--eval", "mnist", *common, "--out", str(out)], STEP_TIMEOUTS["nccl"], steps)

    from experiments.costs import estimate_total

    projection = estimate_total("paper", rows_gpu=rows)
    report = {"rows": rows, "steps": steps, "projection_make_all_paper_hours": projection,
              "wall_seconds": round(time.time() - started, 1)}
    from core.io import write_json
    from core.provenance import provenance

    report["provenance"] = provenance(torch.device("cuda"), time.time() - started)
    write_json(args.out, report)
    print(f"wrote {args.out}; make all PROFILE=paper: about {projection:.1f} h on this GPU "
          f"(check took {report['wall_seconds']:.0f} s)")
    return 0 if all(s["rc"] == 0 for s in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
