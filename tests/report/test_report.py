"""The report from synthetic results files: statistics, honesty flags, 'not run', and no invented numbers.
(The Wilson interval's textbook check moved to tests/eval/test_stats.py with the rule.)"""
import itertools
import json
import re
import statistics

from experiments import PRESETS, PROFILES, QUESTIONS, SECTIONS
from report import write as written
from report import write_report as _write_report


def write_report(profile, root):
    return _write_report(PROFILES[profile], SECTIONS, QUESTIONS, root)

Q1_VALUES = {  # preset -> per-seed (svhn, mnist)
    "q1-baseline": [(90.0, 50.0), (92.0, 52.0), (94.0, 54.0)],
    "q1-adam": [(91.0, 60.0), (93.0, 61.0), (95.0, 62.0)],      # +1 on SVHN: within noise
    "q1-no-bn": [(80.0, 40.0), (81.0, 41.0), (82.0, 42.0)],     # -11 on SVHN: a real difference
}


def write(root, preset, seed, name, data):
    path = root / "quick" / preset / f"seed-{seed}" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def q1_result(preset, seed, svhn, mnist):
    return {"preset": preset, "profile": "quick", "seed": seed, "roles": {},
            "metrics": {"svhn_test_acc": svhn, "mnist_test_acc": mnist, "train_loss": 0.5 + seed / 10,
                        "train_acc": 90.0 + seed}}


def robustness(preset, seed, wb_fgsm, wb_pgd, tr):
    rows = [{"threat_model": t, "method": m, "robust_acc": v} for (t, m), v in {
        ("white-box", "fgsm"): wb_fgsm, ("white-box", "pgd"): wb_pgd, ("white-box", "noise+fgsm"): wb_fgsm,
        ("transfer", "fgsm"): tr, ("transfer", "pgd"): tr, ("transfer", "noise+fgsm"): tr}.items()]
    return {"preset": preset, "profile": "quick", "seed": seed, "results": rows, "clean_acc": 80.0, "test": {"n": 1000}}


def build(tmp_path):
    for preset, values in Q1_VALUES.items():
        for seed, (svhn, mnist) in enumerate(values):
            write(tmp_path, preset, seed, "metrics.json", q1_result(preset, seed, svhn, mnist))
    for seed in range(2):
        write(tmp_path, "q2-baseline", seed, "metrics.json",
              {"preset": "q2-baseline", "profile": "quick", "seed": seed, "metrics": {"cifar10_test_acc": 80.0 + seed}})
        write(tmp_path, "q2-baseline", seed, "robustness.json",
              robustness("q2-baseline", seed, 10.0, 20.0 + seed, 50.0))
    out = write_report("quick", tmp_path)
    return out.read_text()


def row(text, name):
    return next(line for line in text.splitlines() if line.startswith(f"| {name} |"))


def test_mean_std_and_n(tmp_path):
    text = build(tmp_path)
    assert "92.00 ± 2.00 (n=3)" in row(text, "q1-baseline")
    assert "52.00 ± 2.00 (n=3)" in row(text, "q1-baseline")
    assert f"{92 - PRESETS['q1-baseline'].reference['svhn_test_acc']:+.2f}" in row(text, "q1-baseline")
    assert "80.50 ± 0.71 (n=2)" in row(text, "q2-baseline")


def test_within_seed_noise_flagged_exactly_when_it_should(tmp_path):
    text = build(tmp_path)
    assert "q1-adam vs q1-baseline on SVHN: +1.00 points, **within seed noise**" in text
    assert "q1-adam vs q1-baseline on MNIST" not in text  # +9 with std 1 and 2: a real difference
    assert "q1-no-bn vs q1-baseline on SVHN" not in text
    assert "q1-no-bn vs q1-baseline on MNIST" not in text


def test_missing_sections_read_not_run(tmp_path):
    text = build(tmp_path)
    assert "not run" in row(text, "q1-label-smoothing")
    assert "not run" in row(text, "q2-circle")
    assert "### q1-augmentation: Augmentation" in text and "*not run*" in text


