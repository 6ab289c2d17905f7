"""The gradient-masking audit on real attacks and real data (scikit-learn's 8x8 digits): it stays quiet on a
plain model and raises the black-box, large-eps, random-noise and zero-gradient flags on the same model behind
a non-differentiable quantisation layer; the attack on the kNN itself lowers the kNN's accuracy."""
from dataclasses import replace

import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from attacks import AttackSpec
from eval.accuracy import evaluate
from eval.attack_run import _sanity, _sweep
from eval.audit import audit_checks, sweep_checks
from eval.classify import Classifier
from eval.harness import attacked
from eval.plan import Evaluation, audit_attacks
from loaders.batches import Batches
from loaders.datasets import ImageSet

EPS = 24 / 255  # digits are 8x8 with 17 grey levels: a radius at which a plain model is clearly attackable
SWEEP = [0, 8 / 255, 24 / 255, 64 / 255]


class Net(nn.Module):
    """A small MLP on 3x8x8 [0,1] pixels, with the features() a kNN reads."""
    head = "fc"

    def __init__(self, quantise: bool = False):
        super().__init__()
        self.quantise = quantise
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(192, 64), nn.ReLU())
        self.fc = nn.Linear(64, 10)

    def features(self, x):
        if self.quantise:  # round to 5 grey levels: the gradient of round() is zero almost everywhere
            x = torch.round(x * 4) / 4
        return self.body(x)

    def forward(self, x):
        return self.fc(self.features(x))


def _digits():
    d = load_digits()
    images = torch.tensor(d.images * 15, dtype=torch.uint8).unsqueeze(1).expand(-1, 3, -1, -1).contiguous()
    labels = torch.tensor(d.target, dtype=torch.int64)
    data = ImageSet(images, labels, "digits", "all", "sklearn")
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    return data.take(order[:1400], "train"), data.take(order[1400:1700], "test")


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    train, test = _digits()
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    batches = Batches(train, 64, torch.device("cpu"), shuffle=True)
    for epoch in range(6):
        for x, y in batches.epoch(epoch):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    model.eval()
    return model, train, Batches(test, 100, torch.device("cpu"))


def _audit(model, test, train=None):
    """The rows, sweep and sanity numbers attack_run stores, for the audit's attacks at EPS."""
    target = Classifier(model, Batches(train, 100, torch.device("cpu")) if train else None, knn=train is not None)
    base = AttackSpec("fgsm", eps=EPS, alpha=EPS / 4, seed=0)
    rows = [attacked(target, test, spec, (None, None))[0]
            for spec in audit_attacks(base, queries=300, knn=target.kind == "knn")]
    clean = evaluate(target, test)
    ev = Evaluation("attack", "-", "-", attacks=[base], eps_sweep=SWEEP, sweep_methods=["fgsm", "pgd"])
    result = {"results": rows, "test": {"n": clean["n"]}, "clean_acc": clean["acc"], "prediction": target.kind,
              "sanity": _sanity(target, test), "eps_sweep": _sweep(ev, target, test, clean)}
    return result, {c["check"]: c for c in audit_checks([result]) + sweep_checks([result])}


def test_a_plain_model_passes_every_check(trained):
    model, _, test = trained
    result, checks = _audit(model, test)
    assert result["clean_acc"] > 85
    assert set(checks) == {1, 2, 4, 5, 6, 8}  # 3 needs AutoAttack, 7 a transfer source: not run here
    assert all(c["passed"] for c in checks.values()), [c for c in checks.values() if not c["passed"]]


def test_a_quantised_model_raises_the_black_box_large_eps_noise_and_zero_gradient_flags(trained):
    model, _, test = trained
    masked = Net(quantise=True)
    masked.load_state_dict(model.state_dict())
    masked.eval()
    result, checks = _audit(masked, test)
    flagged = {n for n, c in checks.items() if c["passed"] is False}
    assert {4, 5, 6, 8} <= flagged, checks
    assert "100.0% of inputs have an all-zero input gradient" in checks[8]["detail"]
    assert "Square" in checks[4]["detail"]


