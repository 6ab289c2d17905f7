"""The attack, knn-eval and umap evaluations: robust accuracy of a finished run under stated threat models.

Threat models:
  white-box  crafted against the model being evaluated (the default, and the honest number);
  transfer   crafted against a fixed source model and evaluated on every model (the study's protocol).
Embedding (Circle Loss) models predict by kNN; white-box attacks on them go through the
centroid-cosine surrogate described in eval/classify.py.
Each function takes one resolved Evaluation (eval/plan.py); experiments/ decides its defaults.
"""
from __future__ import annotations

import functools
import json
import os
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import torch

from attacks.base import eps_label
from core.errors import UsageError
from core.io import clean_partial, ensure_dir, exclusive, save_torch, to_jsonable, write_json
from core.amp import memory_format, resolved
from core.provenance import provenance
from eval.accuracy import evaluate
from eval.classify import Classifier
from eval.plan import AttackPlan, Evaluation, KnnPlan, UmapPlan
from loaders.batches import Batches
from loaders.datasets import stratified_subset
from runs import RUN_FILES, load_run, pick_device, prepare_data, source_model


# ---------------------------------------------------------------- the files an evaluation writes

_DEFAULT_FILE = {"attack": AttackPlan.file, "knn": KnnPlan.file, "umap": UmapPlan.file}


def outputs(kind: str, out: str | Path) -> list[Path]:
    """Every file an evaluation of `kind` writes for the results file `out` (figures beside it)."""
    out = Path(out)
    stem = out.with_suffix("")
    if kind == "attack":
        return [out, Path(f"{stem}-examples.pt"), Path(f"{stem}-examples.png"), Path(f"{stem}-eps.png")]
    return [out, out.with_suffix(".png")] if kind == "umap" else [out]


def check_outputs(ev: Evaluation) -> None:
    """Refuse, before any work, an --out that is a folder, or that would write over a run's own files,
    another evaluation's files, or a file that is not this evaluation's results."""
    out = Path(ev.out)
    default = _DEFAULT_FILE[ev.kind]
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; name a results file, e.g. {out / default}")
    others = {p.name for kind, file in _DEFAULT_FILE.items() if kind != ev.kind for p in outputs(kind, file)}
    for path in outputs(ev.kind, out):
        if path.name in RUN_FILES or path.name in others:
            raise UsageError(f"--out {out} would write over {path}, which "
                             + ("a training run writes" if path.name in RUN_FILES else "another evaluation writes")
                             + f"; choose another name (default {default})")
    if out.suffix != ".json":
        raise UsageError(f"--out {out} must name a .json results file")
    if out.is_file():
        try:
            previous = json.loads(out.read_text())
        except (OSError, ValueError):
            previous = None
        ours = isinstance(previous, dict) and (previous.get("evaluation") == ev.kind
                                               or ("evaluation" not in previous and out.name == default))
        if not ours:
            raise UsageError(f"--out {out} exists and is not a results file of this evaluation ({ev.kind}); "
                             "it is left alone: choose another name")


@contextmanager
def claimed(ev: Evaluation):
    """check_outputs, then hold the results file's lock while the evaluation runs (one writer at a time),
    and clear what an interrupted earlier write of these files left behind."""
    check_outputs(ev)
    out = Path(ev.out)
    with exclusive(ensure_dir(out.parent) / f".{out.name}.lock", f"results file {out}"):
        check_outputs(ev)  # again, now that no other evaluation can write these files meanwhile
        for path in outputs(ev.kind, out):
            clean_partial(path)
        yield out


def _one_writer(run):
    """The evaluation runs only after claimed(ev): outputs checked, the results file's lock held."""
    @functools.wraps(run)
    def wrapped(ev: Evaluation, *args, **kwargs):
        with claimed(ev):
            return run(ev, *args, **kwargs)
    return wrapped


def _setup(ev: Evaluation):
    results, cfg, model = load_run(ev.model)
    device = pick_device(ev.device)
    train, evals, described = prepare_data(cfg, ev.data_root, ev.cache_dir, ev.download)
    test = evals[f"{cfg.eval_on[0]}_test"]
    if ev.n is not None:
        if ev.n < 1:
            raise UsageError(f"n must be at least 1, got {ev.n}")
        test = stratified_subset(test, ev.n, cfg.data_seed)
    cfg.precision = ev.precision or cfg.precision  # the run's own, unless the evaluation says otherwise
    cfg.channels_last = cfg.channels_last if ev.channels_last is None else ev.channels_last
    model = model.to(device, memory_format=memory_format(device, cfg.channels_last))
    size, bs = cfg.image_size, ev.batch_size or cfg.eval_batch_size
    computing = dict(image_size=size, precision=cfg.precision, channels_last=cfg.channels_last)
    knn_train = Batches(train, bs, device, **computing) if cfg.head == "none" else None
    return (results, cfg, model, Classifier(model, knn_train, cfg.knn_k), Batches(test, bs, device, **computing),
            described, train)


