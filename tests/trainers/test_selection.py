"""The DG benchmark authors' checkpoint selection (RunConfig.select_every): validation on held-out source images
every N iterations, RandConv on and averaged over draws for RandConv models, and the best checkpoint kept."""
import json

import pytest
import torch

from core.errors import RunFailure
from experiments import resolve
from trainers import loop
from trainers.loop import run


def _cfg(section="dg-erm-digitnet", **kw):
    # demo: scikit-learn's digits stand in for MNIST (the first 200 images train, the val split comes from the rest)
    base = dict(train_size=200, val_size=100, eval_size=60, epochs=3, select_every=5, select_draws=2)
    return resolve(section, "demo", **{**base, **kw})


def test_a_run_whose_validation_peaks_early_keeps_the_early_checkpoint(tmp_path, monkeypatch):
    seen, states = [], []
    values = iter([40.0, 90.0, 50.0, 60.0, 70.0, 80.0, 85.0, 89.0, 20.0, 10.0, 5.0, 1.0, 1.0, 1.0, 1.0])

    def fake_accuracy(self):  # the second check (iteration 10) is the best of the run
        seen.append(self.iteration)
        states.append({k: v.clone() for k, v in self.model.state_dict().items()})
        return next(values)

    monkeypatch.setattr(loop.Selector, "accuracy", fake_accuracy)
    results = run(_cfg(), tmp_path / "r", wandb=False)
    steps = -(-200 // 32)  # 7 iterations per epoch, 21 in all: checks at 5, 10, 15, 20 and the last, 21
    assert seen == [5, 10, 15, 20, 21] and results["history"][-1]["epoch"] == 3
    assert results["selection"] == {"every": 5, "draws": 1, "iteration": 10, "val_acc": 90.0}  # ERM: one draw
    assert results["selected_epoch"] == -(-10 // steps) == 2
    assert "checked every 5 iterations: iteration 10" in results["selected_by"]
    kept = torch.load(tmp_path / "r" / "model.pt", weights_only=True)
    assert all(torch.equal(kept[k], states[1][k]) for k in kept)
    assert not all(torch.equal(kept[k], states[-1][k]) for k in kept)
    # the kept model's own test numbers and per-image records, not the last epoch's
    on_disk = json.loads((tmp_path / "r" / "metrics.json").read_text())
    for key, record in on_disk["correct"].items():
        assert 100 * record.count("1") / len(record) == pytest.approx(on_disk["metrics"][f"{key}_acc"])


def test_randconv_validation_averages_its_draws_and_leaves_training_unchanged(tmp_path, monkeypatch):
    draws = []
    real = loop.Selector.accuracy

    def spy(self):
        value = real(self)
        draws.append(value)
        return value

    monkeypatch.setattr(loop.Selector, "accuracy", spy)
    selected = run(_cfg("dg-randconv-digitnet", epochs=1), tmp_path / "sel", wandb=False)
    assert selected["selection"]["draws"] == 2 and "RandConv on, the mean of 2 draws" in selected["selected_by"]
    assert len(draws) == 2 and selected["selection"]["val_acc"] == max(draws)  # iterations 5 and 7 (the last)
    # validation draws its own random streams: the training itself is the same with selection off
    plain = run(_cfg("dg-randconv-digitnet", epochs=1, select_every=0), tmp_path / "plain", wandb=False)
    assert selected["history"][0]["train_loss"] == plain["history"][0]["train_loss"]


def test_the_val_split_lies_beyond_the_first_images_and_selection_needs_one():
    from core.errors import UsageError
    from runs.folder import prepare_data

    cfg = _cfg()
    train, evals, described = prepare_data(cfg, "data", None, False)
    assert len(train) == 200 and described["digits-inverted_val"]["size"] == 100
    # the training images are the first 200; none of the val images is among them (compare the pixels)
    val = evals["digits-inverted_val"].images.flatten(1)
    assert not (torch.cdist(val.float(), train.images.flatten(1).float()) == 0).any()
    with pytest.raises(UsageError, match="select-every .* needs a val-size"):
        _cfg(val_size=0)


def test_a_kept_checkpoint_that_diverged_is_never_saved(tmp_path, monkeypatch):
    """The kept checkpoint falls between epochs, so no per-epoch check has seen it: the loop's end-of-training check
    (save_checkpoint and finish_run leave it to their caller) stops the run before model.pt or metrics.json."""
    measure = loop.Selector.measure

    def overflowed(self, classifier, eval_batches, steps_per_epoch):
        next(self.model.parameters()).data.fill_(float("nan"))
        return measure(self, classifier, eval_batches, steps_per_epoch)

    monkeypatch.setattr(loop.Selector, "measure", overflowed)
    with pytest.raises(RunFailure, match="the model diverged by the end of training: "):
        run(_cfg(epochs=1), tmp_path / "r", wandb=False)
    assert not any((tmp_path / "r" / name).exists() for name in ("metrics.json", "model.pt"))
