"""TRADES (Zhang et al., ICML 2019; yaodongyu/TRADES, trades.py): natural cross-entropy plus beta times
the KL divergence between the model's predictions on the adversarial and the natural images,

    loss = CE(f(x), y) + beta * (1/B) * sum_i KL( softmax f(x_i) || softmax f(x'_i) ),

written as the paper's code writes it: KLDivLoss(sum)(log_softmax f(x'), softmax f(x)) / B, with the
gradient flowing through both terms. x' maximises the same KL inside the eps ball (attacks/trades.py).
softmax f(x) enters as log-probabilities (`log_target=True`, the same value): as probabilities, a natural
prediction confident enough that a class's softmax underflows to 0 gives the KL's gradient 0/0 = NaN."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def robust_kl(adv_logits: torch.Tensor, nat_logits: torch.Tensor) -> torch.Tensor:
    """(1/B) sum_i KL(p_nat_i || p_adv_i), the TRADES regulariser."""
    return F.kl_div(F.log_softmax(adv_logits.float(), dim=1), F.log_softmax(nat_logits.float(), dim=1),
                    reduction="sum", log_target=True) / len(adv_logits)


class TradesLoss:
    def __init__(self, beta: float = 6.0):
        self.beta = beta

    def __call__(self, nat_logits: torch.Tensor, adv_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(nat_logits.float(), labels) + self.beta * robust_kl(adv_logits, nat_logits)
