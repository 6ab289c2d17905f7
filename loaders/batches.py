"""Batches from uint8 tensors, with no per-sample Python: index, convert, augment, resize.

The whole uint8 dataset moves to the device once (where it fits), then each batch is an index
into it. MNIST's one channel becomes three (the study's GrayscaleToRgb). Pixels stay on [0,1].
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from core.amp import autocast, memory_format
from core.errors import UsageError
from loaders.datasets import ImageSet

DEVICE_MEMORY_FRACTION = 0.25  # move a dataset to the GPU only if it takes under this share of memory


class Batches:
    def __init__(self, data: ImageSet, batch_size: int, device: torch.device, *, shuffle: bool = False,
                 augment: nn.Module | None = None, image_size: int | None = None, shard: tuple[int, int] = (0, 1),
                 drop_single: bool = False, precision: str = "auto", channels_last: bool | None = None):
        self.data, self.batch_size, self.device = data, batch_size, device
        self.precision, self.channels_last = precision, channels_last  # how this run computes (core/amp.py)
        # Training: a final batch of one image is dropped (BatchNorm cannot normalise a single value per
        # channel, and the study's DataLoader would have crashed on it); every other batch is kept.
        self.drop_single = drop_single
        self.rank, self.world = shard  # under DDP each rank takes every world-th sample of the epoch order
        if drop_single and self.world > 1 and len(data) < 2 * self.world:
            raise UsageError(f"{len(data)} training images cannot be shared by {self.world} ranks: each rank needs at "
                             "least 2 a step (BatchNorm cannot normalise one image); use fewer ranks")
        self.shuffle, self.augment, self.image_size = shuffle, augment, image_size
        images, labels = data.images, data.labels
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            if images.numel() < DEVICE_MEMORY_FRACTION * free:
                images, labels = images.to(device), labels.to(device)
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        if self.drop_single and self.world > 1:
            # training under DDP: every rank takes the same number of steps (shards differ by up to one image, and
            # SyncBatchNorm's collectives, which DDP's join() cannot stand in for, would wait forever for a rank
            # that has no last batch); a final batch not every rank has is left out, like a single image
            return min(self._steps(r) for r in range(self.world))
        return self._steps(self.rank)

    def _batches(self, rank: int) -> tuple[int, int]:
        """(images in rank's shard, batches they fill, the last one possibly short)."""
        n = len(range(rank, len(self.labels), self.world))
        return n, -(-n // self.batch_size)

    def _steps(self, rank: int) -> int:
        """Batches in rank's shard, less a final batch of one image in training."""
        n, batches = self._batches(rank)
        return batches - int(self.drop_single and n > 1 and n % self.batch_size == 1)

    def drops_last(self) -> bool:
        """Whether an epoch leaves out a final batch on some rank: one image, or under DDP one that not every rank
        has (its images wait for the next epoch's order)."""
        return any(len(self) < self._batches(r)[1] for r in range(self.world))

    def whole(self, per_sample: torch.Tensor) -> torch.Tensor:
        """Per-sample values of this rank's shard (in epoch order, unshuffled) -> the whole set's, on every rank
        (under DDP an eval set is split over the ranks; outside it the values themselves)."""
        if self.world == 1:
            return per_sample
        from core.dist import gather_shards

        return gather_shards(per_sample, len(self.labels), self.world)

    def order(self, seed: int) -> torch.Tensor:
        """This epoch's sample order: a function of the seed alone, so a resumed run repeats it."""
        n = len(self.labels)
        if not self.shuffle:
            return torch.arange(n)
        return torch.randperm(n, generator=torch.Generator().manual_seed(seed))

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        x = images.to(self.device, non_blocking=True).float().div_(255)  # [0,1] pixels
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # GrayscaleToRgb
        if self.augment is not None:
            x = self.augment(x)
        if self.image_size is not None and x.shape[-1] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear",
                              align_corners=False, antialias=x.shape[-1] > self.image_size)
        return x.contiguous(memory_format=memory_format(x.device, self.channels_last))

    def autocast(self):
        """The run's precision for the forward passes on these batches (training, evaluation, attacks)."""
        return autocast(self.device, self.precision)

    def epoch(self, seed: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self.order(seed)[self.rank::self.world]  # disjoint shards that together cover the epoch
        self.last_order = order[:len(self) * self.batch_size]  # what this epoch yields (tests trace it)
        on_images = order.to(self.images.device)  # one copy per epoch, not a copy (and a GPU sync) per batch
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            idx_here = on_images[start:start + self.batch_size]
            yield self.prepare(self.images[idx_here]), self.labels[idx_here].to(self.device, non_blocking=True)
