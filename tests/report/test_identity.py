"""Every results file knows whose it is (issue 23): the report leaves out, loudly and naming the file, a result
whose identity does not match its folder or profile and an evaluation of another model, and flags seeds whose
configs differ and a run counted twice. An evaluation's --out never takes another run's file; retraining drops
the old model's evaluations."""
import json
import shutil

from typer.testing import CliRunner

from cli import app
from tests.report.test_report import q1_result, write, write_report

runner = CliRunner()


def _row(text, name):
    return next(line for line in text.splitlines() if line.startswith(f"| {name} |"))


def test_a_copied_results_file_of_another_section_or_profile_is_left_out_and_named(tmp_path):
    for seed in range(2):
        write(tmp_path, "q1-baseline", seed, "metrics.json", q1_result("q1-baseline", seed, 90.0 + seed, 50.0))
    write(tmp_path, "q1-adam", 0, "metrics.json", q1_result("q1-baseline", 0, 99.0, 99.0))  # copied across
    other = q1_result("q1-no-bn", 0, 70.0, 30.0)
    write(tmp_path, "q1-no-bn", 0, "metrics.json", {**other, "profile": "smoke"})  # another profile's
    text = write_report("quick", tmp_path).read_text()
    assert "99.00" not in _row(text, "q1-adam") and "70.00" not in _row(text, "q1-no-bn")
    head = text.split("## ")[1]
    assert "q1-adam/seed-0/metrics.json records section 'q1-baseline', not 'q1-adam'" in head
    assert "q1-no-bn/seed-0/metrics.json records profile 'smoke', not 'quick'" in head


def test_an_evaluation_of_another_model_is_left_out(tmp_path):
    from tests.report.test_report import robustness

    for seed in range(2):
        run = {"preset": "q2-baseline", "profile": "quick", "seed": seed, "metrics": {"cifar10_test_acc": 80.0},
               "identity": {"model_sha256": f"model-{seed}"}}
        write(tmp_path, "q2-baseline", seed, "metrics.json", run)
        rob = robustness("q2-baseline", seed, 10.0, 20.0, 50.0)
        rob["identity"] = {"model_sha256": "model-0"}  # seed 1's evaluation is of seed 0's (old) model
        write(tmp_path, "q2-baseline", seed, "robustness.json", rob)
        # an evaluation section without a run of its own evaluates q2-baseline's model: that is its place
        examples = robustness("q2-baseline", seed, 10.0, 20.0, 50.0)
        examples["model"] = str(tmp_path / "quick" / "q2-baseline" / f"seed-{seed}")
        write(tmp_path, "q2-examples", seed, "robustness.json", examples)
    text = write_report("quick", tmp_path).read_text()
    assert "q2-baseline/seed-1/robustness.json evaluated another model than the one" in text.split("## ")[1]
    assert "seed-0/robustness.json evaluated" not in text and "q2-examples" not in text.split("## ")[1]


def test_a_moved_results_folder_keeps_its_evaluations_and_another_sections_is_still_left_out(tmp_path):
    """Make records the model as results/quick/<section>[/seed-N], relative to where it ran: read from elsewhere
    (or after the folder moved) the evaluation is still its folder's; one naming another section or seed is not."""
    from tests.report.test_report import robustness

    for seed in range(2):
        run = {"preset": "q2-baseline", "profile": "quick", "seed": seed, "metrics": {"cifar10_test_acc": 80.0}}
        write(tmp_path, "q2-baseline", seed, "metrics.json", run)
        rob = robustness("q2-baseline", seed, 10.0 + seed, 20.0, 50.0)
        rob["model"] = f"results/quick/q2-baseline/seed-{1 - seed if seed else seed}"  # seed 1 names seed 0's
        write(tmp_path, "q2-baseline", seed, "robustness.json", rob)
    head = write_report("quick", tmp_path).read_text().split("## ")[1]
    assert "seed-0/robustness.json is the evaluation" not in head
    assert "q2-baseline/seed-1/robustness.json is the evaluation of results/quick/q2-baseline/seed-0, not of the " \
           "run in its folder: left out" in head


def test_seeds_with_other_settings_and_a_seed_counted_twice_are_flagged(tmp_path):
    for seed, lr in ((0, 0.01), (1, 0.5)):
        r = q1_result("q1-baseline", seed, 90.0, 50.0)
        write(tmp_path, "q1-baseline", seed, "metrics.json", {**r, "config": {"lr": lr, "seed": seed}})
    for seed in (0, 1):
        r = q1_result("q1-adam", seed, 90.0, 50.0)
        write(tmp_path, "q1-adam", seed, "metrics.json", {**r, "identity": {"model_sha256": "ab" * 32}})
    head = write_report("quick", tmp_path).read_text().split("## ")[1]
    assert "q1-baseline: seeds 0 and 1 were trained with different settings (lr 0.01 vs 0.5)" in head
    assert "q1-adam: the seed folders of seeds 0, 1 hold the same model" in head