def test_attack_honesty_flags(tmp_path):
    text = build(tmp_path)
    assert "q2-baseline: white-box PGD (20.50%) is above white-box FGSM (10.00%) beyond the noise (binomial noise ±" in text
    assert "**suspect**" in text
    assert "q2-baseline: transfer fgsm 50.00% vs white-box 10.00%" in text


def test_no_number_that_is_not_in_the_files(tmp_path):
    text = build(tmp_path)
    allowed = set()
    refs = [v for p in PRESETS.values() for v in p.reference.values()]
    files = [json.loads(p.read_text()) for p in tmp_path.rglob("*.json")]
    values = refs[:]
    for f in files:
        values += [v for v in f.get("metrics", {}).values()] + [r["robust_acc"] for r in f.get("results", [])]
    groups = {}
    for f in files:
        for k, v in f.get("metrics", {}).items():
            groups.setdefault((f["preset"], k), []).append(v)
        for r in f.get("results", []):
            groups.setdefault((f["preset"], r["threat_model"], r["method"]), []).append(r["robust_acc"])
    for vals in groups.values():
        mean = statistics.mean(vals)
        values += [mean] + ([statistics.stdev(vals)] if len(vals) > 1 else [])
        values += [mean - r for r in refs]
    means = {k: statistics.mean(v) for k, v in groups.items()}
    values += [a - b for a, b in itertools.permutations(means.values(), 2)]
    for v in values:
        for digits in (2, 3):
            allowed.add(f"{abs(v):.{digits}f}")
    tables = [line for line in text.splitlines() if line.startswith("|") or line.startswith("- q")]
    for line in tables:
        # the noise a difference is judged by and a test's p-value: computed, not read
        line = re.sub(r"(noise \(?|interval )±\d+\.\d+|p [=<] [\d.e-]+", "", line)
        for number in re.findall(r"\d+\.\d{2,3}", line):
            assert number in allowed, f"{number} in {line!r} is not from the results files"


def test_finetune_curve_is_drawn_from_its_files(tmp_path):
    build(tmp_path)
    for n, acc in ((100, 20.0), (400, 30.0)):
        path = tmp_path / "quick" / "q1-finetune-curve" / f"samples-{n}" / "metrics.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"preset": "q1-reverse-supervised", "seed": 0, "roles": {},
                                    "datasets": {"train": {"size": n}}, "metrics": {"svhn_test_acc": acc}}))
    text = write_report("quick", tmp_path).read_text()
    assert "100: 20.00 (n=1) | 400: 30.00 (n=1)" in text
    assert (tmp_path / "quick" / "q1-finetune-curve.png").is_file()


def test_q2_presets_compared_with_the_baseline_against_seed_noise(tmp_path):
    build(tmp_path)
    # baseline (2 seeds): clean 80, 81; white-box fgsm 10, 10; pgd 12, 13
    for seed in range(2):
        write(tmp_path, "q2-adversarial", seed, "metrics.json",  # clean 80.5, 81.5: within noise
              {"preset": "q2-adversarial", "profile": "quick", "seed": seed,
               "metrics": {"cifar10_test_acc": 80.5 + seed}})
        write(tmp_path, "q2-adversarial", seed, "robustness.json",  # fgsm +30: beyond noise
              robustness("q2-adversarial", seed, 40.0, 40.0 + seed, 50.0))
    text = write_report("quick", tmp_path).read_text()
    assert "q2-adversarial vs q2-baseline on clean accuracy: +0.50 points, **within seed noise**" in text
    # with the robustness files' 1,000 test images, each difference is judged against the larger of the seed
    # spread and the binomial interval, with the numbers that decide it
    assert "q2-adversarial vs q2-baseline on white-box FGSM: +30.00 points, **beyond noise** (noise ±3.56: the " \
           "larger of the seed spread (2 seeds) and the 95% binomial interval of 1,000 and 1,000 test images)" in text
    assert "q2-adversarial vs q2-baseline on white-box PGD: +20.00 points, **beyond noise**" in text


