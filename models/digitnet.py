"""The small ConvNet of the single-source domain-generalization digits benchmark.

The network of M-ADA (Qiao et al., 2020), RandConv (Xu et al., 2021; wildphoton/RandConv,
lib/networks/digit_net.py) and PDEN (Li et al., 2021), so our rows compare with theirs:
conv 64 5x5 -> ReLU -> maxpool 2 -> conv 128 5x5 -> ReLU -> maxpool 2 -> fc 1024 -> ReLU -> fc 1024 -> ReLU
-> fc 10, on 32x32 RGB (no padding: 32 -> 28 -> 14 -> 10 -> 5, so 128*5*5 = 3200 inputs to the first fc).

The interface is ResNet18's: inputs on the [0,1] pixel scale, normalization as the first layer,
`features(x)` (the 1024-d output of the second fc layer) and `fc`.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from core.errors import UsageError
from models.normalize import Normalize

FEATURE_DIM = 1024


class DigitNet(nn.Module):
    def __init__(self, num_classes: int = 10, head: str = "fc", dropout: float = 0.0,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None):
        super().__init__()
        if head != "fc":
            raise UsageError("the digits ConvNet has an fc head only (head 'none' is for ResNet18 embeddings)")
        self.head, self.norm = head, "none"
        self.normalize = Normalize(mean, std)
        self.conv1 = nn.Conv2d(3, 64, kernel_size=5)
        self.conv2 = nn.Conv2d(64, 128, kernel_size=5)
        self.pool = nn.MaxPool2d(2)
        self.relu = nn.ReLU(inplace=True)
        self.fc1 = nn.Linear(128 * 5 * 5, FEATURE_DIM)
        self.fc2 = nn.Linear(FEATURE_DIM, FEATURE_DIM)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(FEATURE_DIM, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The 1024-d penultimate features of 32x32 images x on the [0,1] scale."""
        if x.shape[-2:] != (32, 32):
            raise UsageError(f"the digits ConvNet takes 32x32 images, got {tuple(x.shape[-2:])} (set image_size=32)")
        x = self.pool(self.relu(self.conv1(self.normalize(x))))
        x = self.pool(self.relu(self.conv2(x)))
        x = self.relu(self.fc1(torch.flatten(x, 1)))
        return self.relu(self.fc2(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.features(x)))
