"""Datasets: the registry of names (loaders/registry.py, torch-free), the readers and cache
(loaders/datasets.py), batches on the device (loaders/batches.py), augmentation (loaders/augment.py)."""
from loaders.registry import DATASETS, SPLITS

__all__ = ["DATASETS", "SPLITS"]
