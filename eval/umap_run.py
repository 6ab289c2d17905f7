"""The UMAP evaluation: a 2-d map of a finished run's 512-d pooled features, fitted once on clean test features,
with the adversarial features placed into that same map with transform(). The figure is drawn by the
`figures` it is handed (report.run_figures from the CLI); without them only the results file is written."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch

from core.errors import UsageError
from core.io import to_jsonable, write_json
from eval.harness import head, one_writer, provenance_of, setup, source, track
from eval.plan import Evaluation
from loaders.registry import class_names


@one_writer
def umap_run(ev: Evaluation, n_neighbors: int = 10, min_dist: float = 0.3, random_state: int = 42,
             figures=None) -> dict:
    """UMAP of the 512-d pooled features: fitted once on clean test features; the adversarial
    features are placed into that same map with transform(). figures: draws the pair of maps (an object with
    umap_pair, e.g. the report.run_figures module) as <out>.png; None draws nothing."""
    if ev.n is None or ev.n < 10:
        raise UsageError(f"eval-size (--max-points) must be at least 10, got {ev.n}")
    started = time.time()
    results, cfg, model, target, test, _, _ = setup(ev)
    attack = ev.attacks[0]
    src, _ = source(ev, cfg, [attack], test.device)
    crafted_on = (src or target).logits_model
    clean_f, adv_f, labels = [], [], []
    from attacks.registry import run_attack
    from core.progress import bar as progress_bar

    bar = progress_bar(test.epoch(), total=len(test), desc="features", unit="batch")
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
    first = head(ev, results, cfg)
    first.pop("config")
    report = to_jsonable({
        **first, "attack": attack.describe(),
        "umap": {"n_neighbors": n_neighbors, "min_dist": min_dist, "random_state": random_state, "fit_on": "clean",
                 "points": len(labels)},
        "labels": labels.tolist(), "clean": {"xy": mapper.embedding_.tolist()},
        "adversarial": {"xy": mapper.transform(adv_f).tolist()},
        "provenance": provenance_of(test, started),
    })
    png = Path(ev.out).with_suffix(".png")
    if figures is not None:
        figures.umap_pair(report, png, class_names(cfg.eval_on[0]))
    write_json(ev.out, report)
    track(ev, report, images={"umap": png} if figures is not None else None)
    return report


def fit_umap(features, *, n_neighbors: int, min_dist: float, random_state: int):
    import umap

    _cache_jit()
    return umap.UMAP(n_neighbors=n_neighbors, min_dist=min_dist, random_state=random_state, n_jobs=1).fit(features)


def _cache_jit() -> None:
    """Let numba cache every umap/pynndescent function it compiles (in NUMBA_CACHE_DIR), not only the few they
    mark cache=True. Most of a small UMAP's time is the JIT (about 20 s per process on 2 CPU cores for 100
    points, then 0.2 s from the cache); the cache is keyed by each function's source and types, so a changed
    library recompiles. Without NUMBA_CACHE_DIR numba would write beside the installed package: skipped."""
    if not os.environ.get("NUMBA_CACHE_DIR"):
        return
    from numba.core.registry import CPUDispatcher

    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in ("umap", "pynndescent"):
            continue
        for fn in list(vars(module).values()):
            if isinstance(fn, CPUDispatcher) and fn._cache.__class__.__name__ == "NullCache":
                try:
                    fn.enable_caching()
                except RuntimeError:  # numba cannot locate its source (e.g. made by exec): it stays uncached
                    pass


def warm_jit(cache_dir: str | os.PathLike) -> None:
    """Compile umap's and pynndescent's numba functions into <cache_dir>/numba once (`make venv` calls this), so
    a first `make demo` or UMAP evaluation loads them instead of compiling for about 45 s: a small fit and
    transform with the evaluation's settings and its float32 features (numba compiles per type, not per size)."""
    import numpy as np

    os.environ.setdefault("NUMBA_CACHE_DIR", str((Path(cache_dir) / "numba").resolve()))
    features = np.random.default_rng(0).normal(size=(60, 512)).astype(np.float32)
    fit_umap(features, n_neighbors=10, min_dist=0.3, random_state=42).transform(features[:10])


if __name__ == "__main__":  # python -m eval.umap_run --warm CACHE_DIR
    if len(sys.argv) != 3 or sys.argv[1] != "--warm":
        sys.exit("usage: python -m eval.umap_run --warm CACHE_DIR")
    warm_jit(sys.argv[2])
