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


_REFUSED: dict[str, str] = {}  # results file -> why the report left it out (listed at the top of the report)


def refused() -> list[str]:
    """Why each results file read since reset() was left out, one sentence per file."""
    return [_REFUSED[k] for k in sorted(_REFUSED)]


def reset() -> None:
    _REFUSED.clear()


def _names_its_folder(model: Path, folder: Path, root: Path) -> bool:
    """Does an evaluation's recorded model path name the run folder it sits in? The same path, or one that ends
    in the same <profile>/<section>[/seed-N]: Make records paths relative to where it ran (results/quick/...), and
    a results folder may be moved or copied to another machine; which model it was is then the sha256's to say."""
    if model.resolve() == folder.resolve():
        return True
    try:
        tail = (root.name, *folder.resolve().relative_to(root.resolve()).parts)
    except ValueError:
        return False
    return model.parts[-len(tail):] == tail


def _identity_problem(root: Path, section: str, path: Path, found: dict) -> str | None:
    """Why a results file is not what its place says: another section's or profile's results, or an evaluation of
    another model than its folder's run (files from before identities were recorded are taken as they are)."""
    if found.get("profile") is not None and found["profile"] != root.name:
        return f"{path} records profile {found['profile']!r}, not {root.name!r}: left out"
    if path.name != "metrics.json" and not (path.parent / "metrics.json").exists():
        return None  # an evaluation section without a run of its own (q2-examples evaluates another section's model)
    recorded = found.get("preset")
    if recorded is not None and recorded != section:
        return f"{path} records section {recorded!r}, not {section!r} (its folder): left out"
    if path.name == "metrics.json":
        return None
    model = found.get("model")
    if model and not _names_its_folder(Path(model), path.parent, root):
        return f"{path} is the evaluation of {model}, not of the run in its folder: left out"
    run = load(path.parent / "metrics.json") or {}
    ours, theirs = (found.get("identity") or {}).get("model_sha256"), (run.get("identity") or {}).get("model_sha256")
    if ours and theirs and ours != theirs:
        return (f"{path} evaluated another model than the one {path.parent / 'metrics.json'} describes (model.pt "
                "changed since: the run was retrained); left out: rerun the evaluation")
    return None


def _value_problem(path: Path, found) -> str | None:
    """The first accuracy in a results file that no evaluation can produce (outside 0-100, or not a finite number):
    the file was edited or damaged, and every interval drawn from it would be meaningless."""
    import math

    stack = [("", found)]
    while stack:
        where, item = stack.pop()
        pairs = item.items() if isinstance(item, dict) else enumerate(item) if isinstance(item, list) else ()
        for k, v in pairs:
            at = f"{where}.{k}" if where else str(k)
            if isinstance(v, (dict, list)):
                stack.append((at, v))
            elif (isinstance(k, str) and k.endswith("acc") and isinstance(v, (int, float)) and not isinstance(v, bool)
                  and not (math.isfinite(v) and 0 <= v <= 100)):
                return f"{path} holds {at} = {v!r}, not an accuracy between 0 and 100: left out (rerun its section)"
    return None


def runs(root: Path, section: str, name: str = "metrics.json") -> list[dict]:
    """Every seed's `name` results file of a section (<section>/<name> and <section>/seed-<n>/<name>), except
    those whose identity does not match their place (refused() says which, and why)."""
    out = []
    for f in find(root / section, name):
        found = load(f.path) if f.samples is None else None
        if found is None:
            continue
        why = _identity_problem(root, section, f.path, found) or _value_problem(f.path, found)
        if why:
            _REFUSED[str(f.path)] = why
            continue
        out.append(found)
    return out


def curve_points(root: Path, section: str, name: str = "metrics.json") -> list[dict]:
    """Every `name` results file of a curve section's points (<section>/samples-<n>[/seed-<s>]/<name>)."""
    out = []
    for f in find(root / section, name):
        found = load(f.path) if f.samples is not None else None
        why = found and _value_problem(f.path, found)
        if why:
            _REFUSED[str(f.path)] = why
        elif found:
            out.append(found)
    return out


def seed_problems(section: str, rs: list[dict]) -> list[str]:
    """Seeds of one section that cannot be averaged: configs that differ in anything but the seed, or one model
    counted twice (the same model file in two seed folders)."""
    from core.config import saved_method

    problems = []
    method = lambda r: {k: v for k, v in saved_method(r.get("config")).items() if k != "seed"}
    first = method(rs[0]) if rs else {}
    for r in rs[1:]:
        theirs = method(r)
        differ = sorted(k for k in set(first) | set(theirs) if first.get(k) != theirs.get(k))
        if differ:
            k = differ[0]
            problems.append(f"{section}: seeds {rs[0].get('seed')} and {r.get('seed')} were trained with different "
                            f"settings ({k} {first.get(k)!r} vs {theirs.get(k)!r}"
                            + (f", and {len(differ) - 1} more" if len(differ) > 1 else "") + "): their mean ± std "
                            "mixes two experiments")
    hashes = [(r.get("identity") or {}).get("model_sha256") for r in rs]
    twice = sorted({h for h in hashes if h and hashes.count(h) > 1})
    for h in twice:
        seeds = [r.get("seed") for r, x in zip(rs, hashes) if x == h]
        problems.append(f"{section}: the seed folders of seeds {', '.join(map(str, seeds))} hold the same model "
                        f"(model.pt sha256 {h[:12]}): one run counted {len(seeds)} times")
    return problems


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