def test_knn_aggregates_seeds_and_self_source_is_called_white_box(tmp_path):
    build(tmp_path)
    for seed, acc in enumerate((30.0, 34.0)):
        write(tmp_path, "q2-circle", seed, "knn.json",
              {"preset": "q2-circle", "seed": seed, "k": 3, "clean_acc": 60.0 + seed,
               "results": [{"threat_model": "transfer", "method": "noise+fgsm", "robust_acc": acc}]})
    model = "results/quick/q2-baseline/seed-0"
    rob = robustness("q2-baseline", 0, 10.0, 9.0, 10.0)
    rob["model"] = model
    for r in rob["results"]:
        r["source"] = model if r["threat_model"] == "transfer" else "the model itself"
    write(tmp_path, "q2-baseline", 0, "robustness.json", rob)
    text = write_report("quick", tmp_path).read_text()
    assert "clean 60.50 ± 0.71 (n=2); transfer noise+fgsm 32.00 ± 2.83 (n=2)" in text
    assert "q2-baseline: its transfer attacks were crafted on the model itself" in text
    assert "q2-adversarial: its transfer attacks" not in text


def test_a_run_without_a_test_set_reads_not_evaluated(tmp_path):
    build(tmp_path)
    write(tmp_path, "q1-reverse-unsupervised", 0, "metrics.json",
          {"preset": "q1-reverse-unsupervised", "seed": 0, "roles": {}, "metrics": {"mnist_test_acc": 96.0}})
    line = row(write_report("quick", tmp_path).read_text(), "q1-reverse-unsupervised")
    assert line.split(" | ")[2] == "not evaluated" and "96.00 (n=1)" in line


def test_a_section_run_with_its_change_undone_is_flagged_but_profile_scale_is_not(tmp_path):
    build(tmp_path)
    for seed in range(2):
        write(tmp_path, "q1-pretrained", seed, "metrics.json",
              {**q1_result("q1-pretrained", seed, 90.0, 50.0), "config": {"pretrained": False, "epochs": 5}})
        write(tmp_path, "q2-circle", seed, "metrics.json",  # quick caps its 20 epochs at 10: scale, not method
              {"preset": "q2-circle", "profile": "quick", "seed": seed, "metrics": {"cifar10_test_acc": 70.0},
               "config": {"epochs": 10, "head": "none", "loss": "circle"}})
    text = write_report("quick", tmp_path).read_text()
    assert "q1-pretrained ran with pretrained=False where the section sets pretrained=True (seeds 0, 1), so it is " \
           "q1-baseline again by construction" in text
    assert "q2-circle ran with" not in text


def dg_result(preset, seed, mnist, usps, n=2000):
    skipped = {f"{d}_test": {"dataset": d, "size": 0, "skipped": f"{d} test not found"}
               for d in ("svhn", "mnistm", "syn")}
    return {"preset": preset, "profile": "quick", "seed": seed, "roles": {},
            "datasets": {"mnist_test": {"dataset": "mnist", "size": n}, "usps_test": {"dataset": "usps", "size": n},
                         **skipped},
            "metrics": {"mnist_test_acc": mnist, "usps_test_acc": usps, "train_loss": 0.1, "train_acc": 99.0}}


