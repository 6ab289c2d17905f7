"""The hand-built ResNet18 (models/resnet.py) and the digits benchmark's small ConvNet (models/digitnet.py).
The names their options take live here, torch-free."""
ARCHS = ("resnet18", "digitnet")  # digitnet: conv64-conv128-fc1024-fc1024-fc10 on 32x32 (the DG digits benchmark)
NORMS = ("batch", "none")  # "none" removes every BatchNorm
HEADS = ("fc", "none")     # "none": fc removed, the model outputs its 512-d embedding

__all__ = ["ARCHS", "HEADS", "NORMS"]
