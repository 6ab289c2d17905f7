"""The defences' published recipes (issue 22): crop and flip only where a section asks, the schedules against
their formulas, Fast-AT's step crafted in train mode against a naive reference, and the best-PGD-10 epoch kept."""
import json

import numpy as np
import pytest
import torch
from torch import nn

from attacks import AttackSpec
from experiments import resolve
from trainers.adversarial import eval_attack, fast_at_images
from trainers.loop import build_optimizer, run, train_augmentation


@pytest.mark.parametrize("section,wanted", [("q2-baseline", False), ("q2-adversarial", False), ("q2-circle", False),
                                            ("q2-fast-at", True), ("q2-pgd-at", True), ("q2-trades", True),
                                            ("q1-baseline", False), ("dg-erm-digitnet", False)])
def test_crop_and_flip_only_where_a_section_asks(section, wanted):
    cfg = resolve(section, "paper")
    assert cfg.crop_flip is wanted and (train_augmentation(cfg, "cpu") is not None) == (wanted or cfg.augment)
    if wanted:  # the recipe, with its source's numbers
        assert (cfg.weight_decay, cfg.momentum, cfg.keep_best, cfg.val_attack) == (5e-4, 0.9, True, "pgd")


def test_crop_flip_pads_four_pixels_crops_back_and_flips():
    torch.manual_seed(0)
    aug = train_augmentation(resolve("q2-pgd-at", "smoke"), "cpu")
    x = torch.rand(64, 3, 32, 32) * 0.5 + 0.5  # no zero pixel anywhere
    out = aug(x)
    assert out.shape == x.shape
    shifted = (out == 0).flatten(1).any(1)  # a crop off the centre shows the zero padding
    assert 32 < shifted.sum() < 64  # 8 of the 81 offsets per axis pair show none... most images do
    # each output is the input shifted by at most 4 px (and maybe flipped): find its offset
    padded = nn.functional.pad(x, (4, 4, 4, 4))
    flips = 0
    for i in range(len(x)):
        found = [(dy, dx, f) for f in (False, True) for dy in range(9) for dx in range(9)
                 if torch.equal(out[i], (lambda w: w.flip(-1) if f else w)(padded[i, :, dy:dy + 32, dx:dx + 32]))]
        assert found, i
        flips += found[0][2]
    assert 16 < flips < 48  # p = 0.5


def _lrs(cfg, steps_per_epoch):
    model = nn.Linear(2, 2)
    opt, sched = build_optimizer(cfg, model, steps_per_epoch)
    lrs = []
    for _ in range(cfg.epochs):
        for _ in range(steps_per_epoch):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            if sched.per_step:
                sched.step()
        if not sched.per_step:
            sched.step()
    return lrs, opt


def test_piecewise_schedule_divides_by_ten_at_half_and_three_quarters():
    cfg = resolve("q2-pgd-at", "paper", epochs=8)
    lrs, opt = _lrs(cfg, 3)
    per_epoch = lrs[::3]
    np.testing.assert_allclose(per_epoch, [0.01] * 4 + [0.001] * 2 + [0.0001] * 2, rtol=1e-9)
    assert opt.param_groups[0]["weight_decay"] == 5e-4 and opt.param_groups[0]["momentum"] == 0.9


def test_cyclic_schedule_is_wong_et_als_triangle_per_step():
    cfg = resolve("q2-fast-at", "paper")
    assert (cfg.lr, cfg.epochs, cfg.lr_schedule) == (0.2, 15, "cyclic")
    spe = 7
    lrs, _ = _lrs(cfg, spe)
    # locuslab/fast_adversarial: lr_schedule(epoch + (i + 1) / len(loader)), np.interp over [0, 2/5, 1] of training
    ref = [np.interp(e + (i + 1) / spe, [0, cfg.epochs * 2 / 5, cfg.epochs], [0, 0.2, 0])
           for e in range(cfg.epochs) for i in range(spe)]
    np.testing.assert_allclose(lrs, ref, rtol=1e-9, atol=1e-12)
    assert max(lrs) == pytest.approx(0.2) and lrs[-1] == pytest.approx(0.0, abs=1e-12)


class BNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                                  nn.Linear(4 * 8 * 8, 10))

    def forward(self, x):
        return self.body(x)


def test_fast_at_step_is_crafted_in_train_mode_as_wong_et_al_do():
    torch.manual_seed(0)
    model = BNNet()
    x, y = torch.rand(16, 3, 8, 8), torch.randint(0, 10, (16,))
    spec = AttackSpec("pgd", eps=8 / 255, alpha=10 / 255, steps=1)
    reference = BNNet()
    reference.load_state_dict(model.state_dict())
    model.eval()  # whatever mode it comes in, the step is crafted in train mode and the mode comes back

    torch.manual_seed(1)
    ours = fast_at_images(model, x, y, spec)
    assert model.training is False
    torch.manual_seed(1)  # the reference: their train_fgsm.py, written out
    reference.train()
    delta = torch.zeros_like(x).uniform_(-8 / 255, 8 / 255)
    delta = torch.max(torch.min(delta, 1 - x), -x).requires_grad_(True)
    nn.functional.cross_entropy(reference(x + delta), y).backward()
    delta = (delta + 10 / 255 * delta.grad.sign()).clamp(-8 / 255, 8 / 255)
    delta = torch.max(torch.min(delta, 1 - x), -x).detach()
    torch.testing.assert_close(ours, x + delta, rtol=0, atol=1e-6)
    # train mode: the BatchNorm running statistics moved, as in theirs
    torch.testing.assert_close(model.body[1].running_mean, reference.body[1].running_mean)
    assert not torch.equal(model.body[1].running_mean, torch.zeros(4))
    assert (ours - x).abs().max() <= 8 / 255 + 1e-6 and all(p.grad is None for p in model.parameters())


def test_the_validation_pgd_is_pgd_10_of_two_255ths_whatever_the_training_attack():
    for section in ("q2-fast-at", "q2-pgd-at", "q2-trades"):
        spec = eval_attack(resolve(section, "paper"))
        assert (spec.method, spec.steps, spec.alpha, spec.eps) == ("pgd", 10, 2 / 255, 8 / 255), section


def test_keep_best_keeps_the_epoch_with_the_best_robust_validation_accuracy(tmp_path, monkeypatch):
    from trainers import loop

    cfg = resolve("q2-pgd-at", "demo", pretrained=False, train_size=40, eval_size=20, val_size=20, epochs=3,
                  batch_size=20, attack_steps=1)
    values = iter([30.0, 50.0, 40.0])  # the robust val accuracy each epoch: epoch 2 is the best
    real = loop.accuracy

    def accuracy(classifier, batches, attack=None, **kw):
        return next(values) if attack is not None else real(classifier, batches, **kw)

    monkeypatch.setattr(loop, "accuracy", accuracy)
    states = []
    real_keep = loop.keep_if_best
    monkeypatch.setattr(loop, "keep_if_best", lambda best, model, row, key: (
        states.append({k: v.clone() for k, v in model.state_dict().items()}), real_keep(best, model, row, key)))
    results = run(cfg, tmp_path / "r", wandb=False)
    assert results["selected_epoch"] == 2 and "best digits val robust accuracy (PGD-10)" in results["selected_by"]
    assert results["metrics"]["digits_val_adv_acc"] == 50.0
    assert results["metrics"]["digits_test_acc"] == results["history"][1]["digits_test_acc"]
    saved = torch.load(tmp_path / "r" / "model.pt", weights_only=True)
    assert all(torch.equal(saved[k], states[1][k]) for k in saved)  # epoch 2's weights, not the last epoch's
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["selected_epoch"] == 2
