import json

import pytest
import torch

from core.errors import RunFailure, UsageError
from experiments import resolve
from trainers import loop
from trainers.loop import run


def tiny(preset="q1-baseline", **kw):
    base = dict(train_size=96, eval_size=60, epochs=2, batch_size=32)
    base.update(kw)
    return resolve(preset, "demo", pretrained=False, **base)


def _strip_time(results):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in results["history"]]


def test_results_contract(tmp_path):
    from report.run_figures import plot_curves

    results = run(tiny(), tmp_path / "r", wandb=False, draw_curves=plot_curves)
    on_disk = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert on_disk == results
    for key in ("preset", "profile", "seed", "config", "metrics", "history", "provenance"):
        assert key in on_disk
    assert set(on_disk["metrics"]) == {"train_loss", "train_acc", "digits_test_acc", "digits-inverted_test_acc"}
    assert len(on_disk["history"]) == 2 and on_disk["history"][1]["epoch"] == 2
    # per test image of the kept (last) epoch: what the report's paired bootstrap compares across sections
    assert set(on_disk["correct"]) == {"digits_test", "digits-inverted_test"}
    for key, record in on_disk["correct"].items():
        assert len(record) == on_disk["datasets"][key]["size"] == 60 and set(record) <= {"0", "1"}
        assert 100 * record.count("1") / len(record) == pytest.approx(on_disk["metrics"][f"{key}_acc"])
    prov = on_disk["provenance"]
    assert {"git_commit", "versions", "device", "wall_seconds"} <= set(prov)
    import importlib.metadata

    assert prov["versions"]["torch"] == importlib.metadata.version("torch")
    assert (tmp_path / "r" / "curves.png").stat().st_size > 1000
    assert (tmp_path / "r" / "model.pt").is_file()
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


