"""The store follows the Zarr multiscales, spatial: and proj: conventions, and xarray opens its pyramid."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rioxarray  # noqa: F401
import xarray as xr
from pyproj import CRS
from zarr_cm import multiscales, proj, spatial

from deepsalt.errors import InputDataError
from deepsalt.mapping.pyramid import level_assets, level_grids, open_level
from tests.support.small_map import ATTRS, GRID, write_small_map

# the conventions' registered identities, as readers (OpenLayers' GeoZarr source, GDAL) look them up
MULTISCALES_UUID = "d35379db-88df-4056-af3a-620245f8e347"
PROJ_UUID = "f17cb550-5864-4468-aeb7-f3180cfb622f"
SPATIAL_UUID = "689b58e2-cf7b-45e0-9fff-9cfc0883d6b4"
LEVEL_GRIDS = [GRID, *level_grids(GRID, 40)]


@pytest.fixture(scope="module")
def pyramid_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_small_map(str(tmp_path_factory.mktemp("conventions") / "map.zarr"), finish=True)


def metadata(url: str, group: str = "") -> dict:
    return json.loads(Path(url, group, "zarr.json").read_text())


def declared(attrs: dict) -> set[str]:
    return {c["uuid"] for c in attrs["zarr_conventions"]}


def test_open_datatree_opens_every_level_with_its_shape_crs_and_transform(pyramid_store: str):
    tree = xr.open_datatree(pyramid_store, engine="zarr", decode_coords="all")
    assert sorted(tree.children) == ["1", "2", "3"]  # level 0 is the root itself
    assert tree.attrs["product_hash"] == ATTRS["product_hash"]
    full = xr.open_zarr(pyramid_store, decode_coords="all")
    for level, grid in enumerate(LEVEL_GRIDS):
        # a level alone: without the root's full-resolution x/y, which a child's view inherits
        ds = (tree if level == 0 else tree[str(level)]).to_dataset(inherit=False)
        y, x = ("y", "x") if level == 0 else (f"y_{level}", f"x_{level}")
        assert ds.ece.dims == (y, x) and ds.ece.shape == grid.shape
        assert (ds.rio.y_dim, ds.rio.x_dim) == (y, x)
        assert ds.rio.crs == CRS.from_epsg(5070)
        assert tuple(ds.rio.transform())[:6] == tuple(grid.transform)[:6]
        assert ds.rio.resolution() == (30.0 * 2**level, -30.0 * 2**level)
        assert set(ds.data_vars) == {"ece", "ece_std", "domain_score", "quality"}
        # each level's values are the NaN-aware mean of the full-resolution blocks it covers
        factor = 2**level
        expected = full.ece.coarsen(y=factor, x=factor, boundary="pad").mean().values
        np.testing.assert_allclose(ds.ece.values, expected, rtol=1e-6)
    # a variable of a child's inherited view still finds its own grid
    inherited = tree["2"].to_dataset()
    assert tuple(inherited.ece.rio.transform())[:6] == tuple(LEVEL_GRIDS[2].transform)[:6]


def test_full_resolution_opens_at_the_root_with_open_zarr_and_open_level(pyramid_store: str):
    ds = xr.open_zarr(pyramid_store, decode_coords="all")
    assert ds.ece.dims == ("y", "x") and ds.ece.shape == GRID.shape
    assert ds.rio.crs == CRS.from_epsg(5070)
    assert tuple(ds.rio.transform())[:6] == tuple(GRID.transform)[:6]
    assert set(ds.data_vars) == {"ece", "ece_std", "domain_score", "quality"}
    # the pixels as written: a value names its pixel (row + col/1000); the unwritten tile is nodata
    assert float(ds.ece[10, 11]) == pytest.approx(10.011, abs=1e-4)
    assert np.isnan(ds.ece[-1, -1]) and int(ds.quality[-1, -1]) == 1
    xr.testing.assert_identical(open_level(pyramid_store, 0), ds)
    level2 = open_level(pyramid_store, 2)
    assert level2.ece.shape == LEVEL_GRIDS[2].shape and level2.ece.dims == ("y_2", "x_2")
    assert tuple(level2.rio.transform())[:6] == tuple(LEVEL_GRIDS[2].transform)[:6]
    with pytest.raises(InputDataError, match="levels 0 to 3, not 4"):
        open_level(pyramid_store, 4)


def test_root_declares_multiscales_layout_with_scale_resampling_and_grids(pyramid_store: str):
    root = metadata(pyramid_store)
    multiscales.validate_group_metadata(root)
    spatial.validate_group_metadata(root)
    proj.validate_group_metadata(root)
    attrs = root["attributes"]
    assert {MULTISCALES_UUID, PROJ_UUID, SPATIAL_UUID} <= declared(attrs)
    layout = attrs["multiscales"]["layout"]
    assert [entry["asset"] for entry in layout] == [".", "1", "2", "3"] == level_assets(pyramid_store)
    for level, (entry, grid) in enumerate(zip(layout, LEVEL_GRIDS, strict=True)):
        assert entry["transform"]["scale"] == [2.0**level, 2.0**level]
        assert entry["spatial:shape"] == list(grid.shape)
        assert entry["spatial:transform"] == list(grid.transform)[:6]
        if level:
            assert entry["derived_from"] == "." and entry["resampling_method"] == "average"
    assert attrs["proj:code"] == "EPSG:5070"
    assert attrs["spatial:bbox"] == list(GRID.bounds)
    # the store's whole hierarchy is in the root's consolidated metadata, so a browser reads it at once
    consolidated = root["consolidated_metadata"]["metadata"]
    assert {"ece", "quality", "x", "y", "spatial_ref"} <= set(consolidated)
    assert {f"{level}/{name}" for level in "123" for name in ("ece", "quality")} <= set(consolidated)


def test_every_level_carries_spatial_and_proj_beside_cf_spatial_ref(pyramid_store: str):
    for level, grid in enumerate(LEVEL_GRIDS):
        prefix = "" if level == 0 else f"{level}/"
        group = metadata(pyramid_store, prefix)
        spatial.validate_group_metadata(group)
        proj.validate_group_metadata(group)
        attrs = group["attributes"]
        assert {PROJ_UUID, SPATIAL_UUID} <= declared(attrs)
        assert attrs["spatial:dimensions"] == (["y", "x"] if level == 0 else [f"y_{level}", f"x_{level}"])
        assert attrs["spatial:shape"] == list(grid.shape)
        assert attrs["spatial:transform"] == list(grid.transform)[:6]
        assert CRS.from_wkt(attrs["proj:wkt2"]) == CRS.from_user_input(attrs["proj:code"]) == grid.crs
        cf = metadata(pyramid_store, f"{prefix}spatial_ref")["attributes"]
        geotransform = [float(v) for v in cf["GeoTransform"].split()]
        a, b, c, d, e, f = attrs["spatial:transform"]
        assert geotransform == [c, a, b, f, d, e]  # GDAL's order of the same affine transform


def test_overview_keeps_flags_set_on_the_whole_block_and_says_so(pyramid_store: str):
    level1 = open_level(pyramid_store, 1)
    full = open_level(pyramid_store, 0)
    # the unwritten last tile is nodata at full resolution and stays nodata where it covers whole blocks
    assert int(full.quality[-1, -1]) == 1 and int(level1.quality[-1, -1]) == 1
    assert "bitwise AND" in level1.quality.attrs["comment"]
    block = full.ece.values[:2, 2:4]
    assert float(level1.ece[0, 1]) == pytest.approx(np.nanmean(block), abs=1e-5)
