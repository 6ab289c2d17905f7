"""runs/claim.py: an evaluation claims its output files, never a run's own files or another evaluation's."""
from pathlib import Path
from types import SimpleNamespace

import pytest

from core.errors import RunFailure, UsageError
from eval.harness import RESULTS_FILES
from runs.claim import check_outputs, claimed, one_writer, outputs


def ev(kind, out):
    return SimpleNamespace(kind=kind, out=str(out))


def test_the_files_each_kind_writes(tmp_path):
    assert outputs("attack", tmp_path / "rob.json") == [tmp_path / "rob.json", tmp_path / "rob-examples.pt",
                                                         tmp_path / "rob-examples.png", tmp_path / "rob-eps.png"]
    assert outputs("umap", tmp_path / "u.json") == [tmp_path / "u.json", tmp_path / "u.png"]
    assert outputs("knn", tmp_path / "k.json") == [tmp_path / "k.json"]


@pytest.mark.parametrize("kind, name, message", [
    ("attack", "model.pt", "would write over .*model.pt, which a training run writes"),
    ("knn", "metrics.json", "a training run writes"),
    ("umap", "curves.json", "curves.png, which a training run writes"),
    ("knn", "umap.json", "another evaluation writes"),
    ("umap", "robustness.json", "another evaluation writes"),
    ("attack", "rob.txt", "must name a .json results file"),
])
def test_refused_names(tmp_path, kind, name, message):
    with pytest.raises(UsageError, match=message):
        check_outputs(ev(kind, tmp_path / name), RESULTS_FILES)


def test_a_folder_and_a_foreign_file_are_refused_and_left_alone(tmp_path):
    with pytest.raises(UsageError, match="is a folder; name a results file, e.g. .*robustness.json"):
        check_outputs(ev("attack", tmp_path), RESULTS_FILES)
    (tmp_path / "notes.json").write_text('{"mine": 1}')
    with pytest.raises(UsageError, match="is not a results file of this evaluation"):
        check_outputs(ev("attack", tmp_path / "notes.json"), RESULTS_FILES)
    (tmp_path / "k.json").write_text('{"evaluation": "knn"}')  # another kind's results
    with pytest.raises(UsageError, match="is not a results file of this evaluation"):
        check_outputs(ev("attack", tmp_path / "k.json"), RESULTS_FILES)
    assert (tmp_path / "notes.json").read_text() == '{"mine": 1}'


def test_its_own_earlier_results_may_be_rewritten(tmp_path):
    (tmp_path / "rob.json").write_text('{"evaluation": "attack"}')
    check_outputs(ev("attack", tmp_path / "rob.json"), RESULTS_FILES)
    (tmp_path / "knn.json").write_text('{"k": 3}')  # written before results carried "evaluation": its default name
    check_outputs(ev("knn", tmp_path / "knn.json"), RESULTS_FILES)


def test_claimed_clears_interrupted_writes_and_holds_one_writer(tmp_path):
    out = tmp_path / "rob.json"
    (tmp_path / ".rob-eps.png.a1b2c3.tmp").write_bytes(b"half a figure")
    seen = {}

    @one_writer(RESULTS_FILES)
    def run(e):
        seen["partials"] = sorted(p.name for p in tmp_path.glob(".*.tmp"))
        seen["second"] = _try_claim(e)  # a second writer of the same results file, meanwhile
        return "done"

    assert run(ev("attack", out)) == "done"
    assert seen["partials"] == [] and "in use" in seen["second"]
    with claimed(ev("attack", out), RESULTS_FILES) as path:  # released afterwards
        assert Path(path) == out


def _try_claim(e):
    try:
        with claimed(e, RESULTS_FILES):
            return "claimed twice"
    except RunFailure as err:
        return str(err)
