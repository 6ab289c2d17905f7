"""The TRADES objective against a naive loop over samples and classes."""
import math

import pytest
import torch
import torch.nn.functional as F

from losses.trades import TradesLoss, robust_kl


def test_robust_kl_against_a_naive_loop():
    g = torch.Generator().manual_seed(0)
    nat, adv = torch.randn(5, 10, generator=g), torch.randn(5, 10, generator=g)
    total = 0.0
    for i in range(5):
        p = F.softmax(nat[i], 0).tolist()
        q = F.softmax(adv[i], 0).tolist()
        total += sum(p[c] * (math.log(p[c]) - math.log(q[c])) for c in range(10))
    assert robust_kl(adv, nat).item() == pytest.approx(total / 5, rel=1e-5)
    assert robust_kl(nat, nat).item() == pytest.approx(0.0, abs=1e-6)


def test_trades_is_cross_entropy_plus_beta_times_the_kl_and_both_terms_carry_gradient():
    g = torch.Generator().manual_seed(1)
    nat = torch.randn(4, 10, generator=g, requires_grad=True)
    adv = torch.randn(4, 10, generator=g, requires_grad=True)
    y = torch.tensor([0, 3, 5, 9])
    loss = TradesLoss(beta=6.0)(nat, adv, y)
    assert loss.item() == pytest.approx(F.cross_entropy(nat, y).item() + 6 * robust_kl(adv, nat).item(), rel=1e-6)
    loss.backward()
    assert nat.grad.abs().sum() > 0 and adv.grad.abs().sum() > 0  # the paper's code does not detach f(x)
    assert TradesLoss(beta=0.0)(nat, adv, y).item() == pytest.approx(F.cross_entropy(nat, y).item())


def test_robust_kl_keeps_a_finite_gradient_when_the_natural_softmax_underflows():
    """softmax f(x) with a logit gap of 200 is exactly 0 off its class in float32; the gradient through it must
    stay finite and equal the definition's in float64 (where nothing underflows)."""
    nat = torch.tensor([[200.0, 0, 0], [0, 1, 2]], requires_grad=True)
    adv = torch.tensor([[150.0, 0, 3], [1, 0, 2]], requires_grad=True)
    robust_kl(adv, nat).backward()
    nat64, adv64 = nat.detach().double().requires_grad_(True), adv.detach().double().requires_grad_(True)
    p, log_q = F.softmax(nat64, 1), F.log_softmax(adv64, 1)
    ((p * (p.log() - log_q)).sum() / 2).backward()
    assert torch.isfinite(nat.grad).all() and torch.isfinite(adv.grad).all()
    assert torch.allclose(nat.grad.double(), nat64.grad, atol=1e-6)
    assert torch.allclose(adv.grad.double(), adv64.grad, atol=1e-6)
