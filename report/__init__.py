"""Presenting the numbers eval/ computed: results files are read (load), turned into tables as data (tables),
judged by the honesty checks (checks), described (prose) and drawn (figures, on plotting's one matplotlib
setup), gathered into one Document (document), and rendered as REPORT.md (markdown) and as a W&B Report from
the same Document (wandb). run_figures draws a run's own figures (training curves, example grid, eps curve,
UMAP), for the commands.

    written = write(profile, SECTIONS, QUESTIONS, "results")   # REPORT.md and its figures
    build(profile.name, SECTIONS, QUESTIONS, written.document)  # the W&B Report
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from report.document import Document, collect
from report.wandb import build, spec, write_spec

__all__ = ["Document", "Written", "build", "collect", "spec", "track_report", "write", "write_report", "write_spec"]


class Written(NamedTuple):
    path: Path
    document: Document


def write(profile, sections: dict, questions: dict, results_root: str | Path = "results",
          out: str | Path | None = None) -> Written:
    """REPORT.md for `profile` (a Profile) over `sections` and `questions` (experiments' entries), its figures
    beside it; the Document it renders, for the W&B Report."""
    from core.errors import UsageError
    from core.io import atomic_write
    from report.markdown import render

    if not Path(results_root).is_dir():
        raise UsageError(f"results root {results_root} does not exist (pass --results, the folder holding "
                         "<profile>/<section>/ run folders)")
    root = Path(results_root) / profile.name
    out = Path(out) if out else root / "REPORT.md"
    doc = collect(root, profile, sections, questions, out.parent)
    text = render(doc)
    atomic_write(out, lambda tmp: Path(tmp).write_text(text))
    return Written(out, doc)


def write_report(profile, sections: dict, questions: dict, results_root: str | Path = "results",
                 out: str | Path | None = None) -> Path:
    """REPORT.md's path, as `write` writes it."""
    return write(profile, sections, questions, results_root, out).path


def track_report(enabled: bool, profile: str, path: Path) -> None:
    """REPORT.md and the figures beside it as one W&B artifact, in a run of job_type "report"."""
    if not enabled:
        return
    from core.tracking import Tracker

    path = Path(path)
    tracker = Tracker(True, group=f"{profile}/report", name=f"report-{profile}", job_type="report",
                      config={"profile": profile, "report": str(path)}, tags=(profile,))
    figures = sorted(path.parent.glob("*.png"))
    for png in figures:
        tracker.image(png.stem, png)
    tracker.artifact(f"report-{profile}", "report", [path, *figures])
    tracker.finish()
