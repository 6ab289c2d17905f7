"""Mixed precision on CUDA only: bf16 autocast and channels_last, which are faster there; on the CPU
they are slower here, so both stay off and the CPU path is plain fp32."""
from __future__ import annotations

import contextlib

import torch


def use_amp(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.is_bf16_supported()


def autocast(device: torch.device):
    if use_amp(device):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def memory_format(device: torch.device):
    return torch.channels_last if device.type == "cuda" else torch.contiguous_format