@pytest.mark.parametrize("preset", ["q1-baseline", "q1-randconv"])  # RandConv's draws resume exactly too
def test_resume_after_interruption_equals_an_uninterrupted_run(tmp_path, monkeypatch, preset):
    tiny_ = lambda: tiny(preset)
    full = run(tiny_(), tmp_path / "full", wandb=False)

    real_line = loop._epoch_line

    def crash_after_first_epoch(cfg, row):
        if row["epoch"] == 1:
            raise KeyboardInterrupt  # the checkpoint of epoch 1 is already on disk
        return real_line(cfg, row)

    monkeypatch.setattr(loop, "_epoch_line", crash_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        run(tiny_(), tmp_path / "cut", wandb=False)
    assert (tmp_path / "cut" / "checkpoint.pt").is_file()
    assert not (tmp_path / "cut" / "metrics.json").exists()
    monkeypatch.setattr(loop, "_epoch_line", real_line)
    resumed = run(tiny_(), tmp_path / "cut", wandb=False, resume=True)
    assert _strip_time(resumed) == _strip_time(full)
    assert resumed["metrics"] == full["metrics"]
    # the results file says which process trained which epochs, and at which commit
    segs = lambda r: [(s["epochs"], s["git_commit"]) for s in r["provenance"]["segments"]]
    commit = full["provenance"]["git_commit"]
    assert segs(full) == [([1, 2], commit)]
    assert segs(resumed) == [([1, 1], commit), ([2, 2], commit)]


def test_resume_refuses_a_checkpoint_of_another_run(tmp_path, monkeypatch):
    monkeypatch.setattr(loop, "_epoch_line", lambda cfg, row: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        run(tiny(), tmp_path / "r", wandb=False)
    with pytest.raises(UsageError, match="different run: lr is 0.001 there but 0.01 here"):
        run(tiny(lr=0.01), tmp_path / "r", wandb=False, resume=True)


def test_a_checkpoint_from_before_a_new_field_still_resumes(tmp_path, monkeypatch):
    """A checkpoint written by an older trustlab lacks the fields added since; they were at their defaults."""
    monkeypatch.setattr(loop, "_epoch_line", lambda cfg, row: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        run(tiny(), tmp_path / "r", wandb=False)
    ckpt = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=True)
    for field in ("arch", "randconv", "optional_eval", "train_take"):
        ckpt["method"].pop(field)
    torch.save(ckpt, tmp_path / "r" / "checkpoint.pt")
    ckpt.pop("segments")  # written before segments were recorded: the earlier epochs' commit is unknown
    torch.save(ckpt, tmp_path / "r" / "checkpoint.pt")
    monkeypatch.undo()
    resumed = run(tiny(), tmp_path / "r", wandb=False, resume=True)
    assert resumed["history"][-1]["epoch"] == 2
    assert [s["epochs"] for s in resumed["provenance"]["segments"]] == [[1, 1], [2, 2]]
    assert resumed["provenance"]["segments"][0]["git_commit"].startswith("unknown")
    with pytest.raises(UsageError, match=r"different run: preset .* \(and 2 more\)"):  # randconv(_chain): real ones
        torch.save(ckpt, tmp_path / "r" / "checkpoint.pt")
        run(tiny("q1-randconv"), tmp_path / "r", wandb=False, resume=True, overwrite=True)


def test_randconv_runs_once_per_training_step(tmp_path, monkeypatch):
    from loaders.randconv import RandConv

    calls, real = [], RandConv.__call__
    monkeypatch.setattr(RandConv, "__call__", lambda self, x, g: calls.append(len(x)) or real(self, x, g))
    # fp32: CPU bf16 autocast is 7-50x slower on a CPU without bf16 units (RandConv under autocast: test_randconv)
    r = run(tiny("q1-randconv", epochs=1), tmp_path / "rc", wandb=False)
    assert calls == [32, 32, 32]  # 96 images, batch 32: every step, and only training steps
    assert r["provenance"]["precision"] == "fp32"
    calls.clear()
    run(tiny(epochs=1), tmp_path / "plain", wandb=False)
    assert calls == []


def test_randconv_views_make_one_forward_pass_each(tmp_path):
    """The ResNet18 sees each view in its own pass (BatchNorm statistics per view), as the authors' trainer does."""
    from torch.nn.modules.module import register_module_forward_pre_hook

    from models.resnet import ResNet18

    sizes = []
    handle = register_module_forward_pre_hook(
        lambda m, args: sizes.append(len(args[0])) if isinstance(m, ResNet18) and m.training else None)
    try:
        run(tiny("q1-randconv", epochs=1), tmp_path / "rc", wandb=False)
    finally:
        handle.remove()
    assert sizes == [32] * 9  # 3 steps x 3 views of 32, never one pass of 96


def test_view_logits_normalise_each_view_over_its_own_batch():
    from trainers.loop import view_logits

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten()).train()
    views = torch.cat([torch.randn(5, 3, 6, 6), 3 + 2 * torch.randn(5, 3, 6, 6)])
    expected = torch.cat([model(v) for v in views.chunk(2)])
    assert torch.allclose(view_logits(model, model, views, 2), expected, atol=1e-6)
    assert not torch.allclose(model(views), expected, atol=1e-3)  # one joint pass would normalise across views


def test_same_seed_same_numbers(tmp_path):
    a = run(tiny(epochs=1), tmp_path / "a", wandb=False)
    b = run(tiny(epochs=1), tmp_path / "b", wandb=False)
    assert a["metrics"] == b["metrics"]
    assert not (tmp_path / "a" / "curves.png").exists()  # no draw_curves: the loop draws nothing


def test_finetune_fc_changes_only_fc(tmp_path):
    run(tiny(epochs=1), tmp_path / "src", wandb=False)
    cfg = resolve("q1-reverse-supervised", "demo", epochs=2, finetune_samples=50, eval_size=40,
                  init_from=str(tmp_path / "src"))
    cfg.augment = False
    results = run(cfg, tmp_path / "ft", wandb=False)
    before = torch.load(tmp_path / "src" / "model.pt", weights_only=True)
    after = torch.load(tmp_path / "ft" / "model.pt", weights_only=True)
    changed = sorted(k for k in before if not torch.equal(before[k], after[k]))
    assert changed == ["fc.bias", "fc.weight"]
    assert results["datasets"]["train"]["size"] == 50


def test_nan_loss_stops_with_epoch_and_step(tmp_path):
    with pytest.raises(RunFailure, match=r"NaN or inf at epoch 1, step \d+"):
        run(tiny(lr=1e12), tmp_path / "nan", wandb=False)
    assert not (tmp_path / "nan" / "metrics.json").exists()


def test_a_model_that_diverged_while_its_loss_stayed_finite_is_never_saved(tmp_path, monkeypatch):
    """An overflowed buffer or weight with a finite loss: the loop's own check (save_checkpoint and finish_run
    leave it to their caller) stops the run before a checkpoint or a results file is written."""
    def overflow(model):
        dict(model.named_buffers()).get("bn1.running_var", next(model.parameters())).data.fill_(float("inf"))

    monkeypatch.setattr(loop, "broadcast_buffers", overflow)  # called after every epoch's training steps
    with pytest.raises(RunFailure, match="the model diverged in epoch 1: "):
        run(tiny(epochs=2), tmp_path / "inf", wandb=False)
    assert not any((tmp_path / "inf" / name).exists() for name in ("checkpoint.pt", "metrics.json", "model.pt"))


def test_finished_results_are_not_overwritten(tmp_path):
    run(tiny(epochs=1), tmp_path / "r", wandb=False)
    before = (tmp_path / "r" / "metrics.json").read_text()
    with pytest.raises(UsageError, match="exists already"):
        run(tiny(epochs=1, seed=1), tmp_path / "r", wandb=False)
    assert (tmp_path / "r" / "metrics.json").read_text() == before


def test_it_really_learns_on_digits(tmp_path):
    """A short real run on scikit-learn's handwritten digits must land far above chance (10%)."""
    cfg = resolve("q1-baseline", "demo", pretrained=False, train_size=400, eval_size=300, epochs=2)  # the demo's
    results = run(cfg, tmp_path / "learn", wandb=False)  # own scale (its q1-baseline reaches about 92%)
    assert results["metrics"]["digits_test_acc"] > 80.0
    assert results["history"][1]["train_loss"] < results["history"][0]["train_loss"]


def test_compiled_training_step_matches_the_plain_one(tmp_path, monkeypatch):
    # torch.compile through dynamo with the eager backend: the same ops, so the same numbers, and the saved
    # state dict keeps torchvision's keys (no `_orig_mod.` prefix). Inductor's speed is a CUDA matter.
    monkeypatch.setenv("TRUSTLAB_COMPILE_BACKEND", "eager")
    calls = []
    real_compile = torch.compile

    def spy(model, **kw):
        calls.append(kw)
        return real_compile(model, **kw)

    monkeypatch.setattr(torch, "compile", spy)
    plain = run(tiny(epochs=1), tmp_path / "plain", wandb=False)
    assert calls == []
    compiled = run(tiny(epochs=1, compile=True), tmp_path / "compiled", wandb=False)
    assert calls == [{"backend": "eager"}]
    assert compiled["config"]["compile"] is True
    assert compiled["metrics"] == pytest.approx(plain["metrics"], abs=1e-4)
    a = torch.load(tmp_path / "plain" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "compiled" / "model.pt", weights_only=True)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], atol=1e-4, rtol=1e-4)


