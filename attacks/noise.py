"""Random perturbations that read no gradient. Salt noise: n random pixels per image set to white, 1.0 on
the [0,1] pixel scale in every channel (not in normalized space: the model normalizes internally).
Uniform noise: the audit's random baseline inside the L-inf ball."""
from __future__ import annotations

import torch
from torch import nn


def noise(model: nn.Module | None, images: torch.Tensor, labels: torch.Tensor | None = None, *,
          n_pixels: int = 20, generator: torch.Generator | None = None, **_) -> torch.Tensor:
    """Exactly n_pixels distinct positions per image, drawn independently for each image."""
    b, _, h, w = images.shape
    n = min(n_pixels, h * w)
    scores = torch.rand(b, h * w, generator=generator, device=generator.device if generator else images.device)
    idx = scores.topk(n, dim=1).indices.to(images.device)
    mask = torch.zeros(b, h * w, dtype=torch.bool, device=images.device)
    mask.scatter_(1, idx, True)
    return images.masked_fill(mask.view(b, 1, h, w), 1.0)


def uniform(model: nn.Module | None, images: torch.Tensor, labels: torch.Tensor | None = None, *,
            eps: float = 8 / 255, generator: torch.Generator | None = None, **_) -> torch.Tensor:
    """Uniform random noise in the L-inf ball: x + U(-eps, eps) per pixel, clipped to [0,1]. The audit's
    yardstick (Carlini et al. 2019): an attack that does no better than this is not using its gradients."""
    draw = torch.rand(images.shape, generator=generator, device=generator.device if generator else images.device)
    return (images + (2 * draw.to(images.device, images.dtype) - 1) * eps).clamp(0, 1)
