"""Start real servers (moto S3, a STAC API) as subprocesses on 127.0.0.1 with free ports."""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from deepsalt.io.stac_server import free_port, running_server, serve_stac
from deepsalt.io.stac_server import wait_until_up as wait_for_http

BIN = Path(sys.executable).parent

__all__ = ["BIN", "free_port", "moto_s3_server", "ray_temp_dir", "stac_api_server", "wait_for_http"]


@contextlib.contextmanager
def ray_temp_dir() -> Iterator[Path]:
    """A short private folder for a Ray instance's sessions, removed afterwards.

    Ray puts unix sockets under its temp dir and refuses paths over 107 bytes; pytest's temp
    paths (``/tmp/pytest-of-<user>/pytest-<n>/<test>/session_<date>_<pid>/sockets/...``) can
    pass that limit, so Ray gets a folder directly under the system temp dir.
    """
    folder = Path(tempfile.mkdtemp(prefix="ds-ray-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def moto_s3_server() -> Iterator[str]:
    """A moto S3 server in its own process; yields its endpoint URL."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    cmd = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    with running_server(cmd, f"{endpoint}/moto-api/"):
        yield endpoint


def write_stac_inputs(
    folder: Path, collection: dict[str, Any], items: Iterable[dict[str, Any]]
) -> list[Path]:
    """Write a collection and its items as the files ``rustac serve`` loads."""
    folder.mkdir(parents=True, exist_ok=True)
    coll_path = folder / "collection.json"
    coll_path.write_text(json.dumps(collection))
    items_path = folder / "items.ndjson"
    items_path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return [coll_path, items_path]


@contextlib.contextmanager
def stac_api_server(
    folder: Path, collection: dict[str, Any], items: Iterable[dict[str, Any]]
) -> Iterator[str]:
    """A STAC API (rustac's in-memory server) holding ``items``; yields its root URL."""
    with serve_stac(*write_stac_inputs(folder, collection, items)) as root:
        yield root