def _provenance(test: Batches, started: float) -> dict:
    return {**provenance(test.device, time.time() - started), **resolved(test.device, test.precision, test.channels_last)}


def _source(ev: Evaluation, cfg, specs, device):
    """(classifier to craft transfer attacks on, its description), or (None, None) without one."""
    if not any(s.threat == "transfer" for s in specs):
        return None, None
    if not ev.source:
        raise UsageError("a transfer attack needs a source model: pass --source pretrained or a run folder")
    model, desc = source_model(cfg, ev.source, specs[0].seed)
    return Classifier(model.to(device)), desc


def _attacked(clf, test, spec, source, keep: int = 0) -> tuple[dict, dict]:
    """(the results row, evaluate's output) for one attack; a transfer attack is crafted on `source`,
    a (classifier, description) pair from _source."""
    transfer = spec.threat == "transfer"
    res = evaluate(clf, test, spec, source[0] if transfer else None, seed=spec.seed, keep=keep)
    row = {**spec.describe(), "source": source[1] if transfer else "the model itself",
           "robust_acc": res["acc"], "n": res["n"]}
    return row, res


def _head(ev: Evaluation, results: dict, cfg) -> dict:
    return {"evaluation": ev.kind, "model": str(ev.model), "preset": results["preset"], "profile": results["profile"],
            "seed": results["seed"], "config": cfg.to_dict()}


@_one_writer
def attack_run(ev: Evaluation, examples: int = 8) -> dict:
    started = time.time()
    out = Path(ev.out)
    results, cfg, model, target, test, described, _ = _setup(ev)
    source = _source(ev, cfg, ev.attacks, test.device)
    clean = evaluate(target, test, keep=examples)
    rows, grids = [], []
    for spec in ev.attacks:
        row, res = _attacked(target, test, spec, source, keep=examples)
        rows.append(row)
        grids.append((spec, res["examples"]))
        print(f"{results['preset']}: {spec.threat} {spec.method} eps {eps_label(spec.eps)}: "
              f"{res['acc']:.2f}% (clean {clean['acc']:.2f}%)")
    sweep = []
    if ev.eps_sweep:
        base = replace(ev.attacks[0], threat="white-box")
        for eps in ev.eps_sweep:
            res = evaluate(target, test, replace(base, eps=eps), seed=base.seed)
            sweep.append({**replace(base, eps=eps).describe(), "method": base.method, "robust_acc": res["acc"]})
    report = to_jsonable({
        **_head(ev, results, cfg), "prediction": target.kind,
        "test": described[f"{cfg.eval_on[0]}_test"] | {"n": clean["n"]},
        "clean_acc": clean["acc"], "results": rows, "eps_sweep": sweep,
        "provenance": _provenance(test, started),
    })
    _figures(out, report, clean, grids, cfg, target)
    write_json(out, report)  # last: its presence marks a finished evaluation
    return report


def _figures(out: Path, report: dict, clean: dict, grids: list, cfg, target) -> None:
    from attacks.noise import noise
    from eval.figures import class_names, eps_curve, example_grid

    stem = out.with_suffix("")
    names = class_names(cfg.eval_on[0])
    ex = clean["examples"]
    rows = [{"name": "clean", "images": ex["images"], "preds": ex["preds"]}]
    if any("noise" in s.method for s, _ in grids):
        spec = next(s for s, _ in grids if "noise" in s.method)
        g = torch.Generator().manual_seed(spec.seed * 1_000_003)
        noisy = noise(None, ex["images"], n_pixels=spec.n_pixels, generator=g)
        dev = target.train_x.device if target.kind == "knn" else next(target.model.parameters()).device
        rows.append({"name": f"{spec.n_pixels} white px", "images": noisy,
                     "preds": target.predict(noisy.to(dev)).cpu()})
    for spec, kept in grids:
        rows.append({"name": f"{spec.method}\n{spec.threat}", "images": kept["images"], "preds": kept["preds"]})
    examples = {"labels": ex["labels"], "rows": rows}
    save_torch(f"{stem}-examples.pt", examples)  # the grid's data, so the figure can be redrawn from a file
    example_grid(examples, f"{stem}-examples.png", names,
                 title=f"{report['preset']} ({report['profile']}), eps {rows and eps_label(grids[0][0].eps) if grids else ''}")
    if report["eps_sweep"]:
        eps_curve(report["eps_sweep"], f"{stem}-eps.png",
                  title=f"{report['preset']}: white-box {report['eps_sweep'][0]['method']}, robust accuracy vs eps")


