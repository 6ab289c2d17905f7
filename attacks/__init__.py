"""Adversarial attacks on [0,1] pixels: noise, FGSM and PGD (advertorch), AutoAttack (torchattacks)."""
from attacks.base import AttackSpec, eps_label, parse_eps
from attacks.registry import ATTACKS, run_attack

__all__ = ["ATTACKS", "AttackSpec", "eps_label", "parse_eps", "run_attack"]
