"""Stamps: results made with the very config a stamp describes are not redone, even when a newer trustlab
adds a RunConfig field (at its default) and so changes the stamp's text."""
import json
import os
import time

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
