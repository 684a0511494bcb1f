"""The viewer's server: byte ranges as Zarr readers ask them, nothing outside the store, local and S3."""

from __future__ import annotations

import http.client
import inspect
import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deepsalt.cli.view import view
from deepsalt.errors import InputDataError
from deepsalt.viewer.page import page_settings
from deepsalt.viewer.server import (
    STORE_PREFIX,
    ByteRange,
    RangeNotSatisfiable,
    Request,
    StoreFiles,
    ViewerServer,
    parse_range,
)
from tests.support.small_map import write_small_map

SHARD = "ece/c/0/0"


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("viewer-server")
    (folder / "secret.txt").write_text("not part of the map")
    url = write_small_map(str(folder / "map.zarr"), finish=True)
    os.symlink(folder / "secret.txt", Path(url, "link-out"))
    return url


def serve(url: str, requests: list[Request] | None = None) -> ViewerServer:
    files = StoreFiles(url)
    settings = page_settings(files.url, STORE_PREFIX.strip("/") + "/").to_json()
    return ViewerServer(
        files, lambda: settings, "127.0.0.1", 0, on_request=requests.append if requests is not None else None
    )


@pytest.fixture(scope="module")
def server(store_url: str) -> Iterator[ViewerServer]:
    with serve(store_url) as running:
        yield running


def fetch(server: ViewerServer, path: str, method: str = "GET", **headers: str) -> http.client.HTTPResponse:
    """A raw request (the path is sent as given, without a client normalising it)."""
    host, port = server.httpd.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.request(method, path, headers=headers)
    response = connection.getresponse()
    response.body = response.read()  # type: ignore[attr-defined]
    connection.close()
    return response


def test_suffix_range_gets_206_with_the_last_bytes(server: ViewerServer, store_url: str):
    data = Path(store_url, SHARD).read_bytes()
    response = fetch(server, f"/store/{SHARD}", Range="bytes=-16")  # a shard index read
    assert response.status == 206
    assert response.body == data[-16:]
    assert response.getheader("Content-Range") == f"bytes {len(data) - 16}-{len(data) - 1}/{len(data)}"
    assert response.getheader("Content-Length") == "16" and response.getheader("Accept-Ranges") == "bytes"


def test_bounded_open_and_oversized_ranges(server: ViewerServer, store_url: str):
    data = Path(store_url, SHARD).read_bytes()
    middle = fetch(server, f"/store/{SHARD}", Range="bytes=100-199")
    assert middle.status == 206 and middle.body == data[100:200]
    tail = fetch(server, f"/store/{SHARD}", Range=f"bytes={len(data) - 5}-")
    assert tail.status == 206 and tail.body == data[-5:]
    clipped = fetch(server, f"/store/{SHARD}", Range=f"bytes=10-{len(data) * 2}")
    assert clipped.status == 206 and clipped.body == data[10:]
    longer = fetch(server, f"/store/{SHARD}", Range=f"bytes=-{len(data) * 2}")
    assert longer.status == 206 and longer.body == data
    whole = fetch(server, f"/store/{SHARD}")
    assert whole.status == 200 and whole.body == data
    beyond = fetch(server, f"/store/{SHARD}", Range=f"bytes={len(data)}-")
    assert beyond.status == 416 and beyond.getheader("Content-Range") == f"bytes */{len(data)}"
    several = fetch(server, f"/store/{SHARD}", Range="bytes=0-1,5-6")  # not used by Zarr readers
    assert several.status == 200 and several.body == data
    head = fetch(server, f"/store/{SHARD}", method="HEAD", Range="bytes=-16")
    assert head.status == 206 and head.body == b"" and head.getheader("Content-Length") == "16"


@pytest.mark.parametrize(
    "path",
    [
        "/store/../secret.txt",
        "/store/%2e%2e/secret.txt",
        "/store/1/../../secret.txt",
        "/store//etc/passwd",
        "/store/1/./zarr.json",
        "/store/..%5csecret.txt",
        "/store/link-out",  # a symlink inside the store pointing outside it
    ],
)
def test_paths_outside_the_store_are_refused(server: ViewerServer, path: str):
    response = fetch(server, path)
    assert response.status == 403
    assert b"not part of the map" not in response.body


def test_missing_keys_and_page_files(server: ViewerServer):
    assert fetch(server, "/store/ece/c/9/9").status == 404  # an unwritten chunk: the reader uses the fill
    assert fetch(server, "/../pyproject.toml").status == 404
    assert fetch(server, "/%2e%2e/pyproject.toml").status == 404
    page = fetch(server, "/")
    assert page.status == 200 and b'src="viewer.js"' in page.body
    assert fetch(server, "/viewer.js").getheader("Content-Type") == "text/javascript"
    settings = json.loads(fetch(server, "/viewer.json").body)
    assert [v["name"] for v in settings["variables"]] == ["ece", "ece_std", "domain_score"]
    assert settings["levels"] == [".", "1", "2", "3"]


