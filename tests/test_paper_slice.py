"""The paper profile's exact settings, with only the data cut (a few hundred images, one epoch), so the
shapes, memory paths and file layout that only PROFILE=paper takes run in CI: Q2 at 224 px on the
device, batch 128, normalization (0.5, 0.5, 0.5) inside the model, ImageNet init from a saved state dict
with torchvision's keys, a validation split held out of train; Q1 at batch 16, 32 px, SVHN's format."""
import json

import pytest
import torch

from eval.attack_run import attack_run
from eval.plan import Evaluation
from experiments import SECTIONS, resolve
from trainers.loop import run

pytestmark = pytest.mark.slow
CUT = dict(train_size=200, eval_size=60, epochs=1)  # the only changes from the paper profile


@pytest.mark.slow(cost=90)
def test_q2_paper_settings_on_a_slice(tmp_path, data_root, weights_file):
    # 136 = one full batch of 128 and a partial one: both paths at 224 px, on two thirds of CUT's images
    cfg = resolve("q2-baseline", "paper", val_size=100, weights=str(weights_file), **{**CUT, "train_size": 136})
    paper = {**SECTIONS["q2-baseline"].overrides}
    assert (cfg.model_input_size, cfg.image_size, cfg.batch_size, cfg.input_mean, cfg.input_std, cfg.pretrained) == \
        (224, None, 128, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), True) == \
        (paper["model_input_size"], paper.get("image_size"), paper["batch_size"], paper["input_mean"],
         paper["input_std"], paper["pretrained"])
    assert paper["val_size"] == 10_000  # the paper's split, cut to 100 here as the data is
    results = run(cfg, tmp_path / "q2", data_root=data_root, wandb=False)
    assert results["datasets"]["cifar10_val"]["size"] == 60 and results["datasets"]["train"]["size"] == 136
    assert {"cifar10_val_acc", "cifar10_val_adv_acc", "cifar10_test_acc"} <= set(results["metrics"])
    assert results["config"]["weights"] == str(weights_file)
    # the ImageNet weights loaded with torchvision's keys: every layer but fc started from the file
    state, trained = torch.load(weights_file, weights_only=True), torch.load(tmp_path / "q2" / "model.pt", weights_only=True)
    assert set(state) - {"fc.weight", "fc.bias"} <= set(trained)
    report = attack_run(Evaluation(kind="attack", model=str(tmp_path / "q2"), out=str(tmp_path / "q2" / "robustness.json"),
                                   attacks=[a for a in SECTIONS["q2-baseline"].evals[0].attacks
                                            if a.threat == "white-box" and a.method in ("fgsm", "pgd")], n=16,
                                   data_root=str(data_root)))
    assert report["test"]["n"] == 16 and {r["method"] for r in report["results"]} == {"fgsm", "pgd"}
    # one threat model at every profile: the model trains at 224 px, its attacks act on CIFAR-10's 32x32 pixels,
    # every perturbation within eps there (the resize is a layer inside the model)
    for row in report["results"]:
        assert row["threat_pixels"] == "32x32" and row["max_perturbation"] <= row["eps"] + 1e-6, row
        assert 0 <= row["min_pixel"] and row["max_pixel"] <= 1
    assert json.loads((tmp_path / "q2" / "robustness.json").read_text())["evaluation"] == "attack"


@pytest.mark.slow(cost=6)
def test_q1_paper_settings_on_a_slice(tmp_path, data_root):
    cfg = resolve("q1-baseline", "paper", **CUT)
    assert (cfg.batch_size, cfg.image_size, cfg.train_on, cfg.eval_on) == (16, None, "svhn", ("svhn", "mnist"))
    results = run(cfg, tmp_path / "q1", data_root=data_root, wandb=False)
    assert results["datasets"]["train"]["source"].endswith("train_32x32.mat")  # SVHN's own format
    assert {"svhn_test_acc", "mnist_test_acc"} <= set(results["metrics"])
    assert results["datasets"]["train"]["last_batch"] == "kept whole"  # 200 = 12 x 16 + 8
