"""The pieces behind "nothing silent": error messages, resource checks, the store lease, the typed
Ray Data rows and the predictor protocol, each on its own (no cluster, no mapping run)."""

from __future__ import annotations

import errno
import inspect
import json
import math
import os
import socket
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from deepsalt.cli import app
from deepsalt.errors import ConfigError, ExitCode, InputDataError, LineageError, explain
from deepsalt.mapping import rows
from deepsalt.mapping.lease import LEASE, LeaseRecord, StoreBusyError, StoreLease
from deepsalt.mapping.predictor import ModelCard, Predictor, predictor_class
from deepsalt.mapping.records import TileResult, TileStatus
from deepsalt.mapping.tiles import Tile
from deepsalt.ray_setup import check_fit
from tests.support.mapping_world import STUDENT_WAVELENGTH, LinearPredictor

# ---------------------------------------------------------------- explain: one message per failure


def test_own_errors_keep_their_message_and_code():
    assert explain(ConfigError("map.yaml", "grid.crs", "not a CRS")) == (
        ExitCode.CONFIG,
        "map.yaml: field 'grid.crs': not a CRS",
    )
    assert explain(InputDataError("/data/x.tif", "corrupt")) == (ExitCode.FAILURE, "/data/x.tif: corrupt")


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (errno.ENOENT, "not found"),
        (errno.EACCES, "permission denied"),
        (errno.EEXIST, "already exists"),
        (errno.ENOSPC, "no space left on the device"),
        (errno.EROFS, "read-only file system"),
    ],
)
def test_os_errors_name_their_path(code: int, reason: str):
    assert explain(OSError(code, os.strerror(code), "/maps/x.zarr")) == (
        ExitCode.FAILURE,
        f"/maps/x.zarr: {reason}",
    )
    assert explain(OSError(code, os.strerror(code)))[1] == reason  # no path: no made-up one


def test_an_error_raised_inside_a_ray_worker_is_told_as_itself():
    from ray.exceptions import RayTaskError

    cause = LineageError("/runs/student: weights.pt hashes to 1 but meta.json records 2")
    wrapped = RayTaskError("TileMapper.__init__", "Traceback (most recent call last): ...", cause)
    code, message = explain(wrapped.as_instanceof_cause())
    assert (code, message) == (ExitCode.FAILURE, str(cause))
    assert "Traceback" not in message


def test_an_unreachable_object_store_is_named_by_its_address():
    from botocore.exceptions import EndpointConnectionError

    failure = EndpointConnectionError(endpoint_url="http://127.0.0.1:9/bucket/map.yaml")
    assert (
        explain(failure)[1]
        == "http://127.0.0.1:9/bucket/map.yaml: cannot be reached (check the address and the network)"
    )


def test_debug_shows_the_traceback_and_the_same_message(tmp_path: Path):
    missing = str(tmp_path / "absent.yaml")
    plain = CliRunner().invoke(app, ["map", "-c", missing])
    debug = CliRunner().invoke(app, ["--debug", "map", "-c", missing])
    assert plain.exit_code == debug.exit_code == ExitCode.CONFIG
    assert "Traceback" not in plain.output and "Traceback" in debug.output
    assert f"config error {missing}: field '<file>': config file not found" in debug.output


# ---------------------------------------------------------------- resources: refuse what would wait forever

FIELDS = {"CPU": "ray.num_cpus", "GPU": "ray.num_gpus"}


def test_a_worker_larger_than_every_node_is_refused():
    nodes = [({"CPU": 2.0}, 1.0), ({"CPU": 4.0, "GPU": 1.0}, 1.0)]
    check_fit(nodes, False, {"CPU": 4.0, "GPU": 1.0}, 1, FIELDS, "cluster")
    with pytest.raises(
        ConfigError,
        match=r"'ray.num_cpus': asks for 5 CPU per worker, but the largest node of the cluster has 4",
    ):
        check_fit(nodes, False, {"CPU": 5.0}, 1, FIELDS, "cluster")
    with pytest.raises(ConfigError, match=r"'ray.num_gpus': asks for 2 GPU"):
        check_fit(nodes, False, {"CPU": 1.0, "GPU": 2.0}, 1, FIELDS, "cluster")


