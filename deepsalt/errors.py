"""Exceptions that carry what went wrong and where, for humans reading a terminal or a log.

:func:`explain` is the one place that turns any exception into the message and exit code a user
sees; the command line and the Ray job entrypoints both print through it, so a failure reads the
same wherever it happens.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of ``deepsalt`` and of the Ray job entrypoints."""

    OK = 0
    FAILURE = 1  # the run failed or some of its work did (finished work is kept)
    CONFIG = 2  # invalid configuration: nothing was started
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)


class DeepSaltError(Exception):
    """Base class: every error DeepSalt raises on purpose derives from it."""

    exit_code = ExitCode.FAILURE


class ConfigError(DeepSaltError):
    """An invalid configuration: names the file and the offending field."""

    exit_code = ExitCode.CONFIG

    def __init__(self, source: str, field: str, message: str):
        self.source = source
        self.field = field
        self.message = message
        super().__init__(f"{source}: field '{field}': {message}")


class InputDataError(DeepSaltError):
    """An input file that cannot be used as it is (corrupt, missing bands, no CRS, ...).

    The message always names the file (URL) so that the user can find it.
    """

    def __init__(self, url: str, message: str):
        self.url = url
        self.message = message
        super().__init__(f"{url}: {message}")


class OutputError(InputDataError):
    """An output place that cannot be written (exists as something else, read-only, full, busy)."""


class LineageError(DeepSaltError):
    """A checkpoint that does not belong with the one it is combined with."""


class Interrupted(DeepSaltError):
    """The user stopped a run (Ctrl-C); the message says what was kept and how to resume."""

    exit_code = ExitCode.INTERRUPTED


_OS_REASONS = {
    errno.ENOENT: "not found",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EEXIST: "already exists",
    errno.EISDIR: "is a folder, not a file",
    errno.ENOTDIR: "a part of this path is a file, not a folder",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.ENOTEMPTY: "folder is not empty",
}


def explain(exc: BaseException) -> tuple[ExitCode, str]:
    """The exit code and the one-line message for ``exc``.

    DeepSalt's own errors already name their file or field, also when they arrive wrapped (Ray
    re-raises an actor's exception inside its own). Operating-system and object-store failures
    are named by the path or endpoint they carry. Anything else is a defect: its type and text
    are shown with a pointer to ``--debug``.
    """
    own = next((e for e in _chain(exc) if isinstance(e, DeepSaltError)), None)
    if own is not None:
        return own.exit_code, str(own)
    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED, "interrupted"
    if isinstance(exc, OSError) and exc.errno in _OS_REASONS:
        reason = _OS_REASONS[exc.errno]
        return ExitCode.FAILURE, f"{exc.filename}: {reason}" if exc.filename else reason
    unreachable = _unreachable_endpoint(exc)
    if unreachable:
        return ExitCode.FAILURE, f"{unreachable}: cannot be reached (check the address and the network)"
    if isinstance(exc, OSError):
        return ExitCode.FAILURE, f"{type(exc).__name__}: {exc}"
    return ExitCode.FAILURE, f"unexpected error {type(exc).__name__}: {exc} (rerun with --debug for details)"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what caused it: Ray's ``cause`` of a task error first, then Python's chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        cause = getattr(current, "cause", None)
        if isinstance(cause, BaseException) and id(cause) not in seen:
            current = cause  # Ray's wrapper subclasses the cause; the cause has the plain message
            continue
        yield current
        current = current.__cause__ or current.__context__


def _unreachable_endpoint(exc: BaseException) -> str | None:
    """The address of an object store or web service that could not be connected to, if that is the cause."""
    for current in _chain(exc):
        kind = type(current).__name__
        if kind in ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError"):
            return str(getattr(current, "kwargs", {}).get("endpoint_url") or current)
        if kind in ("ClientConnectorError", "ServerTimeoutError", "ConnectionError", "NewConnectionError"):
            return str(current)
    return None
