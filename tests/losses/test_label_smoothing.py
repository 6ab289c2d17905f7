import math

import pytest
import torch
import torch.nn.functional as F

from losses.label_smoothing import SmoothedCrossEntropy


def naive(logits, target, s):
    """Per sample: -sum_j q_j log p_j with q = 1-s on the true class and s/(K-1) elsewhere."""
    total = 0.0
    n, k = logits.shape
    for i in range(n):
        z = [float(v) for v in logits[i]]
        m = max(z)
        log_norm = m + math.log(sum(math.exp(v - m) for v in z))
        for j in range(k):
            q = 1 - s if j == int(target[i]) else s / (k - 1)
            total -= q * (z[j] - log_norm)
    return total / n


@pytest.mark.parametrize("s", [0.0, 0.1, 0.3])
def test_matches_a_naive_loop(s):
    torch.manual_seed(0)
    logits = torch.randn(7, 10) * 3
    target = torch.randint(0, 10, (7,))
    assert SmoothedCrossEntropy(s)(logits, target).item() == pytest.approx(naive(logits, target, s), rel=1e-6)


def test_differs_from_pytorchs_label_smoothing():
    torch.manual_seed(1)
    logits, target = torch.randn(5, 10), torch.randint(0, 10, (5,))
    ours = SmoothedCrossEntropy(0.1)(logits, target)
    torch_ls = F.cross_entropy(logits, target, label_smoothing=0.1)
    assert not torch.isclose(ours, torch_ls)
    # with s' = s*K/(K-1), PyTorch's uniform spreading equals the study's form
    assert torch.isclose(ours, F.cross_entropy(logits, target, label_smoothing=0.1 * 10 / 9), atol=1e-6)
