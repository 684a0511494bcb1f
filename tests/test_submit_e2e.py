"""End to end through a real job server: ``deepsalt submit map`` sends the demo mapping run to a
Ray head on 127.0.0.1, the job runs ``ray_jobs/map_region.py`` in the head's own processes, and
the Zarr store it writes opens with xarray, on the region's grid, with salinity in it.

Everything the run needs is made here through the package API: the small demo region
(``generate_region``), a quick student (``run_training``) and a STAC API serving the region's
items.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from rasterio.crs import CRS
from typer.testing import CliRunner

from deepsalt.cli import app
from tests.support.ray_head import ray_head

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def job_server() -> Iterator[str]:
    with ray_head() as url:
        yield url


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    """The small demo region and a student trained on it: the quick preset, cut to a few epochs
    (this test is about the way to the cluster and back, not about the model's skill)."""
    from deepsalt.synth import SynthConfig, generate_region
    from deepsalt.training.config import TrainConfig
    from deepsalt.training.pipeline import run_training

    root = tmp_path_factory.mktemp("demo")
    manifest = generate_region(SynthConfig(size="small"), str(root / "regions"))
    few = {"epochs": 4, "patience": 2}
    config = TrainConfig(
        regions=[manifest.url],
        output=str(root / "runs"),
        preset="quick",
        data={"pool_size": 500},
        sau=few,
        teacher=few,
        student=few,
    )
    checkpoints = run_training(config)
    return manifest, checkpoints["student"]


def test_submit_map_runs_on_the_cluster_and_writes_the_map(
    demo, job_server: str, stac_api_factory, tmp_path: Path
) -> None:
    import xarray as xr

    manifest, student_url = demo
    region = Path(manifest.url)
    collection = json.loads((region / manifest.files.stac_collection).read_text())
    items = [json.loads(line) for line in (region / manifest.files.stac_items).read_text().splitlines()]
    stac_url = stac_api_factory(collection, items)

    a, _, c, _, e, f = manifest.transform
    rows, cols = manifest.shape
    bounds = [c, f + e * rows, c + a * cols, f]
    store_url = str(tmp_path / "demo.zarr")
    config = tmp_path / "map.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "region": {"bounds": bounds},
                "grid": {"crs": manifest.crs, "resolution": a, "chunk": 64, "shard": 128, "tile_shards": 2},
                "inputs": {"stac_url": stac_url, "covariates_url": str(region / "covariates")},
                "model": {"student_url": student_url, "block": 128},
                "output": {"url": store_url, "pyramid_min_size": 64},
                "ray": {"num_actors": 1, "num_cpus": 0.5},
            }
        )
    )

    result = CliRunner().invoke(app, ["submit", "map", "--address", job_server, "--config", str(config)])

    assert result.exit_code == 0, result.output
    job_id = result.output.split("submitted map job ")[1].split()[0]
    assert f"job {job_id} SUCCEEDED" in result.output
    events = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    written = [e for e in events if e["event"] == "map written"]
    assert len(written) == 1 and written[0]["store_url"] == store_url

    ds = xr.open_zarr(store_url, group="0", decode_coords="all")
    assert {"ece", "ece_std", "domain_score", "quality"} <= set(ds.data_vars)
    assert ds.ece.shape == manifest.shape
    assert ds.rio.crs == CRS.from_user_input(manifest.crs)
    assert ds.ece.attrs["units"] == "dS/m"
    ece = ds.ece.values
    predicted = np.isfinite(ece)
    assert (
        predicted.mean() > 0.3
    )  # the scenes cover most of the region; clouds, water, swath edges do not count
    assert (ece[predicted] >= 0).all() and np.nanmax(ece) < 500
    assert (ds.ece_std.values[predicted] > 0).all()
