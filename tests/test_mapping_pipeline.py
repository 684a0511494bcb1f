"""``run_map`` on a real local Ray, a real STAC API and real files: values, flags, resume, bad inputs, S3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rioxarray  # noqa: F401
import xarray as xr
import yaml
from pyproj import CRS, Transformer
from typer.testing import CliRunner

from deepsalt.cli import app
from deepsalt.mapping import run_map
from deepsalt.mapping.grid import Grid
from deepsalt.mapping.quality import Quality
from deepsalt.mapping.records import TileStatus, read_records
from tests.support.mapping_world import (
    CLOUD,
    ORIGIN,
    SCENES,
    WATER,
    World,
    build_world,
    expected_ece,
    map_config,
)
from tests.support.services import stac_api_server

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_cluster")]


@pytest.fixture(scope="module")
def world(mapping_world: tuple[World, str]) -> tuple[World, str]:
    """The mapping world and its STAC API (the session's, see ``tests/conftest.py``)."""
    return mapping_world


@pytest.fixture(scope="module")
def mapped(mapping_world_map: dict[str, Any]) -> dict[str, Any]:
    """A clean map of the world with quicklooks: config, summary, world (the session's; also the
    reference map of ``test_mapping_faults``)."""
    return mapping_world_map


def oracle(ds: xr.Dataset, covariate_east_lon: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected quality flags and ECe per grid pixel from the world's geometry, and a mask of pixels
    at least a pixel away from every edge (scene, cloud, water, covariate raster) to compare on."""
    x, y = np.meshgrid(ds.x.values, ds.y.values)
    ux, uy = Transformer.from_crs("EPSG:5070", "EPSG:32613", always_xy=True).transform(x, y)
    lon, _ = Transformer.from_crs("EPSG:5070", "EPSG:4326", always_xy=True).transform(x, y)
    col, row = (ux - ORIGIN[0]) / 30.0, (ORIGIN[1] - uy) / 30.0
    spec_b = SCENES["SCENE_B"]
    in_a = (col >= 0) & (col < 120) & (row >= 0) & (row < 120)
    in_b = (col >= spec_b.dc) & (col < spec_b.dc + 120) & (row >= spec_b.dr) & (row < spec_b.dr + 120)
    cloud = in_a & (row < CLOUD[0].stop) & (col < CLOUD[1].stop)
    water = (row >= WATER[0].start) & (row < WATER[0].stop) & (col >= WATER[1].start) & (col < WATER[1].stop)
    from_a = in_a & ~cloud
    from_b = ~from_a & in_b
    flags = np.zeros(x.shape, np.uint8)
    flags[~in_a & ~in_b] = Quality.NODATA
    flags[cloud & ~in_b] = Quality.CLOUD
    flags[(from_a | from_b) & water] = Quality.WATER
    no_cov = lon > covariate_east_lon
    flags[(from_a | from_b) & ~water & no_cov] = Quality.NO_SOIL
    ece = np.where(from_b, expected_ece(ux, uy, spec_b.brightness), expected_ece(ux, uy, 0.0))
    ece = np.where(flags == 0, ece, np.nan)
    edges = [col, col - 120, col - spec_b.dc, col - spec_b.dc - 120, row, row - 120, row - spec_b.dr]
    edges += [row - spec_b.dr - 120, row - CLOUD[0].stop, col - CLOUD[1].stop]
    edges += [row - WATER[0].start, row - WATER[0].stop, col - WATER[1].start, col - WATER[1].stop]
    clear = np.all([np.abs(e) > 1.5 for e in edges], axis=0) & (np.abs(lon - covariate_east_lon) > 0.0025)
    return flags, ece, clear


def covariate_east_edge(world: World) -> float:
    import rasterio

    with rasterio.open(world.covariates / "sand.tif") as src:
        return src.bounds.right


def test_map_follows_the_compositing_rule_and_flags(mapped: dict[str, Any]):
    ds = xr.open_zarr(mapped["summary"].store_url, decode_coords="all").load()
    flags, ece, clear = oracle(ds, covariate_east_edge(mapped["world"]))
    got = ds.quality.values
    np.testing.assert_array_equal(got[clear], flags[clear])
    np.testing.assert_allclose(ds.ece.values[clear], ece[clear], atol=0.1)  # scenes A and B differ by 0.5
    for flag in (0, Quality.NODATA, Quality.CLOUD, Quality.WATER, Quality.NO_SOIL):
        assert ((flags == flag) & clear).sum() > 20, f"world does not exercise flag {flag}"
    from_b = clear & (flags == 0) & (np.abs(ds.ece.values - ece) < 0.1) & np.isfinite(ece)
    assert from_b.sum() > 0.9 * ((flags == 0) & clear).sum()
    # a prediction exactly where no flag is set, everywhere (edges included)
    np.testing.assert_array_equal(np.isfinite(ds.ece.values), got == 0)
    assert np.all(ds.ece_std.values[got == 0] == 0.5)


def test_store_has_grid_georeferencing_pyramid_and_stac_item(mapped: dict[str, Any]):
    summary, config = mapped["summary"], mapped["config"]
    grid = Grid.from_config(config.grid, config.region)
    ds = xr.open_zarr(summary.store_url, decode_coords="all")
    assert ds.rio.crs == CRS.from_epsg(5070)
    assert tuple(ds.rio.transform())[:6] == tuple(grid.transform)[:6]
    assert ds.sizes == {"y": grid.height, "x": grid.width}
    expected_shapes, shape = [], grid.shape
    while max(shape) > 32:
        shape = (-(-shape[0] // 2), -(-shape[1] // 2))
        expected_shapes.append(shape)
    assert list(summary.pyramid_shapes) == expected_shapes
    for level, shape in enumerate(expected_shapes, start=1):
        level_ds = xr.open_zarr(summary.store_url, group=str(level), decode_coords="all")
        assert level_ds.sizes == {f"y_{level}": shape[0], f"x_{level}": shape[1]}
        assert level_ds.rio.resolution() == (30.0 * 2**level, -30.0 * 2**level)
    item = json.loads(Path(summary.stac_item_url).read_text())
    assert item["assets"]["data"]["href"] == summary.store_url
    assert "checkpoint_id linear-10" in item["properties"]["processing:lineage"]
    assert {p.name for p in (mapped["world"].root / "ql").iterdir()} == {
        "ece.png",
        "ece_std.png",
        "domain_score.png",
    }


def test_summary_counts_tiles_and_records_empty_ones(mapped: dict[str, Any]):
    summary = mapped["summary"]
    records = read_records(summary.store_url)
    assert summary.ok and summary.failures == {}
    assert summary.tiles_empty > 0 and summary.tiles_done > 0
    assert summary.tiles_done + summary.tiles_empty == summary.tiles_total == len(records)
    statuses = [r.status for r in records.values()]
    assert statuses.count(TileStatus.NO_IMAGERY) == summary.tiles_empty
    assert statuses.count(TileStatus.DONE) == summary.tiles_done
    assert summary.pixels_per_s > 0


def test_rerun_skips_finished_tiles_and_changes_nothing(mapped: dict[str, Any]):
    url = mapped["summary"].store_url
    before = read_records(url)
    data_before = xr.open_zarr(url).load()
    again = run_map(mapped["config"])
    assert again.tiles_done == 0 and again.tiles_skipped == mapped["summary"].tiles_done and again.ok
    assert read_records(url) == before  # no tile written twice
    xr.testing.assert_identical(xr.open_zarr(url).load(), data_before)


def test_bad_inputs_fail_their_tiles_with_reasons_and_the_rest_is_mapped(tmp_path: Path):
    bad = build_world(tmp_path / "bad", bad_scenes=True)
    with stac_api_server(tmp_path / "stac", bad.collection, bad.items) as api:
        config = map_config(bad, api, str(tmp_path / "bad.zarr"))
        config_file = tmp_path / "map.yaml"
        config_file.write_text(yaml.safe_dump(config.model_dump(mode="json")))
        result = CliRunner().invoke(app, ["map", "--config", str(config_file)])
    assert result.exit_code == 1, result.output
    output = " ".join(result.output.split())
    assert "SCENE_CORRUPT-SPECTRAL_IMAGE.TIF" in output and "corrupt" in output
    assert "SCENE_BANDS-SPECTRAL_IMAGE.TIF: has 20 bands but its band table lists 24" in output
    # the unplaceable CRS is found on whichever of the scene's files is read first
    assert "SCENE_CRS/SCENE_CRS-" in output and "cannot be transformed to the grid CRS EPSG:5070" in output
    assert "tile(s) failed" in output
    assert f"look at it: deepsalt view {tmp_path / 'bad.zarr'}\n" in result.output  # whole, to copy
    records = read_records(str(tmp_path / "bad.zarr"))
    failed = {k: r.error for k, r in records.items() if r.status is TileStatus.FAILED}
    assert len(failed) >= 3 and all("SCENE_A" not in e for e in failed.values())
    done = [k for k, r in records.items() if r.status is TileStatus.DONE]
    assert done, "tiles of the good scene were not mapped"
    ds = xr.open_zarr(str(tmp_path / "bad.zarr"), decode_coords="all")
    assert int(np.isfinite(ds.ece.values).sum()) > 5000


def test_same_map_on_s3_reads_back_identical(mapped: dict[str, Any], world: tuple[World, str], s3):
    w, api = world
    url = s3.url("maps/demo.zarr")
    summary = run_map(map_config(w, api, url))
    assert summary.ok and summary.store_url == url
    storage_options = {"client_kwargs": {"endpoint_url": s3.endpoint}}
    remote = xr.open_zarr(url, decode_coords="all", storage_options=storage_options)
    remote_root = xr.open_datatree(url, engine="zarr", storage_options=storage_options)
    local = xr.open_zarr(mapped["summary"].store_url, decode_coords="all")
    assert remote.rio.crs == local.rio.crs
    assert remote.rio.transform() == local.rio.transform()
    local_root = xr.open_datatree(mapped["summary"].store_url, engine="zarr")
    assert remote_root.attrs["multiscales"] == local_root.attrs["multiscales"]  # the pyramid went to S3 too
    assert set(remote_root.children) == set(local_root.children)
    for name in ("ece", "ece_std", "domain_score", "quality"):
        np.testing.assert_array_equal(remote[name].values, local[name].values)
    assert s3.filesystem().exists(f"{s3.bucket}/maps/demo.stac-item.json")
