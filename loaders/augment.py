"""The study's augmentation set, batched on the device with kornia, per-sample random parameters.

In the study's order (torchvision defaults, hence p=1 except for the perspective):
  1. RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1))   nearest, zero fill
  2. ColorJitter(brightness=0.2, contrast=0.2)                           torchvision's formulas
  3. RandomPerspective(distortion_scale=0.2, p=0.5)                      bilinear, zero fill
  4. RandomCrop(32, padding=4)                                           zero padding
No flips: a flip turns 6 into 9 and 2 into 5.
"""
from __future__ import annotations

import kornia.augmentation as K
from torch import nn


def study_augmentation(crop: int = 32) -> nn.Module:
    return K.AugmentationSequential(
        K.RandomAffine(degrees=10.0, translate=(0.1, 0.1), scale=(0.9, 1.1), resample="nearest",
                       padding_mode="zeros", p=1.0),
        K.ColorJitter(brightness=0.2, contrast=0.2, p=1.0),
        K.RandomPerspective(distortion_scale=0.2, resample="bilinear", p=0.5),
        K.RandomCrop((crop, crop), padding=4, fill=0, padding_mode="constant", p=1.0),
    )


class _CropFlip(nn.Module):
    """Random crop back to the input's own size after 4 px of zero padding, then a horizontal flip with p = 0.5
    (kornia, batched on the device); built per image size, so it fits any dataset's native pixels."""

    def __init__(self, padding: int = 4):
        super().__init__()
        self.padding, self.by_size = padding, nn.ModuleDict()

    def forward(self, x):
        key = f"{x.shape[-2]}x{x.shape[-1]}"
        if key not in self.by_size:
            self.by_size[key] = K.AugmentationSequential(
                K.RandomCrop(tuple(x.shape[-2:]), padding=self.padding, fill=0, padding_mode="constant", p=1.0),
                K.RandomHorizontalFlip(p=0.5)).to(x.device)
        return self.by_size[key](x)


def crop_flip(padding: int = 4) -> nn.Module:
    """The CIFAR-10 recipes' augmentation (Madry et al., Wong et al., Rice et al., Zhang et al.): random crop with
    `padding` px of zero padding, and horizontal flip."""
    return _CropFlip(padding)
