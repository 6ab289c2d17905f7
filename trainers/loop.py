"""The one training loop. Fine-tuning the fc is this loop with frozen parameters; later sections add
an attack hook or an embedding loss, never a copy of the loop (MadryLab/robustness's _model_loop).

run(cfg, ...) -> results dict, and on disk under `out`:
  checkpoint.pt  after every epoch (model, optimizer, scheduler, RNG states, history), for --resume
  model.pt       the final state dict
  curves.png     drawn from the results dict by `draw_curves` (the CLI passes report.run_figures.plot_curves)
  metrics.json   written last and atomically: its presence means the run finished
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core import wandb_keys
from core.amp import memory_format, resolved
from core.config import RunConfig
from core.dist import broadcast_buffers, sum_over_ranks
from core.dist import rank as dist_rank
from core.dist import setup as setup_dist
from core.dist import teardown as teardown_dist
from core.errors import RunFailure, UsageError
from core.io import clean_partial, ensure_dir, exclusive, mtime_ns, to_jsonable
from core.progress import bar as progress_bar
from core.provenance import device_name, git_commit, provenance
from core.seed import seed_everything
from core.tracking import Tracker, group, run_name
from eval.accuracy import accuracy, bits, evaluate
from eval.classify import Classifier
from loaders.batches import Batches
from loaders.randconv import RandConv
from losses import build_loss
from losses.consistency import consistency_loss
from runs import (
    CHECKPOINT,
    LOCK,
    METRICS,
    MODEL,
    finish_run,
    init_model,
    pick_device,
    prepare_data,
    restore_checkpoint,
    save_checkpoint,
)
from runs.folder import check_finite
from trainers.adversarial import eval_attack, fast_at_images, mix_adversarial, trades_step, training_attack


class Interrupted(RunFailure):
    exit_code = 130


# ---------------------------------------------------------------- model, optimizer

def freeze(model: nn.Module, trainable: tuple[str, ...]) -> list[nn.Module]:
    """Train only parameters whose names start with one of `trainable` (all if empty).
    Returns the modules that are wholly frozen: they stay in eval mode, so BatchNorm statistics stay put."""
    if not trainable:
        return []
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith(trainable))
    if not any(p.requires_grad for p in model.parameters()):
        raise UsageError(f"no parameter matches trainable prefixes {trainable}")
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
            and not any(p.requires_grad for p in m.parameters())]


def sync_batchnorm(model: nn.Module, trainable: tuple[str, ...]) -> tuple[nn.Module, list[nn.Module]]:
    """The model with SyncBatchNorm layers (DDP on GPUs), and its frozen BatchNorm layers found again: the
    conversion builds new layers (sharing the parameters, so the optimizer is unchanged), and a list made before it
    would keep in eval mode layers that are no longer in the model, leaving a frozen backbone's statistics to drift."""
    model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model, freeze(model, trainable)