def test_the_dg_table_per_target_with_n_intervals_published_rows_and_noise(tmp_path):
    from eval.stats import wilson

    values = {"dg-erm-digitnet": [(98.0, 70.0), (98.2, 71.0), (98.4, 72.0)],
              "dg-randconv-digitnet": [(97.0, 80.0), (97.2, 81.0), (97.4, 82.0)],   # +10 on USPS: beyond noise
              "dg-randconv-img-digitnet": [(97.0, 79.5), (97.2, 80.5), (97.4, 81.5)],  # mix +0.5 over it
              "dg-erm-resnet18": [(99.0, 75.0), (99.1, 76.0), (99.2, 77.0)],
              "dg-randconv-resnet18": [(99.0, 75.5), (99.1, 76.5), (99.2, 77.5)]}  # +0.5: within noise
    for preset, seeds in values.items():
        for seed, (mnist, usps) in enumerate(seeds):
            write(tmp_path, preset, seed, "metrics.json", dg_result(preset, seed, mnist, usps))
    text = write_report("quick", tmp_path).read_text()
    erm = row(text, "dg-erm-digitnet")
    lo, hi = wilson(71.0, 2000)  # the seeds share the test images: n is the test set's
    assert f"71.00 ± 1.00 (n=3), 2,000 imgs, 95% [{lo:.1f}, {hi:.1f}]" in erm
    assert "| 76.94 |" in erm and "| 49.29 |" in erm  # the published ERM row beside ours, as published
    assert erm.count("skipped (data missing)") == 3
    assert "71.00 ± 1.00 (n=3) over usps, 95% ±2.0" in erm  # which targets it covers, and its interval
    assert "dg-randconv-digitnet vs dg-erm-digitnet on USPS: +10.00 points, **beyond noise**" in text
    assert "dg-randconv-resnet18 vs dg-erm-resnet18 on USPS: +0.50 points, within noise" in text
    assert "dg-randconv-img-digitnet vs dg-erm-digitnet on USPS: +9.50 points, **beyond noise**" in text
    assert "dg-randconv-digitnet vs dg-randconv-img-digitnet on USPS: +0.50 points, within noise" in text
    assert "vs dg-randconv-digitnet" not in text  # Pro-RandConv did not run
    assert (tmp_path / "quick" / "dg-targets.png").is_file() and "![dg: accuracy per domain](dg-targets.png)" in text


def test_the_dg_section_says_which_checkpoint_each_seed_kept(tmp_path):
    for seed, (it, val) in enumerate(((7250, 98.69), (2500, 97.155))):
        r = dg_result("dg-randconv-digitnet", seed, 98.0, 80.0)
        write(tmp_path, "dg-randconv-digitnet", seed, "metrics.json",
              {**r, "selection": {"every": 250, "draws": 10, "iteration": it, "val_acc": val}})
    write(tmp_path, "dg-erm-digitnet", 0, "metrics.json", dg_result("dg-erm-digitnet", 0, 98.0, 78.0))
    text = write_report("quick", tmp_path).read_text()
    assert ("Seeds: 0, 1. Kept checkpoint, the best validation accuracy checked every 250 iterations (RandConv on, "
            "the mean of 10 draws): seed 0 at iteration 7,250 (validation 98.69%); seed 1 at iteration 2,500 "
            "(validation 97.16%).") in text
    erm = text.split("### dg-erm-digitnet")[1].split("###")[0]
    assert "Seeds: 0." in erm and "Kept checkpoint" not in erm  # a run without a selection record says nothing
    assert "Resumed" not in text


def test_the_report_says_which_seeds_were_resumed_and_at_which_commits(tmp_path):
    a, b = "1abbe97" + "0" * 33, "993b5a1" + "f" * 33
    runs = {0: [([1, 14], a), ([15, 32], b + "-dirty")], 1: [([1, 32], b)],
            2: [([1, 3], "unknown (the checkpoint predates segment records)"), ([4, 32], b)], 3: [([1, 1], a), ([2, 32], a)]}
    for seed, segs in runs.items():
        r = dg_result("dg-randconv-digitnet", seed, 98.0, 80.0)
        write(tmp_path, "dg-randconv-digitnet", seed, "metrics.json",
              {**r, "provenance": {"segments": [{"epochs": e, "git_commit": c} for e, c in segs]}})
    text = write_report("quick", tmp_path).read_text()
    assert ("Seeds: 0, 1, 2, 3. Resumed with --resume: seed 0 in 2 processes (epochs 1-14 at 1abbe97, epochs 15-32 at "
            "993b5a1-dirty); seed 2 in 2 processes (epochs 1-3 at unknown (the checkpoint predates segment records), "
            "epochs 4-32 at 993b5a1); seed 3 in 2 processes (epoch 1 at 1abbe97, epochs 2-32 at 1abbe97).") in text


