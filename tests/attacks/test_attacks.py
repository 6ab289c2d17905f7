import pytest
import torch
import torchattacks
from torch import nn

from attacks import ATTACKS, AttackSpec, parse_eps, run_attack
from attacks.noise import noise
from core.errors import UsageError
from models.resnet import ResNet18
from trainers.adversarial import mix_adversarial


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = ResNet18(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    # a few steps of training so the BatchNorm statistics and logits are not trivial
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = torch.rand(32, 3, 32, 32), torch.randint(0, 10, (32,))
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    model.eval()
    return model, torch.rand(16, 3, 32, 32) * 0.9, torch.randint(0, 10, (16,))


def test_fgsm_matches_torchattacks(setup):
    model, x, y = setup
    ours = run_attack(AttackSpec("fgsm", eps=8 / 255), model, x, y)
    ref = torchattacks.FGSM(model, eps=8 / 255)(x, y)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-6)
    assert torch.equal(model(ours).argmax(1) == y, model(ref).argmax(1) == y)


def test_pgd_without_random_start_matches_torchattacks(setup):
    model, x, y = setup
    ours = run_attack(AttackSpec("pgd", eps=8 / 255, alpha=2 / 255, steps=10, random_start=False), model, x, y)
    ref = torchattacks.PGD(model, eps=8 / 255, alpha=2 / 255, steps=10, random_start=False)(x, y)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-6)
    assert (model(ours).argmax(1) == y).sum() == (model(ref).argmax(1) == y).sum()


@pytest.mark.parametrize("method", ["fgsm", "pgd", "noise+fgsm", "noise+pgd"])
def test_perturbation_within_eps_and_pixels_in_range(setup, method):
    model, x, y = setup
    eps = 4 / 255
    g = torch.Generator().manual_seed(1)
    adv = run_attack(AttackSpec(method, eps=eps, steps=3), model, x, y, generator=g)
    assert adv.min() >= 0 and adv.max() <= 1
    base = x
    if method.startswith("noise"):
        base = noise(None, x, n_pixels=20, generator=torch.Generator().manual_seed(1))
    assert (adv - base).abs().max() <= eps + 1e-6


def test_pgd_random_start_is_seeded(setup):
    model, x, y = setup
    spec = AttackSpec("pgd", steps=2)
    a = run_attack(spec, model, x, y, generator=torch.Generator().manual_seed(5))
    b = run_attack(spec, model, x, y, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


@pytest.mark.parametrize("method", ["fgsm", "pgd", "noise+fgsm", "square", "uniform", "pgd-restarts"])
def test_no_side_effects_on_mode_and_requires_grad(setup, method):
    model, x, y = setup
    model.train()
    model.layer1.requires_grad_(False)
    flags = [p.requires_grad for p in model.parameters()]
    spec = AttackSpec("pgd", steps=2, restarts=3) if method == "pgd-restarts" else AttackSpec(method, steps=2, queries=5)
    state = torch.random.get_rng_state()
    run_attack(spec, model, x[:4], y[:4], generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.random.get_rng_state(), state)  # torchattacks' reseeding does not leak out
    assert model.training
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())  # no parameter gradients were built
    model.layer1.requires_grad_(True)
    model.eval()


def test_noise_whitens_exactly_n_pixels_per_image():
    x = torch.rand(6, 3, 32, 32) * 0.9
    out = noise(None, x, n_pixels=20, generator=torch.Generator().manual_seed(0))
    white = (out == 1.0).all(dim=1)  # all three channels at 1.0, on the [0,1] scale
    assert white.flatten(1).sum(1).tolist() == [20] * 6
    changed = (out != x).any(dim=1)
    assert torch.equal(changed, white)
    # positions differ between images
    assert not torch.equal(white[0], white[1])


def test_adversarial_training_mix(setup):
    model, x, y = setup
    spec = AttackSpec("noise+fgsm")
    g = torch.Generator().manual_seed(0)
    fractions = []
    for _ in range(20):
        mixed, mask = mix_adversarial(model, x, y, 0.5, spec, generator=g)
        fractions.append(mask.float().mean().item())
        assert torch.equal(mixed[~mask], x[~mask])
        assert not torch.equal(mixed[mask], x[mask]) or not mask.any()
    assert 0.4 < sum(fractions) / len(fractions) < 0.6
    clean, mask = mix_adversarial(model, x, y, 0.0, spec, generator=g)
    assert not mask.any() and torch.equal(clean, x)


