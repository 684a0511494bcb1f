"""Peak resident memory of Ray actor processes, watched from the driver while a run goes on.

Ray names an actor's worker process after its class (``ray::MapWorker(MapBatches(TileMapper))``),
so the sampler finds the mapping actors by that title among this process's descendants. On Linux it reads each process's
``VmHWM`` (the kernel's own high-water mark of resident memory), so a short peak between two
samples is not missed; elsewhere it falls back to the sampled RSS. Each sample is kept with its
wall time, so the peak an actor had reached when it finished a given tile can be read back.
"""

from __future__ import annotations

import bisect
import threading
import time
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
    """Context manager: ``peaks`` maps pid → peak resident bytes of processes titled ``marker``,
    ``series`` pid → (wall time, peak so far) samples.

    Only descendants of this process count (a local Ray's raylet and its workers are), so actors
    of other Ray instances on a shared machine are never mistaken for ours. Processes already
    titled ``marker`` on entry (an earlier run's actors still shutting down) are left out, so
    each watched run reports only its own actors.
    """

    def __init__(self, marker: str, interval_s: float = 0.2, rescan_s: float = 1.0):
        self.marker = marker
        self._root = psutil.Process()
        self.interval_s = interval_s
        self.rescan_s = rescan_s
        self.peaks: dict[int, int] = {}
        self.series: dict[int, list[tuple[float, int]]] = {}
        self._earlier: set[int] = set()
        self._watched: dict[int, psutil.Process] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> ActorMemory:
        self._earlier = {p.pid for p in self._matching()}
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        # Looking for new actors walks every process on the host and reads each child's command
        # line: on 2 cores, done at every sample it took about 1 % of a core from the run measured.
        # Actors appear once per run, so they are looked for every ``rescan_s``; the actors found are
        # sampled every ``interval_s`` (VmHWM is the kernel's high-water mark: no peak is missed).
        rescan_every = max(1, round(self.rescan_s / self.interval_s))
        count = 0
        while True:
            self.sample(rescan=count % rescan_every == 0)
            count += 1
            if self._stop.wait(self.interval_s):
                self.sample()
                return

    def sample(self, rescan: bool = True) -> None:
        """Record the peak of every watched actor; ``rescan`` first looks for new ones."""
        if rescan:
            for process in self._matching():
                if process.pid not in self._earlier:
                    self._watched.setdefault(process.pid, process)
        for pid, process in list(self._watched.items()):
            try:
                self.peaks[pid] = max(self.peaks.get(pid, 0), high_water_mark(process))
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                del self._watched[pid]
                continue
            self.series.setdefault(pid, []).append((time.time(), self.peaks[pid]))

    def _matching(self) -> list[psutil.Process]:
        found = []
        for process in self._root.children(recursive=True):
            try:
                if self.marker in " ".join(process.cmdline()):
                    found.append(process)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return found


def peak_at(series: list[tuple[float, int]], when: float) -> int:
    """Peak resident bytes reached by wall time ``when``: the last sample at or before it."""
    index = bisect.bisect_right([t for t, _ in series], when)
    if index == 0:
        first = f"the first is at {series[0][0]:.1f}" if series else "there are none"
        raise ValueError(f"no memory sample at or before {when:.1f}; {first}")
    return series[index - 1][1]
