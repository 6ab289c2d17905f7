"""advertorch 0.2.3 (its latest release) on current PyTorch.

advertorch's fast_adaptive_boundary module does `from torch.autograd.gradcheck import
zero_gradients`, a helper that PyTorch removed in 1.9, so `import advertorch.attacks` fails.
Before advertorch is imported we put back a function with the removed helper's behaviour
(detach and zero the .grad of a tensor, or of every tensor in an iterable). Nothing else is
patched; import advertorch through this module (`from attacks.compat import advertorch`).
"""
from __future__ import annotations

import importlib
from collections.abc import Iterable

import torch

# `torch.autograd.gradcheck` as an attribute is the gradcheck *function*; we need the module.
_gradcheck = importlib.import_module("torch.autograd.gradcheck")


def zero_gradients(x) -> None:
    if isinstance(x, torch.Tensor):
        if x.grad is not None:
            x.grad.detach_()
            x.grad.zero_()
    elif isinstance(x, Iterable):
        for elem in x:
            zero_gradients(elem)


if not hasattr(_gradcheck, "zero_gradients"):
    _gradcheck.zero_gradients = zero_gradients

import advertorch  # noqa: E402 (only after zero_gradients is patched in)
import advertorch.attacks  # noqa: E402,F401 (imported for its side effect: it must find the patch)
import advertorch.context  # noqa: E402,F401 (imported for its side effect: it must find the patch)

__all__ = ["advertorch", "zero_gradients"]