def test_page_colours_ece_in_the_quicklook_classes(server: ViewerServer):
    from deepsalt.mapping.legend import SALINITY_CLASSES

    ece = json.loads(fetch(server, "/viewer.json").body)["variables"][0]
    assert [(c["low"], c["colour"]) for c in ece["classes"]] == [(c.low, c.colour) for c in SALINITY_CLASSES]
    assert ece["units"] == "dS/m" and ece["classes"][-1]["high"] is None


def test_ramps_span_the_values_of_the_coarsest_level(store_url: str):
    import numpy as np
    import xarray as xr

    coarsest = xr.open_zarr(store_url, group="3")
    settings = page_settings(store_url, "store/")
    ramps = {v.name: v.ramp for v in settings.variables if v.ramp is not None}
    assert set(ramps) == {"ece_std", "domain_score"}
    values = coarsest.ece_std.values
    assert (ramps["ece_std"].low, ramps["ece_std"].high) == (
        float(np.nanmin(values)),
        float(np.nanmax(values)),
    )
    assert (ramps["domain_score"].low, ramps["domain_score"].high) == (
        1.0,
        2.0,
    )  # constant 1: a unit-wide ramp
    assert [f.name for f in settings.flags] == [
        "nodata",
        "cloud",
        "water",
        "no_soil",
        "out_of_range",
        "bands_filled",
    ]


def test_binds_to_loopback_unless_asked(store_url: str):
    assert inspect.signature(view).parameters["host"].default == "127.0.0.1"
    with serve(store_url) as running:
        assert running.httpd.server_address[0] == "127.0.0.1"
        assert running.url.startswith("http://127.0.0.1:")


def test_requests_are_reported(store_url: str):
    seen: list[Request] = []
    with serve(store_url, seen) as running:
        fetch(running, f"/store/{SHARD}", Range="bytes=-16")
        fetch(running, "/store/../secret.txt")
    assert seen == [
        Request("GET", f"/store/{SHARD}", "bytes=-16", 206),
        Request("GET", "/store/../secret.txt", None, 403),
    ]


def test_a_folder_without_a_store_is_named(tmp_path: Path):
    with pytest.raises(InputDataError, match="not a Zarr v3 store") as error:
        StoreFiles(str(tmp_path))
    assert str(tmp_path) in str(error.value)


def test_serves_a_store_on_s3(store_url: str, s3):
    url = s3.url("maps/map.zarr")
    s3.filesystem().put(store_url, f"{s3.bucket}/maps/map.zarr", recursive=True)
    data = Path(store_url, SHARD).read_bytes()
    with serve(url) as running:
        response = fetch(running, f"/store/{SHARD}", Range="bytes=-16")
        assert response.status == 206 and response.body == data[-16:]
        assert fetch(running, "/store/1/zarr.json").body == Path(store_url, "1", "zarr.json").read_bytes()
        assert fetch(running, "/store/../secret.txt").status == 403
        assert json.loads(fetch(running, "/viewer.json").body)["levels"] == [".", "1", "2", "3"]


@given(
    size=st.integers(0, 5000),
    first=st.one_of(st.none(), st.integers(0, 6000)),
    last=st.one_of(st.none(), st.integers(0, 6000)),
)
def test_parse_range_matches_python_slicing(size: int, first: int | None, last: int | None):
    data = bytes(range(256)) * (size // 256 + 1)
    data = data[:size]
    header = f"bytes={'' if first is None else first}-{'' if last is None else last}"
    try:
        byte_range = parse_range(header, size)
    except RangeNotSatisfiable:
        assert (first is None and (last == 0 or size == 0)) or (first is not None and first >= size)
        return
    if (first is None and last is None) or (first is not None and last is not None and last < first):
        assert byte_range is None  # malformed: the whole object is sent
        return
    assert isinstance(byte_range, ByteRange)
    got = data[byte_range.start : byte_range.end + 1]
    if first is None:
        assert got == data[-last:]
    else:
        assert got == data[first : None if last is None else last + 1]
    assert len(got) == byte_range.length > 0


def test_view_command_serves_until_stopped(store_url: str):
    exe = Path(sys.executable).parent / "deepsalt"
    proc = subprocess.Popen(
        [str(exe), "view", store_url, "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        assert proc.stderr is not None
        line = ""
        while "http://" not in line:
            line = proc.stderr.readline()
            assert line, "deepsalt view exited before serving"
        url = re.search(r"http://127\.0\.0\.1:\d+/", line).group(0)
        with urllib.request.urlopen(f"{url}viewer.json", timeout=10) as response:
            assert json.load(response)["title"].endswith("map.zarr")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_view_command_names_a_missing_store(tmp_path: Path):
    from typer.testing import CliRunner

    from deepsalt.cli import app

    result = CliRunner().invoke(app, ["view", str(tmp_path / "nowhere.zarr")])
    assert result.exit_code == 1
    assert "nowhere.zarr" in result.output and "not a Zarr v3 store" in " ".join(result.output.split())
