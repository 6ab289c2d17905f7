"""Precision and memory format, one choice per run (RunConfig.precision, RunConfig.channels_last).

precision "auto": bf16 autocast on CUDA where the GPU supports it, plain fp32 elsewhere (on the CPU bf16
is slower here); "bf16": bf16 autocast on any device, the CPU included (`torch.autocast("cpu",
dtype=torch.bfloat16)`), so the GPU's code paths run, and are tested, without a GPU; "fp32": none.
channels_last None: on CUDA only; True/False: everywhere/nowhere.
"""
from __future__ import annotations

import contextlib
import warnings

import torch

# channels_last parameters with contiguous gradients (on the CPU) only cost speed, and the warning would
# otherwise be printed by every attack step.
warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout contract")

PRECISIONS = ("auto", "bf16", "fp32")


def native_bf16() -> bool:
    """Whether the GPU computes bf16 in hardware (Ampere and later). torch's is_bf16_supported() also counts
    emulation (a T4 or V100 "supports" bf16 by emulating it, slower than fp32): "auto" must not pick that."""
    try:
        return torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # a torch without the argument
        return torch.cuda.is_bf16_supported() and torch.cuda.get_device_capability()[0] >= 8


def use_amp(device: torch.device, precision: str = "auto") -> bool:
    if precision == "auto":
        return device.type == "cuda" and native_bf16()
    return precision == "bf16"


def autocast(device: torch.device, precision: str = "auto"):
    if use_amp(device, precision):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def fp32():
    """Autocast off on every device: numerically sensitive code (kNN distances, the Circle loss's cosine
    similarities with gamma = 80, statistics) runs in fp32 whatever the run's precision, even when called
    inside a bf16 autocast region."""
    with torch.autocast("cpu", enabled=False), torch.autocast("cuda", enabled=False):
        yield


def memory_format(device: torch.device, channels_last: bool | None = None):
    on = device.type == "cuda" if channels_last is None else channels_last
    return torch.channels_last if on else torch.contiguous_format


def resolved(device: torch.device, precision: str = "auto", channels_last: bool | None = None) -> dict:
    """What a run actually used, for its results file."""
    return {"precision": "bf16" if use_amp(device, precision) else "fp32",
            "channels_last": memory_format(device, channels_last) == torch.channels_last}