def test_workers_that_do_not_fit_together_are_refused_per_node():
    nodes = [({"CPU": 3.0}, 1.0), ({"CPU": 3.0}, 1.0)]  # 6 CPUs, but 2-CPU workers fit once per node
    check_fit(nodes, False, {"CPU": 2.0}, 2, FIELDS, "cluster")
    with pytest.raises(
        ConfigError, match=r"3 workers with ray.num_cpus=2 each do not fit in the cluster \(room for 2"
    ):
        check_fit(nodes, False, {"CPU": 2.0}, 3, FIELDS, "cluster")


def test_an_autoscaling_group_counts_with_its_maximum_size():
    groups = [({"CPU": 1.0}, 1.0), ({"CPU": 4.0, "GPU": 1.0}, math.inf)]  # head, unbounded GPU group
    check_fit(groups, True, {"CPU": 1.0, "GPU": 1.0}, 50, FIELDS, "cluster")
    with pytest.raises(ConfigError, match="largest node type"):
        check_fit(groups, True, {"GPU": 2.0}, 1, FIELDS, "cluster")


# ---------------------------------------------------------------- the store lease


def _lease_file(url: str, **fields) -> None:
    record = {
        "run_id": "other",
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "renewed": time.time(),
        "ttl_s": 120.0,
    }
    Path(url).mkdir(parents=True, exist_ok=True)
    Path(url, LEASE).write_text(json.dumps({**record, **fields}))


def test_a_live_lease_refuses_a_second_run_and_says_when_it_ends(tmp_path: Path):
    url = str(tmp_path / "map.zarr")
    busy = rf"another run is writing this store \({socket.gethostname()} pid {os.getpid()}.*ends by itself at"
    with StoreLease(url), pytest.raises(StoreBusyError, match=busy):
        StoreLease(url).acquire()
    assert not Path(url).exists()  # released, and the empty folder it made is gone


def test_a_lease_whose_holder_died_on_this_host_is_taken_over_at_once(tmp_path: Path):
    import subprocess
    import sys

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    url = str(tmp_path / "map.zarr")
    _lease_file(url, pid=int(gone.stdout))
    with StoreLease(url) as lease:
        assert LeaseRecord.model_validate_json(Path(url, LEASE).read_text()).run_id == lease.run_id


def test_a_lease_from_another_host_holds_until_it_expires(tmp_path: Path):
    url = str(tmp_path / "map.zarr")
    _lease_file(url, host="other-node", pid=1)
    with pytest.raises(StoreBusyError, match="other-node pid 1"):
        StoreLease(url).acquire()
    _lease_file(url, host="other-node", pid=1, renewed=time.time() - 121.0)  # killed two minutes ago
    with StoreLease(url):
        pass
    assert Path(url).exists()  # the folder was not made by this run: kept


def test_the_lease_is_renewed_while_held_and_a_lost_lease_stops_the_run(tmp_path: Path):
    url = str(tmp_path / "map.zarr")
    with StoreLease(url, renew_s=0.05) as lease:
        first = LeaseRecord.model_validate_json(Path(url, LEASE).read_text()).renewed
        deadline = time.monotonic() + 30
        while LeaseRecord.model_validate_json(Path(url, LEASE).read_text()).renewed == first:
            assert time.monotonic() < deadline, "the lease was never renewed"
            time.sleep(0.02)
        _lease_file(url, run_id="thief")  # another run took it (an operator deleted ours)
        while not lease.lost:
            assert time.monotonic() < deadline, "the loss was never noticed"
            time.sleep(0.02)
        with pytest.raises(StoreBusyError, match="lost the store's lease"):
            lease.check()
    assert json.loads(Path(url, LEASE).read_text())["run_id"] == "thief"  # not ours to delete


