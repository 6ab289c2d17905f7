"""Stamps: what a results file is made from, written once and read back (torch-free).

experiments/make.py writes one stamp per results file, <run>/stamps/<results file>, and the Make rule
for that file depends on it and hands it to the command:

    cli.py train --config RUN/stamps/metrics.json ...     the resolved RunConfig, and resolve's notes
    cli.py attack --plan RUN/stamps/robustness.json ...   the resolved Evaluation (knn-eval, umap alike)

so nothing is turned into flags and parsed back. A stamp holds everything that decides the numbers; where
the data lives and how fast it runs (data root, device, precision, W&B, ...) come from the command line,
and any option given there goes on top of the stamp. Make's EXTRA flags are recorded, so changing them
remakes the results.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from core.config import RunConfig
from core.errors import UsageError
from eval.plan import Evaluation

EVAL_VERSION = 5  # bump when a change to eval/ alters the numbers an evaluation writes (5: a kNN model's attacks
# stop on the kNN's own vote: KnnScores' argmax is the vote, AutoAttack's bookkeeping follows the classifier's rule)
# Evaluation fields that never change its numbers: given by the command line, never stamped.
EVAL_RUNTIME = ("data_root", "cache_dir", "download", "device", "batch_size", "wandb", "precision", "channels_last")


def training(cfg: RunConfig, notes=(), extra: str = "") -> str:
    """A metrics.json stamp: the resolved config, resolve's notes (shown when the command runs) and EXTRA."""
    data = {"config": cfg.to_dict(), "extra": extra}
    if notes:
        data["notes"] = list(notes)
    return json.dumps(data, indent=1)


def evaluation(ev: Evaluation, extra: str = "") -> str:
    """An evaluation stamp: the resolved Evaluation without its runtime fields, and EXTRA."""
    plan = {k: v for k, v in asdict(ev).items() if k not in EVAL_RUNTIME}
    return json.dumps({"version": EVAL_VERSION, "evaluation": plan, "extra": extra}, indent=1)


def read(path: str | Path, key: str) -> dict:
    """A stamp's contents; `key` ("config" or "evaluation") names the part the command needs."""
    what = {"config": "resolved-config (RUN/stamps/metrics.json)", "evaluation": "evaluation"}[key]
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UsageError(f"stamp {path} does not exist (make writes the stamps as it starts)") from None
    except (OSError, ValueError) as err:
        raise UsageError(f"stamp {path} is not readable JSON: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get(key), dict):
        raise UsageError(f"{path} is not a {what} stamp: it has no {key!r} (an older trustlab's? make rewrites it)")
    return data
