"""Run one section's command as a cluster job through submitit, wait for it, pass on its exit code.

    python -m trainers.launcher --executor slurm --partition gpu --gpus 1 --time 240 -- python cli.py train ...

Make prefixes every section's command with this when LAUNCHER=slurm (or LAUNCHER=local, submitit's
local executor, used by the tests), so `make -j8 all LAUNCHER=slurm` keeps eight jobs in flight,
respects the dependencies between sections, and collects results in the same tree (a shared
filesystem is assumed). Job logs go to results/slurm/.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def wrapper_parser(argv: list[str] | None, doc: str) -> tuple[argparse.ArgumentParser, list[str], list[str]] | None:
    """For a wrapper run as `python -m MODULE [OPTIONS] -- COMMAND ...`: (its argument parser, its own options,
    the command); None, after saying so on stderr, when there is no `--`."""
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        print("error: give the command after --", file=sys.stderr)
        return None
    cut = argv.index("--")
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    return ap, argv[:cut], argv[cut + 1:]


def main(argv: list[str] | None = None) -> int:
    split = wrapper_parser(argv, __doc__)
    if split is None:
        return 2
    ap, own, command = split
    ap.add_argument("--executor", choices=("slurm", "local"), default="slurm")
    ap.add_argument("--partition", default=None, help="SLURM partition")
    ap.add_argument("--gpus", type=int, default=1, help="GPUs per job")
    ap.add_argument("--cpus", type=int, default=8, help="CPUs per job")
    ap.add_argument("--time", type=int, default=240, help="time limit, minutes")
    ap.add_argument("--logs", default="results/slurm", help="folder for submitit's job files and logs")
    args = ap.parse_args(own)
    if not command:
        print("error: empty command after --", file=sys.stderr)
        return 2
    import submitit

    folder = Path(args.logs) / "%j"
    if args.gpus == 0:
        print("note: --gpus 0: the job sees no GPU and runs on the CPU", file=sys.stderr)
    if args.executor == "local":
        executor = submitit.LocalExecutor(folder=folder)
        # submitit's local executor sets CUDA_VISIBLE_DEVICES to its first `gpus` GPUs (0, 1, ...); keep the GPUs
        # this process was given (Make's GPUS slot) by naming them as the visible ones
        inherited = [int(g) for g in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g.strip().isdigit()]
        if inherited and args.gpus > len(inherited):
            print(f"error: --gpus {args.gpus} but CUDA_VISIBLE_DEVICES names {len(inherited)} GPU(s)", file=sys.stderr)
            return 2
        executor.update_parameters(timeout_min=args.time, gpus_per_node=args.gpus,
                                   **({"visible_gpus": inherited} if inherited else {}))
    else:
        executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
        executor.update_parameters(timeout_min=args.time, gpus_per_node=args.gpus, cpus_per_task=args.cpus,
                                   slurm_partition=args.partition, name=Path(command[-1]).name[:40])
    # env=None: the job inherits its environment from the process that runs it (SLURM exports the
    # submitting shell's; the local executor is a child of this process). Nothing of the environment is
    # pickled into the job files, so no secret (WANDB_API_KEY, tokens) lands on disk.
    job = executor.submit(submitit.helpers.CommandFunction(command, cwd=os.getcwd(), env=None))
    print(f"submitted job {job.job_id}: {' '.join(command)}", file=sys.stderr)
    try:
        output = job.result()
    except Exception as err:  # submitit wraps the command's failure
        print(f"error: job {job.job_id} failed: {str(err).strip().splitlines()[-1] if str(err).strip() else err}",
              file=sys.stderr)
        return 1
    if output:
        print(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
