"""Where run folders live, written and parsed in this one place (torch-free: Make's rule generator,
the planner and the report import it).

    <results>/<profile>/<section>[/samples-<n>][/seed-<s>]/

`seed-<s>` appears only in the multi-seed layout (Make's SEEDS); a single-seed run sits in the section's
folder itself. `samples-<n>` is a point of a curve section (the fine-tuning curve).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SEED_PREFIX = "seed-"
SAMPLES_PREFIX = "samples-"
STAMPS = "stamps"  # <run>/stamps/<results file>: the resolved config or plan that results file depends on
_SEED = re.compile(rf"^{SEED_PREFIX}(\d+)$")
_SAMPLES = re.compile(rf"^{SAMPLES_PREFIX}(\d+)$")


def run_dir(root: str | Path, profile: str, section: str, seed: int | None = None,
            samples: int | None = None) -> Path:
    """results/<profile>/<section>[/samples-<n>][/seed-<s>]; seed None = the single-seed layout."""
    path = Path(root) / profile / section
    if samples is not None:
        path = path / f"{SAMPLES_PREFIX}{samples}"
    return path / f"{SEED_PREFIX}{seed}" if seed is not None else path


def stamp_path(folder: str | Path, name: str) -> Path:
    """<run>/stamps/<name>: the stamp of the run's results file `name` (experiments/stamps.py)."""
    return Path(folder) / STAMPS / name


def run_of_stamp(stamp: str | Path) -> Path:
    """The run folder a stamp belongs to."""
    return Path(stamp).parent.parent


def seed_of(folder: str | Path) -> int | None:
    """The seed a seed-<s> folder names; None for any other folder."""
    m = _SEED.match(Path(folder).name)
    return int(m.group(1)) if m else None


def samples_of(folder: str | Path) -> int | None:
    """The sample count of a samples-<n> folder, or of the samples-<n>/seed-<s> folder below one."""
    folder = Path(folder)
    if seed_of(folder) is not None:
        folder = folder.parent
    m = _SAMPLES.match(folder.name)
    return int(m.group(1)) if m else None


def section_dir(folder: str | Path) -> Path:
    """The section's folder above a run folder (<section>/[samples-<n>/][seed-<s>])."""
    folder = Path(folder)
    if seed_of(folder) is not None:
        folder = folder.parent
    if _SAMPLES.match(folder.name):
        folder = folder.parent
    return folder


def sibling(folder: str | Path, section: str) -> Path:
    """The run folder of another section with the same seed layout (a transfer source beside this run)."""
    folder = Path(folder)
    seed = seed_of(folder)
    root = section_dir(folder).parent / section
    return root / folder.name if seed is not None else root


@dataclass(frozen=True)
class Found:
    """A results file found under a section: its path, the seed folder's seed (None: single-seed layout)
    and the curve point (None: not a curve section)."""
    path: Path
    seed: int | None
    samples: int | None


def find(section_folder: str | Path, name: str) -> list[Found]:
    """Every `name` results file under a section's folder, in every layout, sorted: <section>/<name>,
    <section>/seed-<s>/<name>, <section>/samples-<n>/<name> and <section>/samples-<n>/seed-<s>/<name>."""
    base = Path(section_folder)
    paths = [base / name, *base.glob(f"{SEED_PREFIX}*/{name}"), *base.glob(f"{SAMPLES_PREFIX}*/{name}"),
             *base.glob(f"{SAMPLES_PREFIX}*/{SEED_PREFIX}*/{name}")]
    found = []
    for p in paths:
        if not p.is_file():
            continue
        rel = p.parent.relative_to(base).parts
        if any(not (_SEED.match(part) or _SAMPLES.match(part)) for part in rel):
            continue
        found.append(Found(p, seed_of(p.parent), samples_of(p.parent)))
    return sorted(found, key=lambda f: (f.samples is not None, f.samples or 0, f.seed is not None, f.seed or 0))


def require_finished(run_dir: str | Path, model: bool = True) -> None:
    """A UsageError unless run_dir is a run folder holding a finished run (metrics.json, and with `model` its
    model.pt); given a file inside one (its model.pt), it says to pass the folder."""
    from core.errors import UsageError

    run_dir = Path(run_dir)
    if (run_dir / "metrics.json").is_file() and (not model or (run_dir / "model.pt").is_file()):
        return
    if run_dir.is_file() and (run_dir.parent / "metrics.json").is_file():
        raise UsageError(f"{run_dir} is a file: --model takes the run folder, e.g. --model {run_dir.parent}")
    raise UsageError(f"run folder {run_dir} has no finished model (model.pt and metrics.json)")
