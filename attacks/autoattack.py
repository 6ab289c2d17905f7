"""AutoAttack (Croce & Hein, ICML 2020) through torchattacks: the standard L-inf ensemble of
APGD-CE, APGD-T, FAB-T and Square. The strongest standard check; slow on a CPU (use --n)."""
from __future__ import annotations

import torch
from torch import nn

from attacks.context import Float32Logits, eval_no_param_grad, own_rng


def autoattack(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, eps: float = 8 / 255,
               seed: int = 0, **_) -> torch.Tensor:
    import torchattacks

    with eval_no_param_grad(model), own_rng(images):  # torchattacks reseeds the global RNG
        wrapped = Float32Logits(model).eval()
        attack = torchattacks.AutoAttack(wrapped, norm="Linf", eps=eps, version="standard", n_classes=10, seed=seed)
        return attack(images.float().contiguous(), labels).detach().to(images.dtype)  # torchattacks .view()s
