"""Datasets and weights written in the official formats, from real data (scikit-learn's digits).

SVHN: {train,test}_32x32.mat with X (32, 32, 3, N) uint8 and y (N, 1) in 1..10 (10 = digit 0).
MNIST: torchvision's raw idx files under MNIST/raw/, 28x28 grayscale.
CIFAR-10: cifar-10-batches-py/{data_batch_1..5,test_batch} pickles of {"data", "labels"}.
USPS: torchvision's usps.bz2 / usps.t.bz2 (bz2 libsvm lines `label idx:value ...`, labels 1..10, values in
  [-1, 1]), 16x16 grayscale.
MNIST-M: mnist_m/mnist_m_{train,test}/<8 digits>.png (32x32 RGB) with mnist_m_{train,test}_labels.txt lines
  `00000000.png 7`.
SynDigits: syn/synth_{train,test}_32x32.mat in SVHN's layout.
ImageNet weights: a torchvision resnet18 state dict (random init; same keys and shapes).
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import scipy.io
import torch
import torch.nn.functional as F

from loaders.datasets import load_split


def _digits(split: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    data = load_split("digits", split)
    x = data.images.float()
    if size != 32:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).numpy(), data.labels.numpy()


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_svhn(root: Path) -> None:
    (root / "svhn").mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        x, y = _digits(split, 32)
        y = np.where(y == 0, 10, y).reshape(-1, 1).astype(np.uint8)  # SVHN writes the digit 0 as 10
        scipy.io.savemat(root / "svhn" / f"{split}_32x32.mat", {"X": x.transpose(2, 3, 1, 0), "y": y})


def write_mnist(root: Path) -> None:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x, y = _digits(split, 28)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", x[:, 0])
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", y)


def write_usps(root: Path) -> None:
    import bz2

    (root / "usps").mkdir(parents=True, exist_ok=True)
    for split, name in (("train", "usps.bz2"), ("test", "usps.t.bz2")):
        x, y = _digits(split, 16)
        values = x[:, 0].reshape(len(y), -1) / 255 * 2 - 1
        lines = [f"{label + 1} " + " ".join(f"{i + 1}:{v:.6f}" for i, v in enumerate(row)) for label, row in zip(y, values)]
        (root / "usps" / name).write_bytes(bz2.compress(("\n".join(lines) + "\n").encode()))


def write_mnistm(root: Path) -> None:
    from PIL import Image

    for split in ("train", "test"):
        x, y = _digits(split, 32)
        folder = root / "mnist_m" / f"mnist_m_{split}"
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        lines = []
        for i, (img, label) in enumerate(zip(x, y)):
            background = rng.integers(0, 256, size=(32, 32, 3))  # MNIST-M blends digits over colour patches
            blended = np.abs(background - img.transpose(1, 2, 0).astype(int)).astype(np.uint8)
            Image.fromarray(blended).save(folder / f"{i:08d}.png")
            lines.append(f"{i:08d}.png {label}")
        (root / "mnist_m" / f"mnist_m_{split}_labels.txt").write_text("\n".join(lines) + "\n")


def write_syn(root: Path) -> None:
    (root / "syn").mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        x, y = _digits(split, 32)
        scipy.io.savemat(root / "syn" / f"synth_{split}_32x32.mat",
                         {"X": (255 - x).transpose(2, 3, 1, 0), "y": y.reshape(-1, 1).astype(np.uint8)})


def write_cifar10(root: Path) -> None:
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True, exist_ok=True)
    x, y = _digits("train", 32)
    chunks = np.array_split(np.arange(len(y)), 5)
    for i, idx in enumerate(chunks, start=1):
        with open(base / f"data_batch_{i}", "wb") as fh:
            pickle.dump({"data": x[idx].reshape(len(idx), -1), "labels": y[idx].tolist()}, fh)
    x, y = _digits("test", 32)
    with open(base / "test_batch", "wb") as fh:
        pickle.dump({"data": x.reshape(len(y), -1), "labels": y.tolist()}, fh)


def write_imagenet_weights(path: Path) -> Path:
    import torchvision

    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18().state_dict(), path)
    return path


def write_all(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    write_svhn(root)
    write_mnist(root)
    write_cifar10(root)
    write_usps(root)
    write_mnistm(root)
    write_syn(root)
    write_imagenet_weights(root / "resnet18-imagenet.pth")
    return root
