"""The attack, knn-eval and umap evaluations: robust accuracy of a finished run under stated threat models.

Threat models:
  white-box  crafted against the model being evaluated (the default, and the honest number);
  transfer   crafted against a fixed source model and evaluated on every model (the study's protocol);
  black-box  from the model's output scores alone (Square), or from nothing at all (uniform noise).
Embedding (Circle Loss) models predict by kNN; white-box attacks on them go through the centroid-cosine
surrogate described in eval/classify.py, or (via="knn", in the audit) through the kNN's own differentiable score.
With --audit an attack evaluation adds the gradient-masking audit (eval/audit.py) on the same test images.
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
from eval.audit import audit_checks
from eval.classify import Classifier
from eval.plan import AttackPlan, Evaluation, KnnPlan, UmapPlan, audit_attacks
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
    through = ("the kNN's differentiable score" if spec.via == "knn" else
               "the centroid surrogate" if clf.logits_model is not clf.model else "the model's logits")
    row = {**spec.describe(), "label": spec.label, "source": source[1] if transfer else "the model itself",
           "through": "the source model's logits" if transfer else through, "robust_acc": res["acc"], "n": res["n"],
           "correct": bits(res["correct"]),  # per test image, in order: for paired comparisons of attacks
           **{k: res[k] for k in ("max_perturbation", "min_pixel", "max_pixel") if k in res}}
    return row, res


def bits(correct: torch.Tensor) -> str:
    """Per-image correctness as a string of 0s and 1s (the test subset's order)."""
    return "".join("1" if c else "0" for c in correct.tolist())


def _key(spec) -> tuple:
    """What the report tells attacks apart by (eval/audit.py robust): two specs with one key would be pooled."""
    return spec.method, spec.threat, spec.steps if "pgd" in spec.method else None, spec.restarts, spec.via


def _specs(ev: Evaluation, target: Classifier) -> list:
    """The evaluation's attacks, then (with --audit) the audit's whose key none of them has."""
    specs = list(ev.attacks)
    if ev.audit:
        taken = {_key(s) for s in specs}
        specs += [s for s in audit_attacks(ev.attacks[0], ev.square_queries, target.kind == "knn")
                  if _key(s) not in taken]
    return specs


def _sweep(ev: Evaluation, target: Classifier, test: Batches, clean: dict) -> list[dict]:
    """White-box robust accuracy of each sweep method at each eps. PGD's step grows with eps (alpha/eps fixed,
    so its steps always reach the ball's edge); at eps 0 a pure gradient attack is the identity: clean accuracy."""
    rows = []
    for method in ev.sweep_methods or [ev.attacks[0].method]:
        base = next((s for s in ev.attacks if s.method == method), replace(ev.attacks[0], method=method))
        base = replace(base, threat="white-box", via="logits")
        for eps in ev.eps_sweep:
            spec = replace(base, eps=eps, alpha=base.alpha * eps / base.eps if base.eps else base.alpha)
            shortcut = eps == 0 and "noise" not in method
            acc = clean["acc"] if shortcut else evaluate(target, test, spec, seed=spec.seed)["acc"]
            rows.append({**spec.describe(), "label": spec.label, "robust_acc": acc})
    return rows


def _sanity(target: Classifier, test: Batches) -> dict:
    """Check 8's numbers: logits of two eval-mode passes over the first batch, the range of the inputs the model
    receives, and the share of inputs whose cross-entropy input gradient is exactly zero."""
    import torch.nn.functional as F

    from attacks.context import eval_no_param_grad

    model = target.attacked_through(None)
    n = zero = 0
    lo, hi, change, scale = float("inf"), float("-inf"), 0.0, 1.0
    with eval_no_param_grad(model):
        for i, (x, y) in enumerate(test.epoch()):
            lo, hi = min(lo, x.min().item()), max(hi, x.max().item())
            x = x.detach().clone().requires_grad_(True)
            with test.autocast():
                logits = model(x).float()
            if i == 0:
                with torch.no_grad(), test.autocast():
                    again = model(x).float()
                change, scale = (logits - again).abs().max().item(), max(1.0, logits.abs().max().item())
            (grad,) = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), x)
            zero += int((grad.flatten(1).abs().amax(1) == 0).sum())
            n += len(y)
    return {"max_logit_change": change, "tolerance": 1e-4 * scale, "input_min": lo, "input_max": hi,
            "zero_grad_pct": 100.0 * zero / max(n, 1), "n": n, "gradient_of": "cross-entropy of "
            + ("the centroid surrogate" if model is not target.model else "the logits")}


def _head(ev: Evaluation, results: dict, cfg) -> dict:
    return {"evaluation": ev.kind, "model": str(ev.model), "preset": results["preset"], "profile": results["profile"],
            "seed": results["seed"], "config": cfg.to_dict()}


