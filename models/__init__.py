"""The hand-built ResNet18 (models/resnet.py). The names its options take live here, torch-free."""
NORMS = ("batch", "none")  # "none" removes every BatchNorm
HEADS = ("fc", "none")     # "none": fc removed, the model outputs its 512-d embedding

__all__ = ["HEADS", "NORMS"]
