"""Reading results files: one section's files in every seed layout (runs/layout.py owns the layout), and the
few facts every table reads from them (the test-set size, the stand-in map, a metric's stats over seeds)."""
from __future__ import annotations

import json
from pathlib import Path

from eval.stats import stats
from runs.layout import find


def load(path: Path) -> dict | None:
    """A results file's contents; None if there is none. A file that is there but unreadable is an error
    naming it, never "not run"."""
    from core.errors import RunFailure

    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise RunFailure(f"results file {path} cannot be read ({err.strerror})") from err
    try:
        found = json.loads(text)
    except json.JSONDecodeError as err:
        raise RunFailure(f"results file {path} is corrupt ({err.msg} at line {err.lineno}); "
                         "delete it, or rerun its section") from err
    if not isinstance(found, dict):
        raise RunFailure(f"results file {path} holds a {type(found).__name__}, not a results object")
    return found


def runs(root: Path, section: str, name: str = "metrics.json") -> list[dict]:
    """Every seed's `name` results file of a section (<section>/<name> and <section>/seed-<n>/<name>)."""
    found = [load(f.path) for f in find(root / section, name) if f.samples is None]
    return [r for r in found if r is not None]


def curve_points(root: Path, section: str, name: str = "metrics.json") -> list[dict]:
    """Every `name` results file of a curve section's points (<section>/samples-<n>[/seed-<s>]/<name>)."""
    found = [load(f.path) for f in find(root / section, name) if f.samples is not None]
    return [r for r in found if r]


def stand_ins(result: dict) -> dict:
    """The run's stand-in map (study dataset -> the dataset that stood in for it), as its results file records it."""
    return result.get("roles") or result.get("config", {}).get("stand_ins") or {}


def used_stand_ins(loaded) -> bool:
    """Whether any of the runs (lists of results, or a dict of them) used stand-in data."""
    lists = loaded.values() if isinstance(loaded, dict) else [loaded]
    return any(stand_ins(r) for rs in lists for r in rs)


def key(result: dict, study: str, suffix: str) -> str:
    """A metric's key in a run's results: the dataset that ran for the study's `study`, then the suffix."""
    return f"{stand_ins(result).get(study, study)}{suffix}"


def metric(rs: list[dict], study: str, suffix: str):
    """stats() over seeds of one dataset's metric (e.g. "_test_acc"); None without runs."""
    return stats([r["metrics"].get(key(r, study, suffix)) for r in rs]) if rs else None


def test_size(rs: list[dict], dataset: str) -> int | None:
    """The test images a training run measured `dataset` on (the smallest, if seeds differ)."""
    sizes = {r.get("datasets", {}).get(f"{key(r, dataset, '')}_test", {}).get("size") for r in rs}
    sizes.discard(None)
    sizes.discard(0)
    return min(sizes) if sizes else None


def skipped(rs: list[dict], dataset: str) -> bool:
    """Whether a run skipped `dataset` because its data was missing."""
    return any("skipped" in r.get("datasets", {}).get(f"{dataset}_test", {}) for r in rs)
