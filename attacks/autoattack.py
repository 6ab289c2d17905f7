"""AutoAttack (Croce & Hein, ICML 2020) through torchattacks: the standard L-inf ensemble of
APGD-CE, APGD-T, FAB-T and Square. The strongest standard check; slow on a CPU (use --n)."""
from __future__ import annotations

import torch
from torch import nn

from attacks.context import eval_no_param_grad


class _Float32Logits(nn.Module):
    """torchattacks turns logits into numpy arrays, which have no bfloat16: under bf16 autocast the model
    still runs in bf16, and only its logits are handed over as float32."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).float()


def autoattack(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, eps: float = 8 / 255,
               seed: int = 0, **_) -> torch.Tensor:
    import torchattacks

    with eval_no_param_grad(model):
        wrapped = _Float32Logits(model).eval()
        attack = torchattacks.AutoAttack(wrapped, norm="Linf", eps=eps, version="standard", n_classes=10, seed=seed)
        return attack(images.float().contiguous(), labels).detach().to(images.dtype)  # torchattacks .view()s
