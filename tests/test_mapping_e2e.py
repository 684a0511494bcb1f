"""End to end with the real chain: synth region → quick-trained student → run_map → truth.

The map is compared with the demo world's truth on pixels away from every lab sample (the only
pixels whose ECe the training saw), and the numbers are logged for the report.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import rasterio
import rioxarray  # noqa: F401
import xarray as xr
from pyproj import Transformer
from sklearn.metrics import mean_absolute_error, r2_score

from deepsalt.mapping import MapConfig, run_map
from deepsalt.mapping.quality import Quality
from deepsalt.synth.manifest import RegionManifest
from tests.support.services import stac_api_server

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_cluster")]

# Pixels within this many pixels of a lab sample count as "used in training".
SAMPLE_EXCLUSION_PX = 2


@pytest.fixture(scope="module")
def region(demo_region: RegionManifest) -> RegionManifest:
    """The small demo region (the session's, see ``tests/conftest.py``)."""
    return demo_region


@pytest.fixture(scope="module")
def mapped(
    region: RegionManifest, quick_student: str, tmp_path_factory: pytest.TempPathFactory, ray_cluster: dict
) -> Iterator[dict[str, Any]]:
    """The map of ``region`` by the student the quick preset trains on it (the session's)."""
    root = tmp_path_factory.mktemp("e2e")
    student = quick_student
    collection = json.loads(Path(region.href(region.files.stac_collection)).read_text())
    items = [json.loads(line) for line in Path(region.href(region.files.stac_items)).read_text().splitlines()]
    a, _, c, _, e, f = region.transform
    height, width = region.shape
    with stac_api_server(root / "stac", collection, items) as api:
        config = MapConfig.model_validate(
            {
                "region": {
                    "bounds": [c, f + e * height, c + a * width, f],
                    "datetime": "/".join(region.datetime_range),
                },
                "grid": {"crs": region.crs, "chunk": 64, "shard": 128},
                "inputs": {
                    "stac_url": api,
                    "covariates_url": str(Path(region.url) / "covariates"),
                    "survey_url": str(Path(region.url) / region.files.survey["export"]),  # as make demo maps
                },
                "model": {"student_url": student, "block": 128},
                "output": {
                    "url": str(root / "map.zarr"),
                    "pyramid_min_size": 64,
                    "quicklook_dir": str(root / "ql"),
                },
            }
        )
        yield {"summary": run_map(config), "student": student, "root": root}


def test_student_map_is_on_the_truth_grid_with_lineage(mapped: dict[str, Any], region: RegionManifest):
    summary = mapped["summary"]
    assert summary.ok and summary.tiles_done == 4
    ds = xr.open_zarr(summary.store_url, decode_coords="all")
    with rasterio.open(region.truth_url) as truth:
        assert ds.rio.crs == truth.crs and tuple(ds.rio.transform())[:6] == tuple(truth.transform)[:6]
    lineage = json.loads(xr.open_datatree(summary.store_url, engine="zarr").attrs["model_lineage"])
    assert (
        lineage["checkpoint_id"]
        == json.loads(Path(mapped["student"], "meta.json").read_text())["checkpoint_id"]
    )
    valid = ds.quality.values == 0
    assert valid.mean() > 0.5
    assert np.isfinite(ds.ece_std.values[valid]).all() and (ds.ece_std.values[valid] > 0).all()
    assert np.isfinite(ds.domain_score.values[valid]).all()
    assert np.isnan(ds.ece.values[ds.quality.values & Quality.WATER > 0]).all()


def test_map_against_truth_on_pixels_not_used_in_training(mapped: dict[str, Any], region: RegionManifest):
    ds = xr.open_zarr(mapped["summary"].store_url, decode_coords="all").load()
    with rasterio.open(region.truth_url) as src:
        truth = src.read(1)
        lab = pd.read_csv(region.lab_url, usecols=["lat", "lon"])
        x, y = Transformer.from_crs("EPSG:4326", src.crs, always_xy=True).transform(
            lab.lon.values, lab.lat.values
        )
        rows, cols = rasterio.transform.rowcol(src.transform, x, y)
    used = np.zeros(truth.shape, bool)
    for r, c in zip(rows, cols, strict=True):
        used[
            max(r - SAMPLE_EXCLUSION_PX, 0) : r + SAMPLE_EXCLUSION_PX + 1,
            max(c - SAMPLE_EXCLUSION_PX, 0) : c + SAMPLE_EXCLUSION_PX + 1,
        ] = True
    predicted = ds.ece.values
    held_out = np.isfinite(predicted) & np.isfinite(truth) & ~used
    assert held_out.sum() > 10_000
    mae = mean_absolute_error(truth[held_out], predicted[held_out])
    r2 = r2_score(truth[held_out], predicted[held_out])
    baseline = mean_absolute_error(truth[held_out], np.full(held_out.sum(), np.median(truth[held_out])))
    print(
        f"\nmap vs truth on {held_out.sum()} held-out pixels: MAE {mae:.3f} dS/m, R² {r2:.3f} (constant-median MAE {baseline:.3f})"
    )
    assert mae < baseline and r2 > 0.0  # the map beats knowing only the region's median salinity
