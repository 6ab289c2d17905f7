"""Clean and adversarial accuracy in %, without parameter gradients; the model's mode is restored."""
from __future__ import annotations

import torch

from loaders.batches import Batches


def accuracy(classifier, batches: Batches, attack=None, source=None, seed: int = 0) -> float:
    """Top-1 accuracy of classifier on batches; with attack (an AttackSpec), on the adversarial images,
    crafted against source.logits_model (transfer) or against the classifier's own (white-box)."""
    return evaluate(classifier, batches, attack, source, seed)["acc"]


def evaluate(classifier, batches: Batches, attack=None, source=None, seed: int = 0, keep: int = 0) -> dict:
    import sys

    from tqdm.auto import tqdm

    from attacks.registry import run_attack

    correct = torch.zeros((), dtype=torch.int64, device=batches.device)
    kept = {}
    label = "clean" if attack is None else f"{getattr(attack, 'label', attack.method)} ({attack.threat})"
    # a progress bar on a terminal only (never in logs); the callers print a one-line summary
    bar = tqdm(batches.epoch(), total=len(batches), desc=label, leave=False, disable=not sys.stderr.isatty())
    if source is not None and getattr(attack, "via", "logits") != "logits":
        from core.errors import UsageError

        raise UsageError(f"a transfer attack goes through the source model's logits, not {attack.via}")
    crafted_on = source.logits_model if source is not None else classifier.attacked_through(attack)
    for i, (x, y) in enumerate(bar):
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
