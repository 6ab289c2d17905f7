"""The attack evaluation: robust accuracy of a finished run under stated threat models.

Threat models:
  white-box  crafted against the model being evaluated (the default, and the honest number);
  transfer   crafted against a fixed source model and evaluated on every model (the study's protocol);
  black-box  from the model's output scores alone (Square), or from nothing at all (uniform noise).
Embedding (Circle Loss) models predict by kNN; white-box attacks on them go through the centroid-cosine
surrogate described in eval/classify.py, or (via="knn", in the audit) through the kNN's own differentiable score.
With --audit an attack evaluation adds the gradient-masking audit (eval/audit.py) on the same test images.
It takes one resolved Evaluation (eval/plan.py); experiments/ decides its defaults. The figures are drawn by
the `figures` it is handed (report.run_figures from the CLI); without them only the numbers and the example
grid's data (<stem>-examples.pt) are written.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import torch

from attacks.base import eps_label
from core.io import save_torch, to_jsonable, write_json
from eval.accuracy import bits, evaluate
from eval.audit import audit_checks
from eval.classify import Classifier
from eval.harness import attacked, head, one_writer, provenance_of, setup, source, track
from eval.plan import Evaluation, audit_attacks
from loaders.batches import Batches
from loaders.registry import class_names
from runs import layout


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


def _sweep(ev: Evaluation, target: Classifier, test: Batches, clean: dict, done: list | None = None) -> list[dict]:
    """White-box robust accuracy of each sweep method at each eps. PGD's step grows with eps (alpha/eps fixed,
    so its steps always reach the ball's edge); at eps 0 a pure gradient attack is the identity: clean accuracy.
    done: (spec, robust accuracy) of attacks already run on the same images; a sweep point whose spec equals one
    of them (the evaluation's own eps) takes that number instead of running the same attack again."""
    rows = []
    for method in ev.sweep_methods or [ev.attacks[0].method]:
        base = next((s for s in ev.attacks if s.method == method), replace(ev.attacks[0], method=method))
        base = replace(base, threat="white-box", via="logits")
        for eps in ev.eps_sweep:
            spec = base if eps == base.eps else replace(base, eps=eps, alpha=base.alpha * eps / base.eps
                                                        if base.eps else base.alpha)
            shortcut = eps == 0 and "noise" not in method
            ran = next((acc for s, acc in done or [] if s == spec), None)
            acc = clean["acc"] if shortcut else ran if ran is not None else evaluate(target, test, spec,
                                                                                      seed=spec.seed)["acc"]
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


@one_writer
def attack_run(ev: Evaluation, examples: int = 8, figures=None) -> dict:
    """Clean and robust accuracy per attack (and the eps sweep, and with ev.audit the audit) into ev.out.
    examples: images per row of the example grid. figures: draws the example grid and the eps curve (an object
    with example_grid and eps_curve, e.g. the report.run_figures module); None draws nothing."""
    started = time.time()
    out = Path(ev.out)
    results, cfg, model, target, test, described, _ = setup(ev)
    specs = _specs(ev, target)
    src = source(ev, cfg, specs, test.device)
    clean = evaluate(target, test, keep=examples)
    clean_bits = bits(clean["correct"])
    rows, grids, done = [], [], []
    for spec in specs:
        row, res = attacked(target, test, spec, src, keep=examples)
        rows.append(row)
        done.append((spec, res["acc"]))
        grids.append((spec, res["examples"]))
        print(f"{results['preset']}: {spec.threat} {spec.label} eps {eps_label(spec.eps)}: "
              f"{res['acc']:.2f}% (clean {clean['acc']:.2f}%)")
    report = to_jsonable({
        **head(ev, results, cfg), "prediction": target.kind,
        "test": described[f"{cfg.eval_on[0]}_test"] | {"n": clean["n"]},
        "clean_acc": clean["acc"], "clean_correct": clean_bits, "results": rows,
        "eps_sweep": _sweep(ev, target, test, clean, done) if ev.eps_sweep else [],
    })
    if ev.audit:
        report["sanity"] = to_jsonable(_sanity(target, test))
        report["audit"] = audit_checks([report])
    report["provenance"] = to_jsonable(provenance_of(test, started))
    _examples(out, report, clean, grids, cfg, target, figures)
    write_json(out, report)  # last: its presence marks a finished evaluation
    stem = out.with_suffix("")
    track(ev, report, images={"examples": f"{stem}-examples.png", "eps": f"{stem}-eps.png"}
          if figures is not None else None)
    return report


def _examples(out: Path, report: dict, clean: dict, grids: list, cfg, target, figures) -> None:
    """The example grid's data (<stem>-examples.pt: clean, noise, then each attack's images and predictions),
    then, with `figures`, the grid and the eps curve as PNGs beside the results file."""
    from attacks.noise import noise

    stem = out.with_suffix("")
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
    if figures is None:
        return
    folder = out.parent.parent if layout.seed_of(out.parent) is not None else out.parent
    section = folder.name if folder.name != report["preset"] else report["preset"]
    model = "" if section == report["preset"] else f" (the {report['preset']} model)"
    figures.example_grid(examples, f"{stem}-examples.png", class_names(cfg.eval_on[0]),
                         title=f"{section}{model}, {report['profile']} profile, "
                               f"eps {eps_label(grids[0][0].eps) if grids else ''}")
    if report["eps_sweep"]:
        figures.eps_curve(report["eps_sweep"], f"{stem}-eps.png",
                          title=f"{report['preset']}: white-box robust accuracy vs eps "
                                f"({report['test']['n']:,} test images)")