def test_a_field_added_since_a_seed_ran_reads_as_its_default_when_seeds_are_compared():
    """Seed 0 trained before randconv_chain existed (no key): it ran at the default (False), so a later seed
    recording False is the same experiment, and one recording True is not."""
    from report.load import seed_problems

    old = {"seed": 0, "config": {"randconv": False, "lr": 1e-4, "optional_eval": []}}
    new = lambda chain: {"seed": 1, "config": {"randconv": False, "lr": 1e-4, "randconv_chain": chain}}
    assert seed_problems("dg-erm-digitnet", [old, new(False)]) == []
    assert "randconv_chain None" not in " ".join(seed_problems("dg-erm-digitnet", [old, new(True)]))
    assert "(randconv_chain False vs True)" in seed_problems("dg-erm-digitnet", [old, new(True)])[0]


def test_a_randconv_run_whose_views_all_came_from_the_batch_says_so(tmp_path):
    """Runs from before randconv_chain (or with it off) are not the authors' view construction: the section's
    what-ran line says how they differ; chained runs say nothing."""
    for chain, seed in ((None, 0), (True, 1)):
        r = dg_result("dg-randconv-digitnet", seed, 98.0, 80.0)
        config = {"randconv": True, **({"randconv_chain": chain} if chain is not None else {})}
        write(tmp_path / ("old" if chain is None else "new"), "dg-randconv-digitnet", seed, "metrics.json",
              {**r, "config": config})
    old = write_report("quick", tmp_path / "old").read_text()
    new = write_report("quick", tmp_path / "new").read_text()
    said = "RandConv's later views drawn from the batch, not from the first view as the authors' code draws them"
    assert said in old and said not in new


def audit_file(seed, rows, n=200, prediction="argmax", sanity=None):
    return {"preset": "q2-baseline", "profile": "quick", "seed": seed, "test": {"n": n}, "prediction": prediction,
            "results": [dict(threat_model=t, method=m, robust_acc=v, label=m, **extra) for t, m, v, extra in rows],
            **({"sanity": sanity} if sanity else {})}


def test_a_white_box_number_above_autoattack_beyond_noise_is_flagged(tmp_path):
    for seed in range(2):
        write(tmp_path, "q2-baseline", seed, "metrics.json",
              {"preset": "q2-baseline", "profile": "quick", "seed": seed, "metrics": {"cifar10_test_acc": 80.0}})
        rob = robustness("q2-baseline", seed, 45.0, 40.0, 60.0)
        write(tmp_path, "q2-baseline", seed, "robustness.json", rob)
        write(tmp_path, "q2-baseline", seed, "audit.json",
              audit_file(seed, [("white-box", "autoattack", 20.0, {}), ("black-box", "square", 30.0, {})]))
    text = write_report("quick", tmp_path).read_text()
    line = row(text, "q2-baseline")
    assert "20.00 ± 0.00 (n=2), 200 imgs" in line and "(autoattack) |" in line  # the worst case names its attack
    assert "q2-baseline: white-box PGD-10 40.00% is above AutoAttack (20.00%) by 20.00 points" in text
    for seed in range(2):  # within the noise of 1,000 and 200 test images: no flag
        write(tmp_path, "q2-baseline", seed, "audit.json", audit_file(seed, [("white-box", "autoattack", 37.0, {})]))
    text = write_report("quick", tmp_path).read_text()
    assert "PGD-10 40.00% is above AutoAttack" not in text  # 3 points: within the noise
    assert "FGSM 45.00% is above AutoAttack (37.00%) by 8.00 points" in text  # 8 points: beyond ±7.37


PLAIN_SANITY = {"max_logit_change": 0.0, "tolerance": 1e-4, "input_min": 0.0, "input_max": 1.0, "zero_grad_pct": 0.0}


