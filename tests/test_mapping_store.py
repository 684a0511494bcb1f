"""The Zarr v3 store, its identity, records, pyramid, COG export, quicklooks and STAC item, without Ray."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rioxarray  # noqa: F401
import xarray as xr
import zarr
from pyproj import CRS

from deepsalt.mapping import store
from deepsalt.mapping.export import export_cog
from deepsalt.mapping.identity import product_hash
from deepsalt.mapping.quality import Quality
from deepsalt.mapping.quicklook import write_quicklooks
from deepsalt.mapping.records import TileStatus, read_records
from deepsalt.mapping.run import finish_store
from tests.support.small_map import ATTRS, CHUNK, GRID, IDENTITY, SHARD, write_small_map


@pytest.fixture
def filled_store(tmp_path: Path) -> str:
    return write_small_map(str(tmp_path / "map.zarr"))


def full_resolution(url: str, **kwargs) -> xr.Dataset:
    return xr.open_zarr(url, decode_coords="all", **kwargs)


def test_store_opens_with_crs_transform_units_and_sharded_layout(filled_store: str):
    finish_store(filled_store, GRID, CHUNK, SHARD, pyramid_min_size=40)
    ds = full_resolution(filled_store, consolidated=True)
    assert ds.rio.crs == CRS.from_epsg(5070)
    assert tuple(ds.rio.transform())[:6] == tuple(GRID.transform)[:6]
    assert ds.ece.attrs["units"] == "dS/m" and ds.ece.dtype == np.float32 and ds.quality.dtype == np.uint8
    root = zarr.open_group(filled_store, mode="r").attrs
    assert (
        root["product_hash"] == product_hash(IDENTITY)
        and root["product_identity"] == IDENTITY
        and json.loads(root["model_lineage"])["checkpoint_id"] == "student-1"
    )
    assert "crs_wkt" in ds.spatial_ref.attrs and "GeoTransform" in ds.spatial_ref.attrs
    meta = zarr.open_array(filled_store, path="ece").metadata
    assert meta.to_dict()["codecs"][0]["name"] == "sharding_indexed"
    assert meta.to_dict()["codecs"][0]["configuration"]["chunk_shape"] == (CHUNK, CHUNK)
    assert meta.chunk_grid.chunk_shape == (SHARD, SHARD)
    # written tiles hold their values, the unwritten tile reads as fill (NaN, flagged nodata)
    assert float(ds.ece[10, 11]) == pytest.approx(10.011, abs=1e-4)
    assert np.isnan(ds.ece[-1, -1]) and int(ds.quality[-1, -1]) == Quality.NODATA


def test_rioxarray_and_xarray_agree_on_coordinates(filled_store: str):
    ds = full_resolution(filled_store)
    assert ds.rio.bounds() == pytest.approx(GRID.bounds)
    assert ds.rio.resolution() == (30.0, -30.0)


def test_records_are_read_back_and_half_written_ones_ignored(filled_store: str):
    records = read_records(filled_store)
    assert len(records) == 11 and all(r.status is TileStatus.DONE for r in records.values())
    Path(filled_store, "_tiles", "r00002_c00003.json").write_text('{"tile": "r00002_c0')  # killed mid-write
    assert "r00002_c00003" not in read_records(filled_store)


def test_resuming_into_a_store_made_from_another_model_is_refused_naming_it(filled_store: str):
    assert store.create_or_check(filled_store, GRID, CHUNK, SHARD, ATTRS) is True
    other = {**IDENTITY, "model.student_url (checkpoint content)": "b" * 16}
    attrs = store.base_attrs(other, "c" * 16, {"checkpoint_id": "student-2"})
    with pytest.raises(store.StoreMismatchError) as refused:
        store.create_or_check(filled_store, GRID, CHUNK, SHARD, attrs)
    message = str(refused.value)
    assert message.startswith(filled_store) and "--restart" in message
    assert f"model.student_url (checkpoint content): store has {'a' * 16}, this run has {'b' * 16}" in message
    assert "grid.crs" not in message  # only what differs
    assert len(read_records(filled_store)) == 11  # nothing touched


def test_restart_discards_a_store_made_from_other_inputs(filled_store: str):
    other = {**IDENTITY, "model.student_url (checkpoint content)": "b" * 16}
    attrs = store.base_attrs(other, "c" * 16, {"checkpoint_id": "student-2"})
    Path(filled_store, "_lease.json").write_text("{}")  # the restarting run's lease stays
    assert store.create_or_check(filled_store, GRID, CHUNK, SHARD, attrs, restart=True) is False
    assert read_records(filled_store) == {}
    root = zarr.open_group(filled_store, mode="r").attrs
    assert root["product_identity"] == other and np.isnan(full_resolution(filled_store).ece.values).all()
    assert Path(filled_store, "_lease.json").exists()


def test_a_store_of_the_older_layout_is_not_resumed_but_can_be_restarted(filled_store: str):
    # the layout before full resolution moved to the root: the map in group "0", nothing at the root
    old = zarr.open_group(filled_store, mode="r+")
    old.create_group("0")
    fs_root = Path(filled_store)
    for name in ("ece", "ece_std", "domain_score", "quality", "x", "y", "spatial_ref"):
        (fs_root / name).rename(fs_root / "0" / name)
    with pytest.raises(store.StoreMismatchError) as refused:
        store.create_or_check(filled_store, GRID, CHUNK, SHARD, ATTRS)
    assert "layout: store keeps its full-resolution map in group '0'" in str(refused.value)
    assert "--restart" in str(refused.value) and (fs_root / "0" / "ece" / "zarr.json").exists()
    assert store.create_or_check(filled_store, GRID, CHUNK, SHARD, ATTRS, restart=True) is False
    assert not (fs_root / "0").exists() and np.isnan(full_resolution(filled_store).ece.values).all()


@pytest.mark.parametrize("kind", ["file", "foreign folder"])
def test_an_output_that_is_a_file_or_a_foreign_folder_is_refused(tmp_path: Path, kind: str):
    from deepsalt.errors import OutputError

    target = tmp_path / "out.zarr"
    if kind == "file":
        target.write_text("not a map")
    else:
        target.mkdir()
        (target / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match=r"not a map store|not a DeepSalt map"):
        store.check_output(str(target))
    store.check_output(str(tmp_path / "new.zarr"))  # absent: fine


def test_pyramid_levels_halve_with_nan_mean_and_flag_and(filled_store: str):
    shapes = finish_store(filled_store, GRID, CHUNK, SHARD, pyramid_min_size=40)
    assert shapes == [(75, 100), (38, 50), (19, 25)]
    level1 = xr.open_zarr(filled_store, group="1", decode_coords="all")
    assert level1.rio.crs == CRS.from_epsg(5070) and level1.rio.resolution() == (60.0, -60.0)
    assert level1.rio.bounds()[:2] == pytest.approx((GRID.x0, GRID.y0 - 60 * 75))
    # block (rows 0-1, cols 0-1): col 0 is water (NaN), col 1 is valid → mean of the two valid pixels
    assert float(level1.ece[0, 0]) == pytest.approx((0.001 + 1.001) / 2, abs=1e-4)
    assert int(level1.quality[0, 0]) == 0  # water on half the block only
    full = full_resolution(filled_store)
    assert int(full.quality[0, 50]) == Quality.WATER


def test_gdal_3_10_cannot_read_sharded_zarr_so_export_writes_cogs(filled_store: str, tmp_path: Path):
    assert rasterio.__gdal_version__.startswith("3.10")
    finish_store(filled_store, GRID, CHUNK, SHARD, pyramid_min_size=40)
    # GDAL finds the full-resolution array at the root and a coarser level's (dims y_1/x_1), then stops
    # at the codec
    for array in ("/ece", "/1/ece"):
        with pytest.raises(rasterio.errors.RasterioIOError, match="sharding_indexed"):
            rasterio.open(f'ZARR:"{filled_store}":{array}')
    written = export_cog(filled_store, str(tmp_path / "cog"), variables=("ece", "quality"))
    with rasterio.open(written["ece"]) as src:
        assert src.crs.to_epsg() == 5070
        assert tuple(src.transform)[:6] == pytest.approx(tuple(GRID.transform)[:6])
        assert src.profile["blockxsize"] == 512 or src.width < 512
        assert src.overviews(1) or max(src.shape) <= 512
        ece = src.read(1)
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    expected = full_resolution(filled_store).ece.values
    np.testing.assert_array_equal(ece, expected)
    with rasterio.open(written["quality"]) as src:
        np.testing.assert_array_equal(src.read(1), full_resolution(filled_store).quality.values)
    # a coarser level, exported and read back by GDAL, keeps its own grid
    level1 = export_cog(filled_store, str(tmp_path / "cog1"), variables=("ece",), level=1)
    with rasterio.open(level1["ece"]) as src:
        assert src.crs.to_epsg() == 5070 and src.shape == (75, 100)
        assert tuple(src.transform)[:6] == pytest.approx((60.0, 0.0, GRID.x0, 0.0, -60.0, GRID.y0))
        np.testing.assert_array_equal(src.read(1), xr.open_zarr(filled_store, group="1").ece.values)


def test_quicklooks_are_pngs_of_each_layer(filled_store: str, tmp_path: Path):
    finish_store(filled_store, GRID, CHUNK, SHARD, pyramid_min_size=40)
    written = write_quicklooks(filled_store, str(tmp_path / "ql"))
    assert set(written) == {"ece", "ece_std", "domain_score"}
    for path in written.values():
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_scene_key_follows_what_decides_pixels_not_where_files_are_served():
    from deepsalt.io.stac import SceneRef
    from deepsalt.mapping.identity import scenes_key

    def scene(sid: str, cloud: float = 5.0, href: str = "/a") -> SceneRef:
        return SceneRef(sid, None, cloud, (0, 0, 1, 1), 32613, f"{href}/{sid}.TIF", None)

    a, b = scene("A"), scene("B")
    assert scenes_key([a, b]) == scenes_key([b, a])
    assert scenes_key([a]) == scenes_key([scene("A", href="https://mirror")])  # same scene elsewhere
    assert scenes_key([a]) != scenes_key([a, b])  # a new scene
    assert scenes_key([a]) != scenes_key([scene("A", cloud=50.0)])  # another ranking
    assert scenes_key([]) == ""


def test_listing_the_root_is_quiet_about_the_runs_own_entries_only(tmp_path):
    """The lease and the tile records sit at the store's root by design: zarr's warning about them
    is silenced during a run, while a foreign object in the store is still reported."""
    import warnings

    root = tmp_path / "map.zarr"
    zarr.open_group(str(root), mode="w").create_array("ece", shape=(2,), dtype="f4")
    (root / "_lease.json").write_text("{}")
    (root / "_tiles").mkdir()
    (root / "_tiles" / "r00000_c00000.json").write_text("{}")
    (root / "stray").mkdir()
    (root / "stray" / "x").write_text("1")

    def listed_warnings(quiet: bool) -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with store.own_entries_quiet() if quiet else warnings.catch_warnings():
                list(zarr.open_group(str(root), mode="r").members())
        return sorted(str(w.message).split()[2] for w in caught)

    assert listed_warnings(quiet=False) == ["_lease.json", "_tiles", "stray"]
    assert listed_warnings(quiet=True) == ["stray"]
