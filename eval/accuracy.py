"""Clean and adversarial accuracy in %, without parameter gradients; the model's mode is restored."""
from __future__ import annotations

import torch

from loaders.batches import Batches


def bits(correct: torch.Tensor) -> str:
    """Per-image correctness as a string of 0s and 1s (the test subset's order): what paired tests compare."""
    return "".join("1" if c else "0" for c in correct.tolist())


def accuracy(classifier, batches: Batches, attack=None, source=None, seed: int = 0) -> float:
    """Top-1 accuracy of classifier on batches; with attack (an AttackSpec), on the adversarial images,
    crafted against source.logits_model (transfer) or against the classifier's own (white-box)."""
    return evaluate(classifier, batches, attack, source, seed)["acc"]


def evaluate(classifier, batches: Batches, attack=None, source=None, seed: int = 0, keep: int = 0) -> dict:
    from attacks.registry import run_attack
    from core.progress import bar as progress_bar

    right, bounds = [], []  # per image: correct or not; per batch: the perturbation's size and pixel range
    kept, logs = {}, []      # logs: what the attack recorded per batch (AutoAttack: robust flags after each attack)
    label = "clean" if attack is None else f"{getattr(attack, 'label', attack.method)} ({attack.threat})"
    # a bar on a terminal, a line a minute in a log (core.progress); the callers print a one-line summary
    bar = progress_bar(batches.epoch(), total=len(batches), desc=label, unit="batch")
    if source is not None and getattr(attack, "via", "logits") != "logits":
        from core.errors import UsageError

        raise UsageError(f"a transfer attack goes through the source model's logits, not {attack.via}")
    crafted_on = source.logits_model if source is not None else classifier.attacked_through(attack)
    for i, (x, y) in enumerate(bar):
        with batches.autocast():  # the run's precision (auto: bf16 on CUDA, fp32 on CPU)
            if attack is not None:
                g = torch.Generator(device=x.device).manual_seed(seed * 1_000_003 + i)
                log: list = []
                x_adv = run_attack(attack, crafted_on, x, y, generator=g, predict=classifier.predict, log=log).float()
                logs += log
                bounds.append(torch.stack([(x_adv - x).abs().amax(), x_adv.amin(), x_adv.amax()]))
                x = x_adv
            pred = classifier.predict(x)
        right.append(pred == y)  # kept on the device: no synchronisation per batch
        if i == 0 and keep:
            pick = _spread(y.tolist(), keep)
            kept = {"images": x[pick].cpu(), "labels": y[pick].cpu(), "preds": pred[pick].cpu()}
    correct = torch.cat(right) if right else torch.zeros(0, dtype=torch.bool)
    if getattr(batches, "world", 1) > 1:  # under DDP: every rank's shard, back in the set's order
        correct = batches.whole(correct)
    correct = correct.cpu()
    shape = list(x.shape[-2:]) if right else None  # the pixels the images (and any attack's eps ball) live in
    n = max(len(correct), 1)
    out = {"acc": 100.0 * correct.sum().item() / n, "n": len(correct), "correct": correct, "pixels": shape,
           **({"examples": kept} if keep else {})}
    if logs and len(logs) == len(right):  # AutoAttack's breakdown over the whole test subset, in its order
        out["after"] = {name: torch.cat([entry["after"][name] for entry in logs]).cpu() for name in logs[0]["after"]}
        out["warnings"] = sorted({w for entry in logs for w in entry["warnings"]})
    if bounds:  # what the attack produced, for the audit: within eps of the input, inside [0,1]
        b = torch.stack(bounds).float().cpu()
        out.update(max_perturbation=b[:, 0].max().item(), min_pixel=b[:, 1].min().item(), max_pixel=b[:, 2].max().item())
    return out


def _spread(labels: list[int], keep: int) -> list[int]:
    """Up to `keep` positions of the first batch for the example grid: one per class first (a stratified subset
    comes sorted by class), then the rest in order. Every attack's grid uses the same positions."""
    first = list({y: i for i, y in reversed(list(enumerate(labels)))}.values())
    first.sort(key=lambda i: labels[i])
    rest = [i for i in range(len(labels)) if i not in set(first)]
    return (first + rest)[:keep]
