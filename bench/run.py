#!/usr/bin/env python
"""make bench: speed measured side by side in one process, as ratios, with the median of repeats.

Rows (each names its device, batch size and repeats):
  1. training with the study's augmentation: ours (uint8 tensors, kornia on the device) vs the study's
     pipeline (torchvision Dataset, PIL transforms, DataLoader(num_workers=2)), batch 16 and 128;
     and the same with the training step under torch.compile;
  2. training, ours vs a bare model step on in-memory tensors (the limit);
  3. FGSM and PGD-10: ours vs plain advertorch vs a hand-written input-gradient loop (the limit),
     with the largest pixel difference between the adversarial images;
  4. kNN (k=3): ours (chunked torch) vs scikit-learn brute force, with prediction agreement;
  5. UMAP: a cold run (fresh numba cache) and a warm one, and fit time against the number of points;
  6. scaling: epoch time at 1k, 4k and 16k images, with the fitted slope and R^2;
  7. command start: a command importing what the demo's commands import, fresh vs forked from runs/zygote.py.
Writes results/bench/<hostname>.json (atomically) and prints a table.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np
import torch
import torch.nn.functional as F

from core.io import write_json
from core.provenance import provenance
from loaders.augment import study_augmentation
from loaders.batches import Batches
from loaders.datasets import ImageSet, load_split
from models.resnet import ResNet18

GOALS = {"train_aug_vs_study": (">=", 1.5), "train_aug_compiled_vs_study": (">=", 1.5), "train_vs_bare": (">=", 0.9),
         "fgsm_vs_limit": ("<=", 1.1), "pgd_vs_limit": ("<=", 1.1), "knn_vs_sklearn": ("<=", 1.0),
         "autoattack_vs_direct": ("<=", 1.1), "start_forked_vs_fresh": ("<=", 0.25)}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def side_by_side(fns, repeats: int, device, min_seconds: float = 1.0) -> list[float]:
    """Median seconds of each fn, timed in turn (A B C, A B C, ...) so that drift in the machine's speed
    hits every contender alike; short calls get more rounds, until each has run about min_seconds."""
    for fn in fns:
        fn()  # warm-up
    times = [[] for _ in fns]
    rounds = 0
    while rounds < repeats or (min(sum(t) for t in times) < min_seconds and rounds < 50):
        for fn, t in zip(fns, times):
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            t.append(time.perf_counter() - t0)
        rounds += 1
    return [statistics.median(t) for t in times]


def digits(n: int) -> ImageSet:
    base = load_split("digits", "train")
    reps = -(-n // len(base))
    return ImageSet(base.images.repeat(reps, 1, 1, 1)[:n], base.labels.repeat(reps)[:n], "digits", "train", "bench")


def model_and_opt(device):
    torch.manual_seed(0)
    model = ResNet18().to(device)
    return model, torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)


def step(model, opt, x, y):
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


# ---------------------------------------------------------------- 1 and 2: training

def study_loader(data: ImageSet, batch: int):
    """The study's pipeline: a Dataset of PIL images, per-sample PIL transforms, 2 workers."""
    import torchvision.transforms as T
    from PIL import Image

    transform = T.Compose([T.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1)),
                           T.ColorJitter(brightness=0.2, contrast=0.2), T.RandomPerspective(0.2, p=0.5),
                           T.RandomCrop(32, padding=4), T.ToTensor()])
    arrays = data.images.permute(0, 2, 3, 1).numpy()
    labels = data.labels.tolist()

    class PilDataset(torch.utils.data.Dataset):
        def __len__(self):
            return len(labels)

        def __getitem__(self, i):
            return transform(Image.fromarray(arrays[i])), labels[i]

    return torch.utils.data.DataLoader(PilDataset(), batch_size=batch, shuffle=True, num_workers=2,
                                       persistent_workers=True)


