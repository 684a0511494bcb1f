"""Start real servers (moto S3, a STAC API) as subprocesses on 127.0.0.1 with free ports."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Poll ``url`` until it answers; fail early with the server's output if it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise RuntimeError(f"server exited with {proc.returncode}: {out}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@contextlib.contextmanager
def running(cmd: list[str], ready_url: str) -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_http(ready_url, proc)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def moto_s3_server() -> Iterator[str]:
    """A moto S3 server in its own process; yields its endpoint URL."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with running([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], f"{endpoint}/moto-api/"):
        yield endpoint


def write_stac_inputs(folder: Path, collection: dict[str, Any], items: Iterable[dict[str, Any]]) -> list[str]:
    """Write a collection and its items as the files ``rustac serve`` loads."""
    folder.mkdir(parents=True, exist_ok=True)
    coll_path = folder / "collection.json"
    coll_path.write_text(json.dumps(collection))
    items_path = folder / "items.ndjson"
    items_path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return [str(coll_path), str(items_path)]


@contextlib.contextmanager
def stac_api_server(
    folder: Path, collection: dict[str, Any], items: Iterable[dict[str, Any]]
) -> Iterator[str]:
    """A STAC API (rustac's in-memory server) holding ``items``; yields its root URL."""
    exe = shutil.which("rustac", path=str(BIN)) or "rustac"
    hrefs = write_stac_inputs(folder, collection, items)
    port = free_port()
    root = f"http://127.0.0.1:{port}"
    with running([exe, "serve", *hrefs, "--addr", f"127.0.0.1:{port}"], f"{root}/collections"):
        yield root
