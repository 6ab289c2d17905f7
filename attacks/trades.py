"""TRADES's inner maximisation (Zhang et al., 2019; yaodongyu/TRADES, trades.py): from x plus
0.001 * N(0, 1), `steps` signed-gradient steps of size alpha on KL(softmax f(x) || softmax f(x')),
each projected onto the eps ball around x and [0,1], in eval mode without parameter gradients. It needs
no label: it moves the prediction away from the model's own one."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from attacks.context import eval_no_param_grad


def trades_kl(model: nn.Module, images: torch.Tensor, *, eps: float = 8 / 255, alpha: float = 0.007,
              steps: int = 10, generator: torch.Generator | None = None) -> torch.Tensor:
    with eval_no_param_grad(model):
        with torch.no_grad():
            target = F.softmax(model(images).float(), dim=1)
        noise = torch.randn(images.shape, generator=generator, device=generator.device if generator else images.device)
        adv = images.detach() + 0.001 * noise.to(images.device, images.dtype)
        for _ in range(steps):
            adv.requires_grad_(True)
            kl = F.kl_div(F.log_softmax(model(adv).float(), dim=1), target, reduction="sum")
            (grad,) = torch.autograd.grad(kl, adv)
            adv = torch.min(torch.max(adv.detach() + alpha * grad.sign(), images - eps), images + eps).clamp(0, 1)
    return adv.detach()