def bench_training(device, repeats: int, images: int, compile_rows: bool = True) -> list[dict]:
    rows = []
    data = digits(images)
    for batch in (16, 128):
        model, opt = model_and_opt(device)
        ours = Batches(data, batch, device, shuffle=True, augment=study_augmentation().to(device))
        loader = study_loader(data, batch)

        def run_ours():
            for x, y in ours.epoch(0):
                step(model, opt, x, y)

        def run_study():
            for x, y in loader:
                step(model, opt, x.to(device), y.to(device))

        contenders = [run_ours, run_study]
        if compile_rows:  # the same, with the training step under torch.compile (cli.py train --compile)
            c_model, c_opt = model_and_opt(device)
            compiled = torch.compile(c_model)

            def run_compiled():
                for x, y in ours.epoch(0):
                    step(compiled, c_opt, x, y)

            t0 = time.perf_counter()
            run_compiled()  # compiles
            compile_s = time.perf_counter() - t0
            contenders.append(run_compiled)
        t_ours, t_study, *t_comp = side_by_side(contenders, repeats, device)
        rows.append(dict(row="train_aug_vs_study", batch=batch, ours_img_s=images / t_ours,
                         reference_img_s=images / t_study, ratio=t_study / t_ours,
                         note="img/s ours vs torchvision Dataset + PIL transforms + DataLoader(num_workers=2)"))
        if t_comp:
            rows.append(dict(row="train_aug_compiled_vs_study", batch=batch, ours_img_s=images / t_comp[0],
                             reference_img_s=images / t_study, ratio=t_study / t_comp[0],
                             compiled_vs_eager=t_ours / t_comp[0], compile_seconds=compile_s,
                             note="ours with torch.compile (inductor) vs the study's pipeline; the first epoch "
                                  "pays compile_seconds"))
        plain = Batches(data, batch, device, shuffle=True)
        x_mem, y_mem = next(plain.epoch(0))
        steps = len(plain)

        def run_plain():
            for x, y in plain.epoch(0):
                step(model, opt, x, y)

        def run_bare():
            for _ in range(steps):
                step(model, opt, x_mem, y_mem)

        t_plain, t_bare = side_by_side([run_plain, run_bare], repeats, device)
        rows.append(dict(row="train_vs_bare", batch=batch, ours_img_s=images / t_plain,
                         reference_img_s=steps * batch / t_bare, ratio=(images / t_plain) / (steps * batch / t_bare),
                         note="ours (no augmentation) vs a bare step on one in-memory batch"))
    return rows


# ---------------------------------------------------------------- 3: attacks

def bench_attacks(device, repeats: int, autoattack_run: str | None = None) -> list[dict]:
    from attacks import AttackSpec, run_attack
    from attacks.compat import advertorch

    torch.manual_seed(0)
    model = ResNet18(mean=(0.5,) * 3, std=(0.5,) * 3).to(device).eval()
    x, y = torch.rand(128, 3, 32, 32, device=device), torch.randint(0, 10, (128,), device=device)
    eps, alpha = 8 / 255, 2 / 255
    rows = []
    for name, steps in (("fgsm", 1), ("pgd", 10)):
        spec = AttackSpec(name, eps=eps, alpha=alpha if steps > 1 else eps, steps=steps, random_start=False)
        ours = lambda: run_attack(spec, model, x, y)

        def plain():
            loss = torch.nn.CrossEntropyLoss(reduction="sum")
            if name == "fgsm":
                return advertorch.attacks.GradientSignAttack(model, loss, eps=eps).perturb(x, y)
            return advertorch.attacks.LinfPGDAttack(model, loss, eps=eps, nb_iter=steps, eps_iter=alpha,
                                                    rand_init=False).perturb(x, y)

        def limit():
            for p in model.parameters():
                p.requires_grad_(False)
            adv = x.clone()
            for _ in range(steps):
                adv.requires_grad_(True)
                grad, = torch.autograd.grad(F.cross_entropy(model(adv), y, reduction="sum"), adv)
                adv = adv.detach() + (alpha if steps > 1 else eps) * grad.sign()
                adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(0, 1)
            for p in model.parameters():
                p.requires_grad_(True)
            return adv

        t_ours, t_plain, t_limit = side_by_side([ours, plain, limit], repeats, device)
        model.zero_grad(set_to_none=True)
        diff = max((ours() - limit()).abs().max().item(), (ours() - plain()).abs().max().item())
        rows.append(dict(row=f"{name}_vs_limit", batch=128, ours_s=t_ours, advertorch_plain_s=t_plain,
                         reference_s=t_limit, ratio=t_ours / t_limit, ratio_vs_advertorch=t_ours / t_plain,
                         max_abs_image_diff=diff, steps=steps,
                         note="seconds for 128 images; reference = hand-written torch.autograd.grad loop"))
    rows.append(bench_autoattack(*(_robust_model(autoattack_run, device) if autoattack_run else (model, None)),
                                 device=device, repeats=repeats))
    return rows