def test_the_attack_on_the_knn_itself_lowers_the_knn_accuracy(trained):
    model, train, test = trained
    target = Classifier(model, Batches(train, 100, torch.device("cpu")), k=3, knn=True)
    clean = evaluate(target, test)["acc"]
    spec = AttackSpec("pgd", eps=EPS, alpha=EPS / 4, steps=20, via="knn", seed=0)
    attacked = evaluate(target, test, spec)["acc"]
    assert clean > 85 and attacked < clean - 30, (clean, attacked)
    # a kNN score whose argmax is the kNN's vote (the kNN's rule, made smooth; the vote imposed where they differ)
    x, _ = next(test.epoch())
    assert torch.equal(target.knn_scores(x).argmax(1), target.predict(x))


def test_pgd_restarts_keep_each_images_first_success_judged_by_the_classifiers_rule(monkeypatch):
    """A stand-in attack marks its output with the run's number; the 'classifier' is fooled by run 2 on image 0
    and by run 3 on image 1, never on image 2: each keeps its first success, image 2 the last run's."""
    import attacks.registry as registry
    from attacks import run_attack

    calls = []

    def marked(model, images, labels, **kw):
        calls.append(len(images))
        return torch.full_like(images, float(len(calls)))

    monkeypatch.setattr(registry, "get_attack", lambda name: marked)
    fooled_by = torch.tensor([2.0, 3.0, 99.0])
    predict = lambda x: torch.where(x[:, 0, 0, 0] >= fooled_by, torch.tensor(1), torch.tensor(0))
    x, y = torch.zeros(3, 3, 4, 4), torch.zeros(3, dtype=torch.long)
    adv = run_attack(AttackSpec("pgd", restarts=4), None, x, y, predict=predict)
    assert adv[:, 0, 0, 0].tolist() == [2.0, 3.0, 4.0] and calls == [3, 3, 2, 1]  # only unfooled images rerun


def test_pgd_restarts_are_never_weaker_and_stay_in_the_ball(trained):
    model, _, test = trained
    target = Classifier(model)
    one = evaluate(target, test, AttackSpec("pgd", eps=8 / 255, alpha=2 / 255, steps=5, seed=1))
    five = evaluate(target, test, AttackSpec("pgd", eps=8 / 255, alpha=2 / 255, steps=5, restarts=5, seed=1))
    assert five["acc"] <= one["acc"] and five["max_perturbation"] <= 8 / 255 + 1e-6
    assert 0 <= five["min_pixel"] and five["max_pixel"] <= 1
    with pytest.raises(Exception, match="random start"):
        AttackSpec("pgd", restarts=2, random_start=False).validate()


def test_a_knn_route_on_a_model_that_predicts_by_argmax_is_refused(trained):
    from core.errors import UsageError

    model, _, test = trained
    with pytest.raises(UsageError, match="predicts by argmax"):
        evaluate(Classifier(model), test, replace(AttackSpec("pgd"), via="knn"))


def test_the_sweep_reuses_an_attack_already_run_at_its_eps_and_gets_the_same_number(trained, monkeypatch):
    import eval.attack_run as attack_run

    model, _, test = trained
    target = Classifier(model)
    base = AttackSpec("pgd", eps=EPS, alpha=EPS / 4, steps=3, seed=0)
    ev = Evaluation("attack", "-", "-", attacks=[base], eps_sweep=[EPS / 2, EPS], sweep_methods=["pgd"])
    clean = evaluate(target, test)
    fresh = _sweep(ev, target, test, clean)
    ran = evaluate(target, test, base, seed=base.seed)["acc"]
    calls = []
    real = attack_run.evaluate
    monkeypatch.setattr(attack_run, "evaluate", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    reused = _sweep(ev, target, test, clean, done=[(base, ran)])
    assert [c.eps for c in calls] == [EPS / 2]  # only the point no attack ran at
    assert [r["robust_acc"] for r in reused] == [r["robust_acc"] for r in fresh]
