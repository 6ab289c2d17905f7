import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("WANDB_MODE", "disabled")  # tests that check W&B turn it on themselves
os.environ.setdefault("MPLBACKEND", "Agg")
# `make test` runs two pytest workers with OMP_NUM_THREADS=1 each; alone, a test process takes both cores
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    """SVHN, MNIST and CIFAR-10 in their official formats, made from real handwritten digits."""
    from tests.fixtures import write_all

    return write_all(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def weights_file(data_root) -> Path:
    return data_root / "resnet18-imagenet.pth"


@pytest.fixture
def python() -> str:
    return sys.executable
