"""Stamps: results made with the very config a stamp describes are not redone, even when a newer trustlab
adds a RunConfig field (at its default) and so changes the stamp's text."""
import json
import os
import time
from pathlib import Path

from experiments.make import rules


def _stamp_and_results(tmp_path, results_config):
    rules("smoke", str(tmp_path), 0, [], False, None, "", None)
    run = tmp_path / "smoke" / "q1-baseline"
    stamp = run / "stamps" / "metrics.json"
    config = json.loads(stamp.read_text())["config"]
    (run / "metrics.json").write_text(json.dumps({"config": results_config(dict(config))}))
    finished = time.time() - 100  # the run finished a while ago; the rewrite below happens now
    os.utime(run / "metrics.json", (finished, finished))
    old = json.loads(stamp.read_text())
    old["config"].pop("randconv")  # the stamp an older trustlab wrote, before the field existed
    stamp.write_text(json.dumps(old))
    rules("smoke", str(tmp_path), 0, [], False, None, "", None)  # rewrites the stamp: its text changed
    assert "randconv" in json.loads(stamp.read_text())["config"]
    return stamp.stat().st_mtime < (run / "metrics.json").stat().st_mtime


def test_a_new_field_at_its_default_does_not_redo_finished_results(tmp_path):
    def older(config):
        config.pop("randconv")  # written before the field existed: its default is implied
        return config
    assert _stamp_and_results(tmp_path, older)


def test_a_changed_setting_still_redoes_them(tmp_path):
    assert not _stamp_and_results(tmp_path, lambda config: {**config, "lr": 0.5})


def _recipes(text: str) -> dict[str, tuple[list[str], str]]:
    """target -> (its prerequisites, its command) of a generated fragment."""
    lines, out = text.splitlines(), {}
    for head, recipe in zip(lines, lines[1:]):
        if recipe.startswith("\t") and ": " in head:
            target, deps = head.split(": ", 1)
            out[target] = (deps.split(" | ")[0].split(), recipe.strip())
    return out


def test_each_command_reads_the_stamp_its_results_depend_on(tmp_path):
    """The stamp is the contract: no setting is spelled as a flag and parsed back."""
    recipes = _recipes(rules("smoke", str(tmp_path), 0, [0, 1], False, "w.pth", "", None))
    assert len(recipes) > 40
    for target, (deps, command) in recipes.items():
        stamp = next(d for d in deps if "/stamps/" in d)
        assert stamp == str(Path(target).parent / "stamps" / Path(target).name)
        option = "--config" if target.endswith("metrics.json") else "--plan"
        assert f" {option} {stamp} " in f"{command} ", command
        for flag in ("--preset", "--seed", "--eps", "--method", "--threat", "--eval-size", "--source", "--k ",
                     "--no-pretrained", "--weights", "--samples", "--from-run", "--model"):
            assert flag not in command, (flag, command)
    stamp = json.loads((tmp_path / "smoke" / "q1-baseline" / "seed-1" / "stamps" / "metrics.json").read_text())
    assert (stamp["config"]["seed"], stamp["config"]["profile"], stamp["config"]["weights"]) == (1, "smoke", None)
    assert "--weights unused" in stamp["notes"][0]
    audit = json.loads((tmp_path / "smoke" / "q2-trades" / "seed-0" / "stamps" / "audit.json").read_text())
    plan = audit["evaluation"]
    assert (plan["kind"], plan["n"], plan["audit"], plan["square_queries"], plan["seed"]) == ("attack", 8, True, 50, 0)
    assert plan["model"] == str(tmp_path / "smoke" / "q2-trades" / "seed-0")
    assert plan["attacks"][0]["eps"] == 8 / 255  # the float itself, never "8/255" parsed back
    rob = json.loads((tmp_path / "smoke" / "q2-circle" / "seed-1" / "stamps" / "robustness.json").read_text())
    assert rob["evaluation"]["source"] == str(tmp_path / "smoke" / "q2-baseline" / "seed-1")
    assert rob["evaluation"]["eps_sweep"][-1] == 64 / 255 and rob["evaluation"]["sweep_methods"] == ["fgsm", "pgd"]
    assert {a["seed"] for a in rob["evaluation"]["attacks"]} == {1}


def _old_evaluation_stamp(tmp_path, changed: bool) -> bool:
    """An evaluation stamp as trustlab wrote it while the commands took flags, with results made from it:
    are those results still current once the stamp is rewritten in today's form?"""
    from eval.plan import AttackPlan
    from experiments import PROFILES, SECTIONS
    from experiments.make import _stamp_before_plans

    rules("smoke", str(tmp_path), 0, [], False, None, "", None)
    run = tmp_path / "smoke" / "q2-adversarial"
    step = next(s for s in SECTIONS["q2-adversarial"].evals if isinstance(s, AttackPlan) and s.audit)
    prof = PROFILES["smoke"]
    stamp = run / "stamps" / step.file
    old = _stamp_before_plans(step, prof, None, "")  # white-box only: no transfer source
    stamp.write_text(old.replace('"n": 8', '"n": 9') if changed else old)
    assert ('"n": 9' in stamp.read_text()) == changed
    made = time.time() - 100
    os.utime(stamp, (made - 50, made - 50))
    (run / step.file).write_text("{}")
    os.utime(run / step.file, (made, made))
    rules("smoke", str(tmp_path), 0, [], False, None, "", None)
    assert "evaluation" in json.loads(stamp.read_text())
    return stamp.stat().st_mtime < (run / step.file).stat().st_mtime


def test_evaluations_made_under_an_older_stamp_of_the_same_plan_are_kept(tmp_path):
    assert _old_evaluation_stamp(tmp_path, changed=False)


def test_evaluations_made_under_an_older_stamp_of_another_plan_are_redone(tmp_path):
    assert not _old_evaluation_stamp(tmp_path, changed=True)
