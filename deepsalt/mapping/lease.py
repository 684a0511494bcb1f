"""One writer per store: a lease file (``_lease.json``) held by the run that writes the store.

Two runs writing one store race on its skeleton and its pyramid, and with different settings
they would mix two maps. A run therefore takes the store's lease before it touches anything and
keeps renewing it while it works; a second run finds a live lease and is refused, naming the
holder. A run killed with SIGKILL cannot release its lease, so a lease also ends by itself: it
is stale once it has not been renewed for ``ttl_s`` seconds, or at once when its holder ran on
this host and that process is gone. A stale lease is taken over.

The lease is created with an exclusive write (a hard link on a local disk, ``If-None-Match`` on
S3), so of two runs starting together exactly one gets it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from types import TracebackType

import fsspec
from fsspec.implementations.local import LocalFileSystem
from pydantic import BaseModel, ConfigDict, ValidationError

from deepsalt.errors import OutputError
from deepsalt.logs import get_logger

log = get_logger(__name__)

LEASE = "_lease.json"
TTL_S = 120.0
"""A lease not renewed for this long is stale. Long enough to ride out a slow object store."""
RENEW_S = 15.0


class StoreBusyError(OutputError):
    """Another run holds the store's lease."""


class LeaseRecord(BaseModel):
    """Who holds a store and until when."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    host: str
    pid: int
    renewed: float
    """Wall-clock time (seconds since the epoch) of the last renewal."""
    ttl_s: float

    @property
    def expires(self) -> float:
        return self.renewed + self.ttl_s

    def holder_gone(self) -> bool:
        """The holder ran on this host and its process no longer exists."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, another user's
            return False
        return False

    def live(self, now: float) -> bool:
        return now < self.expires and not self.holder_gone()


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class StoreLease:
    """Context manager: hold ``url``'s lease for the duration of a run, renewing it in a thread."""

    def __init__(self, url: str, ttl_s: float = TTL_S, renew_s: float = RENEW_S):
        self.url = url
        self.fs, self.folder = fsspec.core.url_to_fs(url)
        self.path = f"{self.folder}/{LEASE}"
        self.ttl_s = ttl_s
        self.renew_s = renew_s
        self.run_id = uuid.uuid4().hex
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._made_folder = False

    def _record(self) -> LeaseRecord:
        return LeaseRecord(
            run_id=self.run_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            renewed=time.time(),
            ttl_s=self.ttl_s,
        )

    def read(self) -> LeaseRecord | None:
        """The current lease, None when there is none; an unreadable one counts as stale (None)."""
        try:
            return LeaseRecord.model_validate_json(self.fs.cat_file(self.path))
        except (FileNotFoundError, ValidationError, UnicodeDecodeError):
            return None

    def acquire(self) -> None:
        """Take the lease or raise :class:`StoreBusyError` naming its holder."""
        self._made_folder = isinstance(self.fs, LocalFileSystem) and not self.fs.exists(self.folder)
        self.fs.makedirs(self.folder, exist_ok=True)
        for _ in range(2):
            try:
                self._create(self._record().model_dump_json().encode())
                return
            except FileExistsError:
                pass
            current = self.read()
            now = time.time()
            if current is not None and current.live(now):
                raise StoreBusyError(
                    self.url,
                    f"another run is writing this store ({current.host} pid {current.pid}, lease renewed "
                    f"{_when(current.renewed)}); wait for it to finish. If that run was killed, its lease "
                    f"ends by itself at {_when(current.expires)}, or delete {LEASE} in the store",
                )
            log.warning(
                "taking over a stale store lease",
                extra={
                    "store": self.url,
                    "holder": None if current is None else f"{current.host}:{current.pid}",
                },
            )
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(self.path)
        raise StoreBusyError(self.url, "another run took this store's lease at the same moment")

    def _create(self, payload: bytes) -> None:
        """Write the lease only if there is none (FileExistsError otherwise), never half-written."""
        if not isinstance(self.fs, LocalFileSystem):
            with self.fs.open(self.path, "xb") as fh:  # S3: If-None-Match
                fh.write(payload)
            return
        with self._local_copy(payload) as temporary:
            os.link(temporary, self.path)

    def _replace(self, payload: bytes) -> None:
        """Overwrite the lease in one step (readers never see it half-written)."""
        if not isinstance(self.fs, LocalFileSystem):
            self.fs.pipe_file(self.path, payload)
            return
        with self._local_copy(payload) as temporary:
            os.replace(temporary, self.path)

    @contextlib.contextmanager
    def _local_copy(self, payload: bytes) -> Iterator[str]:
        """``payload`` in a file beside the lease, removed afterwards unless renamed into place."""
        temporary = f"{self.path}.{self.run_id}"
        try:
            with open(temporary, "wb") as fh:
                fh.write(payload)
            yield temporary
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)

    def renew(self) -> None:
        """Extend the lease; notice when another run has taken it (then stop renewing)."""
        current = self.read()
        if current is None or current.run_id != self.run_id:
            self.lost = True
            log.error("store lease lost", extra={"store": self.url})
            return
        self._replace(self._record().model_dump_json().encode())

    def check(self) -> None:
        """Raise when the lease was lost: another run may now be writing the store."""
        if self.lost:
            raise StoreBusyError(self.url, "this run lost the store's lease to another run; stopped")

    def release(self) -> None:
        current = self.read()
        if current is not None and current.run_id == self.run_id:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(self.path)
        self._remove_empty_folder()

    def _remove_empty_folder(self) -> None:
        """A run refused or stopped before its skeleton leaves no empty store folder behind."""
        with contextlib.suppress(OSError):
            if self._made_folder and not self.fs.ls(self.folder):
                self.fs.rmdir(self.folder)

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.renew_s) and not self.lost:
            try:
                self.renew()
            except OSError as exc:  # a blip of the object store: try again at the next beat
                log.warning("store lease not renewed", extra={"store": self.url, "error": str(exc)})

    def __enter__(self) -> StoreLease:
        try:
            self.acquire()
        except BaseException:
            self._remove_empty_folder()
            raise
        self._thread = threading.Thread(target=self._renew_loop, name="store-lease", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.release()