def _audit_rows(fgsm, pgd10, pgd50, auto, square, uniform):
    return [("white-box", "fgsm", fgsm, {}), ("white-box", "pgd", pgd10, {"steps": 10}),
            ("white-box", "pgd", pgd50, {"steps": 50, "restarts": 5}), ("white-box", "autoattack", auto, {}),
            ("black-box", "square", square, {"queries": 1000}), ("black-box", "uniform", uniform, {})]


def audit_card(name, rob, aud):
    """The card as REPORT.md shows it: a blank line, the head, a blank line, one bullet per check."""
    from report.checks import audit_card as card
    from report.document import Bullets
    from report.markdown import block

    head, items = card(name, rob, aud)
    return ["", head, ""] + block(Bullets(items))


def test_the_audit_card_passes_a_plain_model_and_flags_each_masking_sign():

    def rob(fgsm, pgd, transfer, sweep):
        rows = [{"threat_model": t, "method": m, "robust_acc": v} for t, m, v in
                (("white-box", "fgsm", fgsm), ("white-box", "pgd", pgd), ("transfer", "fgsm", transfer),
                 ("transfer", "pgd", transfer))]
        return [{"results": rows, "test": {"n": 1000},
                 "eps_sweep": [{"eps": e / 255, "method": "fgsm", "robust_acc": a} for e, a in sweep]}]

    plain_aud = [audit_file(0, _audit_rows(40.0, 31.0, 30.0, 30.0, 45.0, 85.0), n=500, sanity=PLAIN_SANITY)]
    plain = audit_card("plain", rob(40.0, 31.0, 70.0, [(0, 90.0), (8, 40.0), (16, 20.0), (64, 1.0)]), plain_aud)
    # 9 checks: check 7 once per method
    assert "9 of 9 checks pass" in plain[1] and not any("**flag**" in line for line in plain), plain
    # masked gradients: every sign at once
    masked_aud = [audit_file(0, _audit_rows(40.0, 55.0, 30.0, 20.0, 10.0, 40.0), n=500,
                             sanity={**PLAIN_SANITY, "max_logit_change": 0.5, "zero_grad_pct": 60.0})]
    masked = "\n".join(audit_card("masked", rob(40.0, 55.0, 20.0, [(0, 90.0), (8, 40.0), (16, 60.0), (64, 50.0)]),
                                  masked_aud))
    for check in ("1. iterative not weaker than single-step", "2. PGD-10 has converged",
                  "3. AutoAttack not far below PGD-10", "4. black-box not stronger than white-box",
                  "5. eps sweep (fgsm)", "6. random noise far weaker than the attack",
                  "7. transfer FGSM not stronger than white-box", "8. deterministic"):
        assert check in masked and masked.split(check)[1].split("\n")[0].endswith("**flag**"), check
    assert "rises from 40.00% at 8/255 to 60.00% at 16/255" in masked and "50.00% at 64/255" in masked


def test_the_knn_model_line_says_whether_the_surrogate_overstated_it(tmp_path):
    write(tmp_path, "q2-circle", 0, "metrics.json",
          {"preset": "q2-circle", "profile": "quick", "seed": 0, "metrics": {"cifar10_test_acc": 70.0}})
    write(tmp_path, "q2-circle", 0, "robustness.json", {**robustness("q2-circle", 0, 20.0, 30.0, 50.0)})
    rows = [("white-box", "pgd", 30.0, {"steps": 10}), ("white-box", "pgd", 5.0, {"steps": 50, "via": "knn"}),
            ("black-box", "square", 12.0, {"via": "knn"})]
    write(tmp_path, "q2-circle", 0, "audit.json", {**audit_file(0, rows, prediction="knn"), "preset": "q2-circle"})
    text = write_report("quick", tmp_path).read_text()
    assert ("q2-circle predicts by kNN. On the audit's 200 images, PGD-10 through the centroid surrogate leaves "
            "30.00%; "
            "attacking the kNN itself, PGD-50 on the kNN's score leaves 5.00%: **the surrogate overstated") in text
    assert "(pgd) |" in row(text, "q2-circle")  # the worst case is the attack on the kNN


