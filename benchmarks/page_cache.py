"""The mapping benchmark's inputs held in memory, so its timed runs measure decoding, not the disk.

The floors count decoding from memory; a run that reads its scenes from disk is compared with
work it did not do. Reading every scene once before the runs (:func:`warm`) was enough on most
hosts. On one it was not: its page cache stopped growing well below its free memory, short of
the scenes P reads plus the libraries every new actor maps, so pages were dropped between runs
and the runs read from disk (``benchmarks/notes.md``, session 17). :class:`HeldFiles`
maps the files and locks their pages (``mlock``) for as long as the benchmark runs; locked pages
are never dropped. Where locking is not allowed (no ``CAP_IPC_LOCK`` and a small
``RLIMIT_MEMLOCK``), the files are only read once and the results say so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType

import numpy as np

from deepsalt.logs import get_logger

log = get_logger(__name__)

READ_CHUNK = 1 << 24


def warm(paths: Iterable[str]) -> int:
    """Read each file once (untimed), so its pages are in the page cache; bytes read."""
    total = 0
    for path in paths:
        with open(path, "rb") as f:
            while chunk := f.read(READ_CHUNK):
                total += len(chunk)
    return total


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    for name in ("mlock", "munlock"):
        getattr(libc, name).argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        getattr(libc, name).restype = ctypes.c_int
    return libc


@dataclass
class HeldFiles:
    """Context manager: every file of ``paths`` mapped and its pages locked in memory until exit.

    ``locked_bytes`` says how much was locked; a file that could not be locked is still read once,
    and named in ``not_locked`` with the reason.
    """

    paths: Sequence[str]
    locked_bytes: int = 0
    not_locked: dict[str, str] = field(default_factory=dict)
    _maps: list[tuple[mmap.mmap, int, int]] = field(default_factory=list, repr=False)

    def __enter__(self) -> HeldFiles:
        libc = _libc()
        for path in dict.fromkeys(self.paths):
            size = os.path.getsize(path)
            if size == 0:
                continue
            with open(path, "rb") as f:
                mapped = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
            view = np.frombuffer(mapped, np.uint8)
            address = view.ctypes.data
            del view  # the map can be closed once no array shares its buffer
            if libc.mlock(address, size) == 0:
                self._maps.append((mapped, address, size))
                self.locked_bytes += size
                continue
            self.not_locked[path] = os.strerror(ctypes.get_errno())
            mapped.close()
            warm([path])
        if self.not_locked:
            log.warning(
                "benchmark inputs not locked in memory: runs may read them from disk",
                extra={"files": len(self.not_locked), "reason": next(iter(self.not_locked.values()))},
            )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        libc = _libc()
        for mapped, address, size in self._maps:
            libc.munlock(address, size)
            mapped.close()
        self._maps.clear()