def test_an_evaluation_never_writes_over_another_runs_results(tmp_path):
    from tests.test_bad_inputs import FAST

    for name in ("a", "b"):
        done = runner.invoke(app, ["train", "--preset", "q2-baseline", *FAST, "--out", str(tmp_path / name)])
        assert done.exit_code == 0, done.output
    ok = runner.invoke(app, ["attack", "--model", str(tmp_path / "b"), "--method", "fgsm", "--n", "10"])
    assert ok.exit_code == 0, ok.output
    before = (tmp_path / "b" / "robustness.json").read_bytes()
    wrong = runner.invoke(app, ["attack", "--model", str(tmp_path / "a"), "--method", "fgsm", "--n", "10",
                                "--out", str(tmp_path / "b" / "robustness.json")])
    assert wrong.exit_code == 2 and "holds the attack evaluation of another run" in wrong.output
    assert (tmp_path / "b" / "robustness.json").read_bytes() == before
    ident = json.loads(before)["identity"]
    assert ident["model_sha256"] == json.loads((tmp_path / "b" / "metrics.json").read_text())["identity"]["model_sha256"]
    # retraining b drops its evaluation of the old model, as one step under the run's lock
    shutil.copy(tmp_path / "b" / "robustness.json", tmp_path / "b" / "knn.json.bak")
    again = runner.invoke(app, ["train", "--preset", "q2-baseline", *FAST, "--seed", "1", "--overwrite",
                                "--out", str(tmp_path / "b")])
    assert again.exit_code == 0, again.output
    assert not (tmp_path / "b" / "robustness.json").exists() and (tmp_path / "b" / "knn.json.bak").exists()
    assert "removed its evaluations of the old model (robustness.json" in again.output


def test_an_accuracy_no_evaluation_can_give_is_left_out_and_named_not_a_math_error(tmp_path):
    from tests.report.test_report import robustness

    write(tmp_path, "q1-baseline", 0, "metrics.json", q1_result("q1-baseline", 0, 150.0, 50.0))
    write(tmp_path, "q1-adam", 0, "metrics.json", q1_result("q1-adam", 0, 91.0, 40.0))
    run = {"preset": "q2-baseline", "profile": "quick", "seed": 0, "metrics": {"cifar10_test_acc": 80.0}}
    write(tmp_path, "q2-baseline", 0, "metrics.json", run)
    rob = robustness("q2-baseline", 0, 10.0, 20.0, 50.0)
    rob["results"][0]["robust_acc"] = float("nan")
    write(tmp_path, "q2-baseline", 0, "robustness.json", rob)
    text = write_report("quick", tmp_path).read_text()
    head = text.split("## ")[1]
    assert "q1-baseline/seed-0/metrics.json holds metrics.svhn_test_acc = 150.0, not an accuracy" in head
    assert "q2-baseline/seed-0/robustness.json holds results.0.robust_acc = nan" in head
    assert "150.00" not in text and "91.00" in _row(text, "q1-adam")


def test_a_knn_attack_above_clean_is_flagged_with_its_paired_verdict(tmp_path):
    def knn(seed, clean_bits, attacked_bits):
        acc = lambda b: 100.0 * b.count("1") / len(b)
        return {"preset": "q2-circle", "profile": "quick", "seed": seed, "k": 3, "test": {"n": len(clean_bits)},
                "clean_acc": acc(clean_bits), "clean_correct": clean_bits,
                "results": [{"threat_model": "transfer", "method": "fgsm", "robust_acc": acc(attacked_bits),
                             "correct": attacked_bits, "n": len(attacked_bits)}]}

    write(tmp_path, "q2-circle", 0, "knn.json", knn(0, "1" * 40 + "0" * 60, "1" * 70 + "0" * 30))
    text = write_report("quick", tmp_path).read_text()
    assert ("q2-circle: the kNN under transfer fgsm leaves 70.00%, above the clean 40.00% on the same 100 images: "
            "beyond the noise (McNemar") in text and "**suspect**" in text
    write(tmp_path, "q2-circle", 0, "knn.json", knn(0, "1" * 40 + "0" * 60, "1" * 41 + "0" * 59))
    text = write_report("quick", tmp_path).read_text()
    assert "leaves 41.00%, above the clean 40.00% on the same 100 images: within the noise" in text


def test_a_gain_over_the_comparison_is_judged_by_the_paired_bootstrap_when_both_stored_per_image_records(tmp_path):
    import numpy as np

    n = 1000
    order = np.random.default_rng(0).permutation(n)
    as_bits = lambda k: "".join("1" if i < k else "0" for i in order)  # the first k of one fixed order right
    test_set = {"mnist_test": {"size": n, "source": "mnist"}, "svhn_test": {"size": n, "source": "svhn"}}
    for name, right in (("q1-baseline", 700), ("q1-adam", 730)):  # adam right on every image baseline is, +30
        r = q1_result(name, 0, 90.0, 100 * right / n)
        write(tmp_path, name, 0, "metrics.json", {**r, "datasets": test_set, "correct": {"mnist_test": as_bits(right)}})
    text = write_report("quick", tmp_path).read_text()
    assert ("q1-adam vs q1-baseline on MNIST: +3.00 points, **beyond noise** (paired bootstrap over the same 1,000 "
            "test images and 1 seed: 95%") in text
    # SVHN has no per-image records: the unpaired rule, which cannot call a 0-point difference anyway
    assert "q1-adam vs q1-baseline on SVHN: +0.00 points, within noise (noise" in text


