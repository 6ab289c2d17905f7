"""experiments/: resolve (epoch capping, dataset maps, overrides), the CLI's policy, evaluation defaults,
and the entries' own consistency."""
import json

import pytest

from core.errors import UsageError
from eval.plan import AttackPlan, KnnPlan, UmapPlan
from experiments import PROFILES, SECTIONS, resolve, resolve_evaluation, resolve_training, stamps, transfer_source
from experiments.matrix import evaluation, runs


def test_profile_caps_epochs_and_never_adds_any():
    assert resolve("q1-baseline", "paper").epochs == 15
    assert resolve("q1-baseline", "quick").epochs == 5
    assert resolve("q2-circle", "paper").epochs == 20
    assert resolve("q2-circle", "demo").epochs == 2       # min(demo's 2, the section's 20)
    assert resolve("q1-reverse-supervised", "quick").epochs == 5  # min(quick's 5, the section's 10)


def test_a_profile_with_more_epochs_than_a_section_does_not_add_any(monkeypatch):
    from experiments import profiles
    from experiments.profiles import Profile

    long = Profile("long", "more epochs than any section", scale={"q1": dict(epochs=100), "q2": dict(epochs=100)})
    monkeypatch.setitem(profiles.PROFILES, "long", long)
    assert resolve("q1-baseline", "long").epochs == 15
    assert resolve("q1-reverse-supervised", "long").epochs == 10
    assert resolve("q2-circle", "long").epochs == 20


def test_profile_scale_is_per_question_and_finetune_samples_only_for_finetuning():
    quick = resolve("q2-baseline", "quick")
    assert (quick.train_size, quick.eval_size, quick.model_input_size, quick.image_size) == (10_000, 1000, 32, None)
    assert resolve("q2-baseline", "paper").model_input_size == 224  # the resize is a layer of the model
    assert resolve("q1-baseline", "smoke").finetune_samples is None
    assert resolve("q1-reverse-supervised", "smoke").finetune_samples == 100
    assert resolve("q1-reverse-supervised", "paper").finetune_samples == 800


def test_demo_maps_the_study_datasets_to_stand_ins_and_records_them():
    cfg = resolve("q1-reverse-unsupervised", "demo")
    assert cfg.train_on == "digits-inverted" and cfg.eval_on == ("digits-inverted", "digits")
    assert cfg.stand_ins == {"svhn": "digits", "mnist": "digits-inverted"}  # only those this run uses
    q2 = resolve("q2-baseline", "demo")
    assert q2.train_on == "digits" and q2.eval_on == ("digits",) and q2.stand_ins == {"cifar10": "digits"}
    assert set(PROFILES["demo"].dataset_map) == {"svhn", "mnist", "cifar10"}
    assert resolve("q1-baseline", "paper").stand_ins == {}


def test_explicit_overrides_win_and_none_means_not_given():
    cfg = resolve("q1-baseline", "quick", epochs=50, lr=0.5, optimizer=None)
    assert cfg.epochs == 50 and cfg.lr == 0.5 and cfg.optimizer == "sgd"
    assert resolve("q1-pretrained", "paper", pretrained=False).pretrained is False


@pytest.mark.parametrize("kwargs, needle", [
    (dict(preset="nope"), "unknown preset 'nope'"),
    (dict(profile="huge"), "unknown profile 'huge'"),
    (dict(train_on="imagenet"), "unknown dataset 'imagenet'"),
    (dict(optimizer="rmsprop"), "unknown optimizer 'rmsprop'"),
    (dict(loss="hinge"), "unknown loss 'hinge'"),
    (dict(lr=-1.0), "lr must be positive"),
    (dict(epochs=0), "epochs must be at least 1"),
])
def test_bad_values_are_named(kwargs, needle):
    args = {"preset": "q1-baseline", "profile": "paper", **kwargs}
    with pytest.raises(UsageError, match=needle):
        resolve(args.pop("preset"), args.pop("profile"), **args)


def test_training_policy(capsys):
    with pytest.raises(UsageError, match="use `cli.py finetune-fc`"):
        resolve_training("q1-reverse-supervised", "paper")
    with pytest.raises(UsageError, match="trains nothing"):
        resolve_training("q2-examples", "paper")
    with pytest.raises(UsageError, match="--from-run"):
        resolve_training("q1-reverse-supervised", "paper", command="finetune-fc")
    cfg, _ = resolve_training("q1-baseline", "paper", command="finetune-fc", init_from="x", finetune_samples=10)
    assert cfg.trainable == ("fc",)  # finetune-fc trains only fc unless the section says otherwise
    with pytest.raises(UsageError, match="--samples"):
        resolve_training("q1-baseline", "paper", command="finetune-fc", init_from="x")
    cfg, notes = resolve_training("q1-baseline", "paper", weights="w.pth")
    assert cfg.weights is None and "--weights unused" in " ".join(notes)
    assert capsys.readouterr().err == ""  # resolve returns its notes; the CLI prints them
    assert resolve_training("q1-pretrained", "paper", weights="w.pth")[0].weights == "w.pth"


