"""report/figures.py and report/run_figures.py: error bars from eval/stats.py (the DG bars' larger-half fix),
dataset names and colours from the registry, and every figure written to its file."""
from types import SimpleNamespace

import matplotlib.axes
import pytest

from eval.stats import error_bar, wilson
from experiments import QUESTIONS, SECTIONS
from report import figures, run_figures


def test_the_dg_bars_use_the_larger_half_of_the_interval_with_one_seed(tmp_path, monkeypatch):
    drawn = []
    real_bar = matplotlib.axes.Axes.bar
    monkeypatch.setattr(matplotlib.axes.Axes, "bar",
                        lambda self, *a, **k: drawn.append(k["yerr"]) or real_bar(self, *a, **k))
    one_seed, three = (90.0, float("nan"), 1), (80.0, 2.5, 3)
    bars = {"dg-erm-digitnet": {"mnist": (one_seed, 200), "usps": (three, 2007)}}
    alt, name = figures.targets(bars, QUESTIONS["dg"], SECTIONS, tmp_path)
    assert (tmp_path / name).is_file() and name == "dg-targets.png"
    (errs,) = drawn
    assert errs[0] == pytest.approx(error_bar(90.0, 200)) == pytest.approx(90.0 - wilson(90.0, 200)[0])
    assert errs[0] > wilson(90.0, 200)[1] - 90.0  # the upper half alone (the old rule) was smaller
    assert errs[1] == 2.5  # the seed std with three seeds


def test_series_labels_and_colours_come_from_the_registry():
    demo = {"roles": {"svhn": "digits", "mnist": "digits-inverted"}, "config": {"val_attack": "pgd"}}
    assert run_figures.series_label("digits-inverted_test_acc", demo) == ("MNIST (stand-in: inverted digits) test", "mnist")
    assert run_figures.series_label("digits_val_adv_acc", demo) == \
        ("SVHN (stand-in: digits) val, under white-box pgd", "svhn")
    assert run_figures.series_label("cifar10_val_acc", {}) == ("CIFAR-10 val", "cifar10")
    assert run_figures.series_label("train_loss", demo) == ("train", "train")
    assert run_figures.colour("usps") == "#d62728" and run_figures.colour("train") == "#333333"
    assert run_figures.colour("digits") is None


def test_training_curves_and_the_eps_curve_are_drawn(tmp_path):
    results = {"preset": "q1-baseline", "profile": "demo", "seed": 0, "roles": {"svhn": "digits"},
               "history": [{"epoch": e, "train_loss": 1.0 / e, "train_acc": 50.0 + e, "digits_test_acc": 40.0 + e}
                           for e in (1, 2, 3)]}
    run_figures.plot_curves(results, tmp_path / "curves.png")
    sweep = [{"eps": e / 255, "method": "pgd", "label": "PGD-10", "robust_acc": 80.0 - e} for e in (0, 2, 8, 64)]
    run_figures.eps_curve(sweep, tmp_path / "eps.png", title="t")
    assert (tmp_path / "curves.png").stat().st_size > 5_000 and (tmp_path / "eps.png").stat().st_size > 5_000


def test_the_eps_figure_of_every_model_uses_the_seed_std_or_the_error_bar(tmp_path, monkeypatch):
    drawn = []
    real = matplotlib.axes.Axes.errorbar
    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar",
                        lambda self, *a, **k: drawn.append(k["yerr"]) or real(self, *a, **k))
    rob = [{"test": {"n": 300}, "eps_sweep": [{"eps": e / 255, "method": "fgsm", "robust_acc": 70.0 - e}
                                              for e in (0, 8)]}]
    alt, name = figures.eps_models({"q2-baseline": rob}, SimpleNamespace(name="q2"), tmp_path)
    assert name == "q2-eps.png" and (tmp_path / name).is_file()
    assert drawn == [[pytest.approx(error_bar(70.0, 300)), pytest.approx(error_bar(62.0, 300))]]


def test_the_example_grid_lays_every_image_and_prediction_on_one_canvas(tmp_path, monkeypatch):
    import matplotlib.axes
    import torch

    shown, texts = [], []
    real_imshow, real_text = matplotlib.axes.Axes.imshow, matplotlib.axes.Axes.text
    monkeypatch.setattr(matplotlib.axes.Axes, "imshow", lambda self, a, **k: shown.append(a) or real_imshow(self, a, **k))
    monkeypatch.setattr(matplotlib.axes.Axes, "text", lambda self, x, y, s, **k: texts.append((s, k.get("color")))
                        or real_text(self, x, y, s, **k))
    grey = torch.rand(3, 1, 8, 8)  # one-channel images (the digits) are shown in grey
    rows = [{"name": "clean", "images": grey, "preds": torch.tensor([0, 1, 2])},
            {"name": "PGD-10", "images": grey.expand(-1, 3, -1, -1) * 0.5, "preds": torch.tensor([0, 0, 0])}]
    run_figures.example_grid({"labels": [0, 1, 2], "rows": rows}, tmp_path / "g.png", names=["a", "b", "c"])
    assert (tmp_path / "g.png").stat().st_size > 0
    (canvas,) = shown
    assert canvas.shape[2] == 3 and canvas.shape[0] == 2 * (8 + 4)  # two rows, each 8 px under 4 px of label room
    assert canvas[4:12, 0:8, 0] == pytest.approx(grey[0, 0].numpy())  # the first image, at its place, unchanged
    assert canvas[16:24, 9:17, 1] == pytest.approx(0.5 * grey[1, 0].numpy())  # row 2, column 2, after a 1 px gap
    assert texts[:3] == [("a", "green"), ("b", "green"), ("c", "green")] and texts[3] == ("clean", None)
    assert texts[4:7] == [("a", "green"), ("a", "red"), ("a", "red")]
