"""Pro-RandConv (Choi, Park and Lee, "Progressive Random Convolutions for Single Domain Generalization",
CVPR 2023) as a batched, on-device augmentation, beside RandConv (loaders/randconv.py).

For every mini-batch one random convolution *block* is drawn, then applied L times in a row with the same
parameters, L ~ U{1, ..., repeats} (the paper's L_max: 10 on digits). The block is
  deformable 3x3 convolution (random weights, random offsets) -> per-image, per-channel standardisation ->
  random affine (gamma_c, beta_c) -> tanh.
- Weights: N(0, 1 / (k^2 C_in)) (He, fan-in), multiplied element-wise by a Gaussian taper
  exp(-(i^2 + j^2) / (2 sigma_g^2)) over the kernel's grid, sigma_g ~ U(eps, 1): small sigma_g keeps the centre
  tap only, so repeated blocks stay near the image while large ones blur and mix colours.
- Offsets: every tap of the 3x3 grid moves by N(0, sigma_d^2) pixels, sigma_d ~ U(eps, b_d), b_d = 0.2 at
  32x32 (torchvision.ops.deform_conv2d), which distorts local texture but not the digit's shape.
- gamma_c, beta_c ~ N(0, 0.5^2) per channel (the paper's digits setting); the standardisation keeps the
  repeated blocks from saturating.
The training step sees the batch itself and its Pro-RandConv version (the paper's Algorithm 1: the loss on the
original and the augmented images), cross-entropy averaged over both, no consistency loss.

No official code was found (searched: no code link in the paper, no authors' repository). Settings we had to
choose, each where the paper's text left it open (two independent reimplementations read it the same way
for b_d and the affine scale): eps = 1e-3; b_d = 0.2 for 32x32 images; one block (weights, offsets, affine)
shared by the whole mini-batch, offsets drawn per pixel of the output grid; i.i.d. Gaussian offsets (not a
smoothed random field); the cross-entropy as the mean over the 2B images (not the sum); like RandConv here, the
block acts on normalised input and its tanh output in [-1, 1] is mapped back to the pixel scale with the
same mean and std.
"""
from __future__ import annotations

import math

import torch
from torchvision.ops import deform_conv2d

KERNEL = 3          # the paper fixes 3x3
EPS = 1e-3          # the lower bound of sigma_g and sigma_d (the paper: "a small value")
OFFSET_MAX = 0.2    # b_d: the largest offset scale, in pixels, for 32x32 digits
AFFINE_STD = 0.5    # sigma_gamma = sigma_beta on digits


def channel_stats(x: torch.Tensor, mean=None, std=None) -> tuple[torch.Tensor, torch.Tensor]:
    """mean and std (None: 0 and 1) as (1, C, 1, 1) tensors on x's device and dtype, to normalise x with (RandConv
    and Pro-RandConv both act on normalised input)."""
    mean = torch.as_tensor(0.0 if mean is None else mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    std = torch.as_tensor(1.0 if std is None else std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return mean, std


def gaussian_taper(k: int, sigma: float) -> torch.Tensor:
    """(k, k) weights exp(-(i^2 + j^2) / (2 sigma^2)) over the kernel's grid centred on 0; the centre is 1."""
    r = torch.arange(k, dtype=torch.float32) - (k - 1) / 2
    return torch.exp(-(r.view(-1, 1) ** 2 + r.view(1, -1) ** 2) / (2 * sigma ** 2))


def deform(x: torch.Tensor, weight: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """The deformable convolution of x (stride 1, same padding); offset: (1 or B, 2 k^2, H, W), in pixels."""
    k = weight.shape[-1]
    offset = offset.to(x.device, x.dtype).expand(len(x), -1, -1, -1)
    return deform_conv2d(x, offset, weight.to(x.device, x.dtype), padding=k // 2)


def block(x: torch.Tensor, weight, offset, gamma, beta) -> torch.Tensor:
    """One random convolution block: deformable conv, standardise each image's channels, affine, tanh."""
    h = deform(x, weight, offset)
    mu = h.mean((2, 3), keepdim=True)
    var = h.var((2, 3), keepdim=True, unbiased=False)
    h = (h - mu) / torch.sqrt(var + 1e-5)
    return torch.tanh(gamma.to(h) * h + beta.to(h))


class ProRandConv:
    """The same interface as loaders.randconv.RandConv: called with a batch and a generator, it returns the
    views stacked, here (x, its Pro-RandConv version); `ce_all`: the cross-entropy covers every view."""

    views, weight, ce_all = 2, 0.0, True

    def __init__(self, repeats: int = 10, mean=None, std=None, offset_max: float = OFFSET_MAX,
                 affine_std: float = AFFINE_STD):
        if repeats < 1:
            raise ValueError(f"Pro-RandConv repeats the block at least once, got {repeats}")
        self.repeats, self.mean, self.std = repeats, mean, std
        self.offset_max, self.affine_std = offset_max, affine_std

    def draw(self, generator: torch.Generator, channels: int, h: int, w: int) -> dict:
        """One block's parameters and its repeat count, drawn from `generator` (on the CPU)."""
        def uniform(lo, hi):
            return lo + (hi - lo) * float(torch.rand((), generator=generator))

        weight = torch.randn(channels, channels, KERNEL, KERNEL, generator=generator) / math.sqrt(
            channels * KERNEL * KERNEL)
        weight = weight * gaussian_taper(KERNEL, uniform(EPS, 1.0))
        offset = torch.randn(1, 2 * KERNEL * KERNEL, h, w, generator=generator) * uniform(EPS, self.offset_max)
        gamma = torch.randn(1, channels, 1, 1, generator=generator) * self.affine_std
        beta = torch.randn(1, channels, 1, 1, generator=generator) * self.affine_std
        repeats = 1 + int(torch.randint(self.repeats, (1,), generator=generator))
        return dict(weight=weight, offset=offset, gamma=gamma, beta=beta, repeats=repeats)

    def augment(self, x: torch.Tensor, p: dict) -> torch.Tensor:
        """x (pixels) through the block p["repeats"] times, on normalised input, back on the pixel scale."""
        mean, std = channel_stats(x, self.mean, self.std)
        h = (x - mean) / std
        for _ in range(p["repeats"]):
            h = block(h, p["weight"], p["offset"], p["gamma"], p["beta"])
        return h * std + mean

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return torch.cat([x, self.augment(x, self.draw(generator, x.shape[1], x.shape[2], x.shape[3]))])

    def describe(self) -> dict:
        return {"variant": "pro", "repeats_max": self.repeats, "kernel": KERNEL, "offset_max": self.offset_max,
                "affine_std": self.affine_std, "eps": EPS, "views": self.views, "consistency_weight": self.weight,
                "cross_entropy": "mean over the batch and its augmented copy",
                "normalised_with": {"mean": list(self.mean or ()), "std": list(self.std or ())}}