@_one_writer
def knn_run(ev: Evaluation) -> dict:
    """Clean (and adversarial) kNN accuracy on the 512-d features, fitted on the train embeddings."""
    started = time.time()
    results, cfg, model, target, test, described, train = _setup(ev)
    train_b = Batches(train, test.batch_size, test.device, image_size=cfg.image_size, precision=test.precision,
                      channels_last=test.channels_last)
    if ev.k > len(train):
        raise UsageError(f"k={ev.k} is larger than the number of training points ({len(train)})")
    # an embedding model's classifier from _setup already holds the train embeddings: reuse it when k agrees
    clf = target if target.kind == "knn" and target.k == ev.k else Classifier(model, train_b, ev.k, knn=True)
    report = {**_head(ev, results, cfg), "k": ev.k, "train_points": len(train),
              "clean_acc": evaluate(clf, test)["acc"], "results": []}
    source = _source(ev, cfg, ev.attacks, test.device)
    report["results"] = [_attacked(clf, test, attack, source)[0] for attack in ev.attacks]
    report["provenance"] = _provenance(test, started)
    write_json(ev.out, report)
    return to_jsonable(report)


@_one_writer
def umap_run(ev: Evaluation, n_neighbors: int = 10, min_dist: float = 0.3, random_state: int = 42) -> dict:
    """UMAP of the 512-d pooled features: fitted once on clean test features; the adversarial
    features are placed into that same map with transform()."""
    if ev.n is None or ev.n < 10:
        raise UsageError(f"max-points must be at least 10, got {ev.n}")
    started = time.time()
    results, cfg, model, target, test, _, _ = _setup(ev)
    attack = ev.attacks[0]
    src, _ = _source(ev, cfg, [attack], test.device)
    crafted_on = (src or target).logits_model
    clean_f, adv_f, labels = [], [], []
    from attacks.registry import run_attack

    for i, (x, y) in enumerate(test.epoch()):
        g = torch.Generator(device=x.device).manual_seed(attack.seed * 1_000_003 + i)
        with test.autocast():
            x_adv = run_attack(attack, crafted_on, x, y, generator=g).float()
        with torch.no_grad(), test.autocast():
            clean_f.append(model.features(x).float().cpu())
            adv_f.append(model.features(x_adv).float().cpu())
        labels.append(y.cpu())
    clean_f, adv_f, labels = torch.cat(clean_f).numpy(), torch.cat(adv_f).numpy(), torch.cat(labels)
    os.environ.setdefault("NUMBA_CACHE_DIR", str((Path(ev.cache_dir) / "numba").resolve()))  # warm JIT next time
    mapper = fit_umap(clean_f, n_neighbors=n_neighbors, min_dist=min_dist, random_state=random_state)
    head = _head(ev, results, cfg)
    head.pop("config")
    report = to_jsonable({
        **head, "attack": attack.describe(),
        "umap": {"n_neighbors": n_neighbors, "min_dist": min_dist, "random_state": random_state, "fit_on": "clean",
                 "points": len(labels)},
        "labels": labels.tolist(), "clean": {"xy": mapper.embedding_.tolist()},
        "adversarial": {"xy": mapper.transform(adv_f).tolist()},
        "provenance": _provenance(test, started),
    })
    from eval.figures import class_names, umap_pair

    png = Path(ev.out).with_suffix(".png")
    umap_pair(report, png, class_names(cfg.eval_on[0]))
    write_json(ev.out, report)
    _track_umap(ev, report, png)
    return report


def _track_umap(ev: Evaluation, report: dict, png: Path) -> None:
    from core.tracking import Tracker

    tracker = Tracker(ev.wandb, group=report["preset"], name=f"{report['preset']}-s{report['seed']}-umap",
                      job_type="umap", config={"model": str(ev.model), "attack": report["attack"], **report["umap"]})
    tracker.image("umap", png, caption=f"{report['preset']} clean vs adversarial")
    tracker.finish()


def fit_umap(features, *, n_neighbors: int, min_dist: float, random_state: int):
    import umap

    return umap.UMAP(n_neighbors=n_neighbors, min_dist=min_dist, random_state=random_state, n_jobs=1).fit(features)
