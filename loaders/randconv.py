"""RandConv (Xu et al., ICLR 2021): random convolutions as a batched, on-device augmentation.

Each view of a batch passes through a freshly drawn random convolution (3 -> 3 channels, stride 1,
padding k//2, no bias), with the kernel size k drawn uniformly from `kernels` and the weights from
N(0, 1/(3 k^2)) (kaiming normal, fan-in, gain 1: the paper code's `kaiming_normal_(nonlinearity=
'conv2d')`). The "mix" variant blends it with the input: alpha * conv(x) + (1 - alpha) * x, with
alpha ~ U(0, 1) drawn with the kernel. Like the paper's code the convolution acts on the normalised
input ((x - mean) / std, the model's own normalisation) and is not clamped; the result is mapped back
to the pixel scale, where the model normalises it again. Shapes, edges and layout survive; colour and
local texture do not, so the network cannot rely on them.

The consistency loss (losses/consistency.py) ties the views' predictions together.
Settings as in wildphoton/RandConv's exp_mnist10k.sh (mix variant): kernels {1, 3, 5, 7}, 3 views,
consistency weight 10. As in their randconv_trainer.py, the second and third views are random convolutions of
the first view, not of the batch (`chain`): their loop overwrites `inputs` with the first view and draws the
others from it, so a view can be two convolutions in a row (their published numbers come from that loop).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from loaders.prorandconv import ProRandConv, channel_stats


def random_kernel(k: int, generator: torch.Generator, channels: int = 3) -> torch.Tensor:
    """(channels, channels, k, k) weights from N(0, 1 / (channels k^2))."""
    return torch.randn(channels, channels, k, k, generator=generator) / math.sqrt(channels * k * k)


def rand_conv(x: torch.Tensor, weight: torch.Tensor, alpha: float, mean=None, std=None) -> torch.Tensor:
    """alpha * conv(x_n, weight) + (1 - alpha) * x_n with x_n the normalised x, back on the pixel scale."""
    mean, std = channel_stats(x, mean, std)
    xn = (x - mean) / std
    out = F.conv2d(xn, weight.to(x.device, x.dtype), padding=weight.shape[-1] // 2)
    return (alpha * out + (1 - alpha) * xn) * std + mean


class RandConv:
    """mix=True: the "mix" variant (RC_mix); mix=False with identity_prob=0.5: the "img" variant (RC_img of the
    authors' exp_mnist10k.sh: each view is, with probability 0.5, the batch itself, else its random convolution
    alone), as the authors' RandConvModule decides it once per view of a batch."""

    ce_all = False  # cross-entropy on the first view only; the consistency loss ties the others to it

    def __init__(self, kernels: Sequence[int] = (1, 3, 5, 7), views: int = 3, weight: float = 10.0,
                 mean=None, std=None, mix: bool = True, identity_prob: float = 0.0, chain: bool = False):
        self.kernels, self.views, self.weight = tuple(kernels), views, weight
        self.mean, self.std, self.mix, self.identity_prob = mean, std, mix, identity_prob
        self.chain = chain  # views after the first from the first view (the authors' code), else from the batch

    @classmethod
    def from_config(cls, cfg) -> RandConv | None:
        """The random convolution always acts on normalised input, as the authors' does: with the model's own
        normalisation, or, for a model fed raw [0,1] pixels (the study's ResNet18), (0.5, 0.5, 0.5) / (0.5, 0.5,
        0.5), the digits ConvNet's, which centres the pixels on 0 (a random kernel applied to raw pixels adds a
        random offset of its weights' sum times the mean pixel)."""
        if not cfg.randconv:
            return None
        mean = cfg.input_mean if cfg.input_mean is not None else (0.5, 0.5, 0.5)
        std = cfg.input_std if cfg.input_std is not None else (0.5, 0.5, 0.5)
        if getattr(cfg, "randconv_progressive", False):
            return ProRandConv(cfg.randconv_repeats, mean=mean, std=std)
        return cls(cfg.randconv_kernels, cfg.randconv_views, cfg.randconv_weight, mean, std,
                   mix=getattr(cfg, "randconv_mix", True), identity_prob=getattr(cfg, "randconv_identity_prob", 0.0),
                   chain=getattr(cfg, "randconv_chain", False))

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """All views of batch x, stacked: (views * B, C, H, W); each view with its own kernel (and alpha). With
        chain, the views after the first are drawn from the first view, not from x."""
        out = []
        for v in range(self.views):
            source = out[0] if self.chain and v else x
            if self.identity_prob > 0 and float(torch.rand((), generator=generator)) < self.identity_prob:
                out.append(source)  # this view is its input itself
                continue
            k = self.kernels[int(torch.randint(len(self.kernels), (1,), generator=generator))]
            alpha = float(torch.rand((), generator=generator)) if self.mix else 1.0
            out.append(rand_conv(source, random_kernel(k, generator, x.shape[1]), alpha, self.mean, self.std))
        return torch.cat(out)

    def describe(self) -> dict:
        return {"variant": "mix" if self.mix else "img", "identity_prob": self.identity_prob,
                "kernels": list(self.kernels), "views": self.views, "consistency_weight": self.weight,
                "later_views_from": "the first view" if self.chain else "the batch",
                "normalised_with": {"mean": list(self.mean or ()), "std": list(self.std or ())}}