@pytest.mark.parametrize("where", ["local", "s3"])
def test_of_runs_starting_together_exactly_one_gets_the_lease(where: str, tmp_path: Path, request):
    url = (
        str(tmp_path / "map.zarr")
        if where == "local"
        else request.getfixturevalue("s3").url("maps/race.zarr")
    )
    leases = [StoreLease(url) for _ in range(6)]
    barrier = threading.Barrier(len(leases))
    outcomes: list[str] = []

    def start(lease: StoreLease) -> None:
        barrier.wait()
        try:
            lease.acquire()
            outcomes.append("won")
        except StoreBusyError:
            outcomes.append("refused")

    threads = [threading.Thread(target=start, args=(lease,)) for lease in leases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 5 + ["won"]


# ---------------------------------------------------------------- typed hand-offs


tiles = st.builds(
    Tile,
    row=st.integers(0, 10_000),
    col=st.integers(0, 10_000),
    y0=st.integers(0, 10**7),
    x0=st.integers(0, 10**7),
    height=st.integers(1, 8192),
    width=st.integers(1, 8192),
    scenes=st.lists(st.text(min_size=1, max_size=40), max_size=5).map(tuple),
)
results = st.builds(
    TileResult,
    tile=st.text(min_size=1, max_size=20),
    status=st.sampled_from(TileStatus),
    scenes_key=st.text(max_size=16),
    pixels=st.integers(0, 10**8),
    predicted=st.integers(0, 10**8),
    attempts=st.integers(0, 5),
    error=st.text(max_size=200),
    rejected_scenes=st.lists(st.text(min_size=1, max_size=30), max_size=3).map(tuple),
    worker=st.text(max_size=30),
)


@settings(max_examples=50, deadline=None)
@given(batch=st.lists(tiles, min_size=1, max_size=4))
def test_tiles_cross_the_ray_data_boundary_unchanged(batch: list[Tile]):
    encoded = rows.tile_rows(batch)
    assert rows.tiles_of({rows.TILE: [row[rows.TILE] for row in encoded]}) == batch


@settings(max_examples=50, deadline=None)
@given(batch=st.lists(results, min_size=1, max_size=4))
def test_results_cross_the_ray_data_boundary_unchanged(batch: list[TileResult]):
    column = rows.result_batch(batch)[rows.RESULT]
    assert [rows.result_of({rows.RESULT: value}) for value in column] == batch


@pytest.mark.parametrize(
    "spec",
    [
        "deepsalt.predict:StudentPredictor",
        "deepsalt.evaluation.baseline_predictor:BaselinePredictor",
        "tests.support.mapping_world:LinearPredictor",
    ],
)
def test_every_predictor_takes_the_protocols_arguments(spec: str):
    """The real predictors and the test double accept each call the mapping makes, by name and
    in order (``isinstance`` on a Protocol checks only that the names exist)."""
    cls = predictor_class(spec)
    for method in ("load", "describe", "predict"):
        wanted = list(inspect.signature(getattr(Predictor, method)).parameters)
        given = list(inspect.signature(getattr(cls, method)).parameters)
        assert given[: len(wanted)] == wanted, f"{spec}.{method}{given} vs Predictor.{method}{wanted}"
        extra = [inspect.signature(getattr(cls, method)).parameters[name] for name in given[len(wanted) :]]
        assert all(p.default is not inspect.Parameter.empty for p in extra), f"{spec}.{method}"


def test_the_test_predictor_satisfies_the_protocol_and_its_card_follows_content(tmp_path: Path):
    LinearPredictor.save(tmp_path / "a")
    LinearPredictor.save(tmp_path / "elsewhere", delay=0.5)  # same model, slower, another place
    LinearPredictor.save(tmp_path / "b", gain=12.0)
    assert isinstance(LinearPredictor.load(str(tmp_path / "a")), Predictor)
    card = LinearPredictor.describe(str(tmp_path / "a"))
    assert isinstance(card, ModelCard) and card.checkpoint_id == "linear-10"
    assert LinearPredictor.describe(str(tmp_path / "elsewhere")).content_hash == card.content_hash
    assert LinearPredictor.describe(str(tmp_path / "b")).content_hash != card.content_hash
    assert len(LinearPredictor.load(str(tmp_path / "a")).wavelength) == len(STUDENT_WAVELENGTH)
