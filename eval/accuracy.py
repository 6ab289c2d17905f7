"""Top-1 accuracy in %, in eval mode and without gradients; the model's mode is restored."""
from __future__ import annotations

import torch
from torch import nn

from loaders.batches import Batches


@torch.inference_mode()
def accuracy(model: nn.Module, batches: Batches) -> float:
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=batches.device)
    for x, y in batches.epoch():
        correct += (model(x).argmax(1) == y).sum()
    model.train(was_training)
    return 100.0 * correct.item() / max(len(batches.labels), 1)
