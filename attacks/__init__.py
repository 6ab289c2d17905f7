"""Adversarial attacks on [0,1] pixels: noise, FGSM and PGD (advertorch), AutoAttack (torchattacks).
The names and specs import no torch; an attack's module loads when it first runs."""
from attacks.base import AttackSpec, eps_label, parse_eps
from attacks.registry import ATTACKS, THREATS, get_attack, run_attack

__all__ = ["ATTACKS", "THREATS", "AttackSpec", "eps_label", "get_attack", "parse_eps", "run_attack"]