def build_optimizer(cfg: RunConfig, model: nn.Module, steps_per_epoch: int = 1):
    """(optimizer, scheduler). The scheduler's `per_step` says whether it steps after every optimizer step
    (cyclic) or once per epoch (exponential, piecewise, cosine)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.lr_schedule == "piecewise":  # Rice et al. 2020 (and Madry's recipe): x0.1 at 50% and 75% of the epochs
        milestones = sorted({max(1, math.ceil(cfg.epochs * f)) for f in (0.5, 0.75)})
        scheduler = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=0.1)
    elif cfg.lr_schedule == "cosine":  # once per epoch, lr -> 0 over the run (Pro-RandConv's digits protocol)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.epochs))
    elif cfg.lr_schedule == "cyclic":  # Wong et al. 2020: per step, linear 0 -> lr at 2/5 of training -> 0
        total, peak = cfg.epochs * steps_per_epoch, 0.4 * cfg.epochs * steps_per_epoch
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda k: float(np.interp(k + 1, [0, peak, total], [0.0, 1.0, 0.0])))
    else:
        scheduler = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.lr_gamma)
    scheduler.per_step = cfg.lr_schedule == "cyclic"
    return opt, scheduler


# ---------------------------------------------------------------- signals

@contextmanager
def graceful_interrupts():
    """First SIGINT/SIGTERM: finish the current step, then stop (the last epoch's checkpoint is on
    disk). Second: stop at once."""
    state = {"signal": None}

    def handler(signum, frame):
        if state["signal"] is not None:
            raise KeyboardInterrupt
        state["signal"] = signum
        print(f"\n{signal.Signals(signum).name}: stopping after this step (again to stop at once)",
              file=sys.stderr)

    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for s in previous:
            signal.signal(s, handler)
    except ValueError:  # not the main thread (e.g. inside some test runners): leave signals alone
        previous = {}
    try:
        yield state
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


# ---------------------------------------------------------------- the loop

def view_logits(model, plain, views: torch.Tensor, n: int) -> torch.Tensor:
    """The logits of n stacked views, one forward pass per view, as the RandConv authors' trainer makes them, so
    that BatchNorm normalises each view over its own batch, not over all views at once (without BatchNorm the
    same numbers). Under DDP only the last pass goes through the wrapper, since a DDP forward prepares its one
    backward; the earlier passes call the module itself, and that backward reduces their gradients too (each
    parameter's gradient hook fires once, after autograd has summed every pass's contribution)."""
    ddp = isinstance(getattr(model, "_orig_mod", model), torch.nn.parallel.DistributedDataParallel)
    chunks = views.chunk(n)
    return torch.cat([(plain if ddp and i < n - 1 else model)(v) for i, v in enumerate(chunks)])


def train_epoch(model, batches: Batches, loss_fn, optimizer, frozen, *, epoch: int, seed: int, stop,
                progress: bool, adv=None, adv_prob: float = 0.0, dist=None, randconv=None, trades=None,
                scheduler=None, adv_train_mode: bool = False, on_step=None) -> dict:
    """One epoch. `model` may be DDP-wrapped; attacks and attributes use the plain module. `trades`: the
    RunConfig when the loss is TRADES (its eps, step size and steps shape the inner maximisation). A scheduler
    with per_step set steps after every optimizer step. adv_train_mode: the training attack is crafted with the
    model in train mode (Fast-AT). on_step: called after every optimizer step (checkpoint selection)."""

    wrapped = getattr(model, "_orig_mod", model)  # under torch.compile
    plain = getattr(wrapped, "module", wrapped)   # under DDP
    has_fc = getattr(plain, "head", "fc") == "fc"
    model.train()
    for m in frozen:
        m.eval()
    dev = batches.device
    loss_sum = torch.zeros((), device=dev)
    correct = torch.zeros((), dtype=torch.int64, device=dev)
    seen = 0
    bad_step = torch.full((), -1, dtype=torch.int64, device=dev)  # first non-finite step, no host sync
    bar = progress_bar(batches.epoch(seed * 100_003 + epoch), total=len(batches), desc=f"epoch {epoch + 1}",
                       unit="batch", enabled=progress)
    adv_seen = torch.zeros((), dtype=torch.int64, device=dev)  # counted on the device: no sync per step
    ddp = isinstance(wrapped, torch.nn.parallel.DistributedDataParallel)
    with wrapped.join() if ddp else contextlib.nullcontext():  # DDP: ranks take equal steps (Batches.__len__);
        # join() cannot stand in for SyncBatchNorm, so it only guards the gradient all-reduce
        for step, (x, y) in enumerate(bar):
            with batches.autocast():  # the adversarial examples are crafted in the training step's precision
                if adv is not None and adv_train_mode:
                    x = fast_at_images(plain, x, y, adv)
                    adv_seen += len(y)
                elif adv is not None:
                    x, mask = mix_adversarial(plain, x, y, adv_prob, adv)
                    adv_seen += mask.sum()
                if trades is not None:  # crafts its own adversarial images (KL inner maximisation), then one joint forward
                    # the start's noise is drawn where the images are (no CPU draw and copy per step on a GPU)
                    g = torch.Generator(device=x.device).manual_seed(_stream(seed, epoch, step))
                    loss, out = trades_step(plain, model, x, y, loss_fn, trades, g)
                elif randconv is not None:  # every view through its own random conv; CE on the first view (all
                    # views for Pro-RandConv: the batch and its augmented copy), the views' consistency loss on top
                    g = torch.Generator().manual_seed(_stream(seed, epoch, step))
                    logits = view_logits(model, plain, randconv(x, g), randconv.views)
                    out = logits[:len(y)]
                    loss = loss_fn(logits, y.repeat(randconv.views)) if randconv.ce_all else loss_fn(out, y)
                    if randconv.weight:
                        loss = loss + randconv.weight * consistency_loss(logits, randconv.views)
                else:
                    out = model(x)
                    loss = loss_fn(out, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None and getattr(scheduler, "per_step", False):
                scheduler.step()
            if on_step is not None:
                on_step()
            detached = loss.detach()
            bad_step = torch.where((bad_step < 0) & ~torch.isfinite(detached), step, bad_step)
            loss_sum += detached * len(y)
            if has_fc:
                correct += (out.argmax(1) == y).sum()
            seen += len(y)
            if dev.type == "cpu" or step % 50 == 49 or step == len(batches) - 1:
                if bad_step.item() >= 0:
                    raise RunFailure(f"loss became NaN or inf at epoch {epoch + 1}, step {bad_step.item() + 1} "
                                     f"(lr {optimizer.param_groups[0]['lr']:g} too high?); the last good "
                                     "checkpoint is kept")
                if progress:
                    bar.set_postfix(loss=f"{loss_sum.item() / seen:.3f}", refresh=False)
            if stop["signal"] is not None:
                raise Interrupted(f"interrupted during epoch {epoch + 1}; " + (
                    f"rerun with --resume to continue from epoch {epoch + 1}" if epoch > 0 else
                    "no epoch had finished, so there is no checkpoint: rerun the same command to start again"))
    bar.close()
    trace = os.environ.get("TRUSTLAB_TRACE_SAMPLES")  # debugging/tests: which samples this rank trained on
    if trace:
        rank = dist.rank if dist is not None else 0
        Path(trace).mkdir(parents=True, exist_ok=True)
        (Path(trace) / f"epoch{epoch + 1}-rank{rank}.txt").write_text(" ".join(map(str, batches.last_order.tolist())))
    totals = torch.stack([torch.tensor(seen, dtype=torch.float64, device=dev), adv_seen.to(torch.float64)])
    if dist is not None:
        dist.sum(loss_sum, correct, totals)  # every rank's shard counts once
    seen, adv_seen = totals.tolist()
    metrics = {"train_loss": loss_sum.item() / seen}
    if has_fc:
        metrics["train_acc"] = 100.0 * correct.item() / seen
    if adv is not None:
        metrics["train_adv_fraction"] = adv_seen / seen
    return metrics


def run(cfg: RunConfig, out: str | Path, *, data_root="data", cache_dir="data/cache", download=False,
        wandb: bool = True, resume: bool = False, overwrite: bool = False, progress: bool | None = None,
        job_type: str = "train", draw_curves=None) -> dict:
    """Train (or fine-tune) as cfg says, write the run folder `out`, return the results dict.
    draw_curves(results, path) draws the training curves into curves.png (report.run_figures.plot_curves); None
    draws none."""
    cfg.validate()
    out = Path(out)
    _check_start(out, overwrite, resume)
    if dist_rank() != 0:  # under torchrun only rank 0 writes, so only it holds the lock
        return _run(cfg, out, data_root, cache_dir, download, wandb, resume, progress, job_type, draw_curves)
    created = not out.exists()
    before = mtime_ns(out / METRICS)
    try:
        with exclusive(ensure_dir(out) / LOCK, f"run folder {out}"):
            if mtime_ns(out / METRICS) != before:  # another writer finished this run while we waited for its lock
                print(f"note: {out / METRICS} was written by another process while this one waited; "
                      "nothing to do", file=sys.stderr)
                return json.loads((out / METRICS).read_text())
            _check_start(out, overwrite, resume)  # again, now that no other writer can finish meanwhile
            for name in (METRICS, MODEL, CHECKPOINT, "curves.png"):
                clean_partial(out / name)  # what an interrupted write of ours left behind
            if overwrite and (out / METRICS).exists():
                _drop_evaluations(out)
            return _run(cfg, out, data_root, cache_dir, download, wandb, resume, progress, job_type, draw_curves)
    except BaseException:
        if created:  # a run that failed before writing anything leaves no folder it created (the lock is gone)
            with contextlib.suppress(OSError):
                out.rmdir()  # only if empty: a checkpoint or anything else keeps it
        raise


def _drop_evaluations(out: Path) -> None:
    """Retraining a finished run: its evaluations (robustness.json, audit.json, knn.json, umap.json and their
    figures) were of the old model, so they go, under the run's lock, before the new model exists."""
    from eval.harness import RESULTS_FILES
    from runs.claim import outputs

    files = [*RESULTS_FILES.items(), ("attack", "audit.json")]  # the audit is an attack evaluation's second file
    dropped = [p for kind, name in files for p in outputs(kind, out / name) if p.is_file()]
    for path in dropped:
        path.unlink()
    if dropped:
        print(f"note: retraining {out}: removed its evaluations of the old model ({', '.join(p.name for p in dropped)})",
              file=sys.stderr)


