"""Peak resident memory of Ray actor processes, watched from the driver while a run goes on.

Ray names an actor's worker process after its class (``ray::MapWorker(MapBatches(TileMapper))``),
so the sampler finds the mapping actors by that title. On Linux it reads each process's
``VmHWM`` (the kernel's own high-water mark of resident memory), so a short peak between two
samples is not missed; elsewhere it falls back to the sampled RSS.
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType

import psutil


def high_water_mark(process: psutil.Process) -> int:
    """Peak resident bytes of ``process`` so far (current RSS where VmHWM is unavailable)."""
    status = Path(f"/proc/{process.pid}/status")
    try:
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return process.memory_info().rss


class ActorMemory:
    """Context manager: ``peaks`` maps pid → peak resident bytes of processes titled ``marker``."""

    def __init__(self, marker: str, interval_s: float = 0.2):
        self.marker = marker
        self.interval_s = interval_s
        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> ActorMemory:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self.interval_s):
                self.sample()
                return

    def sample(self) -> None:
        for process in psutil.process_iter(["cmdline"]):
            try:
                if self.marker in " ".join(process.info["cmdline"] or ()):
                    self.peaks[process.pid] = max(self.peaks.get(process.pid, 0), high_water_mark(process))
            except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
                continue
