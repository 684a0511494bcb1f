"""``deepsalt view``'s web server: the page, its settings and the map's store, over HTTP on this machine.

The page reads the Zarr store itself (sharded arrays: a shard's index is read with a suffix range,
``Range: bytes=-N``, then its chunks with ordinary ranges), so the server's one real job is to answer
byte ranges exactly (RFC 9110): ``206 Partial Content`` with ``Content-Range`` for a satisfiable single
range, ``416`` for an unsatisfiable one, the whole object (``200``) when the header is absent, has
several ranges or cannot be parsed. Store keys are resolved under the store's root only: a key with
an empty, ``.`` or ``..`` segment, a backslash or a NUL is refused, and on a local disk a key whose
real path (symlinks followed) leaves the store is refused too. The store may be any fsspec URL
(a local path, ``s3://...`` with credentials from the environment).
"""

from __future__ import annotations

import json
import mimetypes
import os
import posixpath
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from pathlib import Path
from urllib.parse import unquote, urlsplit

import fsspec
from fsspec.implementations.local import LocalFileSystem

from deepsalt.errors import InputDataError
from deepsalt.logs import get_logger

log = get_logger(__name__)

STATIC = Path(str(files("deepsalt.viewer") / "static"))
STORE_PREFIX = "/store/"
SETTINGS_PATH = "/viewer.json"
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(frozen=True)
class Request:
    """One request the server answered: what was asked and with which status."""

    method: str
    path: str
    range: str | None
    status: int


class ForbiddenKey(ValueError):
    """A requested key would leave the store."""


class RangeNotSatisfiable(ValueError):
    """A byte range that starts past the end of the object (or a zero-length suffix)."""


@dataclass(frozen=True)
class ByteRange:
    """Bytes ``start`` to ``end`` of an object, both inclusive (as HTTP counts them)."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The single byte range ``header`` asks of an object of ``size`` bytes; None means "send it all".

    Several ranges, other units and malformed values are ignored (RFC 9110 lets a server answer
    with the whole representation); a range past the end raises ``RangeNotSatisfiable``.
    """
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match or match.group(1) == match.group(2) == "":
        return None
    first, last = match.groups()
    if first == "":  # suffix range: the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(header)
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if last != "" and int(last) < start:
        return None  # invalid range: ignored
    if start >= size:
        raise RangeNotSatisfiable(header)
    return ByteRange(start, end)


class StoreFiles:
    """Read-only access to the objects of one Zarr store, never outside it."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.fs, root = fsspec.core.url_to_fs(self.url)
        self.root = root.rstrip("/")
        self.local = isinstance(self.fs, LocalFileSystem)
        if not self.fs.exists(f"{self.root}/zarr.json"):
            raise InputDataError(url, "no zarr.json here: not a Zarr v3 store (is the path right?)")

    def path(self, key: str) -> str:
        """The filesystem path of store key ``key`` (``0/ece/c/0/0``); ``ForbiddenKey`` if it leaves."""
        segments = key.split("/")
        if any(s in ("", ".", "..") or "\\" in s or "\x00" in s for s in segments):
            raise ForbiddenKey(key)
        path = posixpath.join(self.root, *segments)
        if self.local:
            real_root = os.path.realpath(self.root)
            if os.path.commonpath([real_root, os.path.realpath(path)]) != real_root:
                raise ForbiddenKey(key)
        return path

    def size(self, key: str) -> int:
        """Size in bytes of a stored object; ``FileNotFoundError`` when absent or a folder."""
        path = self.path(key)
        info = self.fs.info(path)
        if info["type"] != "file":
            raise FileNotFoundError(key)
        return int(info["size"])

    def read(self, key: str, byte_range: ByteRange | None, size: int) -> bytes:
        start, end = (0, size) if byte_range is None else (byte_range.start, byte_range.end + 1)
        return self.fs.cat_file(self.path(key), start=start, end=end)


def _content_type(name: str) -> str:
    if name.endswith(".json"):
        return "application/json"
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def make_handler(
    store: StoreFiles, settings: Callable[[], dict], on_request: Callable[[Request], None] | None = None
) -> type[BaseHTTPRequestHandler]:
    """A request handler serving the page from ``STATIC``, ``settings()`` and ``store`` under /store/.

    ``on_request`` is told of every request answered (for tests and diagnostics).
    """

    class Handler(BaseHTTPRequestHandler):
        server_version = "deepsalt-view"
        protocol_version = "HTTP/1.1"  # keep-alive: a page reads many small ranges

        def send_response(self, code: int, message: str | None = None) -> None:
            super().send_response(code, message)
            if on_request is not None:
                on_request(Request(self.command, self.path, self.headers.get("Range"), int(code)))

        def do_GET(self) -> None:
            self._respond(send_body=True)

        def do_HEAD(self) -> None:
            self._respond(send_body=False)

        def _respond(self, send_body: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            try:
                if path.startswith(STORE_PREFIX):
                    key = path.removeprefix(STORE_PREFIX)
                    self._send_object(store.size(key), lambda r, n: store.read(key, r, n), key, send_body)
                elif path == SETTINGS_PATH:
                    self._send_bytes(json.dumps(settings()).encode(), "application/json", send_body)
                else:
                    name = "index.html" if path == "/" else path.lstrip("/")
                    if "/" in name or name.startswith("."):
                        raise FileNotFoundError(name)
                    body = (STATIC / name).read_bytes()
                    self._send_bytes(body, _content_type(name), send_body)
            except ForbiddenKey:
                self.send_error(HTTPStatus.FORBIDDEN, "outside the store")
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                self.send_error(HTTPStatus.NOT_FOUND)
            except OSError as error:  # the store's filesystem failed (e.g. S3 unreachable): say so
                log.warning("store read failed", extra={"path": path, "error": str(error)})
                self.send_error(HTTPStatus.BAD_GATEWAY, "the store could not be read")

        def _send_object(
            self, size: int, read: Callable[[ByteRange | None, int], bytes], name: str, send_body: bool
        ) -> None:
            try:
                byte_range = parse_range(self.headers.get("Range"), size)
            except RangeNotSatisfiable:
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = read(byte_range, size) if send_body else b""
            length = size if byte_range is None else byte_range.length
            if send_body and len(body) != length:
                raise OSError(f"{name}: read {len(body)} bytes, expected {length}")
            self.send_response(HTTPStatus.OK if byte_range is None else HTTPStatus.PARTIAL_CONTENT)
            if byte_range is not None:
                self.send_header("Content-Range", f"bytes {byte_range.start}-{byte_range.end}/{size}")
            self.send_header("Content-Type", _content_type(name))
            self.send_header("Content-Length", str(length))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def _send_bytes(self, body: bytes, content_type: str, send_body: bool) -> None:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("request", extra={"request": format % args})

    return Handler


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class ViewerServer:
    """The viewer's HTTP server on ``host:port`` (port 0: a free one), serving in a thread or the foreground."""

    def __init__(
        self,
        store: StoreFiles,
        settings: Callable[[], dict],
        host: str,
        port: int,
        on_request: Callable[[Request], None] | None = None,
    ) -> None:
        server_class = _IPv6Server if ":" in host else ThreadingHTTPServer
        self.httpd = server_class((host, port), make_handler(store, settings, on_request))
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        host = f"[{host}]" if ":" in str(host) else host
        return f"http://{host}:{port}/"

    def start(self) -> ViewerServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="deepsalt-view", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> ViewerServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
