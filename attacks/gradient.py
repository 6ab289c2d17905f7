"""L-inf gradient attacks through advertorch, on [0,1] pixels, in eval mode, without parameter gradients.

FGSM: Goodfellow et al., "Explaining and Harnessing Adversarial Examples" (ICLR 2015):
      x' = clip_[0,1](x + eps * sign(grad_x loss)).
PGD:  Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks" (ICLR 2018):
      `steps` signed-gradient steps of size alpha, each projected onto the eps ball around x and [0,1],
      optionally from a uniform random start in the ball.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from attacks.compat import advertorch  # the shim first: advertorch 0.2.3 imports zero_gradients, gone in torch 1.9

perturb_iterative = advertorch.attacks.iterative_projected_gradient.perturb_iterative


def _loss():
    return nn.CrossEntropyLoss(reduction="sum")


def fgsm(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, eps: float = 8 / 255, **_) -> torch.Tensor:
    attack = advertorch.attacks.GradientSignAttack(model, loss_fn=_loss(), eps=eps, clip_min=0.0, clip_max=1.0)
    with advertorch.context.ctx_noparamgrad_and_eval(model):
        return attack.perturb(images, labels).detach()


_BUFFERS: dict = {}  # PGD's delta, reused across batches of one shape (perturb_iterative returns a new tensor)


def _start_buffer(images: torch.Tensor) -> torch.Tensor:
    key = (tuple(images.shape), images.dtype, images.device)
    buf = _BUFFERS.get(key)
    if buf is None:
        if len(_BUFFERS) >= 4:  # a full batch, a last partial one, and the odd other shape
            _BUFFERS.clear()
        buf = _BUFFERS[key] = torch.empty_like(images, memory_format=torch.contiguous_format).requires_grad_()
    buf.grad = None  # perturb_iterative accumulates into delta.grad
    return buf


def pgd(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, eps: float = 8 / 255,
        alpha: float = 2 / 255, steps: int = 10, random_start: bool = True,
        generator: torch.Generator | None = None, **_) -> torch.Tensor:
    # advertorch's LinfPGDAttack draws its random start from the global RNG; we draw the same uniform
    # start in the eps ball from the attack's own generator (so a seed fixes the attack) and hand it
    # to advertorch's projected-gradient loop, as LinfPGDAttack.perturb does.
    delta = _start_buffer(images)
    with torch.no_grad():
        if random_start:
            g_dev = generator.device if generator is not None else images.device
            if g_dev == images.device:
                delta.uniform_(0, 1, generator=generator)  # torch.rand's numbers, drawn in place
            else:
                delta.copy_(torch.rand(images.shape, generator=generator, device=g_dev))
            delta.mul_(2).sub_(1).mul_(eps).add_(images).clamp_(0, 1).sub_(images)  # (x + U(-eps,eps)) in [0,1], minus x
        else:
            delta.zero_()
    with advertorch.context.ctx_noparamgrad_and_eval(model):
        adv = perturb_iterative(images, labels, model, nb_iter=steps, eps=eps, eps_iter=alpha, loss_fn=_loss(),
                                delta_init=delta, minimize=False, ord=np.inf, clip_min=0.0, clip_max=1.0)
    return adv.detach()