@_one_writer
def attack_run(ev: Evaluation, examples: int = 8) -> dict:
    started = time.time()
    out = Path(ev.out)
    results, cfg, model, target, test, described, _ = _setup(ev)
    specs = _specs(ev, target)
    source = _source(ev, cfg, specs, test.device)
    clean = evaluate(target, test, keep=examples)
    clean_bits = bits(clean["correct"])
    rows, grids = [], []
    for spec in specs:
        row, res = _attacked(target, test, spec, source, keep=examples)
        rows.append(row)
        grids.append((spec, res["examples"]))
        print(f"{results['preset']}: {spec.threat} {spec.label} eps {eps_label(spec.eps)}: "
              f"{res['acc']:.2f}% (clean {clean['acc']:.2f}%)")
    report = to_jsonable({
        **_head(ev, results, cfg), "prediction": target.kind,
        "test": described[f"{cfg.eval_on[0]}_test"] | {"n": clean["n"]},
        "clean_acc": clean["acc"], "clean_correct": clean_bits, "results": rows,
        "eps_sweep": _sweep(ev, target, test, clean) if ev.eps_sweep else [],
    })
    if ev.audit:
        report["sanity"] = to_jsonable(_sanity(target, test))
        report["audit"] = audit_checks([report])
    report["provenance"] = to_jsonable(_provenance(test, started))
    _figures(out, report, clean, grids, cfg, target)
    write_json(out, report)  # last: its presence marks a finished evaluation
    stem = out.with_suffix("")
    _track(ev, report, images={"examples": f"{stem}-examples.png", "eps": f"{stem}-eps.png"})
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
        rows.append({"name": f"{spec.label}\n{spec.threat}", "images": kept["images"], "preds": kept["preds"]})
    examples = {"labels": ex["labels"], "rows": rows}
    save_torch(f"{stem}-examples.pt", examples)  # the grid's data, so the figure can be redrawn from a file
    folder = out.parent.parent if out.parent.name.startswith("seed-") else out.parent
    section = folder.name if folder.name != report["preset"] else report["preset"]
    model = "" if section == report["preset"] else f" (the {report['preset']} model)"
    example_grid(examples, f"{stem}-examples.png", names,
                 title=f"{section}{model}, {report['profile']} profile, eps {eps_label(grids[0][0].eps) if grids else ''}")
    if report["eps_sweep"]:
        eps_curve(report["eps_sweep"], f"{stem}-eps.png",
                  title=f"{report['preset']}: white-box robust accuracy vs eps "
                        f"({report['test']['n']:,} test images)")


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
              "clean_acc": evaluate(clf, test)["acc"], "test": {"n": len(test.labels)}, "results": []}
    source = _source(ev, cfg, ev.attacks, test.device)
    report["results"] = [_attacked(clf, test, attack, source)[0] for attack in ev.attacks]
    report["provenance"] = _provenance(test, started)
    write_json(ev.out, report)
    _track(ev, to_jsonable(report))
    return to_jsonable(report)


@_one_writer
def umap_run(ev: Evaluation, n_neighbors: int = 10, min_dist: float = 0.3, random_state: int = 42) -> dict:
    """UMAP of the 512-d pooled features: fitted once on clean test features; the adversarial
    features are placed into that same map with transform()."""
    if ev.n is None or ev.n < 10:
        raise UsageError(f"eval-size (--max-points) must be at least 10, got {ev.n}")
    started = time.time()
    results, cfg, model, target, test, _, _ = _setup(ev)
    attack = ev.attacks[0]
    src, _ = _source(ev, cfg, [attack], test.device)
    crafted_on = (src or target).logits_model
    clean_f, adv_f, labels = [], [], []
    from attacks.registry import run_attack

    import sys

    from tqdm.auto import tqdm

    bar = tqdm(test.epoch(), total=len(test), desc="features", leave=False, disable=not sys.stderr.isatty())
    for i, (x, y) in enumerate(bar):
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
    _track(ev, report, images={"umap": png})
    return report


def _track(ev: Evaluation, report: dict, images: dict | None = None) -> None:
    """The evaluation as a W&B run in its section's group: one summary key per number
    (adv/<threat>/<attack>/acc, clean/acc), the attacks as a table (method, threat, eps, steps, n, accuracy,
    95% interval), the eps sweep as a table and line plot, the figures as images."""
    if not ev.wandb:
        return
    from core.tracking import Tracker, group, run_name
    from eval.audit import wilson

    job = {"attack": Path(ev.out).stem, "knn": "knn", "umap": "umap"}[ev.kind]
    rows = report.get("results", [])
    tracker = Tracker(True, group=group(report["profile"], report["preset"]),
                      name=run_name(report["preset"], report["seed"], job), job_type=ev.kind,
                      config={"model": str(ev.model), "out": str(ev.out), "n": ev.n, "config": report.get("config", {}),
                              "attacks": [{k: v for k, v in r.items() if k != "correct"} for r in rows]},
                      tags=(report["profile"], *sorted({r["threat_model"] for r in rows})))
    summary = {f"adv/{r['threat_model']}/{r.get('label', r['method'])}/acc": r["robust_acc"] for r in rows}
    if "clean_acc" in report:
        summary["clean/acc"] = report["clean_acc"]
    for check in report.get("audit", []):  # the audit's verdicts: pass, flag or inconclusive
        summary[f"audit/{check['check']}"] = {True: "pass", False: "flag", None: "inconclusive"}[check["passed"]]
    tracker.summary(summary)
    if rows:
        table = []
        for r in rows:
            lo, hi = wilson(r["robust_acc"], r["n"]) if r.get("n") else (None, None)
            table.append([r.get("label", r["method"]), r["threat_model"], r.get("eps_label"), r.get("steps"), r.get("n"),
                          r["robust_acc"], lo, hi])
        tracker.table("robustness", ["attack", "threat", "eps", "steps", "n", "accuracy", "ci95_low", "ci95_high"], table)
    sweep = report.get("eps_sweep") or []
    if sweep:
        tracker.table("eps_sweep", ["attack", "eps", "eps_label", "accuracy"],
                      [[r.get("label", r["method"]), r["eps"], r["eps_label"], r["robust_acc"]] for r in sweep],
                      line=("eps", "accuracy", "attack", f"{report['preset']}: white-box robust accuracy vs eps"))
    for key, path in (images or {}).items():
        if Path(path).is_file():
            tracker.image(key, path, caption=f"{report['preset']} {key}")
    tracker.finish()


def fit_umap(features, *, n_neighbors: int, min_dist: float, random_state: int):
    import umap

    return umap.UMAP(n_neighbors=n_neighbors, min_dist=min_dist, random_state=random_state, n_jobs=1).fit(features)
