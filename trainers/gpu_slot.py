"""Run one command on the first free GPU slot: a cap of jobs per GPU, and no GPU idle while another has a queue.

    python -m trainers.gpu_slot --gpus "0 1 2 3" --per-gpu 1 --locks results/.gpus -- python cli.py train ...

Make prefixes every command with this when GPUS is set (`make -j8 all GPUS="0 1 2 3" JOBS_PER_GPU=2`). Each GPU
has JOBS_PER_GPU slots, each an exclusive lock file (fcntl, released by the kernel when the job ends, even on a
crash); the command runs with CUDA_VISIBLE_DEVICES set to the slot's GPU and holds the slot until it exits. With
every slot taken it waits, so `make -j` above the slot count queues instead of crowding a GPU. Before this, a
static round robin over the run folders put one run's attack, audit and UMAP evaluations on the same GPU while
others idled, and capped nothing.
"""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path


def take_slot(gpus: list[str], per_gpu: int, locks: Path, poll: float = 0.5):
    """(gpu, open lock file) of the first free slot, GPU by GPU, so the jobs spread over the GPUs first."""
    locks.mkdir(parents=True, exist_ok=True)
    said = False
    while True:
        for slot in range(per_gpu):
            for gpu in gpus:
                fh = open(locks / f"gpu{gpu}-slot{slot}.lock", "a")
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    fh.close()
                    continue
                return gpu, fh
        if not said:
            print(f"waiting for a free GPU slot ({len(gpus)} GPU(s) x {per_gpu} job(s) each are busy)", file=sys.stderr)
            said = True
        time.sleep(poll)


def main(argv: list[str] | None = None) -> int:
    from trainers.launcher import wrapper_parser

    split = wrapper_parser(argv, __doc__)
    if split is None:
        return 2
    ap, own, command = split
    ap.add_argument("--gpus", required=True, help='the GPU indices to use, e.g. "0 1 2 3"')
    ap.add_argument("--per-gpu", type=int, default=1, help="jobs at most on one GPU at a time")
    ap.add_argument("--locks", default="results/.gpus", help="folder for the slots' lock files")
    args = ap.parse_args(own)
    gpus = args.gpus.replace(",", " ").split()
    if not command or not gpus or args.per_gpu < 1:
        print("error: give a command, at least one GPU and --per-gpu of at least 1", file=sys.stderr)
        return 2
    gpu, lock = take_slot(gpus, args.per_gpu, Path(args.locks))
    try:
        return subprocess.call(command, env={**os.environ, "CUDA_VISIBLE_DEVICES": gpu})
    except KeyboardInterrupt:
        return 130
    finally:
        lock.close()


if __name__ == "__main__":
    sys.exit(main())