def _robust_model(run: str, device, data_root: str = "data", cache_dir: str = "data/cache"):
    """A finished run's model and 16 of its test images spread over the classes (for the AutoAttack row, whose
    time on an untrained model is only the early exit)."""
    import os

    from loaders.datasets import stratified_subset
    from runs import load_run, prepare_data

    _, cfg, model = load_run(run)
    _, evals, _ = prepare_data(cfg, os.environ.get("TRUSTLAB_DATA_ROOT", data_root), cache_dir, False)
    test = stratified_subset(evals[f"{cfg.eval_on[0]}_test"], 160, cfg.data_seed)
    return model.to(device).eval(), test.images[::10].float().div(255)


def bench_autoattack(model, images=None, *, device, repeats: int, n: int = 16) -> dict:
    """Our AutoAttack (the registry's, as `cli.py attack --method autoattack` runs it: pyautoattack's standard
    version, one call per attack to record the breakdown) against pyautoattack's AutoAttack called directly on the
    same model and images: time, and the robust accuracy of each. The labels are the model's own predictions, so
    every image starts correct and all four attacks have work to do."""
    from pyautoattack import AutoAttack

    from attacks import AttackSpec, run_attack

    x = torch.rand(n, 3, 32, 32, device=device) if images is None else images[:n].to(device)
    with torch.no_grad():
        y = model(x).argmax(1)
    spec = AttackSpec("autoattack", eps=8 / 255, seed=0)
    ours = lambda: run_attack(spec, model, x, y)
    direct = lambda: AutoAttack(model, norm="Linf", eps=8 / 255, version="standard", seed=0,
                                device=x.device).run_standard_evaluation(x, y, batch_size=n)[0]
    t_ours, t_direct = side_by_side([ours, direct], repeats, device)
    with torch.no_grad():
        acc = [100.0 * (model(f()).argmax(1) == y).float().mean().item() for f in (ours, direct)]
    return dict(row="autoattack_vs_direct", batch=n, ours_s=t_ours, reference_s=t_direct, ratio=t_ours / t_direct,
                ours_robust_acc=acc[0], direct_robust_acc=acc[1], identical_accuracy=acc[0] == acc[1],
                note=f"seconds for {n} images; reference = pyautoattack.AutoAttack called directly")


# ---------------------------------------------------------------- 4: kNN

def bench_knn(device, repeats: int, n_train: int, n_test: int) -> list[dict]:
    from eval.knn import knn_predict, knn_predict_sklearn

    g = torch.Generator().manual_seed(0)
    train_x, test_x = torch.randn(n_train, 512, generator=g), torch.randn(n_test, 512, generator=g)
    train_y = torch.randint(0, 10, (n_train,), generator=g)
    tx, ty, qx = train_x.to(device), train_y.to(device), test_x.to(device)
    t_ours, t_ref = side_by_side([lambda: knn_predict(tx, ty, qx, k=3),
                                  lambda: knn_predict_sklearn(train_x, train_y, test_x, k=3)], repeats, device)
    agree = (knn_predict(tx, ty, qx, k=3).cpu() == knn_predict_sklearn(train_x, train_y, test_x, k=3)).float().mean().item()
    return [dict(row="knn_vs_sklearn", batch=f"{n_train}->{n_test}x512", ours_s=t_ours, reference_s=t_ref,
                 ratio=t_ours / t_ref, prediction_agreement=agree, note="k=3, sklearn brute force as the reference")]


