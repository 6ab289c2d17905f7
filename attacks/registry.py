"""Every attack behind one signature:

    attack(model, images, labels, *, eps, alpha, steps, random_start, n_pixels, generator) -> images

Inputs and outputs are [0,1] pixels; the model normalizes internally. A composition "a+b" applies
a, then b on a's output (the study: 20 white pixels, then FGSM).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from attacks.autoattack import autoattack
from attacks.base import AttackSpec
from attacks.gradient import fgsm, pgd
from attacks.noise import noise

Attack = Callable[..., torch.Tensor]


def compose(*parts: Attack) -> Attack:
    def composed(model, images, labels, **kw):
        for part in parts:
            images = part(model, images, labels, **kw)
        return images
    composed.__name__ = "+".join(p.__name__ for p in parts)
    return composed


ATTACKS: dict[str, Attack] = {
    "noise": noise,
    "fgsm": fgsm,
    "pgd": pgd,
    "noise+fgsm": compose(noise, fgsm),
    "noise+pgd": compose(noise, pgd),
    "autoattack": autoattack,
}


def run_attack(spec: AttackSpec, model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply spec to a batch. The result stays within eps (L-inf) of the noised images and in [0,1]."""
    return ATTACKS[spec.method](model, images, labels, eps=spec.eps, alpha=spec.alpha, steps=spec.steps,
                                random_start=spec.random_start, n_pixels=spec.n_pixels, generator=generator,
                                seed=spec.seed)
