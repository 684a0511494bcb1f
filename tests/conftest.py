"""Shared fixtures: every one starts a real local component on 127.0.0.1.

- ``ray_cluster``: a local Ray instance (private temp dir, small object store, fake GPUs so that
  GPU scheduling paths run on CPU). Its processes are started with the test S3 credentials in
  their environment, as a node gets its credentials: DeepSalt never passes them through Ray.
- ``s3``: a moto S3 server in its own process, with a bucket, reachable through s3fs and GDAL.
- ``stac_api_factory``: starts rustac's in-memory STAC API loaded with given items.
- ``demo_region``: the small demo region (``SynthConfig(size="small")``: region "demo", seed 0).
- ``unseen_region``: its small "demo_unseen" counterpart (same size and seed).
- ``quick_student``: the student ``deepsalt demo --quick`` trains on ``demo_region``.
- ``demo_world``: ``demo_region`` and the chain (``quick_student`` and its teacher and SAU).
- ``tiny_chain``: the chain ``tests/support/training_data.py``'s tiny config trains on its
  ``make_data()`` (stage -> checkpoint URL).
- ``mapping_world``: the mapping tests' small world (``tests/support/mapping_world.py``) and a STAC
  API serving it; ``mapping_world_map``: a clean map of it.

These are built once per session and only read by the tests (a test that needs to change a
region's files works on a copy; a test that maps writes its own store).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deepsalt.compiled import PACKAGE_DIR_ENV
from deepsalt.synth.manifest import RegionManifest
from tests.support import ray_group
from tests.support.demo_world import DemoWorld
from tests.support.services import moto_s3_server, ray_temp_dir, stac_api_server
from tests.support.shared import built_once

FIXTURES = Path(__file__).parent / "fixtures"

# Every Ray port on 127.0.0.1, no auth prompt, faster Ray Train start-up.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.2")
os.environ.setdefault("RAY_TRAIN_ENABLE_PREEMPTION_WATCHER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("MPLBACKEND", "Agg")

FAKE_GPUS = 2


def pytest_configure(config: pytest.Config) -> None:
    ray_group.name_the_file(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    ray_group.remove_the_file(config)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ray_group.list_ray_tests(config, items)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under ``-n``: the Ray tests on one worker, the rest spread (``tests/support/ray_group.py``)."""
    return ray_group.RayGroupScheduling(config, log) if config.getvalue("dist") == "load" else None


@pytest.fixture(scope="session", autouse=True)
def compiled_package_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Compiled forward passes (:mod:`deepsalt.compiled`) go to a directory of the session's own:
    every run compiles once for real, and nothing is left in the user's cache. Set before any
    Ray cluster starts, so the actors see it too."""
    folder = tmp_path_factory.mktemp("compiled")
    os.environ[PACKAGE_DIR_ENV] = str(folder)
    return folder


S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[dict[str, Any]]:
    """A real local Ray instance shared by the session; yields its resources."""
    import ray

    with ray_temp_dir() as temp_dir, pytest.MonkeyPatch.context() as env:
        for key, value in S3_ENV.items():  # Ray's processes inherit them; the tests' own env is restored
            env.setenv(key, value)
        ray.init(
            address="local",
            num_cpus=2,
            num_gpus=FAKE_GPUS,
            include_dashboard=False,
            object_store_memory=256 * 1024**2,
            _temp_dir=str(temp_dir),
            _node_ip_address="127.0.0.1",
            log_to_driver=False,
            ignore_reinit_error=True,
        )
        env.undo()
        try:
            yield ray.cluster_resources()
        finally:
            ray.shutdown()


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key.lstrip('/')}"

    def filesystem(self):
        import s3fs

        return s3fs.S3FileSystem(anon=False, client_kwargs={"endpoint_url": self.endpoint})


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """Endpoint URL of a moto S3 server process shared by the session."""
    with moto_s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """A fresh bucket on the session's S3 server, with the environment pointing fsspec/GDAL at it."""
    for key, value in S3_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)  # botocore / s3fs
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server)
    host = s3_server.removeprefix("http://")
    monkeypatch.setenv("AWS_S3_ENDPOINT", host)  # GDAL
    monkeypatch.setenv("AWS_HTTPS", "NO")
    monkeypatch.setenv("AWS_VIRTUAL_HOSTING", "FALSE")
    import fsspec

    fsspec.config.conf.setdefault("s3", {})
    monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": s3_server})
    bucket = f"deepsalt-{uuid.uuid4().hex[:8]}"
    server = S3Server(endpoint=s3_server, bucket=bucket)
    fs = server.filesystem()
    fs.mkdir(bucket)
    fsspec.filesystem("s3").invalidate_cache()
    return server


