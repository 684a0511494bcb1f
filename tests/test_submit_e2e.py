"""End to end through a real job server: ``deepsalt submit map`` sends the demo mapping run to a
Ray head on 127.0.0.1, the job runs ``ray_jobs/map_region.py`` in the head's own processes, and
the Zarr store it writes on S3 (a moto server) opens with xarray, on the region's grid, with
salinity in it.

The head holds a sentinel key pair in its environment, as a node gets its credentials from a
Kubernetes Secret. The job signs its S3 requests with it, and afterwards no file under the
head's Ray folder, no object of the store and no line of the command's output contains it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from rasterio.crs import CRS
from typer.testing import CliRunner

from deepsalt.cli import app
from tests.support.demo_world import DemoWorld
from tests.support.ray_head import ray_head
from tests.support.sentinel import (
    NEEDLES,
    files_holding_sentinel,
    objects_holding_sentinel,
    searched_files,
    sentinel_env,
)
from tests.support.services import ray_temp_dir

pytestmark = [pytest.mark.slow, pytest.mark.ray]
BUCKET = "sentinel-maps"


@pytest.fixture(scope="module")
def job_server(s3_server: str) -> Iterator[tuple[str, Path]]:
    """A head whose environment holds the sentinel credentials; yields (job server URL, Ray folder)."""
    import s3fs

    s3fs.S3FileSystem(key="x", secret="y", client_kwargs={"endpoint_url": s3_server}).mkdir(BUCKET)
    with ray_temp_dir() as temp_dir, ray_head(env=sentinel_env(s3_server), temp_dir=temp_dir) as url:
        yield url, temp_dir


def test_submit_map_runs_on_the_cluster_writes_the_map_and_leaks_no_secret(
    demo_world: DemoWorld, job_server: tuple[str, Path], s3_server: str, stac_api_factory, tmp_path: Path
) -> None:
    import s3fs
    import xarray as xr

    address, ray_folder = job_server
    stac_url = stac_api_factory(*demo_world.stac_inputs())
    store_url = f"s3://{BUCKET}/demo.zarr"
    settings = demo_world.map_settings(stac_url, store_url)
    settings["grid"]["tile_shards"] = 2
    config = tmp_path / "map.yaml"
    config.write_text(yaml.safe_dump(settings))

    result = CliRunner().invoke(app, ["submit", "map", "--address", address, "--config", str(config)])

    assert result.exit_code == 0, result.output
    job_id = result.output.split("submitted map job ")[1].split()[0]
    assert f"job {job_id} SUCCEEDED" in result.output
    events = [line for line in result.output.splitlines() if line.startswith("{")]
    assert any('"event": "map written"' in e and store_url in e for e in events)

    options = {"key": "x", "secret": "y", "client_kwargs": {"endpoint_url": s3_server}}
    s3 = s3fs.S3FileSystem(**options)
    ds = xr.open_zarr(store_url, decode_coords="all", storage_options=options)
    assert {"ece", "ece_std", "domain_score", "quality"} <= set(ds.data_vars)
    assert ds.ece.shape == demo_world.region.shape
    assert ds.rio.crs == CRS.from_user_input(demo_world.region.crs)
    assert ds.ece.attrs["units"] == "dS/m"
    ece = ds.ece.values
    predicted = np.isfinite(ece)
    assert (
        predicted.mean() > 0.3
    )  # the scenes cover most of the region; clouds, water, swath edges do not count
    assert (ece[predicted] >= 0).all() and np.nanmax(ece) < 500
    assert (ds.ece_std.values[predicted] > 0).all()

    # the sentinel signed the job's requests (the store is there) and is written nowhere
    assert searched_files([ray_folder]) > 20  # Ray's session logs, the job's log, the workers' logs
    assert files_holding_sentinel([ray_folder]) == []
    assert objects_holding_sentinel(s3, BUCKET) == []
    assert s3.exists(f"{BUCKET}/demo.stac-item.json")
    assert not any(needle.decode() in result.output for needle in NEEDLES)