def test_a_history_row_goes_to_wandb_under_the_study_names_of_its_datasets():
    """core/wandb_keys.py's names; a stand-in (digits) under the name of the dataset it stands in for."""
    row = {"epoch": 2, "lr": 0.01, "seconds": 3.0, "train_loss": 0.5, "train_acc": 80.0, "svhn_test_acc": 70.0,
           "digits_test_acc": 60.0, "cifar10_val_acc": 50.0, "cifar10_val_adv_acc": 20.0}
    assert loop._namespaced(row, {"digits": "mnist"}) == {
        "train/lr": 0.01, "train/seconds": 3.0, "train/loss": 0.5, "train/acc": 80.0, "test/svhn/acc": 70.0,
        "test/mnist/acc": 60.0, "val/cifar10/acc": 50.0, "adv/val/cifar10/acc": 20.0}


def test_sync_batchnorm_keeps_a_frozen_backbone_frozen():
    """DDP on GPUs swaps every BatchNorm for a new SyncBatchNorm layer; the layers fine-tune-fc keeps in eval mode
    must be the model's new ones (the conversion itself runs on the CPU)."""
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                torch.nn.Flatten(), torch.nn.LazyLinear(2))
    model(torch.rand(2, 3, 8, 8))
    params = list(model.parameters())
    assert len(loop.freeze(model, ("4",))) == 1
    model, frozen = loop.sync_batchnorm(model, ("4",))
    assert len(frozen) == 1 and isinstance(frozen[0], torch.nn.SyncBatchNorm)
    assert any(m is frozen[0] for m in model.modules())
    assert [p.requires_grad for p in model.parameters()] == [False, False, False, False, True, True]
    assert all(a is b for a, b in zip(params, model.parameters()))  # the optimizer built before still holds them


def _diverge_on_one_rank(rank: int, port: int, results) -> None:
    import datetime

    import torch.distributed as td

    td.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2,
                          timeout=datetime.timedelta(seconds=20))
    model = torch.nn.BatchNorm1d(2)
    if rank == 1:
        model.running_var.fill_(float("inf"))  # its statistics overflowed, rank 0's did not
    try:
        loop.finite_on_every_rank(model, "in epoch 3")
        td.barrier()  # the loop's next collective
        results.put((rank, "went on"))
    except RunFailure as e:
        results.put((rank, str(e)))
    finally:
        td.destroy_process_group()


def test_a_model_that_diverged_on_one_rank_stops_every_rank():
    """Under DDP a rank whose check raised alone left the others at the barrier until the backend's timeout."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=_diverge_on_one_rank, args=(r, port, results)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    said = dict(results.get(timeout=5) for _ in range(2))
    assert "the model diverged in epoch 3: 1 parameter/buffer tensors hold NaN or inf (running_var)" in said[1]
    assert said[0].startswith("the model diverged in epoch 3 on 1 other rank(s)"), said[0]
