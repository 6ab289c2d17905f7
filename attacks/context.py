"""Eval mode and no parameter gradients while an attack runs; the model's mode and flags come back."""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def eval_no_param_grad(model: nn.Module):
    """Eval mode and no parameter gradients for the attack; mode and flags restored afterwards
    (advertorch.context.ctx_noparamgrad_and_eval does the same, used by the advertorch attacks)."""
    was_training = model.training
    flags = [p.requires_grad for p in model.parameters()]
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)
        model.train(was_training)


class Float32Logits(nn.Module):
    """torchattacks turns logits into numpy arrays, which have no bfloat16: under bf16 autocast the model
    still runs in bf16, and only its logits are handed over as float32."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).float()


def own_rng(images: torch.Tensor):
    """torchattacks reseeds the global RNG (torch.manual_seed, which reseeds every CUDA device too): fork
    the CPU generator and, for images on a GPU, that GPU's, so nothing leaks out of the attack."""
    devices = [images.device.index if images.device.index is not None else torch.cuda.current_device()] \
        if images.device.type == "cuda" else []
    return torch.random.fork_rng(devices=devices)
