"""Salt noise: n random pixels per image set to white, 1.0 on the [0,1] pixel scale in every channel
(not in normalized space: the model normalizes internally)."""
from __future__ import annotations

import torch
from torch import nn


def noise(model: nn.Module | None, images: torch.Tensor, labels: torch.Tensor | None = None, *,
          n_pixels: int = 20, generator: torch.Generator | None = None, **_) -> torch.Tensor:
    """Exactly n_pixels distinct positions per image, drawn independently for each image."""
    b, _, h, w = images.shape
    n = min(n_pixels, h * w)
    scores = torch.rand(b, h * w, generator=generator, device=generator.device if generator else "cpu")
    idx = scores.topk(n, dim=1).indices.to(images.device)
    mask = torch.zeros(b, h * w, dtype=torch.bool, device=images.device)
    mask.scatter_(1, idx, True)
    return images.masked_fill(mask.view(b, 1, h, w), 1.0)
