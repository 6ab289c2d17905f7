"""core/wandb_keys.py: the W&B key names the loop and the evaluations log under, spelled as they always were
(runs logged before the names moved here stay comparable)."""
from core import wandb_keys as keys


def test_the_key_names():
    assert [keys.train(n) for n in ("loss", "acc", "adv_fraction", "lr", "seconds")] == \
        ["train/loss", "train/acc", "train/adv_fraction", "train/lr", "train/seconds"]
    assert keys.test_acc("cifar10") == "test/cifar10/acc" and keys.val_acc("svhn") == "val/svhn/acc"
    assert keys.val_adv_acc("cifar10") == "adv/val/cifar10/acc"
    assert keys.adv_acc("white-box", "PGD-10") == "adv/white-box/PGD-10/acc"
    assert keys.CLEAN_ACC == "clean/acc" and keys.audit(3) == "audit/3"
    assert (keys.ROBUSTNESS_TABLE, keys.EPS_SWEEP_TABLE, keys.CURVES_IMAGE) == ("robustness", "eps_sweep", "curves")

