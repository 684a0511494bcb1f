"""Start real servers (moto S3, a STAC API) as subprocesses on 127.0.0.1 with free ports."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from deepsalt.io.stac_server import free_port, running_server, serve_stac
from deepsalt.io.stac_server import wait_until_up as wait_for_http

BIN = Path(sys.executable).parent

__all__ = ["BIN", "free_port", "moto_s3_server", "stac_api_server", "wait_for_http"]


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