# ---------------------------------------------------------------- 5: UMAP

UMAP_SNIPPET = """
import time, sys
t = time.perf_counter()
import numpy as np, umap
x = np.random.default_rng(0).normal(size=({n}, 512)).astype('float32')
umap.UMAP(n_neighbors=10, min_dist=0.3, random_state=42, n_jobs=1).fit(x)
print(time.perf_counter() - t)
"""


def bench_umap(points: list[int]) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        times = []
        for _label in ("cold", "warm"):  # the first run fills the numba cache, the second reuses it
            out = subprocess.run([sys.executable, "-c", UMAP_SNIPPET.format(n=points[0])], env=env,
                                 capture_output=True, text=True, check=True)
            times.append(float(out.stdout.strip().splitlines()[-1]))
        rows.append(dict(row="umap_cold_warm", batch=points[0], cold_s=times[0], warm_s=times[1],
                         ratio=times[1] / times[0], note="import + fit in a fresh process; warm reuses the numba cache"))
        for n in points:
            out = subprocess.run([sys.executable, "-c", UMAP_SNIPPET.format(n=n)], env=env,
                                 capture_output=True, text=True, check=True)
            rows.append(dict(row="umap_points", batch=n, seconds=float(out.stdout.strip().splitlines()[-1]),
                             note="warm process, import + fit"))
    return rows


# ---------------------------------------------------------------- 6: scaling

def bench_scaling(device, sizes: list[int], batch: int) -> list[dict]:
    model, opt = model_and_opt(device)
    seconds = []
    for n in sizes:
        b = Batches(digits(n), batch, device, shuffle=True)

        def epoch():
            for x, y in b.epoch(0):
                step(model, opt, x, y)

        seconds.append(side_by_side([epoch], 1, device, min_seconds=0)[0])
    slope, intercept = np.polyfit(sizes, seconds, 1)
    pred = np.polyval([slope, intercept], sizes)
    r2 = 1 - ((np.array(seconds) - pred) ** 2).sum() / ((np.array(seconds) - np.mean(seconds)) ** 2).sum()
    return [dict(row="scaling", batch=batch, sizes=sizes, seconds=seconds, slope_s_per_1k=1000 * slope,
                 intercept_s=intercept, r2=r2, note="epoch time vs training images; linear if r2 is near 1")]


# ---------------------------------------------------------------- 7: command start (make demo's fork server)

START_PROBE = "import torchvision, wandb, trainers.loop, eval.attack_run, report.run_figures\n"
START_TIMER = """
import statistics, subprocess, sys, time
times = []
for i in range({n} + 1):
    time.sleep(0 if i == 0 else {pause})  # in the demo each command runs a while: the server preloads meanwhile
    t = time.perf_counter()
    subprocess.run(sys.argv[1:], check=True)
    times.append(time.perf_counter() - t)
print(statistics.median(times[1:]))  # after one warm-up call
"""


