"""What the three evaluation runners (eval/attack_run.py, eval/knn_run.py, eval/umap_run.py) share: claiming
their output files, loading the finished run and its test subset, the transfer source, one attack's results
row, the results file's head and provenance, and the evaluation's W&B run.
"""
from __future__ import annotations

import time
from pathlib import Path

from core import wandb_keys
from core.amp import memory_format, resolved
from core.errors import UsageError
from core.provenance import provenance
from eval.accuracy import bits, evaluate
from eval.classify import Classifier
from eval.plan import AttackPlan, Evaluation, KnnPlan, UmapPlan
from loaders.batches import Batches
from loaders.datasets import stratified_subset
from runs import claim, load_run, pick_device, prepare_data, source_model

# The default results file of each kind of evaluation; no evaluation writes over another's (runs/claim.py).
RESULTS_FILES = {"attack": AttackPlan.file, "knn": KnnPlan.file, "umap": UmapPlan.file}
# Decorates a runner `run(ev, ...)`: it runs only with its outputs checked and its results file's lock held.
one_writer = claim.one_writer(RESULTS_FILES)


def setup(ev: Evaluation):
    """(run results, config, model on the device, its Classifier, test Batches, dataset descriptions, train set)
    for the evaluation's finished run, on its stratified test subset of ev.n images."""
    results, cfg, model = load_run(ev.model)
    device = pick_device(ev.device)
    train, evals, described = prepare_data(cfg, ev.data_root, ev.cache_dir, ev.download)
    test = evals[f"{cfg.eval_on[0]}_test"]
    if ev.n is not None:
        if ev.n < 1:
            raise UsageError(f"n must be at least 1, got {ev.n}")
        test = stratified_subset(test, ev.n, cfg.data_seed)
    # evaluations (attacks included) in fp32 on every device, as RobustBench evaluates, unless the user asks for
    # another precision (--precision bf16 applies to the attacks too; provenance records it)
    cfg.precision = ev.precision or "fp32"
    cfg.channels_last = cfg.channels_last if ev.channels_last is None else ev.channels_last
    model = model.to(device, memory_format=memory_format(device, cfg.channels_last))
    size, bs = cfg.image_size, ev.batch_size or cfg.eval_batch_size
    computing = dict(image_size=size, precision=cfg.precision, channels_last=cfg.channels_last)
    knn_train = Batches(train, bs, device, **computing) if cfg.head == "none" else None
    return (results, cfg, model, Classifier(model, knn_train, cfg.knn_k), Batches(test, bs, device, **computing),
            described, train)


def provenance_of(test: Batches, started: float) -> dict:
    """Commit, versions, device, wall time since `started` (seconds), and the precision the test ran in."""
    return {**provenance(test.device, time.time() - started),
            **resolved(test.device, test.precision, test.channels_last)}


def head(ev: Evaluation, results: dict, cfg) -> dict:
    """The fields every results file of an evaluation starts with."""
    from runs.folder import MODEL, file_sha256

    run = results.get("identity") or {}
    return {"evaluation": ev.kind, "model": str(ev.model), "preset": results["preset"], "profile": results["profile"],
            "seed": results["seed"], "config": cfg.to_dict(),
            # whose evaluation this is: the run's identity, and the model file this evaluation read
            "identity": {**run, "model_sha256": file_sha256(Path(ev.model) / MODEL),
                         "run_model_sha256": run.get("model_sha256")}}


def source(ev: Evaluation, cfg, specs, device):
    """(classifier to craft transfer attacks on, its description), or (None, None) without one."""
    if not any(s.threat == "transfer" for s in specs):
        return None, None
    if not ev.source:
        raise UsageError("a transfer attack needs a source model: pass --source pretrained or a run folder")
    model, desc = source_model(cfg, ev.source, specs[0].seed)
    return Classifier(model.to(device)), desc