def test_a_knn_models_autoattack_is_the_one_on_the_knns_scores_in_its_row_and_flags(tmp_path):
    write(tmp_path, "q2-circle", 0, "metrics.json",
          {"preset": "q2-circle", "profile": "quick", "seed": 0, "metrics": {"cifar10_test_acc": 40.0}})
    write(tmp_path, "q2-circle", 0, "robustness.json", {**robustness("q2-circle", 0, 14.0, 10.0, 32.0),
                                                         "preset": "q2-circle"})
    rows = [("white-box", "autoattack", 14.0, {}), ("white-box", "autoattack", 1.5, {"via": "knn"})]
    write(tmp_path, "q2-circle", 0, "audit.json", {**audit_file(0, rows, prediction="knn"), "preset": "q2-circle"})
    text = write_report("quick", tmp_path).read_text()
    assert "| 1.50 (n=1), 200 imgs" in row(text, "q2-circle")  # the AutoAttack column: the kNN's own
    assert "q2-circle: transfer PGD-10 32.00% is above AutoAttack on the kNN's scores (1.50%)" in text


def test_the_q2_figure_puts_every_model_and_attack_on_shared_axes(tmp_path):
    for preset, drop in (("q2-baseline", 0.0), ("q2-adversarial", 20.0)):
        write(tmp_path, preset, 0, "metrics.json",
              {"preset": preset, "profile": "quick", "seed": 0, "metrics": {"cifar10_test_acc": 80.0}})
        rob = robustness(preset, 0, 20.0, 10.0, 50.0)
        rob["eps_sweep"] = [{"eps": e / 255, "method": m, "robust_acc": max(0.0, 80.0 - k * e + drop)}
                            for m, k in (("fgsm", 5), ("pgd", 8)) for e in (0, 2, 8, 64)]
        write(tmp_path, preset, 0, "robustness.json", rob)
    text = write_report("quick", tmp_path).read_text()
    assert "![q2: robust accuracy against eps, every model and attack](q2-eps.png)" in text
    assert (tmp_path / "quick" / "q2-eps.png").stat().st_size > 10_000


def test_the_audit_says_inconclusive_where_the_images_cannot_decide_and_flags_a_weak_autoattack():
    from eval.audit import audit_checks

    def checks(clean, rows, n):
        return {c["check"]: c for c in audit_checks([{**audit_file(0, rows, n=n), "clean_acc": clean}])}

    # 8 images: noise 75% vs PGD-10 62.5% is a gap inside the noise: undecided, not flagged
    few = checks(87.5, [("white-box", "pgd", 62.5, {"steps": 10}), ("black-box", "uniform", 75.0, {}),
                        ("white-box", "autoattack", 87.5, {})], 8)
    assert few[6]["passed"] is None
    # AutoAttack far above PGD-10 (its success test was a surrogate's): flagged
    many = checks(87.5, [("white-box", "pgd", 40.0, {"steps": 10}), ("white-box", "autoattack", 80.0, {})], 500)
    assert many[3]["passed"] is False and "AutoAttack weaker than PGD-10" in many[3]["detail"]
    # a kNN model: the AutoAttack judged by the kNN's own vote (on its scores) is the one compared
    knn = checks(87.5, [("white-box", "pgd", 40.0, {"steps": 10}), ("white-box", "autoattack", 80.0, {}),
                        ("white-box", "autoattack", 20.0, {"via": "knn"})], 500)
    assert knn[3]["passed"] is False and knn[3]["detail"].startswith("AutoAttack on the kNN's scores 20.00%")
    assert "quote AutoAttack on the kNN's scores" in knn[3]["detail"]
    # a model at chance: every attack comparison is inconclusive
    chance = checks(10.0, [("white-box", "pgd", 0.0, {"steps": 10}), ("black-box", "uniform", 0.0, {})], 200)
    assert chance[0]["passed"] is None and chance[6]["passed"] is None


