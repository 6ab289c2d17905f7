"""Progress on stderr for the long loops (training epochs, evaluations, embeddings).

On a terminal: a tqdm bar that disappears when the loop ends. In a log (stderr is a file or a pipe: `make` in the
background, a SLURM job, CI): no bar, but a plain line at most every TRUSTLAB_PROGRESS_EVERY seconds (default 60;
0 turns them off), and none for a loop shorter than that, so a run's log says where a 10-minute epoch is without
filling up with carriage returns. The lines go to whatever sys.stderr is when they are written (--quiet's sink).
"""
from __future__ import annotations

import math
import os
import sys
import time

EVERY_ENV = "TRUSTLAB_PROGRESS_EVERY"
LINE_FORMAT = ("{desc}: {n_fmt}/{total_fmt} {unit} ({percentage:.0f}%), {elapsed} elapsed, about {remaining} left"
               "{postfix}")


class _Lines:
    """A file for tqdm that writes each status as a line of its own (carriage returns and blank clears dropped),
    and none much sooner than `seconds` after the loop started or after the last line: a forced refresh
    (set_postfix every step, say) cannot fill the log. The 10% slack keeps a line tqdm times just past the interval
    (it clocks before it formats) from being dropped, which would leave a gap of two intervals."""

    def __init__(self, seconds: float):
        self.seconds, self.last = seconds, time.monotonic()

    def write(self, text: str) -> None:
        for part in text.replace("\r", "\n").split("\n"):
            now = time.monotonic()
            if part.strip() and now - self.last >= 0.9 * self.seconds:
                sys.stderr.write(part.rstrip() + "\n")
                self.last = now

    def flush(self) -> None:
        sys.stderr.flush()


def every() -> float:
    """Seconds between two progress lines in a log (TRUSTLAB_PROGRESS_EVERY; 0 or less: no lines)."""
    raw = os.environ.get(EVERY_ENV, "60")
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds):
        from core.errors import UsageError

        raise UsageError(f"{EVERY_ENV}={raw!r}: give the seconds between progress lines (0 turns them off)")
    return seconds


def bar(iterable, total: int | None = None, desc: str = "", unit: str = "it", enabled: bool = True):
    """`iterable` wrapped in the progress display that suits stderr (see the module's doc); enabled=False: none.
    Under torchrun only rank 0 shows progress (each rank evaluates its own shard)."""
    from core.dist import rank

    enabled = enabled and rank() == 0
    seconds = every()  # checked on a terminal too: a typo fails the first loop wherever it runs
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=False, disable=not enabled, file=sys.stderr)
    from tqdm.std import tqdm  # plain text even under Jupyter, whose widget would ignore the file

    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=False, disable=not enabled or seconds <= 0,
                file=_Lines(seconds), mininterval=seconds, maxinterval=max(seconds, 10.0), delay=seconds,
                bar_format=LINE_FORMAT if total else "{desc}: {n_fmt} {unit}, {elapsed} elapsed{postfix}")
