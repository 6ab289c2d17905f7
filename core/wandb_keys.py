"""The W&B key names, defined once: the training loop and the evaluations log under them, the W&B Report
reads them. <dataset> is the study's name for a dataset (a stand-in's role), so demo and real runs line up;
<label> is an attack's label as the results file writes it (e.g. PGD-10, FGSM, AutoAttack).

  train/<name>              per epoch: train/loss, train/acc, train/adv_fraction, train/lr, train/seconds
  test/<dataset>/acc        per epoch, and the final value in the summary
  val/<dataset>/acc         per epoch, on the validation split
  adv/val/<dataset>/acc     per epoch, on the validation split under the white-box validation attack
  adv/<threat>/<label>/acc  an evaluation's robust accuracy (summary)
  clean/acc                 an evaluation's clean accuracy (summary)
  audit/<check>             the gradient-masking audit's verdict per check: pass, flag or inconclusive (summary)
Tables and images: robustness and eps_sweep (tables; eps_sweep_plot its line plot), curves (training curves),
examples, eps and umap (an evaluation's figures).
"""
from __future__ import annotations

CLEAN_ACC = "clean/acc"
ROBUSTNESS_TABLE, EPS_SWEEP_TABLE = "robustness", "eps_sweep"
CURVES_IMAGE = "curves"


def train(name: str) -> str:
    """train/<name>: loss, acc, adv_fraction, lr or seconds."""
    return f"train/{name}"


def test_acc(dataset: str) -> str:
    return f"test/{dataset}/acc"


def val_acc(dataset: str) -> str:
    return f"val/{dataset}/acc"


def val_adv_acc(dataset: str) -> str:
    return f"adv/val/{dataset}/acc"


def adv_acc(threat: str, label: str) -> str:
    return f"adv/{threat}/{label}/acc"


def audit(check) -> str:
    return f"audit/{check}"
