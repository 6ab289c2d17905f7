"""torch.distributed for `torchrun --nproc_per_node=N cli.py train ...`: nccl on GPUs, gloo on CPUs.

Each rank trains on a disjoint shard of every epoch and evaluates a disjoint shard of every eval set (the
per-image results gathered back in the set's order: gather_shards); metrics are all-reduced; only rank 0 writes
results, checkpoints and W&B. Outside torchrun everything here is a no-op. Under torchrun with one process the
process group is still initialised (nccl on a GPU), so `make gpu-check`'s one-process nccl step tests the
backend, and then nothing else changes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as td


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def sum(self, *tensors: torch.Tensor) -> None:
        """In-place all-reduce (sum) of each tensor across ranks."""
        if self.enabled:
            for t in tensors:
                td.all_reduce(t, op=td.ReduceOp.SUM)

    def barrier(self) -> None:
        if self.enabled:
            td.barrier()


def gather_shards(part: torch.Tensor, n: int, world: int) -> torch.Tensor:
    """The per-sample values of a whole set from each rank's shard (rank r holds samples r, r + world, ...; the
    way Batches shards), in the set's order, on every rank. Shards are padded to one length for all_gather."""
    if world <= 1:
        return part
    size = -(-n // world)
    padded = torch.zeros(size, dtype=torch.uint8 if part.dtype == torch.bool else part.dtype, device=part.device)
    padded[:len(part)] = part
    pieces = [torch.empty_like(padded) for _ in range(world)]
    td.all_gather(pieces, padded)
    whole = torch.empty(n, dtype=padded.dtype, device=part.device)
    for r, piece in enumerate(pieces):
        whole[r::world] = piece[:len(range(r, n, world))]
    return whole.bool() if part.dtype == torch.bool else whole


def sum_over_ranks(*numbers: int) -> tuple[int, ...]:
    """Integers summed over the ranks (counts of a sharded evaluation); themselves outside a process group."""
    if not td.is_initialized() or td.get_world_size() <= 1:
        return numbers
    device = torch.device("cuda", torch.cuda.current_device()) if td.get_backend() == "nccl" else torch.device("cpu")
    t = torch.tensor(numbers, dtype=torch.int64, device=device)
    td.all_reduce(t, op=td.ReduceOp.SUM)
    return tuple(int(v) for v in t.tolist())


def broadcast_buffers(model: torch.nn.Module) -> None:
    """Rank 0's buffers (BatchNorm's running statistics) on every rank; nothing outside a process group. Under gloo
    each rank's BatchNorm updates its statistics from its own shard (DDP broadcasts them only before a training
    forward), so an evaluation whose per-image results are gathered from every rank would mix models otherwise."""
    if td.is_initialized() and td.get_world_size() > 1:
        for b in model.buffers():
            td.broadcast(b, src=0)


def rank() -> int:
    """This process's rank before the process group exists (0 outside torchrun)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0
    return int(os.environ["RANK"])


def setup(device_name: str = "auto") -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    under_torchrun = "TORCHELASTIC_RUN_ID" in os.environ and "MASTER_ADDR" in os.environ
    if world <= 1 and not under_torchrun:
        return Dist()
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if not td.is_initialized():
        cuda = torch.cuda.is_available() and device_name != "cpu"
        if cuda:
            torch.cuda.set_device(local)
        td.init_process_group(backend="nccl" if cuda else "gloo")
        if world <= 1:  # one process: the backend came up; check it can talk (a collective), then carry on alone
            probe = torch.ones(1, device=f"cuda:{local}" if cuda else "cpu")
            td.all_reduce(probe)
    return Dist(rank=rank, world=world, local_rank=local)


def teardown(dist: Dist) -> None:
    if td.is_initialized():
        td.destroy_process_group()