def test_the_wandb_report_is_built_offline_with_a_section_per_question(tmp_path, monkeypatch):
    from report.wandb import build as build_wandb_report
    from report.wandb import spec

    monkeypatch.setenv("WANDB_MODE", "offline")
    build(tmp_path)
    document = written(PROFILES["quick"], SECTIONS, QUESTIONS, tmp_path).document  # the one REPORT.md renders
    report = build_wandb_report("quick", PRESETS, QUESTIONS, document, entity="someone")
    blocks = spec(report)["blocks"]
    kinds = [b["type"] for b in blocks]
    assert kinds.count("H1") == len(QUESTIONS) and kinds.count("PanelGrid") == len(QUESTIONS)
    q1 = blocks[kinds.index("H1") + 1]
    assert q1["type"] == "MarkdownBlock" and "| q1-baseline |" in q1["text"]  # the question's own table
    grid = blocks[kinds.index("PanelGrid")]
    assert '"quick/q1-baseline"' in grid["runsets"][0]["filters"] and grid["runsets"][0]["entity"] == "someone"
    assert any(p.get("y") == ["test/svhn/acc"] for p in grid["panels"])
    q2 = [b for b in blocks if b["type"] == "PanelGrid"][-1]
    assert any(p.get("metrics") == ["adv/white-box/PGD-10/acc", "adv/white-box/FGSM/acc",
                                    "adv/white-box/AutoAttack, standard/acc"] for p in q2["panels"])


def test_a_run_trained_off_its_sections_protocol_is_flagged_with_how_it_differs(tmp_path):
    """A shortened schedule (EXTRA="--epochs 90" on Pro-RandConv's 500 at the paper profile) keeps the section's
    name on its row: the report says which setting differs, for which seeds, and does not call it its comparison
    section again, not even at ERM's own 32 epochs (Pro-RandConv changes more than the schedule). A run at its
    protocol (its full resolved config) says nothing, nor does one that measured a smaller test set."""
    from core.io import to_jsonable
    from experiments import resolve

    for seed, overrides in ((0, {"epochs": 90}), (1, {}), (2, {"eval_size": 100}), (3, {"epochs": 32})):
        cfg = to_jsonable(resolve("dg-prorandconv-digitnet", "paper", **overrides).to_dict())
        path = tmp_path / "paper" / "dg-prorandconv-digitnet" / f"seed-{seed}" / "metrics.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({**dg_result("dg-prorandconv-digitnet", seed, 98.0, 80.0), "profile": "paper",
                                    "config": cfg}))
    text = write_report("paper", tmp_path).read_text()
    assert ("**dg-prorandconv-digitnet ran off its protocol**: epochs=90 where it sets epochs=500 (seed 0); "
            "epochs=32 where it sets epochs=500 (seed 3) at the paper profile") in text
    assert text.count("ran off its protocol") == 1 and "again by construction" not in text


def test_no_run_make_plans_is_flagged_off_its_protocol():
    """Every run of every profile, with and without ImageNet weights (PRETRAINED=0, WEIGHTS=file), as its results
    file records its config: none is off its protocol, and only the ImageNet-initialisation section without them
    is its comparison section again."""
    from core.io import to_jsonable
    from experiments.matrix import runs
    from report.checks import protocol_flags
    from report.document import scaled_fields

    said = set()
    for profile, pretrained, weights in itertools.product(PROFILES, (True, False), (None, "w.pt")):
        for run in runs(profile, seeds=(0, 1), pretrained=pretrained, weights=weights):
            sec = SECTIONS[run.section]
            if sec.kind == "none" or sec.sweep:
                continue
            rs = [{"seed": run.seed, "config": to_jsonable(run.config.to_dict())}]
            scaled = scaled_fields(PROFILES[profile], sec.question)
            for flag in protocol_flags(run.section, sec, rs, SECTIONS, scaled, profile):
                assert "off its protocol" not in flag and "again by construction" in flag, (profile, flag)
                said.add((run.section, pretrained))
    assert said == {("q1-pretrained", False)}
