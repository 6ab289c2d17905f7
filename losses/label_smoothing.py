"""Label-smoothing cross-entropy in the study's form (Szegedy et al., 2016, "Rethinking Inception").

The target puts 1 - s on the true class and s / (K - 1) on each of the K - 1 others. This differs
from nn.CrossEntropyLoss(label_smoothing=s), which spreads s / K over all K classes (so the true
class gets 1 - s + s/K).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SmoothedCrossEntropy(nn.Module):
    def __init__(self, smoothing: float = 0.1):
        super().__init__()
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        self.smoothing = smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        k = logits.shape[1]
        log_p = F.log_softmax(logits.float(), dim=1)
        q = torch.full_like(log_p, self.smoothing / (k - 1))
        q.scatter_(1, target.unsqueeze(1), 1.0 - self.smoothing)
        return -(q * log_p).sum(dim=1).mean()
