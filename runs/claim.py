"""Claiming an evaluation's output files in a run folder: refuse, before any work, an --out that would write
over a training run's files or another evaluation's, then hold the results file's lock while the evaluation
runs (one writer at a time) and clear what an interrupted earlier write left behind.

An evaluation here is anything with `kind` ("attack", "knn" or "umap") and `out` (its results file); the
default results file of each kind is handed in by eval/ (eval/plan.py names them), so this module knows
the files a kind writes, never the plans.
"""
from __future__ import annotations

import functools
import json
from contextlib import contextmanager
from pathlib import Path

from core.errors import UsageError
from core.io import clean_partial, ensure_dir, exclusive, mtime_ns
from runs.folder import RUN_FILES


def outputs(kind: str, out: str | Path) -> list[Path]:
    """Every file an evaluation of `kind` writes for the results file `out` (figures beside it)."""
    out = Path(out)
    stem = out.with_suffix("")
    if kind == "attack":
        return [out, Path(f"{stem}-examples.pt"), Path(f"{stem}-examples.png"), Path(f"{stem}-eps.png")]
    return [out, out.with_suffix(".png")] if kind == "umap" else [out]


def check_outputs(ev, defaults: dict[str, str]) -> None:
    """Refuse, before any work, an --out that is a folder, or that would write over a run's own files,
    another evaluation's files, or a file that is not this evaluation's results.
    defaults: {kind: the kind's default results file name}."""
    out = Path(ev.out)
    default = defaults[ev.kind]
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; name a results file, e.g. {out / default}")
    others = {p.name for kind, file in defaults.items() if kind != ev.kind for p in outputs(kind, file)}
    for path in outputs(ev.kind, out):
        if path.name in RUN_FILES or path.name in others:
            raise UsageError(f"--out {out} would write over {path}, which "
                             + ("a training run writes" if path.name in RUN_FILES else "another evaluation writes")
                             + f"; choose another name (default {default})")
    if out.suffix != ".json":
        raise UsageError(f"--out {out} must name a .json results file")
    if out.is_file():
        try:
            previous = json.loads(out.read_text())
        except (OSError, ValueError):
            previous = None
        ours = isinstance(previous, dict) and (previous.get("evaluation") == ev.kind
                                               or ("evaluation" not in previous and out.name == default))
        if not ours:
            raise UsageError(f"--out {out} exists and is not a results file of this evaluation ({ev.kind}); "
                             "it is left alone: choose another name")
        theirs = previous.get("model")
        if theirs and getattr(ev, "model", None) and Path(theirs).resolve() != Path(ev.model).resolve():
            raise UsageError(f"--out {out} holds the {ev.kind} evaluation of another run ({theirs}), not of "
                             f"{ev.model}; it is left alone: choose another name")


@contextmanager
def claimed(ev, defaults: dict[str, str]):
    """check_outputs, then hold the results file's lock while the evaluation runs (one writer at a time),
    and clear what an interrupted earlier write of these files left behind."""
    check_outputs(ev, defaults)
    out = Path(ev.out)
    before = mtime_ns(out)
    with exclusive(ensure_dir(out.parent) / f".{out.name}.lock", f"results file {out}"):
        if mtime_ns(out) != before:  # another writer finished these results while we waited for its lock
            raise FinishedMeanwhile(out)
        check_outputs(ev, defaults)  # again, now that no other evaluation can write these files meanwhile
        for path in outputs(ev.kind, out):
            clean_partial(path)
        yield out


class FinishedMeanwhile(Exception):
    """The results file was written by another process while this one waited for its lock: nothing to do."""



def one_writer(defaults: dict[str, str]):
    """A decorator: the evaluation `run(ev, ...)` runs only inside claimed(ev): outputs checked, the results
    file's lock held."""
    def decorate(run):
        @functools.wraps(run)
        def wrapped(ev, *args, **kwargs):
            try:
                with claimed(ev, defaults):
                    return run(ev, *args, **kwargs)
            except FinishedMeanwhile as done:
                import sys

                print(f"note: {done.args[0]} was written by another process while this one waited; nothing to do",
                      file=sys.stderr)
                return json.loads(Path(done.args[0]).read_text())
        return wrapped
    return decorate
