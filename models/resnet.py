"""ResNet18 written out by hand (He et al., 2016), with torchvision's state-dict keys and shapes.

conv1 7x7/2 (64) -> maxpool 3x3/2 -> four stages of two BasicBlocks (64, 128, 256, 512; stride 2
from stage 2 on) -> global average pool -> [dropout] -> fc. Because every key and shape equals
torchvision.models.resnet18's, ResNet18_Weights.IMAGENET1K_V1 loads with strict=True apart from
the replaced fc.

Inputs are images on the [0,1] pixel scale. Normalization, when a study uses it, is the first
layer of the model (a buffer that is not saved), so attacks can work on pixels directly.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from core.errors import RunFailure, UsageError
from core.io import load_torch
from models.normalize import Normalize, Resize

NORMS = ("batch", "none")
HEADS = ("fc", "none")
EMBED_DIM = 512


def _norm(norm: str, channels: int) -> nn.Module:
    # "none" is the "no BN" ablation: the layer disappears, and so do its state-dict keys.
    return nn.BatchNorm2d(channels) if norm == "batch" else nn.Identity()


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, norm: str):
        super().__init__()
        self.conv1 = _conv3x3(cin, cout, stride)
        self.bn1 = _norm(norm, cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(cout, cout)
        self.bn2 = _norm(norm, cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False), _norm(norm, cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    def __init__(self, num_classes: int = 10, norm: str = "batch", dropout: float = 0.0,
                 head: str = "fc", mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None, input_size: int | None = None):
        super().__init__()
        if norm not in NORMS:
            raise UsageError(f"unknown norm {norm!r}; choose one of {', '.join(NORMS)}")
        if head not in HEADS:
            raise UsageError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")
        if not 0.0 <= dropout < 1.0:
            raise UsageError(f"dropout must be in [0, 1), got {dropout}")
        self.norm, self.head = norm, head
        self.resize, self.normalize = Resize(input_size), Normalize(mean, std)
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = _norm(norm, 64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        widths, cin = (64, 128, 256, 512), 64
        for i, width in enumerate(widths, start=1):
            stride = 1 if i == 1 else 2
            setattr(self, f"layer{i}", nn.Sequential(BasicBlock(cin, width, stride, norm),
                                                     BasicBlock(width, width, 1, norm)))
            cin = width
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        # head="none" removes fc: the model then outputs the 512-d pooled embedding (Circle Loss).
        self.fc = nn.Linear(EMBED_DIM, num_classes) if head == "fc" else nn.Identity()
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's initialisation, so a from-scratch run matches torchvision's from-scratch run.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The 512-d globally pooled features of images x on the [0,1] scale (resized to input_size first)."""
        x = self.normalize(self.resize(x))
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.features(x)))


def build_model(cfg) -> nn.Module:
    """The model a RunConfig describes (cfg.arch), with ImageNet weights when cfg.pretrained."""
    mean, std = (cfg.input_mean, cfg.input_std) if cfg.input_mean is not None else (None, None)
    if getattr(cfg, "arch", "resnet18") == "digitnet":
        from models.digitnet import DigitNet

        if cfg.pretrained:
            raise UsageError("the digits ConvNet has no ImageNet weights: use --no-pretrained")
        return DigitNet(num_classes=10, head=cfg.head, dropout=cfg.dropout, mean=mean, std=std)
    model = ResNet18(num_classes=10, norm=cfg.norm, dropout=cfg.dropout, head=cfg.head, mean=mean, std=std,
                     input_size=getattr(cfg, "model_input_size", None))
    if cfg.pretrained:
        load_imagenet_weights(model, cfg.weights)
    return model


IMAGENET_FILE = "resnet18-f37072fd.pth"  # torchvision's ResNet18_Weights.IMAGENET1K_V1


def _imagenet_state_dict(path: str | None) -> dict:
    if path:
        state = load_torch(path, what="weights file")
        if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
            state = state["model"]
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise RunFailure(f"weights file {path} is not a state dict of tensors")
        return state
    from torchvision.models import ResNet18_Weights

    expected = Path(torch.hub.get_dir()) / "checkpoints" / IMAGENET_FILE
    try:
        return ResNet18_Weights.IMAGENET1K_V1.get_state_dict(progress=os.isatty(2), check_hash=True)
    except Exception as err:  # network errors come in many types (URLError, SSLError, OSError...)
        raise RunFailure(
            f"cannot download ImageNet weights ({type(err).__name__}); place {IMAGENET_FILE} at "
            f"{expected}, pass --weights PATH, or use --no-pretrained") from err


def load_imagenet_weights(model: ResNet18, path: str | None = None) -> ResNet18:
    """Load torchvision's ImageNet ResNet18 weights (or a local file of them), except fc.

    fc is replaced by the 10-way layer. For the norm="none" model the BatchNorm entries have no
    place to go and are dropped; every other key must match in name and shape.
    """
    state = _imagenet_state_dict(path)
    own = model.state_dict()
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    if model.norm == "none":
        state = {k: v for k, v in state.items() if k in own or not _is_bn_key(k)}
    bad = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in state.items()
           if k in own and v.shape != own[k].shape]
    unexpected = sorted(set(state) - set(own))
    missing = sorted(k for k in set(own) - set(state) if not k.startswith("fc."))
    if bad or unexpected or missing:
        detail = "; ".join(filter(None, [
            f"wrong shapes: {', '.join(bad[:3])}" if bad else "",
            f"unexpected keys: {', '.join(unexpected[:3])}" if unexpected else "",
            f"missing keys: {', '.join(missing[:3])}" if missing else ""]))
        raise RunFailure(f"weights {path or IMAGENET_FILE} do not fit ResNet18(norm={model.norm}): {detail}")
    model.load_state_dict(state, strict=False)
    return model


def _is_bn_key(key: str) -> bool:
    parts = key.split(".")
    return any(p.startswith("bn") for p in parts) or (len(parts) > 2 and parts[-3] == "downsample" and parts[-2] == "1")
