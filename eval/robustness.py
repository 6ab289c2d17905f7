"""The attack, knn-eval and umap evaluations: robust accuracy of a finished run under stated threat models.

Threat models:
  white-box  crafted against the model being evaluated (the default, and the honest number);
  transfer   crafted against a fixed source model and evaluated on every model (the study's protocol).
Embedding (Circle Loss) models predict by kNN; white-box attacks on them go through the
centroid-cosine surrogate described in eval/classify.py.
Each function takes one resolved Evaluation (eval/plan.py); experiments/ decides its defaults.
"""
from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import torch

from attacks.base import eps_label
from core.errors import UsageError
from core.io import ensure_dir, save_torch, to_jsonable, write_json
from core.provenance import provenance
from eval.accuracy import evaluate
from eval.classify import Classifier
from eval.plan import Evaluation
from loaders.batches import Batches
from loaders.datasets import stratified_subset
from runs import load_run, pick_device, prepare_data, source_model


def _setup(ev: Evaluation):
    results, cfg, model = load_run(ev.model)
    device = pick_device(ev.device)
    train, evals, described = prepare_data(cfg, ev.data_root, ev.cache_dir, ev.download)
    test = evals[f"{cfg.eval_on[0]}_test"]
    if ev.n is not None:
        if ev.n < 1:
            raise UsageError(f"n must be at least 1, got {ev.n}")
        test = stratified_subset(test, ev.n, cfg.data_seed)
    model = model.to(device)
    size, bs = cfg.image_size, ev.batch_size or cfg.eval_batch_size
    knn_train = Batches(train, bs, device, image_size=size) if cfg.head == "none" else None
    return (results, cfg, model, Classifier(model, knn_train, cfg.knn_k), Batches(test, bs, device, image_size=size),
            described, train)


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
    return {"model": str(ev.model), "preset": results["preset"], "profile": results["profile"],
            "seed": results["seed"], "config": cfg.to_dict()}


def attack_run(ev: Evaluation, examples: int = 8) -> dict:
    started = time.time()
    out = Path(ev.out)
    ensure_dir(out.parent)
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
        "provenance": provenance(test.device, time.time() - started),
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


def knn_run(ev: Evaluation) -> dict:
    """Clean (and adversarial) kNN accuracy on the 512-d features, fitted on the train embeddings."""
    started = time.time()
    results, cfg, model, target, test, described, train = _setup(ev)
    train_b = Batches(train, test.batch_size, test.device, image_size=cfg.image_size)
    if ev.k > len(train):
        raise UsageError(f"k={ev.k} is larger than the number of training points ({len(train)})")
    # an embedding model's classifier from _setup already holds the train embeddings: reuse it when k agrees
    clf = target if target.kind == "knn" and target.k == ev.k else Classifier(model, train_b, ev.k, knn=True)
    report = {**_head(ev, results, cfg), "k": ev.k, "train_points": len(train),
              "clean_acc": evaluate(clf, test)["acc"], "results": []}
    source = _source(ev, cfg, ev.attacks, test.device)
    report["results"] = [_attacked(clf, test, attack, source)[0] for attack in ev.attacks]
    report["provenance"] = provenance(test.device, time.time() - started)
    write_json(ev.out, report)
    return to_jsonable(report)


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
        x_adv = run_attack(attack, crafted_on, x, y, generator=g)
        with torch.no_grad():
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
        "provenance": provenance(test.device, time.time() - started),
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
