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
    """(batch with the chosen samples replaced, boolean mask of the replaced ones). The choice is drawn on the
    generator's device (the CPU by default) and the rows are picked by index there: on a GPU no step waits for
    the device to say how many were chosen (boolean indexing and .any() on a CUDA mask would each sync)."""
    g_dev = generator.device if generator is not None else "cpu"
    chosen = torch.rand(len(x), generator=generator, device=g_dev) < p
    idx = chosen.nonzero().flatten()
    mask = chosen.to(x.device, non_blocking=True)
    if len(idx) == 0:
        return x, mask
    idx = idx.to(x.device, non_blocking=True)
    attacked = run_attack(spec, model, x.index_select(0, idx), y.index_select(0, idx), generator=generator)
    return x.index_copy(0, idx, attacked.to(x.dtype)), mask


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


VAL_PGD = dict(steps=10, alpha=2 / 255)  # the validation PGD of Rice et al. 2020: PGD-10, steps of 2/255


def eval_attack(cfg, method: str | None = None, threat: str = "white-box") -> AttackSpec | None:
    """The per-epoch validation attack at the training eps: PGD is always PGD-10 with steps of 2/255 (Rice et
    al.'s, whatever the training attack's steps); the others take the training attack's settings."""
    method = method or cfg.val_attack
    if not method:
        return None
    steps = dict(steps=cfg.attack_steps, alpha=cfg.attack_alpha) if method != "pgd" else VAL_PGD
    return AttackSpec(method=method, eps=cfg.attack_eps, n_pixels=cfg.noise_pixels, threat=threat, seed=cfg.seed,
                      **steps).validate()


def fast_at_images(model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec: AttackSpec) -> torch.Tensor:
    """Fast-AT's adversarial images (Wong et al. 2020, locuslab/fast_adversarial), crafted with the model in TRAIN
    mode as their code does (BatchNorm on the batch's statistics, its running statistics updated): a uniform start
    in the eps ball (kept inside [0,1]), one step of spec.alpha along the sign of the input gradient of the
    cross-entropy, projected back to the ball and to [0,1]. No parameter gradients are kept."""
    import torch.nn.functional as F

    was_training = model.training
    model.train()
    try:
        delta = torch.empty_like(x).uniform_(-spec.eps, spec.eps)
        delta = (x + delta).clamp_(0, 1).sub_(x).requires_grad_(True)
        loss = F.cross_entropy(model(x + delta).float(), y)
        grad, = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            delta = (delta + spec.alpha * grad.sign()).clamp_(-spec.eps, spec.eps)
            return (x + delta).clamp_(0, 1)
    finally:
        model.train(was_training)
