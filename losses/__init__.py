"""Training losses by name: cross-entropy, the study's label smoothing, Circle Loss, TRADES (torch-free names;
the loss modules load in build_loss)."""
LOSSES = ("ce", "smooth-ce", "circle", "trades")


def build_loss(cfg):
    """The training loss a RunConfig names."""
    import torch.nn as nn

    if cfg.loss == "ce":
        return nn.CrossEntropyLoss()
    if cfg.loss == "smooth-ce":
        from losses.label_smoothing import SmoothedCrossEntropy

        return SmoothedCrossEntropy(cfg.smoothing)
    if cfg.loss == "circle":
        from losses.circle import CircleLoss

        return CircleLoss(m=cfg.circle_m, gamma=cfg.circle_gamma)
    if cfg.loss == "trades":  # called with (natural logits, adversarial logits, labels) by the loop's TRADES hook
        from losses.trades import TradesLoss

        return TradesLoss(cfg.trades_beta)
    raise ValueError(f"unknown loss {cfg.loss!r}; choose one of {', '.join(LOSSES)}")


__all__ = ["LOSSES", "build_loss"]
