"""The adversarial-training hook of the one training loop.

Each training sample is replaced by its adversarial version with probability p, drawn per sample
and afresh at every step. The adversarial versions are crafted white-box against the model being
trained, in eval mode and without parameter gradients (the attacks restore the training mode).
"""
from __future__ import annotations

import torch
from torch import nn

from attacks.base import AttackSpec
from attacks.registry import run_attack


def mix_adversarial(model: nn.Module, x: torch.Tensor, y: torch.Tensor, p: float, spec: AttackSpec,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch with the chosen samples replaced, boolean mask of the replaced ones)."""
    g_dev = generator.device if generator is not None else "cpu"
    mask = (torch.rand(len(x), generator=generator, device=g_dev) < p).to(x.device)
    if not mask.any():
        return x, mask
    mixed = x.clone()
    mixed[mask] = run_attack(spec, model, x[mask], y[mask], generator=generator).to(mixed.dtype)
    return mixed, mask


def trades_step(plain: nn.Module, model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn, cfg,
                generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """TRADES: x' from the KL inner maximisation against the plain model (eval mode), then one forward of
    the natural and adversarial batches together through the training model. (loss, natural logits)."""
    from attacks.trades import trades_kl

    x_adv = trades_kl(plain, x, eps=cfg.attack_eps, alpha=cfg.attack_alpha, steps=cfg.attack_steps,
                      generator=generator)
    logits = model(torch.cat([x, x_adv]))
    nat, adv = logits[:len(x)], logits[len(x):]
    return loss_fn(nat, adv, y), nat


def training_attack(cfg) -> AttackSpec | None:
    if cfg.adv_prob <= 0:
        return None
    return AttackSpec(method=cfg.adv_method, eps=cfg.attack_eps, alpha=cfg.attack_alpha, steps=cfg.attack_steps,
                      n_pixels=cfg.noise_pixels, threat="white-box", seed=cfg.seed).validate()


def eval_attack(cfg, method: str | None = None, threat: str = "white-box") -> AttackSpec | None:
    method = method or cfg.val_attack
    if not method:
        return None
    return AttackSpec(method=method, eps=cfg.attack_eps, alpha=cfg.attack_alpha, steps=cfg.attack_steps,
                      n_pixels=cfg.noise_pixels, threat=threat, seed=cfg.seed).validate()
