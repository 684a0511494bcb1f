"""Fault and resume tests: whatever happens to a run, the map in the store is one clean map.

- kill -9 a mapping actor, or the driver, or Ctrl-C the command: the rerun gives the same map;
- a second run into a store that is being written is refused; the first completes as if alone;
- replace the student at the same URL and rerun: refused, naming the model; ``--restart`` gives
  the new model's map, identical to a clean run;
- the catalogue gains a scene: the rerun maps exactly the tiles it touches (tiles that had no
  imagery included), identical to a clean run with the new catalogue.

The test predictor sleeps a little per call so that a kill lands in the middle of a run; the kill
is triggered by the first completion record appearing in the store (no timing assumptions).
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
import yaml
import zarr

from deepsalt.errors import ExitCode
from deepsalt.mapping import run_map
from deepsalt.mapping.config import MapConfig
from deepsalt.mapping.lease import LEASE, StoreBusyError
from deepsalt.mapping.records import TileResult, TileStatus, read_records
from deepsalt.mapping.run import plan
from deepsalt.mapping.store import StoreMismatchError
from tests.support.mapping_world import COLLECTION, LinearPredictor, World, map_config
from tests.support.services import BIN, stac_api_server

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_cluster")]

ROOT = Path(__file__).resolve().parents[1]
WAIT_S = 300.0  # upper bound on waiting for a run to reach its first tile (not a performance check)


@pytest.fixture(scope="module")
def world(mapping_world: tuple[World, str]) -> tuple[World, str]:
    """The session's mapping world and STAC API (``tests/conftest.py``), its student replaced by
    one that sleeps per call (same content hash: the delay changes no pixel)."""
    w, api = mapping_world
    slow = w.root / "slow-student"
    LinearPredictor.save(slow, delay=0.4)
    return replace(w, student=slow), api


@pytest.fixture(autouse=True)
def delayed(world: tuple[World, str]) -> None:
    """Each test starts with the world's student sleeping per call (a test may end the sleep)."""
    LinearPredictor.save(world[0].student, delay=0.4)


def stop_delaying(student: Path) -> None:
    """The student at ``student`` stops sleeping: same content hash and checkpoint id, so the store
    sees the same model; actors that load it from now on (a resumed run, a restarted actor) predict
    without the sleep, which was there only for the kill to land mid-run."""
    LinearPredictor.save(student, delay=0.0)


@pytest.fixture(scope="module")
def undelayed_model(mapping_world: tuple[World, str]) -> dict[str, str]:
    """The world's student without the per-call sleep, as a model section (same content hash)."""
    return {"student_url": str(mapping_world[0].student)}


@pytest.fixture(scope="module")
def reference(mapping_world_map: dict[str, Any], undelayed_model: dict[str, str]) -> dict[str, str]:
    """Checksums of a clean run of the world by ``undelayed_model`` into a fresh store (the session's
    map of the mapping world; its quicklooks are written outside the store)."""
    summary, config = mapping_world_map["summary"], mapping_world_map["config"]
    assert config.model.student_url == undelayed_model["student_url"] and config.ray.address is None
    assert summary.ok and summary.tiles_skipped == 0
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


def start(argv: list[str]) -> subprocess.Popen:
    """A driver process of its own, output on a pipe; the test predictor is importable from it.

    SIGINT is reset to its default in the child: a suite started in the background by a shell
    without job control inherits SIGINT ignored, and Python then installs no KeyboardInterrupt
    handler, so Ctrl-C would silently do nothing.
    """
    return subprocess.Popen(
        argv,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def start_driver(config: MapConfig) -> subprocess.Popen:
    """``run_map(config)`` in a driver process of its own."""
    script = "import sys; from deepsalt.mapping import MapConfig, run_map; run_map(MapConfig.model_validate_json(sys.argv[1]))"
    return start([sys.executable, "-c", script, config.model_dump_json()])


def kill_driver_after_its_first_tile(config: MapConfig) -> None:
    """kill -9 a driver running ``config`` once its first tile is recorded."""
    proc = start_driver(config)
    try:
        wait_for_done_record(config.output.url, proc)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def on_session_ray(w: World, api: str, url: str, **sections: dict[str, Any]) -> MapConfig:
    """A map config whose driver joins the test session's Ray (a driver subprocess starts none)."""
    import ray

    return map_config(w, api, url, ray={"address": ray.get_runtime_context().gcs_address}, **sections)


def test_killing_an_actor_mid_run_loses_no_tile(world: tuple[World, str], reference: dict[str, str]):
    w, api = world
    url = str(w.root / "actor-kill.zarr")
    config = map_config(w, api, url)
    result: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: result.setdefault("summary", run_map(config)))
    runner.start()
    victim = int(wait_for_done_record(url).worker.rsplit(":", 1)[1])
    os.kill(victim, signal.SIGKILL)
    stop_delaying(w.student)
    runner.join()
    if not result["summary"].ok:  # a tile whose retries were used up by the kill: rerun resumes it
        run_map(config)
    records = assert_complete(url, config, reference)
    workers = {r.worker for r in records.values() if r.status is TileStatus.DONE}
    assert any(w.endswith(f":{victim}") for w in workers) and len(workers) >= 2


