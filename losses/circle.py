"""Circle Loss (Sun et al., CVPR 2020), a thin wrapper over pytorch-metric-learning.

On a batch of embeddings, every same-class pair is pulled towards cosine similarity 1 - m and
every different-class pair pushed below m, each weighted by how far it is from its optimum
(alpha_p = [1 + m - s_p]_+, alpha_n = [s_n + m]_+). The study: m = 0.4, gamma = 80.
"""
from __future__ import annotations

import torch
from pytorch_metric_learning import losses as pml_losses
from torch import nn

from core.amp import fp32


class CircleLoss(nn.Module):
    def __init__(self, m: float = 0.4, gamma: float = 80.0):
        super().__init__()
        self.m, self.gamma = m, gamma
        self.loss = pml_losses.CircleLoss(m=m, gamma=gamma)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # fp32 even under bf16 autocast: pytorch-metric-learning's cosine similarity is a matmul that autocast
        # would run in bf16, and gamma = 80 amplifies its rounding
        with fp32():
            return self.loss(embeddings.float(), labels)