StacFactory = Callable[[dict[str, Any], list[dict[str, Any]]], str]


@pytest.fixture
def stac_api_factory(tmp_path: Path) -> Iterator[StacFactory]:
    """Start STAC API servers loaded with (collection, items); all are stopped at the test's end."""
    with ExitStack() as stack:
        counter = iter(range(1000))

        def start(collection: dict[str, Any], items: list[dict[str, Any]]) -> str:
            folder = tmp_path / f"stac-{next(counter)}"
            return stack.enter_context(stac_api_server(folder, collection, items))

        yield start


@pytest.fixture(scope="session")
def demo_region(tmp_path_factory: pytest.TempPathFactory) -> RegionManifest:
    """The small demo region as ``deepsalt demo --quick`` generates it, shared by the session."""
    from deepsalt.synth import SynthConfig, generate_region

    return built_once(
        tmp_path_factory,
        "demo-region",
        lambda folder: generate_region(SynthConfig(size="small"), str(folder)),
    )


@pytest.fixture(scope="session")
def unseen_region(tmp_path_factory: pytest.TempPathFactory) -> RegionManifest:
    """The small "demo_unseen" region (``SynthConfig(size="small", region="demo_unseen")``, seed 0),
    shared by the session."""
    from deepsalt.synth import SynthConfig, generate_region

    return built_once(
        tmp_path_factory,
        "unseen-region",
        lambda folder: generate_region(SynthConfig(size="small", region="demo_unseen"), str(folder)),
    )


@pytest.fixture(scope="session")
def quick_checkpoints(
    demo_region: RegionManifest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """Stage -> checkpoint URL of the chain ``deepsalt demo --quick`` trains (quick preset) on
    ``demo_region``."""
    from deepsalt.demo import QUICK
    from deepsalt.training.config import TrainConfig
    from deepsalt.training.pipeline import run_training

    def train(folder: Path) -> dict[str, str]:
        return run_training(
            TrainConfig(regions=[demo_region.url], output=str(folder / "runs"), **QUICK["train"])
        )

    return built_once(tmp_path_factory, "quick-student", train)


@pytest.fixture(scope="session")
def quick_student(quick_checkpoints: dict[str, str]) -> str:
    """URL of the student ``deepsalt demo --quick`` trains on ``demo_region``."""
    return quick_checkpoints["student"]


@pytest.fixture(scope="session")
def demo_world(demo_region: RegionManifest, quick_checkpoints: dict[str, str]) -> DemoWorld:
    """The small demo region and the chain ``deepsalt demo --quick`` trains on it."""
    return DemoWorld(Path(demo_region.url).parent, demo_region, quick_checkpoints)


@pytest.fixture(scope="session")
def tiny_chain(tmp_path_factory: pytest.TempPathFactory) -> dict[Any, str]:
    """Stage -> checkpoint URL of ``run_training(tiny_config(<folder>), make_data())``, in this process."""
    from deepsalt.training.pipeline import run_training
    from tests.support.training_data import make_data, tiny_config

    return built_once(
        tmp_path_factory, "tiny-chain", lambda folder: run_training(tiny_config(str(folder)), make_data())
    )


@pytest.fixture(scope="session")
def mapping_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    """The mapping tests' world (no predictor delay) and the URL of a STAC API serving its items."""
    from tests.support.mapping_world import build_world

    root = tmp_path_factory.mktemp("mapping-world")
    world = build_world(root)
    with stac_api_server(root / "stac", world.collection, world.items) as api:
        yield world, api


@pytest.fixture(scope="session")
def mapping_world_map(mapping_world: tuple[Any, str], ray_cluster: dict[str, Any]) -> dict[str, Any]:
    """A clean map of ``mapping_world`` with its quicklooks, in ``<world root>/map.zarr``.

    Tests read it; the only run into its store is a rerun that has nothing left to do.
    """
    from deepsalt.mapping import run_map
    from tests.support.mapping_world import map_config

    w, api = mapping_world
    config = map_config(w, api, str(w.root / "map.zarr"), output={"quicklook_dir": str(w.root / "ql")})
    return {"config": config, "summary": run_map(config), "world": w}
