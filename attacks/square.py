"""Square Attack (Andriushchenko et al., ECCV 2020) through torchattacks: L-inf, score-based black-box.
It never reads a gradient: random square-shaped updates at the corners of the eps ball, kept when they
lower the margin between the true class's score and the best other one. AutoAttack's fourth member;
run alone it is the gradient-masking audit's black-box check (it must not beat the gradient attacks)."""
from __future__ import annotations

import torch
from torch import nn

from attacks.context import Float32Logits, eval_no_param_grad, own_rng


def square(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, eps: float = 8 / 255,
           queries: int = 5000, seed: int = 0, **_) -> torch.Tensor:
    import torchattacks

    with eval_no_param_grad(model), own_rng(images):  # torchattacks reseeds the global RNG
        wrapped = Float32Logits(model).eval()
        attack = torchattacks.Square(wrapped, norm="Linf", eps=eps, n_queries=queries, n_restarts=1, p_init=0.8,
                                     loss="margin", resc_schedule=True, seed=seed)
        return attack(images.float().contiguous(), labels).detach().to(images.dtype)
