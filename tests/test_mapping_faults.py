"""Fault tests: kill -9 a mapping actor, and separately the driver; the rerun gives the same map.

The test predictor sleeps a little per call so that a kill lands in the middle of a run; the kill
is triggered by the first completion record appearing in the store (no timing assumptions).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

from deepsalt.mapping import run_map
from deepsalt.mapping.config import MapConfig
from deepsalt.mapping.records import TileResult, TileStatus, read_records
from tests.support.mapping_world import World, build_world, map_config
from tests.support.services import stac_api_server

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_cluster")]

ROOT = Path(__file__).resolve().parents[1]
WAIT_S = 300.0  # upper bound on waiting for a run to reach its first tile (not a performance check)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str]]:
    root = tmp_path_factory.mktemp("faults")
    world = build_world(root, delay=0.4)
    with stac_api_server(root / "stac", world.collection, world.items) as api:
        yield world, api


@pytest.fixture(scope="module")
def reference(world: tuple[World, str], ray_cluster: dict) -> dict[str, str]:
    w, api = world
    summary = run_map(map_config(w, api, str(w.root / "reference.zarr")))
    assert summary.ok
    return checksums(summary.store_url)


def checksums(url: str) -> dict[str, str]:
    ds = xr.open_zarr(url).load()
    return {
        name: hashlib.sha256(np.ascontiguousarray(ds[name].values).tobytes()).hexdigest()
        for name in ds.data_vars
    }


def wait_for_done_record(url: str, proc: subprocess.Popen | None = None) -> TileResult:
    """The first 'done' record of the run writing ``url``."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if Path(url, "_tiles").exists():
            done = [r for r in read_records(url).values() if r.status is TileStatus.DONE]
            if done:
                return done[0]
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"driver exited early: {proc.stdout.read() if proc.stdout else ''}")
        time.sleep(0.05)
    raise AssertionError(f"no tile finished within {WAIT_S} s")


def assert_complete(url: str, config: MapConfig, reference: dict[str, str]) -> dict[str, TileResult]:
    records = read_records(url)
    assert checksums(url) == reference
    assert all(r.status.finished for r in records.values())
    summary = run_map(config)  # nothing left to do: no tile lost, none redone
    assert summary.tiles_done == 0 and summary.ok
    assert read_records(url) == records
    return records


def test_killing_an_actor_mid_run_loses_no_tile(world: tuple[World, str], reference: dict[str, str]):
    w, api = world
    url = str(w.root / "actor-kill.zarr")
    config = map_config(w, api, url)
    result: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: result.setdefault("summary", run_map(config)))
    runner.start()
    victim = int(wait_for_done_record(url).worker.rsplit(":", 1)[1])
    os.kill(victim, signal.SIGKILL)
    runner.join()
    if not result["summary"].ok:  # a tile whose retries were used up by the kill: rerun resumes it
        run_map(config)
    records = assert_complete(url, config, reference)
    workers = {r.worker for r in records.values() if r.status is TileStatus.DONE}
    assert any(w.endswith(f":{victim}") for w in workers) and len(workers) >= 2


def test_killing_the_driver_then_rerunning_gives_the_same_map(
    world: tuple[World, str], reference: dict[str, str]
):
    import ray

    w, api = world
    url = str(w.root / "driver-kill.zarr")
    config = map_config(w, api, url, ray={"address": ray.get_runtime_context().gcs_address})
    script = "import sys; from deepsalt.mapping import MapConfig, run_map; run_map(MapConfig.model_validate_json(sys.argv[1]))"
    proc = subprocess.Popen(
        [sys.executable, "-c", script, config.model_dump_json()],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_done_record(url, proc)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = {k: r for k, r in read_records(url).items() if r.status is TileStatus.DONE}
    assert before
    summary = run_map(config)
    assert summary.ok and summary.tiles_skipped >= len(before)
    records = assert_complete(url, config, reference)
    assert len(before) < sum(r.status is TileStatus.DONE for r in records.values())  # the kill hit mid-run
    for tile, record in before.items():  # finished tiles were not written again
        assert records[tile] == record
