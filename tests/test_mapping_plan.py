"""Output grid and tile planning: projected CRS only, snapped edges, tiles made of whole shards."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import CRS

from deepsalt.config import validate
from deepsalt.errors import ConfigError
from deepsalt.mapping.config import GridConfig, MapConfig, RegionConfig
from deepsalt.mapping.grid import Grid
from deepsalt.mapping.tiles import plan_tiles

BASE = {
    "region": {"bbox": [-120.0, 36.0, -119.0, 37.0]},
    "inputs": {"stac_url": "http://stac", "covariates_url": "/cov"},
    "model": {"student_url": "/student"},
    "output": {"url": "/map.zarr"},
}


def test_geographic_crs_is_rejected_naming_the_field():
    data = {**BASE, "grid": {"crs": "EPSG:4326"}}
    with pytest.raises(ConfigError, match=r"field 'grid'.*geographic.*projected CRS"):
        validate(MapConfig, data, "map.yaml")


def test_shard_must_hold_whole_chunks():
    with pytest.raises(ConfigError, match=r"multiple of grid\.chunk"):
        validate(MapConfig, {**BASE, "grid": {"chunk": 512, "shard": 1000}}, "map.yaml")


def test_region_needs_exactly_one_extent():
    data = {**BASE, "region": {"bbox": [-120, 36, -119, 37], "bounds": [0, 0, 1, 1]}}
    with pytest.raises(ConfigError, match=r"exactly one of region\.bbox"):
        validate(MapConfig, data, "map.yaml")


def test_default_grid_is_conus_albers_30m():
    config = validate(MapConfig, BASE, "map.yaml")
    grid = Grid.from_config(config.grid, config.region)
    assert grid.crs.to_epsg() == 5070 and grid.resolution == 30.0


def test_grid_edges_snap_to_pixel_multiples_and_cover_bounds():
    grid = Grid.from_bounds(CRS.from_epsg(32633), (100_010.0, 200_005.0, 100_950.0, 201_000.0), 30.0)
    left, bottom, right, top = grid.bounds
    assert (left, bottom, right, top) == (99_990.0, 199_980.0, 100_950.0, 201_000.0)
    assert grid.shape == (34, 32)
    assert grid.x_coords()[0] == left + 15.0 and grid.y_coords()[0] == top - 15.0


def test_grid_rejects_geographic_crs_directly():
    with pytest.raises(ValueError, match="projected CRS"):
        Grid(CRS.from_epsg(4326), 0.0, 0.0, 0.001, 10, 10)


def test_western_us_plan_has_the_right_tile_count_without_reading_pixels():
    config = GridConfig()  # EPSG:5070, 30 m, 4096-px shards, one shard per tile
    grid = Grid.from_config(config, RegionConfig(bbox=(-125.0, 31.0, -102.0, 49.0)))
    assert grid.height * grid.width > 3e9
    footprints = {"a": (-124.0, 40.0, -123.0, 41.0), "b": (-110.0, 35.0, -109.0, 36.0)}
    plan = plan_tiles(grid, config.shard, config.tile_shards, footprints)
    expected = math.ceil(grid.height / 4096) * math.ceil(grid.width / 4096)
    assert plan.n_tiles == expected
    assert sum(t.n_pixels for t in (*plan.tiles, *plan.empty)) == grid.height * grid.width
    # each ~1° scene touches a handful of 123 km tiles; everything else is recorded as empty
    assert {s for t in plan.tiles for s in t.scenes} == {"a", "b"}
    assert 2 <= len(plan.tiles) <= 8


def test_scene_lands_in_the_tile_that_holds_it():
    grid = Grid.from_bounds(CRS.from_epsg(5070), (0.0, 0.0, 30 * 256, 30 * 256), 30.0)
    x, y = 30 * 200.0, 30 * 50.0  # pixel row 206, col 200 → tile (1, 1) of 128-px tiles
    lon_lat = _to_lonlat(grid, x, y)
    plan = plan_tiles(
        grid, 64, 2, {"s": (lon_lat[0] - 1e-4, lon_lat[1] - 1e-4, lon_lat[0] + 1e-4, lon_lat[1] + 1e-4)}
    )
    assert [(t.row, t.col, t.scenes) for t in plan.tiles] == [(1, 1, ("s",))]
    assert len(plan.empty) == 3


def _to_lonlat(grid: Grid, x: float, y: float) -> tuple[float, float]:
    from pyproj import Transformer

    return Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform(x, y)


@settings(max_examples=60, deadline=None)
@given(
    height=st.integers(1, 5000),
    width=st.integers(1, 5000),
    chunk=st.sampled_from([16, 32, 64]),
    shards_per_chunk=st.integers(1, 4),
    tile_shards=st.integers(1, 3),
    scenes=st.lists(
        st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0.01, 1), st.floats(0.01, 1)), max_size=4
    ),
)
def test_no_two_tiles_share_a_shard_and_tiles_cover_the_grid(
    height, width, chunk, shards_per_chunk, tile_shards, scenes
):
    shard = chunk * shards_per_chunk
    grid = Grid(CRS.from_epsg(32633), 400_000.0, 5_000_000.0, 30.0, height, width)
    west, south, east, north = grid.bounds_lonlat()
    footprints = {
        f"s{i}": (
            west + fx * (east - west),
            south + fy * (north - south),
            min(east, west + (fx + fw) * (east - west)),
            min(north, south + (fy + fh) * (north - south)),
        )
        for i, (fx, fy, fw, fh) in enumerate(scenes)
        if fx + 0.001 < 1 and fy + 0.001 < 1
    }
    plan = plan_tiles(grid, shard, tile_shards, footprints)
    owner = np.full((math.ceil(height / shard), math.ceil(width / shard)), -1)
    covered = 0
    for index, tile in enumerate((*plan.tiles, *plan.empty)):
        assert tile.y0 % shard == 0 and tile.x0 % shard == 0  # tiles start on shard edges
        ends_inside = (tile.y0 + tile.height) % shard == 0 or tile.y0 + tile.height == height
        assert ends_inside and ((tile.x0 + tile.width) % shard == 0 or tile.x0 + tile.width == width)
        rows = slice(tile.y0 // shard, math.ceil((tile.y0 + tile.height) / shard))
        cols = slice(tile.x0 // shard, math.ceil((tile.x0 + tile.width) / shard))
        assert (owner[rows, cols] == -1).all(), f"tile {tile.id} shares a shard"
        owner[rows, cols] = index
        covered += tile.n_pixels
    assert (owner >= 0).all() and covered == height * width
    assert len({t.id for t in (*plan.tiles, *plan.empty)}) == plan.n_tiles