def attacked(clf, test, spec, source, keep: int = 0) -> tuple[dict, dict]:
    """(the results row, evaluate's output) for one attack; a transfer attack is crafted on `source`,
    a (classifier, description) pair from source()."""
    transfer = spec.threat == "transfer"
    res = evaluate(clf, test, spec, source[0] if transfer else None, seed=spec.seed, keep=keep)
    through = ("the kNN's differentiable score" if spec.via == "knn" else
               "the centroid surrogate" if clf.logits_model is not clf.model else "the model's logits")
    row = {**spec.describe(), "label": spec.label, "source": source[1] if transfer else "the model itself",
           "through": "the source model's logits" if transfer else through, "robust_acc": res["acc"], "n": res["n"],
           "correct": bits(res["correct"]),  # per test image, in order: for paired comparisons of attacks
           "threat_pixels": "x".join(map(str, res["pixels"])) if res.get("pixels") else None,  # the eps ball's
           **{k: res[k] for k in ("max_perturbation", "min_pixel", "max_pixel") if k in res}}
    if "after" in res:  # AutoAttack: robust accuracy after each of its attacks (cumulative), and its own warnings
        from attacks.autoattack import NAMES

        row["breakdown"] = [{"attack": NAMES.get(name, name), "robust_acc": 100.0 * flags.float().mean().item(),
                             "correct": bits(flags)} for name, flags in res["after"].items()]
        row["warnings"] = res["warnings"]
    return row, res


def track(ev: Evaluation, report: dict, images: dict | None = None) -> None:
    """The evaluation as a W&B run in its section's group: one summary key per number
    (adv/<threat>/<attack>/acc, clean/acc, audit/<check>: core/wandb_keys.py), the attacks as a table (method,
    threat, eps, steps, n, accuracy, 95% interval), the eps sweep as a table and line plot, the figures as images."""
    if not ev.wandb:
        return
    from core.tracking import Tracker, group, run_name
    from eval.stats import wilson

    job = {"attack": Path(ev.out).stem, "knn": "knn", "umap": "umap"}[ev.kind]
    rows = report.get("results", [])
    tracker = Tracker(True, group=group(report["profile"], report["preset"]),
                      name=run_name(report["preset"], report["seed"], job), job_type=ev.kind,
                      config={"model": str(ev.model), "out": str(ev.out), "n": ev.n, "config": report.get("config", {}),
                              "attacks": [{k: v for k, v in r.items() if k != "correct"} for r in rows]},
                      tags=(report["profile"], *sorted({r["threat_model"] for r in rows})))
    summary = {wandb_keys.adv_acc(r["threat_model"], r.get("label", r["method"])): r["robust_acc"] for r in rows}
    if "clean_acc" in report:
        summary[wandb_keys.CLEAN_ACC] = report["clean_acc"]
    for check in report.get("audit", []):  # the audit's verdicts: pass, flag or inconclusive
        summary[wandb_keys.audit(check["check"])] = {True: "pass", False: "flag", None: "inconclusive"}[check["passed"]]
    tracker.summary(summary)
    if rows:
        table = []
        for r in rows:
            lo, hi = wilson(r["robust_acc"], r["n"]) if r.get("n") else (None, None)
            table.append([r.get("label", r["method"]), r["threat_model"], r.get("eps_label"), r.get("steps"),
                          r.get("n"), r["robust_acc"], lo, hi])
        tracker.table(wandb_keys.ROBUSTNESS_TABLE, ["attack", "threat", "eps", "steps", "n", "accuracy", "ci95_low",
                                              "ci95_high"], table)
    sweep = report.get("eps_sweep") or []
    if sweep:
        tracker.table(wandb_keys.EPS_SWEEP_TABLE, ["attack", "eps", "eps_label", "accuracy"],
                      [[r.get("label", r["method"]), r["eps"], r["eps_label"], r["robust_acc"]] for r in sweep],
                      line=("eps", "accuracy", "attack", f"{report['preset']}: white-box robust accuracy vs eps"))
    for key, path in (images or {}).items():
        if Path(path).is_file():
            tracker.image(key, path, caption=f"{report['preset']} {key}")
    tracker.finish()