def _check_start(out: Path, overwrite: bool, resume: bool) -> None:
    if (out / METRICS).exists() and not overwrite:
        raise UsageError(f"{out / METRICS} exists already (a finished run); pass --overwrite to train again")
    if resume and not (out / CHECKPOINT).is_file():
        raise UsageError(f"--resume: no checkpoint at {out / CHECKPOINT}")
    if not resume and not overwrite and (out / CHECKPOINT).is_file():
        raise UsageError(f"{out / CHECKPOINT} holds an unfinished run: pass --resume to continue it, or --overwrite "
                         "to start again and discard it")


def _run(cfg: RunConfig, out: Path, data_root, cache_dir, download, wandb, resume, progress, job_type,
         draw_curves) -> dict:
    ensure_dir(out)
    started = time.time()
    dist = setup_dist(cfg.device)
    progress = progress is not False and dist.is_main  # None: a bar on a terminal, a line a minute in a log
    device = pick_device(cfg.device, dist.local_rank, dist.world)
    seed_everything(cfg.seed, cfg.deterministic)

    train_set, eval_sets, described = prepare_data(cfg, data_root, cache_dir, download)
    model = init_model(cfg).to(device, memory_format=memory_format(device, cfg.channels_last))
    frozen = freeze(model, cfg.trainable)
    computing = dict(precision=cfg.precision, channels_last=cfg.channels_last)
    # under DDP each rank takes batch_size / world of every step's batch: the experiment's batch (and so its lr and
    # step count) stays the one the section sets, whatever the number of GPUs
    if cfg.batch_size % dist.world:
        raise UsageError(f"batch size {cfg.batch_size} does not split over {dist.world} ranks: use a world size that "
                         "divides it (each rank takes an equal share of every batch)")
    train_batches = Batches(train_set, cfg.batch_size // dist.world, device, shuffle=True,
                            augment=train_augmentation(cfg, device), image_size=cfg.image_size,
                            shard=(dist.rank, dist.world), drop_single=True, **computing)
    optimizer, scheduler = build_optimizer(cfg, model, len(train_batches))
    loss_fn = build_loss(cfg)
    start_epoch, history, best = 0, [], {}  # best: the kept epoch's model state, epoch and robust val accuracy
    correct: dict = {}  # epoch -> {"<set>_test": per-image correctness}
    segments: list = []  # which process trained which epochs, at which commit: the earlier ones', then this one's
    if resume:
        start_epoch, history = restore_checkpoint(out, cfg, model, optimizer, scheduler, dist.rank, extra=best,
                                                  segments=segments)
        print(f"resuming {cfg.preset} from epoch {start_epoch + 1}", file=sys.stderr)
    segment = {"epochs": [start_epoch + 1, start_epoch], "git_commit": git_commit(), "device": device_name(device),
               "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)), "wall_seconds": 0.0}
    segments.append(segment)

    train_model = model
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel

        if device.type == "cuda":  # BatchNorm over the whole batch, as one process computes it (gloo on CPUs cannot:
            # there each rank normalises over its share, and provenance says so)
            model, frozen = sync_batchnorm(model, cfg.trainable)
        train_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:  # only the training step; evaluation, attacks and the saved state dict use the plain model
        train_model = torch.compile(train_model, backend=os.environ.get("TRUSTLAB_COMPILE_BACKEND", "inductor"))
    described["train"]["last_batch"] = (("a final batch of one image is dropped each epoch" if dist.world == 1 else
                                         "a final batch not every rank has (or of one image) is dropped each epoch")
                                        if train_batches.drops_last() else "kept whole")
    # under DDP each rank scores a shard of every eval set and the per-image results are gathered back in order
    # (eval/accuracy.evaluate): the same numbers as one process, world times less work per rank
    eval_batches = {k: Batches(v, cfg.eval_batch_size, device, image_size=cfg.image_size,
                               shard=(dist.rank, dist.world), **computing) for k, v in eval_sets.items()}
    # Embedding models are scored by kNN on the train embeddings (plain images, no augmentation).
    knn_train = Batches(train_set, cfg.eval_batch_size, device, image_size=cfg.image_size,
                        **computing) if cfg.head == "none" else None
    adv_train, adv_eval = training_attack(cfg), eval_attack(cfg)
    randconv = RandConv.from_config(cfg)
    fc_images = f"ft{cfg.finetune_samples}" if job_type == "finetune-fc" else None
    study_names = {v: k for k, v in cfg.stand_ins.items()}  # stand-in -> the study's name for it
    selector = Selector(cfg, model, eval_batches[f"{cfg.train_on}_val"], randconv, best,
                        start_epoch * len(train_batches)) if cfg.select_every else None
    tracker = Tracker(wandb and dist.is_main, group=group(cfg.profile, cfg.preset),
                      name=run_name(cfg.preset, cfg.seed, fc_images), job_type=job_type,
                      config={**cfg.to_dict(), "datasets": described},
                      tags=(cfg.profile, cfg.question, f"precision-{cfg.precision}")
                      + (("adversarial-training",) if cfg.adv_prob else ()))
    try:
        with graceful_interrupts() as stop:
            for epoch in range(start_epoch, cfg.epochs):
                t0 = time.time()
                row = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"]}
                row.update(train_epoch(train_model, train_batches, loss_fn, optimizer, frozen, epoch=epoch,
                                       seed=cfg.seed, stop=stop, progress=progress, adv=adv_train,
                                       adv_prob=cfg.adv_prob, dist=dist, randconv=randconv,
                                       trades=cfg if cfg.loss == "trades" else None, scheduler=scheduler,
                                       adv_train_mode=cfg.attack_train_mode, on_step=selector))
                if not getattr(scheduler, "per_step", False):
                    scheduler.step()
                broadcast_buffers(model)  # gloo DDP: one model's BatchNorm statistics on every rank's shard
                classifier = Classifier(model, knn_train, cfg.knn_k)
                accs, correct[epoch + 1] = clean_scores(classifier, eval_batches)
                for key, batches in eval_batches.items():
                    row[f"{key}_acc"] = accs[f"{key}_acc"]
                    if adv_eval is not None and key.endswith("_val"):
                        # white-box, against the model as it is after this epoch
                        row[f"{key}_adv_acc"] = accuracy(classifier, batches, adv_eval, seed=cfg.seed)
                row["seconds"] = round(time.time() - t0, 2)
                history.append(row)
                if cfg.keep_best:
                    keep_if_best(best, model, row, f"{cfg.train_on}_val_adv_acc")
                segment["epochs"][1], segment["wall_seconds"] = epoch + 1, round(time.time() - started, 1)
                finite_on_every_rank(model, f"in epoch {epoch + 1}")
                if dist.is_main:  # only rank 0 writes
                    save_checkpoint(out, cfg, model, optimizer, scheduler, epoch, history, extra=best,
                                    segments=segments)
                    tracker.log(_namespaced(row, study_names), step=epoch + 1)
                    print(_epoch_line(cfg, row), file=sys.stderr)
                dist.barrier()
        results, selected = {}, None
        if selector is not None:
            selector.last()
        # on every rank: under DDP the measurement gathers each rank's shard of the test sets (on rank 0 alone it
        # waited forever for ranks already at the closing barrier)
        if best:  # the kept epoch's (or iteration's) weights are the run's model
            model.load_state_dict(best["state"])
            broadcast_buffers(model)
        if selector is not None:  # the kept checkpoint falls between epochs: its own test numbers
            selected = selector.measure(Classifier(model, knn_train, cfg.knn_k), eval_batches, len(train_batches))
        finite_on_every_rank(model, "by the end of training")
        if dist.is_main:
            results = _finish(cfg, out, model, history, described, device, started, dist.world, draw_curves,
                              best.get("epoch"), correct, selected, randconv, segments)
            tracker.summary(_namespaced(results["metrics"], study_names))
            if draw_curves is not None:
                tracker.image(wandb_keys.CURVES_IMAGE, out / "curves.png")
            if os.environ.get("TRUSTLAB_WANDB_MODEL") == "1":  # opt-in: a model artifact copies model.pt (disk)
                tracker.artifact(run_name(cfg.preset, cfg.seed, fc_images), "model", [out / "model.pt"])
    except BaseException:
        tracker.finish(exit_code=1)
        teardown_dist(dist)
        raise
    tracker.finish()
    dist.barrier()
    teardown_dist(dist)
    return results


def finite_on_every_rank(model: nn.Module, when: str) -> None:
    """runs.folder.check_finite, agreed over the ranks under DDP: a rank that stopped alone (rank 0, before writing
    a checkpoint, or one whose BatchNorm statistics overflowed) would leave the others waiting at the next
    collective (until torchrun's agent stops them, or the backend's timeout); so every rank stops, and the
    message says where it diverged."""
    try:
        check_finite(model, when)
        failure = None
    except RunFailure as e:
        failure = e
    (bad,) = sum_over_ranks(int(failure is not None))
    if bad and failure is None:
        failure = RunFailure(f"the model diverged {when} on {bad} other rank(s); nothing was saved over the last "
                             "good checkpoint")
    if failure is not None:
        raise failure


def train_augmentation(cfg: RunConfig, device) -> nn.Module | None:
    """The training batches' augmentation, only where a section asks for one: the study's set (augment) and the
    CIFAR-10 recipes' random crop (4 px zero padding) and horizontal flip (crop_flip), in that order."""
    parts = []
    if cfg.augment:
        from loaders.augment import study_augmentation

        parts.append(study_augmentation())
    if cfg.crop_flip:
        from loaders.augment import crop_flip

        parts.append(crop_flip())
    if not parts:
        return None
    return (parts[0] if len(parts) == 1 else nn.Sequential(*parts)).to(device)


def clean_scores(classifier: Classifier, eval_batches: dict) -> tuple[dict, dict]:
    """Clean accuracy on every eval set ({"<set>_acc": %}) and the test sets' per-image records ({"<set>_test":
    "1"/"0" per image}, for paired comparisons with other sections' runs): each epoch's row and the checkpoint
    kept by select_every are scored alike."""
    accs, records = {}, {}
    for key, batches in eval_batches.items():
        clean = evaluate(classifier, batches)
        accs[f"{key}_acc"] = clean["acc"]
        if key.endswith("_test"):
            records[key] = bits(clean["correct"])
    return accs, records


class Selector:
    """The DG benchmark authors' checkpoint selection (RunConfig.select_every): called after every optimizer step;
    every select_every iterations (and once after the last, via last()) it measures clean accuracy on the held-out
    source split, for a RandConv model through a random convolution (the training's first view), the mean over
    select_draws draws (each its own seeded generator, so training's random streams are untouched), and keeps the
    model state of the best (ties keep the earlier) in `best`, which the checkpoint saves for --resume."""

    def __init__(self, cfg: RunConfig, model: nn.Module, val: Batches, randconv, best: dict, iteration: int = 0):
        self.cfg, self.model, self.val, self.randconv, self.best = cfg, model, val, randconv, best
        self.iteration, self.checked = iteration, best.get("iteration")

    def __call__(self) -> None:
        self.iteration += 1
        if self.iteration % self.cfg.select_every == 0:
            self._check()

    def last(self) -> None:
        if self.checked != self.iteration:
            self._check()

    def accuracy(self) -> float:
        broadcast_buffers(self.model)  # under DDP every rank scores its shard of the val split with one model
        modes = {m: m.training for m in self.model.modules()}
        self.model.eval()
        draws = []
        try:
            with torch.no_grad():
                for d in range(self.cfg.select_draws if self.randconv is not None else 1):
                    g = torch.Generator().manual_seed(_stream(self.cfg.seed, self.iteration, d, 250_007))
                    right, seen = torch.zeros((), dtype=torch.int64, device=self.val.device), 0
                    for x, y in self.val.epoch():
                        with self.val.autocast():
                            x = self.randconv(x, g)[:len(x)] if self.randconv is not None else x
                            right += (self.model(x).argmax(1) == y).sum()  # on the device: one sync per draw
                        seen += len(y)
                    right = int(right)
                    if self.val.world > 1:  # under DDP each rank holds a shard of the val split
                        right, seen = sum_over_ranks(right, seen)
                    draws.append(100.0 * right / seen)
        finally:
            for m, mode in modes.items():
                m.train(mode)
        return sum(draws) / len(draws)

    def _check(self) -> None:
        self.checked = self.iteration
        value = self.accuracy()
        if not self.best or value > self.best["value"]:
            self.best.update(iteration=self.iteration, value=value,
                             state={k: v.detach().clone() for k, v in self.model.state_dict().items()})

    def measure(self, classifier: Classifier, eval_batches: dict, steps_per_epoch: int) -> dict:
        """The kept model's (already loaded into the classifier's model) accuracy on every eval set, its per-image
        test records, and how it was chosen."""
        metrics, correct = clean_scores(classifier, eval_batches)
        it, draws = self.best["iteration"], self.cfg.select_draws if self.randconv is not None else 1
        how = f"{self.cfg.train_on} val accuracy" + (f" with RandConv on, the mean of {draws} draws" if draws > 1
                                                     else "")
        return {"metrics": metrics, "correct": correct, "epoch": -(-it // steps_per_epoch),
                "by": f"best {how}, checked every {self.cfg.select_every} iterations: iteration {it}",
                "selection": {"every": self.cfg.select_every, "draws": draws, "iteration": it,
                              "val_acc": self.best["value"]}}


def keep_if_best(best: dict, model: nn.Module, row: dict, key: str) -> None:
    """Rice et al. 2020's early stopping: keep the model state of the epoch with the highest `key` (the white-box
    robust validation accuracy); ties keep the earlier epoch."""
    value = row.get(key)
    if value is None:
        raise RunFailure(f"keep_best needs {key} every epoch, and this run has no such number (no val split?)")
    if not best or value > best["value"]:
        best.update(epoch=row["epoch"], value=value,
                    state={k: v.detach().clone() for k, v in model.state_dict().items()})


def _finish(cfg, out: Path, model, history, described, device, started, world: int = 1, draw_curves=None,
            chosen: int | None = None, correct: dict | None = None, selected: dict | None = None,
            randconv: RandConv | None = None, segments: list | None = None) -> dict:
    """chosen: the kept epoch (1-based) under keep_best; its row gives the metrics, else the last epoch's.
    correct: {epoch: {"<set>_test": per-image bits}} of the epochs this process evaluated; the kept epoch's go
    into the results file (absent when it was evaluated before a --resume). selected: Selector.measure()'s
    numbers of the checkpoint kept by select_every (they replace the last epoch's accuracies). randconv: the
    run's RandConv (its settings go into the results file). segments: the processes that trained it (more than
    one after a --resume), each with its epochs, commit, device and seconds; those that trained no epoch are left
    out."""
    final = history[chosen - 1] if chosen else history[-1]
    metrics = {k: v for k, v in final.items() if k.startswith("train_") or k.endswith("_acc")}
    if selected:
        metrics = {k: v for k, v in metrics.items() if k.startswith("train_")} | selected["metrics"]
        correct, chosen = {selected["epoch"]: selected["correct"]}, selected["epoch"]
    attack = eval_attack(cfg)
    results = to_jsonable({
        "preset": cfg.preset, "profile": cfg.profile, "seed": cfg.seed, "question": cfg.question,
        "config": cfg.to_dict(), "roles": dict(cfg.stand_ins), "datasets": described,
        "metrics": metrics, "history": history,
        "correct": (correct or {}).get(chosen or len(history), {}),  # per test image of the kept epoch, "1" right
        "val_attack": attack.describe() if attack else None,
        **({"augmentation": randconv.describe()} if randconv is not None else {}),  # RandConv's settings
        "selected_epoch": chosen or len(history),  # the epoch whose model this run keeps (model.pt)
        "selected_by": (selected["by"] if selected else f"best {cfg.train_on} val robust accuracy ({attack.label})"
                        if chosen else "last epoch"),
        **({"selection": selected["selection"]} if selected else {}),
        "provenance": {**provenance(device, time.time() - started), "world_size": world,
                       "batch_per_rank": cfg.batch_size // world,  # of the section's batch_size, split over the ranks
                       "batchnorm": ("one process" if world == 1 else "synchronised across ranks (SyncBatchNorm)"
                                     if device.type == "cuda" else "per rank (gloo: SyncBatchNorm needs GPUs)"),
                       **resolved(device, cfg.precision, cfg.channels_last),
                       "segments": [s for s in segments or [] if s["epochs"][1] >= s["epochs"][0]]},
    })
    draw = None if draw_curves is None else lambda r, folder: draw_curves(r, folder / "curves.png")
    return finish_run(out, model, results, draw=draw)


def _stream(*keys: int) -> int:
    """A seed for the random stream of (seed, epoch, step): independent for every tuple, unlike an affine
    mix of the keys, whose streams overlap between seeds."""
    import numpy as np

    return int(np.random.SeedSequence(list(keys)).generate_state(1)[0])


def _namespaced(row: dict, study_names: dict | None = None) -> dict:
    """One W&B key per metric (core/wandb_keys.py): train/loss, train/acc, train/lr, test/<set>/acc,
    val/<set>/acc, adv/val/<set>/acc, where <set> is the study's name for the dataset (a stand-in's role,
    recorded in the config), so demo and real runs line up."""
    names = study_names or {}
    logged = {}
    for k, v in row.items():
        if k.startswith("train_"):
            logged[wandb_keys.train(k[6:])] = v
        elif k.endswith("_test_acc"):
            logged[wandb_keys.test_acc(names.get(k[:-9], k[:-9]))] = v
        elif k.endswith("_val_adv_acc"):
            logged[wandb_keys.val_adv_acc(names.get(k[:-12], k[:-12]))] = v
        elif k.endswith("_val_acc"):
            logged[wandb_keys.val_acc(names.get(k[:-8], k[:-8]))] = v
        elif k in ("lr", "seconds"):
            logged[wandb_keys.train(k)] = v
    return logged


def _epoch_line(cfg, row) -> str:
    parts = [f"{cfg.preset} epoch {row['epoch']}/{cfg.epochs}: loss {row['train_loss']:.4f}"]
    if "train_acc" in row:
        parts.append(f"train {row['train_acc']:.2f}%")
    parts += [f"{k[:-4]} {v:.2f}%" for k, v in row.items() if k.endswith(("_test_acc", "_val_acc", "_adv_acc"))
              and isinstance(v, float) and math.isfinite(v)]
    return " | ".join(parts) + f" ({row['seconds']:.0f} s)"
