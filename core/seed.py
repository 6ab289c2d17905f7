"""Seeding and RNG state capture, so that a run and its resumption draw the same numbers."""
from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        # cuBLAS needs this workspace setting for deterministic matmuls on CUDA.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def rng_state() -> dict:
    """Every RNG state as tensors and plain values, so it loads with weights_only=True."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        # the current device's state only: a resume may see fewer GPUs (CUDA_VISIBLE_DEVICES, SLURM), and
        # get_rng_state_all() would open a context on every visible GPU
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict, rank: int = 0) -> None:
    """Restore rng_state(). The CUDA state goes to the current device only. Older checkpoints hold a list,
    one state per GPU then visible: the current device's entry is used where it exists, else the first. Under
    DDP only rank 0's states were saved: ranks >= 1 keep their own CUDA stream, derived from the restored
    CPU state and their rank, rather than repeating rank 0's draws."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state(("MT19937", np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" not in state or not torch.cuda.is_available():
        return
    if rank > 0:
        torch.cuda.manual_seed(int(torch.randint(2**62, (1,), generator=torch.Generator().manual_seed(
            int(state["torch"][:8].sum()) + rank))))
        return
    saved = state["cuda"]
    if isinstance(saved, (list, tuple)):
        saved = saved[torch.cuda.current_device()] if torch.cuda.current_device() < len(saved) else saved[0]
    torch.cuda.set_rng_state(saved)
