"""Weights & Biases, offline unless WANDB_MODE says otherwise, or nothing at all with --no-wandb.

Runs go to project "trustlab", grouped by <profile>/<section>, named <section>-s<seed>[-<job>] (unique per
run folder), one job_type per command, with the resolved config.
Offline runs are stored under $WANDB_DIR (default results/wandb); `make wandb-sync` uploads them.
No API key or other secret is ever put into a config or results file by this module.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

PROJECT = "trustlab"


def group(profile: str, preset: str) -> str:
    return f"{profile}/{preset}"


def run_name(preset: str, seed: int, *jobs) -> str:
    """<section>-s<seed>[-<job>...]: the job parts (e.g. 'ft800', 'attack') keep names unique per run folder."""
    return "-".join([f"{preset}-s{seed}", *[str(j) for j in jobs if j]])


class Tracker:
    def __init__(self, enabled: bool, *, group: str, name: str, job_type: str, config: dict, tags=()):
        self.run = None
        if not enabled or os.environ.get("WANDB_MODE") == "disabled":
            return
        import wandb

        wandb_dir = Path(os.environ.get("WANDB_DIR", "results/wandb"))
        wandb_dir.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project=PROJECT, group=group, name=name, job_type=job_type, config=config,
                              tags=list(tags), dir=str(wandb_dir), mode=os.environ.get("WANDB_MODE", "offline"),
                              reinit="finish_previous", settings=wandb.Settings(console="off", silent=True))

    def log(self, values: dict[str, Any], step: int | None = None) -> None:
        if self.run is not None:
            self.run.log(values, step=step)

    def image(self, key: str, path: str | os.PathLike, caption: str = "") -> None:
        if self.run is not None:
            import wandb

            self.run.log({key: wandb.Image(str(path), caption=caption)})

    def table(self, key: str, columns: list[str], rows: list[list], line: tuple | None = None) -> None:
        """A W&B Table; line=(x, y, series, title) also logs it as a line plot (key + '_plot')."""
        if self.run is not None:
            import wandb

            table = wandb.Table(columns=columns, data=rows)
            logged = {key: table}
            if line:
                x, y, series, title = line
                logged[f"{key}_plot"] = wandb.plot.line(table, x, y, stroke=series, title=title)
            self.run.log(logged)

    def artifact(self, name: str, kind: str, paths: list) -> None:
        """Files (a model, a report and its figures) as one W&B artifact of this run."""
        if self.run is not None:
            import wandb

            art = wandb.Artifact(name, type=kind)
            for path in paths:
                if Path(path).is_file():
                    art.add_file(str(path))
            self.run.log_artifact(art)

    def summary(self, values: dict[str, Any]) -> None:
        if self.run is not None:
            self.run.summary.update(values)

    def finish(self, exit_code: int = 0) -> None:
        if self.run is not None:
            self.run.finish(exit_code=exit_code)
            self.run = None