def bench_start(repeats: int) -> list[dict]:
    """A command that imports what a demo command imports (torch, torchvision, W&B, the loop, the attacks, the
    figures) and exits: started as a fresh `python` vs forked from runs/zygote.py's warm server (the median of
    repeats runs after one warm-up call, 5 s apart, as the demo's commands are)."""
    with tempfile.TemporaryDirectory() as tmp:
        probe, timer = Path(tmp) / "probe.py", Path(tmp) / "timer.py"
        probe.write_text(START_PROBE)
        timer.write_text(START_TIMER.format(n=repeats, pause=5))
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        plain = subprocess.run([sys.executable, str(timer), sys.executable, str(probe)], cwd=ROOT, env=env,
                               capture_output=True, text=True, check=True)
        served = subprocess.run([sys.executable, str(ROOT / "runs" / "zygote.py"), "serve", "--", sys.executable,
                                 str(timer), sys.executable, str(ROOT / "runs" / "zygote.py"), "--", str(probe)],
                                cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    t_plain, t_served = (float(p.stdout.strip().splitlines()[-1]) for p in (plain, served))
    return [dict(row="start_forked_vs_fresh", batch="1 command", ours_s=t_served, reference_s=t_plain,
                 ratio=t_served / t_plain, note="make demo's commands fork from a warm process (runs/zygote.py)")]


# ---------------------------------------------------------------- main

def verdict(row: dict) -> str:
    goal = GOALS.get(row["row"])
    if not goal or "ratio" not in row:
        return ""
    op, target = goal
    met = row["ratio"] >= target if op == ">=" else row["ratio"] <= target
    return f"{'met' if met else 'MISSED'} (goal {op} {target})"


def table(rows: list[dict]) -> str:
    lines = [f"{'row':<22} {'batch':<18} {'ours':>12} {'reference':>12} {'ratio':>8}  goal"]
    for r in rows:
        if r["row"] == "scaling":
            lines.append(f"{'scaling':<22} {str(r['batch']):<18} slope {r['slope_s_per_1k']:.2f} s per 1k images, "
                         f"R^2 {r['r2']:.4f}, epochs {', '.join(f'{s:.1f}s' for s in r['seconds'])} at {r['sizes']}")
            continue
        ours = r.get("ours_img_s", r.get("ours_s", r.get("warm_s", r.get("seconds", r.get("slope_s_per_1k")))))
        ref = r.get("reference_img_s", r.get("reference_s", r.get("cold_s", "")))
        fmt = lambda v: f"{v:12.3f}" if isinstance(v, float) else f"{str(v):>12}"
        ratio = f"{r['ratio']:8.2f}" if "ratio" in r else f"{'':>8}"
        lines.append(f"{r['row']:<22} {str(r['batch']):<18} {fmt(ours)} {fmt(ref)} {ratio}  {verdict(r)}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats per measurement (median reported)")
    ap.add_argument("--images", type=int, default=512, help="images per training measurement")
    ap.add_argument("--quick", action="store_true", help="smaller sizes (for a smoke check); no torch.compile rows")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile training rows")
    ap.add_argument("--out", default=None, help="default results/bench/<hostname>.json")
    ap.add_argument("--autoattack-run", default=None, help="a finished run folder (e.g. a q2-pgd-at run) whose model "
                    "and test images the AutoAttack row uses (data under $TRUSTLAB_DATA_ROOT, default data/); "
                    "default: the untrained ResNet18, where AutoAttack exits early")
    args = ap.parse_args()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    started = time.time()
    q = args.quick
    rows = []
    for name, fn in (("training", lambda: bench_training(device, args.repeats, 128 if q else args.images,
                                                            not (q or args.no_compile))),
                     ("attacks", lambda: bench_attacks(device, args.repeats, args.autoattack_run)),
                     ("knn", lambda: bench_knn(device, args.repeats, 2000 if q else 10_000, 500 if q else 2500)),
                     ("umap", lambda: bench_umap([300] if q else [500, 1000, 2000])),
                     ("scaling", lambda: bench_scaling(device, [256, 512, 1024] if q else [1000, 4000, 16000], 128)),
                     ("start", lambda: bench_start(args.repeats))):
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        rows += fn()
    for r in rows:
        r["device"] = str(device)
        r["repeats"] = args.repeats
        r["verdict"] = verdict(r)
    out = Path(args.out or ROOT / "results" / "bench" / f"{socket.gethostname()}.json")
    write_json(out, {"rows": rows, "provenance": provenance(device, time.time() - started),
                     "threads": torch.get_num_threads()})
    print(table(rows))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