@pytest.mark.parametrize("text,value", [("8/255", 8 / 255), ("0.03", 0.03), ("0", 0.0), (".5", 0.5)])
def test_eps_parsing(text, value):
    assert parse_eps(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["8//255", "abc", "-0.1", "1", "2/1", "1/0", "nan"])
def test_bad_eps_is_refused(text):
    with pytest.raises(UsageError, match="eps"):
        parse_eps(text)


def test_registry_names():
    assert {"noise", "fgsm", "pgd", "noise+fgsm", "autoattack", "square", "uniform"} <= set(ATTACKS)
    with pytest.raises(UsageError, match="unknown attack method 'cw'"):
        AttackSpec("cw").validate()


def test_autoattack_runs_on_a_resnet_and_stays_in_the_ball(setup):
    model, x, y = setup
    adv = run_attack(AttackSpec("autoattack", eps=2 / 255), model, x[:2], y[:2])
    assert adv.shape == x[:2].shape and (adv - x[:2]).abs().max() <= 2 / 255 + 1e-6


def test_torchattacks_autoattack_through_the_registry_equals_torchattacks_called_directly(setup):
    model, x, y = setup
    ours = run_attack(AttackSpec("autoattack-torchattacks", eps=1 / 255, seed=3), model, x[:6], y[:6])
    ref = torchattacks.AutoAttack(model, norm="Linf", eps=1 / 255, version="standard", n_classes=10, seed=3)(x[:6], y[:6])
    with torch.no_grad():
        assert torch.equal(model(ours).argmax(1) == y[:6], model(ref).argmax(1) == y[:6])  # the same robust accuracy
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-6)


def test_trades_inner_maximisation_stays_in_the_ball_and_raises_the_kl(setup):
    import torch.nn.functional as F

    from attacks.trades import trades_kl

    model, x, _ = setup
    g = lambda: torch.Generator().manual_seed(0)
    adv = trades_kl(model, x, eps=8 / 255, alpha=0.007, steps=10, generator=g())
    assert (adv - x).abs().max() <= 8 / 255 + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    assert torch.equal(adv, trades_kl(model, x, eps=8 / 255, alpha=0.007, steps=10, generator=g()))
    with torch.no_grad():
        p = F.softmax(model(x), 1)
        kl = lambda z: F.kl_div(F.log_softmax(model(z), 1), p, reduction="sum").item()
        start = x + 0.001 * torch.randn(x.shape, generator=g())
        assert kl(adv) > 10 * max(kl(start), 1e-6)
    assert model.training is False and all(p.requires_grad for p in model.parameters())


def test_square_through_the_registry_equals_torchattacks_called_directly(setup):
    model, x, y = setup
    ours = run_attack(AttackSpec("square", threat="black-box", eps=4 / 255, queries=30, seed=2), model, x[:6], y[:6])
    ref = torchattacks.Square(model, norm="Linf", eps=4 / 255, n_queries=30, seed=2)(x[:6], y[:6])
    torch.testing.assert_close(ours, ref, rtol=0, atol=0)
    assert (ours - x[:6]).abs().max() <= 4 / 255 + 1e-6


def test_uniform_noise_is_seeded_fills_the_ball_and_stays_in_range():
    from attacks.noise import uniform

    x = torch.rand(64, 3, 8, 8)
    a = uniform(None, x, eps=8 / 255, generator=torch.Generator().manual_seed(0))
    b = uniform(None, x, eps=8 / 255, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1
    inside = (x > 8 / 255) & (x < 1 - 8 / 255)  # away from the clipping
    d = (a - x)[inside]
    assert d.abs().max() <= 8 / 255 + 1e-6 and d.abs().mean() > 0.4 * 8 / 255  # U(-eps, eps): mean |d| = eps/2


def test_pgd_with_a_zero_step_is_refused_not_labelled_pgd():
    from attacks.base import AttackSpec
    from core.errors import UsageError

    with pytest.raises(UsageError, match="alpha .* must be above 0"):
        AttackSpec("pgd", alpha=0.0).validate()
    assert AttackSpec("fgsm", alpha=0.0).validate().label == "FGSM"  # FGSM has no step size
    assert AttackSpec("pgd", eps=0.0, alpha=0.0).validate()  # the eps sweep's eps 0 point scales alpha to 0
