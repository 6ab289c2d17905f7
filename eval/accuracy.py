"""Clean and adversarial accuracy in %, without parameter gradients; the model's mode is restored."""
from __future__ import annotations

import torch

from loaders.batches import Batches


def accuracy(classifier, batches: Batches, attack=None, source=None, seed: int = 0) -> float:
    """Top-1 accuracy of classifier on batches; with attack (an AttackSpec), on the adversarial images,
    crafted against source.logits_model (transfer) or against the classifier's own (white-box)."""
    return evaluate(classifier, batches, attack, source, seed)["acc"]


def evaluate(classifier, batches: Batches, attack=None, source=None, seed: int = 0, keep: int = 0) -> dict:
    from attacks.registry import run_attack

    correct = torch.zeros((), dtype=torch.int64, device=batches.device)
    kept = {}
    crafted_on = (source or classifier).logits_model
    for i, (x, y) in enumerate(batches.epoch()):
        with batches.autocast():  # the run's precision (auto: bf16 on CUDA, fp32 on CPU)
            if attack is not None:
                g = torch.Generator(device=x.device).manual_seed(seed * 1_000_003 + i)
                x = run_attack(attack, crafted_on, x, y, generator=g).float()
            pred = classifier.predict(x)
        correct += (pred == y).sum()
        if i == 0 and keep:
            kept = {"images": x[:keep].cpu(), "labels": y[:keep].cpu(), "preds": pred[:keep].cpu()}
    n = max(len(batches.labels), 1)
    return {"acc": 100.0 * correct.item() / n, "n": len(batches.labels), **({"examples": kept} if keep else {})}
