"""Eval mode and no parameter gradients while an attack runs; the model's mode and flags come back."""
from __future__ import annotations

from contextlib import contextmanager

from torch import nn


@contextmanager
def eval_no_param_grad(model: nn.Module):
    """Eval mode and no parameter gradients for the attack; mode and flags restored afterwards
    (advertorch.context.ctx_noparamgrad_and_eval does the same, used by the advertorch attacks)."""
    was_training = model.training
    flags = [p.requires_grad for p in model.parameters()]
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)
        model.train(was_training)