def test_killing_the_driver_then_rerunning_gives_the_same_map(
    world: tuple[World, str], reference: dict[str, str]
):
    w, api = world
    url = str(w.root / "driver-kill.zarr")
    config = on_session_ray(w, api, url)
    kill_driver_after_its_first_tile(config)
    stop_delaying(w.student)
    before = {k: r for k, r in read_records(url).items() if r.status is TileStatus.DONE}
    assert before
    summary = run_map(config)
    assert summary.ok and summary.tiles_skipped >= len(before)
    records = assert_complete(url, config, reference)
    assert len(before) < sum(r.status is TileStatus.DONE for r in records.values())  # the kill hit mid-run
    for tile, record in before.items():  # finished tiles were not written again
        assert records[tile] == record


def test_ctrl_c_says_what_was_kept_and_the_rerun_finishes_the_same_map(
    world: tuple[World, str], reference: dict[str, str], tmp_path: Path
):
    w, api = world
    url = str(w.root / "ctrl-c.zarr")
    config = on_session_ray(w, api, url)
    config_file = tmp_path / "map.yaml"
    config_file.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    proc = start([str(BIN / "deepsalt"), "map", "-c", str(config_file)])
    try:
        wait_for_done_record(url, proc)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=WAIT_S)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == ExitCode.INTERRUPTED, output
    assert "Traceback" not in output
    stopped = [line for line in output.splitlines() if line.startswith("interrupted ")]
    assert len(stopped) == 1, output
    kept = sum(r.status is TileStatus.DONE for r in read_records(url).values())
    said = re.search(
        r": stopped; (\d+) of (\d+) tiles with imagery are finished and kept in the store, (\d+) still to map\. Run the same command again to resume$",
        stopped[0],
    )
    assert said and stopped[0].startswith(f"interrupted {url}: "), stopped[0]
    finished, total, left = map(int, said.groups())
    assert (
        1 <= finished <= kept and finished + left == total
    )  # an actor may finish a tile as the driver stops
    assert not Path(url, LEASE).exists()  # the lease went with the run
    stop_delaying(w.student)
    summary = run_map(config)
    assert summary.ok and summary.tiles_skipped == kept
    assert_complete(url, config, reference)


def test_a_second_writer_is_refused_and_the_first_completes_as_if_alone(
    world: tuple[World, str], reference: dict[str, str], tmp_path: Path
):
    w, api = world
    url = str(w.root / "two-writers.zarr")
    config = on_session_ray(w, api, url)
    first = start_driver(config)
    try:
        wait_for_done_record(url, first)
        with pytest.raises(StoreBusyError, match=f"another run is writing this store .* pid {first.pid}"):
            run_map(config)
        other_model = tmp_path / "other-student"
        LinearPredictor.save(other_model, gain=12.0)
        with pytest.raises(StoreBusyError):  # another product into the same store: refused alike
            run_map(
                config.model_copy(
                    update={"model": config.model.model_copy(update={"student_url": str(other_model)})}
                )
            )
        output, _ = first.communicate(timeout=WAIT_S)
    finally:
        first.kill()
        first.wait()
    assert first.returncode == 0, output
    assert_complete(url, config, reference)


def test_a_replaced_model_is_refused_and_restart_gives_the_new_models_map(
    world: tuple[World, str], tmp_path: Path
):
    w, api = world
    student = tmp_path / "student"
    LinearPredictor.save(student, delay=0.4)
    url = str(tmp_path / "swap.zarr")
    config = on_session_ray(w, api, url, model={"student_url": str(student)})
    kill_driver_after_its_first_tile(config)
    partial = checksums(url)
    records = read_records(url)

    LinearPredictor.save(student, gain=12.0)  # a new model at the same URL
    with pytest.raises(
        StoreMismatchError,
        match=r"model\.student_url \(checkpoint content\): store has \w+ \(checkpoint linear-10\), this run has \w+ \(checkpoint linear-12\)",
    ):
        run_map(config)
    assert checksums(url) == partial and read_records(url) == records  # nothing touched

    restarted = run_map(config, restart=True)
    clean = run_map(
        config.model_copy(
            update={"output": config.output.model_copy(update={"url": str(tmp_path / "clean.zarr")})}
        )
    )
    assert restarted.ok and clean.ok
    assert checksums(url) == checksums(clean.store_url)
    assert checksums(url) != partial
    lineage = zarr.open_group(url, mode="r").attrs["model_lineage"]
    assert "linear-12" in lineage and "linear-10" not in lineage


def test_a_new_scene_is_mapped_into_exactly_the_tiles_it_touches(
    world: tuple[World, str], reference: dict[str, str], undelayed_model: dict[str, str], tmp_path: Path
):
    w, api = world
    only_a = [item for item in w.items if item["id"] == "SCENE_A"]
    url = str(tmp_path / "new-scene.zarr")
    with stac_api_server(tmp_path / "stac-a", COLLECTION, only_a) as api_a:
        before = run_map(map_config(w, api_a, url, model=undelayed_model))
    records = read_records(url)
    assert before.ok and any(r.status is TileStatus.NO_IMAGERY for r in records.values())

    config = map_config(w, api, url, model=undelayed_model)  # the catalogue now has scene B too
    touched = {tile.id for tile in plan(config)[0].tiles if "SCENE_B" in tile.scenes}
    after = run_map(config)

    assert after.ok and after.tiles_done == len(touched)
    assert checksums(url) == reference  # as if mapped from A and B from the start
    again = read_records(url)
    assert {tile for tile in again if again[tile] != records[tile]} == touched
    assert any(records[t].status is TileStatus.NO_IMAGERY for t in touched)  # empty tiles revisited
    assert any(records[t].status is TileStatus.DONE for t in touched)  # mapped tiles B now reaches
    assert all(again[t].status is TileStatus.DONE for t in touched)
