"""Progress of a mapping run: tiles done/total, pixels per second, ETA and failures so far.

A rich progress bar on a terminal; otherwise one structured log line per finished tile, which
is what a cluster log collector wants.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from deepsalt.logs import get_logger
from deepsalt.mapping.records import TileResult, TileStatus

log = get_logger(__name__)


@dataclass
class ProgressTracker:
    """Counts finished tiles and reports them; ``rate`` is predicted-or-flagged pixels per second."""

    total: int
    done: int = 0
    failed: int = 0
    pixels: int = 0
    started: float = field(default_factory=time.monotonic)
    _bar: Progress | None = None
    _task: TaskID | None = None

    def __enter__(self) -> ProgressTracker:
        if sys.stderr.isatty():
            self._bar = Progress(
                TextColumn("[bold]mapping"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:,.0f} px/s  failed {task.fields[failed]}"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self._bar.start()
            self._task = self._bar.add_task("tiles", total=self.total, rate=0.0, failed=0)
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.pixels / elapsed if elapsed > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        finished = self.done + self.failed
        if not finished:
            return None
        elapsed = time.monotonic() - self.started
        return elapsed / finished * (self.total - finished)

    def update(self, result: TileResult) -> None:
        """Account for one tile's result."""
        if result.status is TileStatus.DONE:
            self.done += 1
            self.pixels += result.pixels
        else:
            self.failed += 1
        if self._bar is not None:
            self._bar.update(
                self._task, completed=self.done + self.failed, rate=self.rate, failed=self.failed
            )
            return
        log.info(
            "tile finished",
            extra={
                "tile": result.tile,
                "status": result.status.value,
                "tiles_done": self.done,
                "tiles_failed": self.failed,
                "tiles_total": self.total,
                "pixels_per_s": round(self.rate),
                "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
                **({"error": result.error} if result.error else {}),
                **({"scenes_not_used": list(result.rejected_scenes)} if result.rejected_scenes else {}),
            },
        )
