"""Folders that refuse writes for real: read-only, and full (no space left on the device).

A process running as root writes into folders whatever their mode bits say, so a read-only
folder is a read-only tmpfs mount when the tests run as root (as in the project's containers),
and a mode-0555 folder otherwise. A full disk is a tiny tmpfs filled to the last byte; it needs
the right to mount, which only root has here, and the test is skipped without it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _mount_tmpfs(folder: Path, options: str) -> bool:
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    return done.returncode == 0


def _unmount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], check=False, capture_output=True)


@contextlib.contextmanager
def read_only_folder(folder: Path) -> Iterator[Path]:
    """``folder``, in which creating anything fails (EROFS as root, EACCES otherwise)."""
    folder.mkdir(parents=True, exist_ok=True)
    if _mount_tmpfs(folder, "ro,size=64k"):
        try:
            yield folder
        finally:
            _unmount(folder)
        return
    folder.chmod(0o555)
    try:
        yield folder
    finally:
        folder.chmod(0o755)


@contextlib.contextmanager
def full_folder(folder: Path) -> Iterator[Path]:
    """``folder`` on a device with no space left."""
    folder.mkdir(parents=True, exist_ok=True)
    if not _mount_tmpfs(folder, "size=64k"):
        pytest.skip("a full disk is a tiny tmpfs here, and mounting one needs root")
    try:
        fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        finally:
            os.close(fd)
        yield folder
    finally:
        _unmount(folder)
