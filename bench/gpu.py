#!/usr/bin/env python
"""GPU figures for one short device check (see bench/gpu.sh): images per second for Q1 training at
batch 16 and 256 (32 px), a Q2 training slice at 224 px (batch 128, resize on the device), and PGD-10
at 224 px, each in fp32 and in bf16 autocast with channels_last. Writes one JSON."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch
import torch.nn.functional as F

from attacks import AttackSpec, run_attack
from core.io import write_json
from core.provenance import provenance
from models.resnet import ResNet18

WARMUP = 3  # calls before the timed window: torch.compile compiles on the first, and autotuning and allocator
# growth settle over the next; none of it is counted


def timed(fn, steps: int, warmup: int = WARMUP) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        fn()
    torch.cuda.synchronize()
    return time.perf_counter() - t


def train_rate(batch: int, size: int, amp: bool, steps: int, compiled: bool = False) -> float:
    torch.manual_seed(0)
    model = ResNet18(mean=(0.5,) * 3, std=(0.5,) * 3).cuda()
    fmt = torch.channels_last if amp else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    # compiled during the warm-up calls, in the mode the training loop uses (`--compile`: inductor's default), so
    # the row measures what a run gets
    forward = torch.compile(model) if compiled else model
    raw = torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8, device="cuda")
    y = torch.randint(0, 10, (batch,), device="cuda")

    def step():
        x = raw.float().div_(255)
        if size != 32:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        x = x.contiguous(memory_format=fmt)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            loss = F.cross_entropy(forward(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return batch * steps / timed(step, steps)


def pgd_rate(batch: int, size: int, steps: int) -> float:
    model = ResNet18(mean=(0.5,) * 3, std=(0.5,) * 3).cuda().eval()
    x, y = torch.rand(batch, 3, size, size, device="cuda"), torch.randint(0, 10, (batch,), device="cuda")
    spec = AttackSpec("pgd", steps=10)
    return batch * steps / timed(lambda: run_attack(spec, model, x, y), steps)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("error: bench/gpu.py needs a CUDA device")
    started = time.time()
    rows = []
    for amp in (False, True):
        for batch in (16, 256):
            rows.append({"row": "q1_train", "batch": batch, "px": 32, "bf16_channels_last": amp,
                         "img_s": train_rate(batch, 32, amp, 100)})
        rows.append({"row": "q2_train_slice", "batch": 128, "px": 224, "bf16_channels_last": amp,
                     "img_s": train_rate(128, 224, amp, 30)})
    for batch, size, steps in ((256, 32, 100), (128, 224, 30)):
        rows.append({"row": "q1_train" if size == 32 else "q2_train_slice", "batch": batch, "px": size,
                     "bf16_channels_last": True, "compiled": True, "img_s": train_rate(batch, size, True, steps, True)})
    rows.append({"row": "pgd10", "batch": 128, "px": 224, "img_s": pgd_rate(128, 224, 3)})
    for r in rows:
        print(r)
    write_json(args.out, {"rows": rows, "provenance": provenance(torch.device("cuda"), time.time() - started)})


if __name__ == "__main__":
    main()
