"""A local STAC API over a collection and its items, for the demo and for tests.

Mapping finds its scenes through a STAC API; the demo region ships a static catalogue
(``collection.json`` + ``items.ndjson``), so the demo serves it with rustac's in-memory STAC API
on 127.0.0.1 and maps through the same search path a user's real catalogue goes through.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from deepsalt.errors import DeepSaltError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rustac() -> str:
    beside_python = Path(sys.executable).parent / "rustac"
    found = str(beside_python) if beside_python.exists() else shutil.which("rustac")
    if not found:
        raise DeepSaltError(
            "rustac is not installed: `pip install rustac` provides the local STAC API server"
        )
    return found


def wait_until_up(url: str, proc: subprocess.Popen, timeout: float) -> None:
    """Poll ``url`` until it answers; fail early if the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DeepSaltError(f"{proc.args[0]} exited with code {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise DeepSaltError(f"{url} did not answer within {timeout:.0f} s")


@contextlib.contextmanager
def running_server(cmd: list[str], ready_url: str, timeout: float = 30.0) -> Iterator[subprocess.Popen]:
    """Run a server process until the block ends; enter once ``ready_url`` answers.

    The server's output goes to a temporary file, never to an unread pipe: a server that logs
    every request blocks once a pipe's buffer is full. The output is shown if start-up fails.
    """
    with tempfile.TemporaryFile("w+") as output:
        proc = subprocess.Popen(cmd, stdout=output, stderr=subprocess.STDOUT, text=True)
        try:
            try:
                wait_until_up(ready_url, proc, timeout)
            except DeepSaltError as exc:
                output.seek(0)
                raise DeepSaltError(f"{exc}; its output: {output.read()[-2000:].strip()}") from None
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextlib.contextmanager
def serve_stac(*hrefs: str | Path, timeout: float = 30.0) -> Iterator[str]:
    """Serve the given collection/item files as a STAC API on 127.0.0.1; yield its root URL."""
    port = free_port()
    root = f"http://127.0.0.1:{port}"
    cmd = [_rustac(), "serve", *map(str, hrefs), "--addr", f"127.0.0.1:{port}"]
    with running_server(cmd, f"{root}/collections", timeout):
        yield root
