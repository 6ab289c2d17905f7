"""Every attack behind one signature, by name:

    attack(model, images, labels, *, eps, alpha, steps, random_start, n_pixels, generator, seed) -> images

Inputs and outputs are [0,1] pixels; the model normalizes internally. A composition "a+b" applies
a, then b on a's output (the study: 20 white pixels, then FGSM).

The names live here and nowhere else (experiments and the CLI's choices import them). This module
imports no torch: each attack's module is imported the first time the attack is used.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable

# name -> "module:function" (a "+" in the name composes the parts in order)
ATTACKS: dict[str, str] = {
    "noise": "attacks.noise:noise",
    "fgsm": "attacks.gradient:fgsm",
    "pgd": "attacks.gradient:pgd",
    "noise+fgsm": "",
    "noise+pgd": "",
    "autoattack": "attacks.autoattack:autoattack",                          # pyautoattack, standard
    "autoattack-torchattacks": "attacks.autoattack:autoattack_torchattacks",  # torchattacks' 10-step version
    "square": "attacks.square:square",
    "uniform": "attacks.noise:uniform",
}
# crafted on the model under test (gradients), on a fixed source model, or from the model's output scores alone
THREATS = ("white-box", "transfer", "black-box")
VIA = ("logits", "knn")  # an attack's gradients or scores: the model's logits, or the kNN's differentiable score


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


def run_attack(spec, model, images, labels, generator=None, predict=None, log=None):
    """Apply an AttackSpec to a batch. The result stays within eps (L-inf) of the noised images and in [0,1].
    With spec.restarts > 1 the attack runs again (each run draws its own random start from `generator`) on
    the images no earlier run fooled, and per image the first run that fools it is kept (else the last's).
    "Fooled" is judged by `predict` (the classifier's own rule, e.g. a kNN's vote), else by model's argmax; an
    attack that moves on from the images it fooled (AutoAttack) is given `predict` too.
    `log`, a list, receives what an attack records beside its images (AutoAttack: the robust flags after each of
    its attacks, and its warnings)."""
    attack = get_attack(spec.method)
    settings = dict(eps=spec.eps, alpha=spec.alpha, steps=spec.steps, random_start=spec.random_start,
                    n_pixels=spec.n_pixels, generator=generator, seed=spec.seed, queries=spec.queries, log=log,
                    predict=predict)
    best = attack(model, images, labels, **settings)
    if spec.restarts == 1:
        return best
    import torch

    from attacks.context import eval_no_param_grad

    def fooled(x):
        with torch.no_grad():
            if predict is not None:
                return predict(x) != labels
            with eval_no_param_grad(model):
                return model(x).argmax(1) != labels

    done = fooled(best)
    for _ in range(spec.restarts - 1):
        if bool(done.all()):
            break
        todo = ~done
        again = attack(model, images[todo], labels[todo], **settings)
        best = best.clone()
        best[todo] = again
        done = done.clone()
        done[todo] = fooled(best)[todo]
    return best
