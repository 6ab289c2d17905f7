"""Our AutoAttack is the authors' standard AutoAttack (pyautoattack) called directly, and torchattacks' "standard"
(10-step APGD and FAB) is never stronger than it, on a small adversarially trained model of scikit-learn's digits."""
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from attacks import AttackSpec, run_attack
from attacks.autoattack import STANDARD

EPS = 0.1  # digits are 8x8 with 17 grey levels


@pytest.fixture(scope="module")
def robust_digits():
    """(an MLP trained with PGD-7 at EPS on 1,500 digits, 30 held-out images, their labels)."""
    torch.manual_seed(0)
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16, dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = torch.tensor(y)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(15):
        for i in range(0, 1500, 100):
            xb, yb = x[i:i + 100], y[i:i + 100]
            adv = run_attack(AttackSpec("pgd", eps=EPS, alpha=EPS / 4, steps=7), model, xb, yb,
                             generator=torch.Generator().manual_seed(i))
            model.train()
            opt.zero_grad()
            nn.functional.cross_entropy(model(adv), yb).backward()
            opt.step()
    model.eval()
    return model, x[1500:1530], y[1500:1530]


@pytest.fixture(scope="module")
def ours(robust_digits):
    """Our AutoAttack's images of the held-out digits, and its log (run once for the tests below)."""
    model, x, y = robust_digits
    log: list = []
    return run_attack(AttackSpec("autoattack", eps=EPS, seed=0), model, x, y, log=log), log


def test_our_autoattack_equals_pyautoattack_called_directly(robust_digits, ours):
    from pyautoattack import AutoAttack

    model, x, y = robust_digits
    ours, log = ours
    reference = AutoAttack(model, norm="Linf", eps=EPS, version="standard", seed=0, device="cpu")
    ref_adv, ref_pred = reference.run_standard_evaluation(x, y, batch_size=len(x))
    with torch.no_grad():
        robust = model(ours).argmax(1) == y
    assert torch.equal(robust, ref_pred == y)           # the same images broken: the same robust accuracy
    torch.testing.assert_close(ours, ref_adv, rtol=0, atol=1e-6)
    assert (ours - x).abs().max() <= EPS + 1e-6 and 0 <= ours.min() and ours.max() <= 1
    # the breakdown: robust flags after each attack, cumulative, ending at the final result
    after = log[0]["after"]
    assert list(after) == list(STANDARD) and torch.equal(after["square"], robust)
    counts = [int(after[name].sum()) for name in STANDARD]
    assert counts == sorted(counts, reverse=True)
    with torch.no_grad():
        clean = int((model(x).argmax(1) == y).sum())
    assert clean > counts[-1] > 0, (clean, counts)  # the model is robust on some images, and attackable


def test_torchattacks_ten_step_standard_is_never_below_it(robust_digits, ours):
    model, x, y = robust_digits
    accuracy = {}
    for method in ("autoattack", "autoattack-torchattacks"):
        adv = ours[0] if method == "autoattack" else run_attack(AttackSpec(method, eps=EPS, seed=0), model, x, y)
        with torch.no_grad():
            accuracy[method] = (model(adv).argmax(1) == y).float().mean().item()
    assert accuracy["autoattack-torchattacks"] >= accuracy["autoattack"], accuracy


def test_autoattack_labels_say_which_it_is():
    assert AttackSpec("autoattack").label == "AutoAttack, standard"
    assert AttackSpec("autoattack").describe()["steps"] == 100
    assert "10-step" in AttackSpec("autoattack-torchattacks").label
    assert AttackSpec("autoattack-torchattacks").describe()["steps"] == 10


def test_the_classifiers_own_rule_decides_what_autoattack_broke(robust_digits):
    # a kNN model's attacks go through a differentiable stand-in; which images an attack broke (and so which the
    # later attacks see, and the breakdown) is the classifier's own decision: here a rule that is always right
    model, x, y = robust_digits
    log: list = []
    adv = run_attack(AttackSpec("autoattack", eps=EPS, seed=0), model, x[:6], y[:6], log=log,
                     predict=lambda images: y[:6][:len(images)])
    assert all(bool(flags.all()) for flags in log[0]["after"].values())
    assert torch.equal(adv, x[:6])  # nothing broken, so no adversarial image replaces a clean one
