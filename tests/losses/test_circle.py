import math

import pytest
import torch
import torch.nn.functional as F

from losses.circle import CircleLoss


def naive_circle(emb, labels, m=0.4, gamma=80.0):
    """Sun et al. (2020), eq. (4) per anchor, averaged over anchors with positives and negatives (and
    a non-zero loss, as pytorch-metric-learning's AvgNonZeroReducer does)."""
    x = F.normalize(emb.double(), dim=1)
    n = len(labels)
    losses = []
    for i in range(n):
        pos = [float(x[i] @ x[j]) for j in range(n) if j != i and labels[j] == labels[i]]
        neg = [float(x[i] @ x[j]) for j in range(n) if labels[j] != labels[i]]
        if not pos or not neg:
            continue
        lp = [-gamma * max(1 + m - s, 0) * (s - (1 - m)) for s in pos]
        ln = [gamma * max(s + m, 0) * (s - m) for s in neg]
        lse = lambda v: max(v) + math.log(sum(math.exp(t - max(v)) for t in v))
        z = lse(lp) + lse(ln)
        losses.append(max(z, 0) + math.log1p(math.exp(-abs(z))))  # softplus
    nonzero = [v for v in losses if v > 0]
    return sum(nonzero) / len(nonzero)


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_a_naive_pairwise_computation(seed):
    torch.manual_seed(seed)
    emb = torch.randn(12, 16)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 0, 1, 2, 3, 3, 4])  # class 4 has no positive
    assert CircleLoss(m=0.4, gamma=80)(emb, labels).item() == pytest.approx(naive_circle(emb, labels), rel=1e-5)


def test_gradient_pulls_positives_together():
    torch.manual_seed(0)
    emb = torch.randn(8, 4, requires_grad=True)
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    opt = torch.optim.SGD([emb], lr=0.05)
    first = CircleLoss()(emb, labels).item()
    for _ in range(50):
        opt.zero_grad()
        CircleLoss()(emb, labels).backward()
        opt.step()
    assert CircleLoss()(emb, labels).item() < first
