"""The model's first layers: a resize to the training resolution, then per-channel normalization of [0,1] pixels
(a buffer that is not saved), so attacks and augmentations work on pixels and the model sees what its training
recipe expects. Neither has parameters: the state dict keeps torchvision's keys."""
from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from torch import nn


class Resize(nn.Module):
    """Bilinear resize of [0,1] pixels to size x size inside the model (antialiased when shrinking; identity when
    size is None or the images have it already): the model's training resolution is part of the model, so attacks,
    eps balls and the [0,1] checks act on the dataset's own pixels (CIFAR-10: 32x32) at every profile."""

    def __init__(self, size: int | None = None):
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.size is None or tuple(x.shape[-2:]) == (self.size, self.size):
            return x
        antialias = x.shape[-1] > self.size
        if torch.are_deterministic_algorithms_enabled():
            # --deterministic: interpolate's backward has no deterministic CUDA kernel (it raises, and every attack
            # differentiates through this layer); the same resize as two products with its weight matrices does.
            # In fp32 like interpolate (autocast would run the products in bf16), in x's memory format.
            rows = resize_matrix(x.shape[-2], self.size, antialias, x.device)
            cols = resize_matrix(x.shape[-1], self.size, antialias, x.device)
            with torch.autocast(x.device.type, enabled=False):
                y = (rows @ x.float() @ cols.T).to(x.dtype)
            channels_last = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
            return y.contiguous(memory_format=torch.channels_last) if channels_last else y
        return nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False,
                                         antialias=antialias)


@functools.lru_cache(maxsize=16)
def resize_matrix(n: int, size: int, antialias: bool, device: torch.device) -> torch.Tensor:
    """The (size, n) fp32 weights of interpolate's bilinear resize of one axis from n to size pixels (with Resize's
    antialias flag), read off by resizing the identity along that axis only (bilinear is separable); built once
    per shape and device, so an attack's steps copy nothing to the device."""
    eye = torch.eye(n, dtype=torch.float64)[None, None]
    w = nn.functional.interpolate(eye, size=(size, n), mode="bilinear", align_corners=False, antialias=antialias)
    return w[0, 0].to(device, torch.float32)


class Normalize(nn.Module):
    """(x - mean) / std per channel; identity when mean and std are None."""

    def __init__(self, mean: Sequence[float] | None = None, std: Sequence[float] | None = None):
        super().__init__()
        self.enabled = mean is not None
        if self.enabled:
            self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
            self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std if self.enabled else x
