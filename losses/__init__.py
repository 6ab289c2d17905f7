from losses.label_smoothing import SmoothedCrossEntropy

__all__ = ["SmoothedCrossEntropy", "build_loss"]


def build_loss(cfg):
    """The training loss a RunConfig names."""
    import torch.nn as nn

    if cfg.loss == "ce":
        return nn.CrossEntropyLoss()
    if cfg.loss == "smooth-ce":
        return SmoothedCrossEntropy(cfg.smoothing)
    from losses.circle import CircleLoss

    return CircleLoss(m=cfg.circle_m, gamma=cfg.circle_gamma)
