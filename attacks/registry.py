"""Every attack behind one signature, by name:

    attack(model, images, labels, *, eps, alpha, steps, random_start, n_pixels, generator, seed) -> images

Inputs and outputs are [0,1] pixels; the model normalizes internally. A composition "a+b" applies
a, then b on a's output (the study: 20 white pixels, then FGSM).

The names live here and nowhere else (experiments and the CLI's choices import them). This module
imports no torch: each attack's module is imported the first time the attack is used.
"""
from __future__ import annotations

import importlib
from typing import Callable

# name -> "module:function" (a "+" in the name composes the parts in order)
ATTACKS: dict[str, str] = {
    "noise": "attacks.noise:noise",
    "fgsm": "attacks.gradient:fgsm",
    "pgd": "attacks.gradient:pgd",
    "noise+fgsm": "",
    "noise+pgd": "",
    "autoattack": "attacks.autoattack:autoattack",
}
THREATS = ("white-box", "transfer")  # crafted on the model under test, or on a fixed source model


def get_attack(name: str) -> Callable:
    """The attack function for a registered name."""
    if name not in ATTACKS:
        raise KeyError(name)
    if "+" in name:
        parts = [get_attack(part) for part in name.split("+")]

        def composed(model, images, labels, **kw):
            for part in parts:
                images = part(model, images, labels, **kw)
            return images
        composed.__name__ = name
        return composed
    module, func = ATTACKS[name].split(":")
    return getattr(importlib.import_module(module), func)


def run_attack(spec, model, images, labels, generator=None):
    """Apply an AttackSpec to a batch. The result stays within eps (L-inf) of the noised images and in [0,1]."""
    return get_attack(spec.method)(model, images, labels, eps=spec.eps, alpha=spec.alpha, steps=spec.steps,
                                   random_start=spec.random_start, n_pixels=spec.n_pixels, generator=generator,
                                   seed=spec.seed)
