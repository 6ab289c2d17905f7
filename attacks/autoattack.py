"""AutoAttack (Croce & Hein, ICML 2020), the authors' own code (`pyautoattack` 0.2.0, fra31/auto-attack on the
package registry): the standard L-inf version, APGD-CE, then APGD-T (9 target classes), FAB-T (9 target classes),
then Square (5,000 queries), each with 100 iterations, each run on the images the earlier ones left robust; an
image counts as robust only if no attack broke it. Always in fp32 (RobustBench's setting).

The four attacks run one call each on the images still robust (the same images, batches and seeds that one call
of `run_standard_evaluation` gives them), so the robust accuracy after each attack and AutoAttack's own warnings
(its checks for randomised, dynamic or probability-output models and a Square that beats the rest) are
recorded; tests/attacks/test_autoattack.py checks the result against one direct call.

`autoattack_torchattacks` is torchattacks 3.5.1's `AutoAttack(version="standard")`, kept as an independent
reference: it builds APGD-CE, APGD-T and FAB-T with 10 steps, not the standard's 100 (its label says so).
"""
from __future__ import annotations

import logging
from contextlib import contextmanager

import torch
from torch import nn

from attacks.context import Float32Logits, eval_no_param_grad, own_rng

STANDARD = ("apgd-ce", "apgd-t", "fab-t", "square")  # the standard version's attacks, in its order
NAMES = {"apgd-ce": "APGD-CE", "apgd-t": "APGD-T", "fab-t": "FAB-T", "square": "Square"}


@contextmanager
def _warnings_kept():
    """AutoAttack's checks warn through the "auto-attack" logger: keep their messages, print nothing."""
    logger, kept = logging.getLogger("auto-attack"), []

    class Keep(logging.Handler):
        def emit(self, record):
            if record.levelno >= logging.WARNING:
                kept.append(" ".join(record.getMessage().split()))

    handler, propagate = Keep(), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield kept
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def autoattack(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, eps: float = 8 / 255,
               seed: int = 0, log: list | None = None, predict=None, **_) -> torch.Tensor:
    """The standard AutoAttack's adversarial images. With `log` (a list), appends {"after": {attack: per-image
    robust flags after it}, "warnings": [...]} for this batch. `predict` (the classifier's own rule, e.g. a kNN's
    vote; default the model's argmax, which is what AutoAttack itself uses) decides which images an attack broke,
    so the later attacks run on the images the classifier still gets right and the flags are the classifier's."""
    from pyautoattack import AutoAttack

    x, y = images.float().contiguous(), labels
    with eval_no_param_grad(model), own_rng(images), _warnings_kept() as warned, torch.autocast(x.device.type,
                                                                                                  enabled=False):
        aa = AutoAttack(Float32Logits(model).eval(), norm="Linf", eps=eps, version="standard", seed=seed,
                        device=x.device)
        adv, robust, after = x.clone(), torch.ones(len(x), dtype=torch.bool, device=x.device), {}
        for name in STANDARD:
            idx = robust.nonzero().flatten()
            if len(idx):
                aa.attacks_to_run = [name]
                x_adv, y_adv = aa.run_standard_evaluation(x[idx], y[idx], batch_size=len(idx))
                if predict is not None:
                    with torch.no_grad():
                        y_adv = predict(x_adv).to(y.device)
                broke = y_adv != y[idx]
                adv[idx[broke]] = x_adv[broke]
                robust[idx[broke]] = False
            after[name] = robust.clone()
    if log is not None:
        log.append({"after": after, "warnings": sorted(set(warned))})
    return adv.detach().to(images.dtype)


def autoattack_torchattacks(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, eps: float = 8 / 255,
                            seed: int = 0, **_) -> torch.Tensor:
    """torchattacks 3.5.1's "standard" AutoAttack (APGD-CE, APGD-T and FAB-T at 10 steps, Square 5,000 queries)."""
    import torchattacks

    with eval_no_param_grad(model), own_rng(images):  # torchattacks reseeds the global RNG
        wrapped = Float32Logits(model).eval()
        attack = torchattacks.AutoAttack(wrapped, norm="Linf", eps=eps, version="standard", n_classes=10, seed=seed)
        return attack(images.float().contiguous(), labels).detach().to(images.dtype)  # torchattacks .view()s