def _finished(tmp_path, name, pretrained, seed_dir=None):
    folder = tmp_path / "demo" / name / (seed_dir or "")
    folder.mkdir(parents=True, exist_ok=True)
    cfg = resolve(name, "demo", pretrained=pretrained)
    (folder / "metrics.json").write_text(json.dumps({"config": cfg.to_dict()}))
    return folder


def test_transfer_source_follows_the_section_and_the_seed(tmp_path):
    run = _finished(tmp_path, "q2-circle", pretrained=True)
    assert transfer_source(run, resolve("q2-circle", "demo", pretrained=True)) == "pretrained"
    cfg = resolve("q2-circle", "demo", pretrained=False)
    assert transfer_source(tmp_path / "demo" / "q2-circle", cfg) == str(tmp_path / "demo" / "q2-baseline")
    assert transfer_source(tmp_path / "demo" / "q2-circle" / "seed-2", cfg) == \
        str(tmp_path / "demo" / "q2-baseline" / "seed-2")
    with pytest.raises(UsageError, match="--source"):
        transfer_source(tmp_path / "x", resolve("q1-baseline", "demo"))


def test_evaluation_defaults(tmp_path):
    run = _finished(tmp_path, "q2-adversarial", pretrained=False, seed_dir="seed-1")
    ev = resolve_evaluation("attack", model=run, methods=("fgsm", "pgd"), threats=("white-box", "transfer"),
                            eps="4/255", eps_sweep="0, 8/255", seed=1)
    assert [(a.method, a.threat) for a in ev.attacks] == [("fgsm", "white-box"), ("fgsm", "transfer"),
                                                          ("pgd", "white-box"), ("pgd", "transfer")]
    assert all(a.eps == 4 / 255 and a.seed == 1 for a in ev.attacks)
    assert ev.eps_sweep == [0.0, 8 / 255]
    assert ev.source == str(tmp_path / "demo" / "q2-baseline" / "seed-1")
    assert ev.out == str(run / "robustness.json")
    white = resolve_evaluation("knn", model=run, methods=("fgsm",), threats=("white-box",))
    assert white.source is None and white.out == str(run / "knn.json")
    with pytest.raises(UsageError, match="eps must be in"):
        resolve_evaluation("attack", model=run, methods=("fgsm",), eps="2")


def test_every_entry_is_consistent(tmp_path):
    planned = {run.section: run for run in runs("smoke", tmp_path, pretrained=False)}
    for name, sec in SECTIONS.items():
        for ref in (sec.needs, sec.compare_to, sec.transfer_source, *sec.also_compare_to):
            assert ref is None or ref in SECTIONS, (name, ref)
        assert sec.kind in ("train", "finetune", "none")
        assert (sec.kind == "train") == (sec.needs is None), name
        assert sec.prose, name
        for plan in sec.evals:
            assert isinstance(plan, (AttackPlan, KnnPlan, UmapPlan))
            # each plan step's stamp is the whole evaluation: the command reads back what was planned
            ev = evaluation(planned[name], plan, PROFILES["smoke"], source="pretrained")
            stamp = tmp_path / name / plan.file
            stamp.parent.mkdir(parents=True, exist_ok=True)
            stamp.write_text(stamps.evaluation(ev))
            assert resolve_evaluation(ev.kind, plan=stamp) == ev, (name, plan.file)
        if sec.kind != "none":
            for profile in PROFILES:
                resolve(name, profile)
        for note in sec.notes:
            note.format(**sec.reference)


def test_the_small_profiles_sweep_five_radii_and_the_others_all_of_them(tmp_path):
    for profile, radii in (("demo", [0, 2, 8, 32, 64]), ("smoke", [0, 2, 8, 32, 64]), ("quick", [0, 1, 2, 4, 8, 16, 32, 64]),
                           ("paper", [0, 1, 2, 4, 8, 16, 32, 64])):
        run = next(r for r in runs(profile, tmp_path, pretrained=False) if r.section == "q2-baseline")
        ev = evaluation(run, SECTIONS["q2-baseline"].evals[0], PROFILES[profile])
        assert ev.eps_sweep == pytest.approx([r / 255 for r in radii]), profile
