"""The run matrix: which runs a profile plans, where each lives, what each trains; and that the cost planner
prices exactly those runs."""
from pathlib import Path

import pytest

from experiments import PROFILES, SECTIONS, costs
from experiments.matrix import runs


def test_single_seed_layout_uses_make_s_seed_and_the_sections_folders(tmp_path):
    planned = list(runs("smoke", tmp_path, seed=3))
    curve = PROFILES["smoke"].curve_samples
    assert len(planned) == len(SECTIONS) - 1 + len(curve)  # one run per section, one per curve point
    by_folder = {run.folder: run for run in planned}
    base = tmp_path / "smoke"
    assert {r.seed for r in planned} == {3} and {r.layout_seed for r in planned} == {None}
    assert by_folder[base / "q1-baseline"].config.seed == 3
    points = [by_folder[base / "q1-finetune-curve" / f"samples-{n}"] for n in curve]
    assert [p.samples for p in points] == list(curve) and [p.config.finetune_samples for p in points] == list(curve)
    assert all(p.needs == base / "q1-reverse-unsupervised" and p.config.init_from == str(p.needs) for p in points)
    examples = by_folder[base / "q2-examples"]
    assert examples.command is None and examples.model == examples.needs == base / "q2-baseline"
    assert examples.config.preset == "q2-baseline"  # the config of the run it evaluates
    assert by_folder[base / "q1-reverse-supervised"].command == "finetune-fc"


def test_seed_layout_plans_every_seed_beside_its_sources(tmp_path):
    planned = list(runs("demo", tmp_path, seeds=(0, 2), sections=["q1-finetune-curve", "q2-circle"]))
    base = tmp_path / "demo"
    assert [r.folder for r in planned] == [
        *(base / "q1-finetune-curve" / f"samples-{n}" / f"seed-{s}" for s in (0, 2)
          for n in PROFILES["demo"].curve_samples),
        base / "q2-circle" / "seed-0", base / "q2-circle" / "seed-2"]
    assert all(r.seed == r.layout_seed == r.config.seed for r in planned)
    assert {r.needs for r in planned if r.section == "q1-finetune-curve"} == \
        {base / "q1-reverse-unsupervised" / "seed-0", base / "q1-reverse-unsupervised" / "seed-2"}


def test_pretrained_and_weights_reach_the_configs_and_notes_are_returned(tmp_path, capsys):
    planned = {r.section: r for r in runs("smoke", tmp_path, pretrained=False, weights="w.pth",
                                          sections=["q1-baseline", "q2-baseline"])}
    assert not planned["q2-baseline"].config.pretrained and planned["q2-baseline"].config.weights is None
    assert "--weights unused" in " ".join(planned["q1-baseline"].notes)
    with_weights = next(runs("smoke", tmp_path, weights="w.pth", sections=["q1-pretrained"]))
    assert with_weights.config.weights == "w.pth" and with_weights.notes == ()
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("profile, seed, seeds, pretrained, weights", [
    ("smoke", 0, (), True, None), ("demo", 4, (), False, "w.pth"), ("quick", 0, (0, 1, 2), True, "w.pth"),
    ("paper", 0, (5,), False, None)])
def test_the_planner_prices_the_matrix_s_training_runs(tmp_path, profile, seed, seeds, pretrained, weights):
    table, _ = costs.rows(profile, list(SECTIONS), str(tmp_path), seeds, pretrained, bench_dir=tmp_path,
                          seed=seed, weights=weights)
    planned = [r for r in runs(profile, str(tmp_path), seed=seed, seeds=seeds, pretrained=pretrained,
                               weights=weights) if r.command]
    assert [row["run"] for row in table] == [str(r.folder) for r in planned]
    assert [row["epochs"] for row in table] == [r.config.epochs for r in planned]
    assert all(Path(row["run"]).is_relative_to(tmp_path / profile) for row in table)
