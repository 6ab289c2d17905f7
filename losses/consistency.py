"""RandConv's consistency loss (Xu et al., 2021): the mean over views of KL(p_i || M), where p_i is
the softmax of view i and M the views' mean softmax (clamped at 1e-7 before the log, as in the
paper's code). It is zero when every view predicts the same distribution."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def consistency_loss(logits: torch.Tensor, views: int) -> torch.Tensor:
    """logits: (views * B, classes), the views stacked as RandConv.__call__ stacks them."""
    probs = F.softmax(logits.float(), dim=1).chunk(views)
    log_mixture = torch.stack(probs).mean(0).clamp(min=1e-7).log()
    return sum(F.kl_div(log_mixture, p, reduction="batchmean") for p in probs) / views
