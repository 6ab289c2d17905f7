"""The DG digits benchmark's small ConvNet: shapes and size as published."""
import pytest
import torch

from core.errors import UsageError
from experiments import resolve
from models.digitnet import DigitNet
from models.resnet import build_model


def test_shapes_and_parameter_count():
    net = DigitNet(mean=(0.5,) * 3, std=(0.5,) * 3)
    x = torch.rand(4, 3, 32, 32)
    assert net(x).shape == (4, 10) and net.features(x).shape == (4, 1024)
    convs = 3 * 64 * 25 + 64 + 64 * 128 * 25 + 128
    fcs = 3200 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 10 + 10
    assert sum(p.numel() for p in net.parameters()) == convs + fcs


def test_wrong_image_size_is_a_clear_error():
    with pytest.raises(UsageError, match="32x32"):
        DigitNet()(torch.rand(2, 3, 28, 28))


def test_built_from_the_section():
    cfg = resolve("dg-erm-digitnet", "paper")
    model = build_model(cfg)
    assert isinstance(model, DigitNet) and model.normalize.enabled
    assert (cfg.optimizer, cfg.lr, cfg.batch_size, cfg.epochs, cfg.train_size) == ("adam", 1e-4, 32, 32, 10_000)
