"""runs/: the one home of run folders (finished-run loading, checkpoints, the transfer source)."""
import json

import pytest
import torch

from core.errors import RunFailure, UsageError
from experiments import resolve
from runs import (
    CHECKPOINT,
    load_run,
    load_state,
    pick_device,
    prepare_data,
    restore_checkpoint,
    save_checkpoint,
    source_model,
)
from trainers.loop import build_optimizer, run


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "run"
    cfg = resolve("q2-baseline", "demo", pretrained=False, train_size=40, val_size=20, eval_size=20, epochs=1)
    run(cfg, out, wandb=False)
    return out, cfg


def test_load_run_gives_the_trained_weights_in_eval_mode(finished):
    out, cfg = finished
    results, loaded_cfg, model = load_run(out)
    assert results["preset"] == "q2-baseline" and loaded_cfg == cfg
    assert json.loads((out / "metrics.json").read_text())["config"]["lr"] == cfg.lr
    assert not model.training
    saved = torch.load(out / "model.pt", weights_only=True)
    for k, v in model.state_dict().items():
        assert torch.equal(v, saved[k])


def test_an_unfinished_folder_is_refused(tmp_path):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "model.pt").write_bytes(b"")
    with pytest.raises(UsageError, match="no finished model"):
        load_run(tmp_path / "half")


def test_checkpoint_round_trip_and_refusal_of_another_config(finished, tmp_path):
    out, cfg = finished
    _, _, model = load_run(out)
    opt, sched = build_optimizer(cfg, model)
    save_checkpoint(tmp_path, cfg, model, opt, sched, epoch=3, history=[{"epoch": 4}])
    assert (tmp_path / CHECKPOINT).is_file()
    start, history = restore_checkpoint(tmp_path, cfg, model, opt, sched)
    assert start == 4 and history == [{"epoch": 4}]
    other = resolve("q2-baseline", "demo", pretrained=False, train_size=40, val_size=20, eval_size=20, epochs=1,
                    lr=0.5)
    with pytest.raises(UsageError, match="lr is 0.01 there but 0.5 here"):
        restore_checkpoint(tmp_path, other, model, opt, sched)


def test_load_state_names_what_does_not_fit(finished):
    out, cfg = finished
    _, _, model = load_run(out)
    state = model.state_dict()
    state.pop("fc.weight")
    with pytest.raises(RunFailure, match="missing fc.weight"):
        load_state(model, state, "x.pt")


def test_source_model_is_the_run_or_the_seeded_imagenet_model(finished, monkeypatch):
    out, cfg = finished
    model, desc = source_model(cfg, str(out), seed=0)
    assert desc == str(out) and not model.training
    import runs.folder as folder

    monkeypatch.setattr(folder, "build_model", lambda c: torch.nn.Linear(2, 2) if c.pretrained else None)
    model, desc = source_model(cfg, "pretrained", seed=3)
    assert "ImageNet ResNet18" in desc and "seed 3" in desc


def test_prepare_data_applies_the_config_subsets():
    cfg = resolve("q2-baseline", "demo", pretrained=False, train_size=40, val_size=20, eval_size=10)
    train, evals, described = prepare_data(cfg, "data", None, False)
    assert len(train) == 40 and set(evals) == {"digits_val", "digits_test"}
    assert len(evals["digits_val"]) == 10 and len(evals["digits_test"]) == 10
    assert described["train"]["size"] == 40


def test_pick_device():
    assert pick_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert pick_device("auto").type == "cpu"
        with pytest.raises(UsageError, match="CUDA is not available"):
            pick_device("cuda:0")


def test_init_from_a_run_older_than_an_architecture_field_takes_that_fields_default(tmp_path):
    """--init-from takes the source run's architecture; a field its results file predates (here the in-model
    normalisation) was at the field's default when it trained, not at the new run's value."""
    from core.config import RunConfig
    from core.io import to_jsonable
    from models.resnet import build_model
    from runs.folder import init_model

    src_cfg = resolve("dg-erm-digitnet", "demo", norm="none")
    src = tmp_path / "src"
    src.mkdir()
    built = build_model(RunConfig.from_dict({**src_cfg.to_dict(), "input_mean": None, "input_std": None}))
    torch.save(built.state_dict(), src / "model.pt")
    saved = {k: v for k, v in to_jsonable(src_cfg.to_dict()).items() if k not in ("input_mean", "input_std")}
    (src / "metrics.json").write_text(json.dumps({"config": saved}))
    cfg = resolve("dg-erm-digitnet", "demo", init_from=str(src))
    assert cfg.input_mean == (0.5, 0.5, 0.5)  # the section's own value, before the source is read
    model = init_model(cfg)
    assert (cfg.arch, cfg.norm, cfg.input_mean, cfg.input_std) == ("digitnet", "none", None, None)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), built.state_dict().values()))