def test_a_method_with_fewer_seeds_than_its_comparison_is_paired_on_the_seeds_both_ran(tmp_path):
    """Three seeds of the comparison, one of the method (a long run cut short): the paired bootstrap on seed 0
    alone, and the flag says the table's means are over other seed counts; with no seed in common, no pairing."""
    n = 1000
    bits = lambda k: "1" * k + "0" * (n - k)
    test_set = {"mnist_test": {"size": n, "source": "mnist"}}
    for seed, right in ((0, 700), (1, 760), (2, 760)):
        r = q1_result("q1-baseline", seed, 90.0, 100 * right / n)
        write(tmp_path, "q1-baseline", seed, "metrics.json", {**r, "datasets": test_set, "correct": {"mnist_test": bits(right)}})
    r = q1_result("q1-adam", 0, 90.0, 73.0)
    write(tmp_path, "q1-adam", 0, "metrics.json", {**r, "datasets": test_set, "correct": {"mnist_test": bits(730)}})
    text = write_report("quick", tmp_path).read_text()
    # seed 0 against seed 0: +3.00 (the unpaired means would give 73.00 - 74.00 = -1.00)
    assert ("q1-adam vs q1-baseline on MNIST: +3.00 points, **beyond noise** (paired bootstrap over the same 1,000 "
            "test images and 1 seed (the one both ran; the table's means are over 1 and 3)") in text
    shutil.rmtree(tmp_path / "quick" / "q1-adam" / "seed-0")
    r = q1_result("q1-adam", 5, 90.0, 73.0)
    write(tmp_path, "q1-adam", 5, "metrics.json", {**r, "datasets": test_set, "correct": {"mnist_test": bits(730)}})
    text = write_report("quick", tmp_path).read_text()
    assert "q1-adam vs q1-baseline on MNIST" in text and "paired bootstrap over" not in text


def test_seeds_pooled_by_the_paired_bootstrap_are_resampled_too(tmp_path):
    """Two seeds a side, one gaining 6 points and one nothing: +3 on average, within the seeds' spread."""
    n = 2000
    test_set = {"mnist_test": {"size": n, "source": "mnist"}}
    for seed, (base, ours) in enumerate(((1400, 1520), (1400, 1400))):
        for name, right in (("q1-baseline", base), ("q1-adam", ours)):
            r = q1_result(name, seed, 90.0, 100 * right / n)
            write(tmp_path, name, seed, "metrics.json",
                  {**r, "datasets": test_set, "correct": {"mnist_test": "1" * right + "0" * (n - right)}})
    text = write_report("quick", tmp_path).read_text()
    assert ("q1-adam vs q1-baseline on MNIST: +3.00 points, within noise (paired bootstrap over the same 2,000 test "
            "images and 2 seeds, drawing seeds and images: 95% interval of the difference") in text


def test_seeds_scored_on_different_subsets_are_not_pooled_by_the_paired_bootstrap(tmp_path):
    """Each seed drew its own stratified subset (its data seed), the same on both sides: the bootstrap would pair
    one seed's images with another's, so the gain is judged without it."""
    n = 2000
    for seed in (0, 1):
        for name, right in (("q1-baseline", 1400), ("q1-adam", 1520)):
            r = q1_result(name, seed, 90.0, 100 * right / n)
            r["config"] = {**r.get("config", {}), "data_seed": seed}
            write(tmp_path, name, seed, "metrics.json", {**r, "datasets": {"mnist_test": {"size": n, "source": "m"}},
                                                         "correct": {"mnist_test": "1" * right + "0" * (n - right)}})
    text = write_report("quick", tmp_path).read_text()
    assert "q1-adam vs q1-baseline on MNIST: +6.00 points" in text and "paired bootstrap over" not in text


def test_the_paired_bootstrap_takes_one_test_set_read_through_two_paths_but_not_two_subsets(tmp_path):
    """The files' path (a relative or absolute --data-root, another machine) is not the test set; its dataset,
    size and data seed (the stratified subset) are."""
    n, right = 1000, {"q1-baseline": 700, "q1-adam": 730}
    for sources, seeds, paired in ((("../d/mnist", "/w/d/mnist"), (0, 0), True), (("m", "m"), (0, 1), False)):
        for (name, k), source, data_seed in zip(right.items(), sources, seeds):
            r = q1_result(name, 0, 90.0, 100 * k / n)
            r["config"] = {**r.get("config", {}), "data_seed": data_seed}
            write(tmp_path, name, 0, "metrics.json", {**r, "datasets": {"mnist_test": {"size": n, "source": source}},
                                                      "correct": {"mnist_test": "1" * k + "0" * (n - k)}})
        text = write_report("quick", tmp_path).read_text()
        assert ("q1-adam vs q1-baseline on MNIST: +3.00 points, **beyond noise** (paired bootstrap" in text) == paired
