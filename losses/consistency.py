"""RandConv's consistency loss (Xu et al., 2021): the mean over views of KL(p_i || M), where p_i is
the softmax of view i and M the views' mean softmax (clamped at 1e-7 before the log, as in the
paper's code). It is zero when every view predicts the same distribution.

Each view's distribution enters as log-probabilities (`kl_div(..., log_target=True)`, the same value): passed
as probabilities, a class whose softmax underflows to exactly 0 (a logit gap above about 104 in float32, which
a confident ConvNet reaches late in training) makes the gradient of kl_div's xlogy(p, p) 0/0 = NaN, and the run
stops (RandConv img, paper profile, epoch 15 on this CPU)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def consistency_loss(logits: torch.Tensor, views: int) -> torch.Tensor:
    """logits: (views * B, classes), the views stacked as RandConv.__call__ stacks them."""
    log_probs = F.log_softmax(logits.float(), dim=1).chunk(views)
    log_mixture = torch.stack([lp.exp() for lp in log_probs]).mean(0).clamp(min=1e-7).log()
    return sum(F.kl_div(log_mixture, lp, reduction="batchmean", log_target=True) for lp in log_probs) / views
