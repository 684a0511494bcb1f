"""The actors' read path: raw tile decoding, index maps, the decoded-tile cache, band conversion.

Every comparison is against GDAL itself (rasterio reads and WarpedVRT) or against the one
reference implementation of the scaling rule (``deepsalt.spectra.scale_reflectance``), on real
files written with rasterio in each layout the readers meet.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pyproj import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT

from deepsalt.errors import InputDataError
from deepsalt.mapping.bands import PLAUSIBLE_RANGE, BandMatcher
from deepsalt.mapping.tiff_blocks import BlockCache, TiledTiff, WindowReader, gdal_window
from deepsalt.mapping.warp import OUTSIDE, IndexMaps, SourceGrid, TileGrid, TileRaster
from deepsalt.spectra import BandTable, scale_reflectance

SCENE_CRS = "EPSG:32613"
GRID_CRS = CRS.from_epsg(5070)
SCENE_TRANSFORM = Affine(30.0, 0.0, 500_000.0, 0.0, -30.0, 4_200_000.0)


def write_raster(
    path: Path,
    data: np.ndarray,
    *,
    compress: str | None = "zstd",
    predictor: int = 1,
    interleave: str = "pixel",
    block: int = 32,
    tiled: bool = True,
    nodata: float | None = None,
) -> Path:
    profile = {
        "driver": "GTiff",
        "height": data.shape[1],
        "width": data.shape[2],
        "count": data.shape[0],
        "dtype": data.dtype.name,
        "crs": SCENE_CRS,
        "transform": SCENE_TRANSFORM,
        "nodata": nodata,
        "tiled": tiled,
        "interleave": interleave,
    }
    if tiled:
        profile.update(blockxsize=block, blockysize=block)
    if compress:
        profile.update(compress=compress, predictor=predictor)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def cube(rng: np.random.Generator, dtype: str, bands: int, rows: int = 70, cols: int = 90) -> np.ndarray:
    if np.dtype(dtype).kind == "f":
        return rng.normal(0.3, 0.1, (bands, rows, cols)).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(
        max(info.min, -3000), min(info.max, 12000), (bands, rows, cols), endpoint=True
    ).astype(dtype)


LAYOUTS = st.sampled_from(
    [
        ("int16", "zstd", 1),
        ("int16", "deflate", 1),
        ("int16", "deflate", 2),
        ("uint8", "zstd", 2),
        ("float32", "zstd", 1),
        ("float32", None, 1),
        ("int16", None, 1),
    ]
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    layout=LAYOUTS, bands=st.integers(1, 7), block=st.sampled_from([16, 32, 48]), seed=st.integers(0, 2**16)
)
def test_raw_tiles_decode_to_what_gdal_reads(tmp_path: Path, layout, bands: int, block: int, seed: int):
    dtype, compress, predictor = layout
    rng = np.random.default_rng(seed)
    data = cube(rng, dtype, bands)
    path = write_raster(tmp_path / f"r{seed}.tif", data, compress=compress, predictor=predictor, block=block)
    rows = rng.integers(0, data.shape[1], 500)
    cols = rng.integers(0, data.shape[2], 500)
    with rasterio.open(path) as src:
        reader = TiledTiff.open(str(path), src, BlockCache())
        assert reader is not None
        try:
            got = reader.read_pixels(rows, cols)
            window = reader.plane_window(slice(3, 41), slice(5, 77))
        finally:
            reader.close()
    np.testing.assert_array_equal(got, data[:, rows, cols].T)
    np.testing.assert_array_equal(window, data[0, 3:41, 5:77])


@pytest.mark.parametrize(
    "options",
    [
        {"interleave": "band"},  # one tile per band
        {"compress": "lzw"},  # a codec the raw reader does not decode
        {"tiled": False},  # strips
    ],
)
def test_layouts_the_raw_reader_does_not_take_are_read_through_gdal(tmp_path: Path, options: dict):
    rng = np.random.default_rng(1)
    data = cube(rng, "int16", 5)
    path = write_raster(tmp_path / "other.tif", data, **options)
    rows, cols = rng.integers(0, 70, 300), rng.integers(0, 90, 300)
    with rasterio.open(path) as src:
        assert TiledTiff.open(str(path), src, BlockCache()) is None
        reader = WindowReader(str(path), gdal_window(str(path), src), src.count, src.dtypes[0])
        np.testing.assert_array_equal(reader.read_pixels(rows, cols), data[:, rows, cols].T)
        np.testing.assert_array_equal(reader.plane_window(slice(0, 10), slice(4, 9)), data[0, :10, 4:9])


def test_a_damaged_tile_fails_with_the_file_named(tmp_path: Path):
    data = cube(np.random.default_rng(2), "int16", 3)
    path = write_raster(tmp_path / "damaged.tif", data, block=32)
    with rasterio.open(path) as src:
        offset = int(src.get_tag_item("BLOCK_OFFSET_1_1", "TIFF", bidx=1))
    raw = bytearray(path.read_bytes())
    raw[offset : offset + 64] = b"\xff" * 64
    path.write_bytes(bytes(raw))
    with rasterio.open(path) as src:
        reader = TiledTiff.open(str(path), src, BlockCache())
        assert reader is not None
        np.testing.assert_array_equal(reader.read_pixels(np.array([0]), np.array([0])), data[:, :1, 0].T)
        with pytest.raises(InputDataError, match=r"damaged\.tif: cannot be read \(corrupt or truncated\?\)"):
            reader.read_pixels(np.array([40]), np.array([40]))
        reader.close()


def test_the_cache_keeps_within_its_budget_and_counts_what_it_decoded():
    cache = BlockCache(budget_bytes=3 * 800)
    loads = []

    def load(i: int):
        def make() -> np.ndarray:
            loads.append(i)
            return np.zeros(100, np.float64)  # 800 bytes

        return make

    for i in [0, 1, 2, 0, 3, 0, 1]:
        cache.get(("f", i, 0), load(i))
    # 0 stays (used again before 3 arrived); 1 was the least recently used when 3 came, so it is decoded again
    assert loads == [0, 1, 2, 3, 1]
    assert cache.decoded == 5


def _warped(path: Path, grid: TileGrid, nodata: float) -> np.ndarray:
    with (
        rasterio.open(path) as src,
        WarpedVRT(
            src,
            crs=grid.crs,
            transform=grid.transform,
            height=grid.shape[0],
            width=grid.shape[1],
            resampling=Resampling.nearest,
            nodata=nodata,
        ) as vrt,
    ):
        return vrt.read()


def tile_grid() -> TileGrid:
    """A 5070 tile overlapping the scene's south-east corner, so part of it lies outside the scene."""
    from rasterio.warp import transform_bounds

    left, bottom, right, top = transform_bounds(
        SCENE_CRS, GRID_CRS, 500_000.0, 4_197_900.0, 502_700.0, 4_200_000.0
    )
    x0 = round((left + right) / 2 / 30) * 30
    y0 = round((bottom + top) / 2 / 30) * 30
    return TileGrid(GRID_CRS, Affine(30.0, 0.0, x0, 0.0, -30.0, y0), (64, 80))


def test_placed_pixels_and_planes_match_gdals_warp(tmp_path: Path):
    rng = np.random.default_rng(3)
    spectral = cube(rng, "int16", 6)
    spectral[:, 10:20, 30:40] = -32768
    quality = rng.integers(0, 3, (1, 70, 90)).astype(np.uint8)
    spectral_path = write_raster(tmp_path / "spectral.tif", spectral, nodata=-32768)
    quality_path = write_raster(tmp_path / "quality.tif", quality, nodata=0, block=16)
    grid = tile_grid()
    with ExitStack() as stack:
        maps = IndexMaps(grid)
        cache = BlockCache()
        raster = TileRaster(stack, str(spectral_path), maps, -32768, cache, 6)
        layer = TileRaster(stack, str(quality_path), maps, 255, cache)
        positions = np.arange(grid.shape[0] * grid.shape[1])
        got = raster.pixels(positions).T.reshape(6, *grid.shape)
        plane = layer.plane()
        numbers = maps.get(SourceGrid(SCENE_CRS, SCENE_TRANSFORM, (70, 90)), "x").numbers
    expected = _warped(spectral_path, grid, -32768)
    expected_plane = _warped(quality_path, grid, 255)[0]
    assert (numbers == OUTSIDE).any() and (numbers != OUTSIDE).any()  # the tile reaches past the scene
    assert np.mean(got == expected) > 0.999  # GDAL's approximate transformer may differ on a boundary pixel
    assert np.mean(plane == expected_plane) > 0.999
    assert (plane[numbers == OUTSIDE] == 255).all() and (expected_plane == 255).any()  # source nodata 0 → 255


def test_a_scene_in_a_crs_that_cannot_reach_the_grid_is_named(tmp_path: Path):
    data = cube(np.random.default_rng(4), "int16", 2)
    path = tmp_path / "site.tif"
    with rasterio.open(
        path, "w", driver="GTiff", height=70, width=90, count=2, dtype="int16",
        crs='LOCAL_CS["site grid",UNIT["metre",1]]', transform=SCENE_TRANSFORM,
    ) as dst:  # fmt: skip
        dst.write(data)
    with ExitStack() as stack:
        raster = TileRaster(stack, str(path), IndexMaps(tile_grid()), -32768, BlockCache(), 2)
        with pytest.raises(
            InputDataError, match=r"site\.tif: its CRS .* cannot be transformed to the grid CRS EPSG:5070"
        ):
            raster.pixels(np.arange(10))


def reference_reflectance(matcher: BandMatcher, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The conversion written with the project's one scaling rule, band by band, unoptimised."""
    stored = raw[:, matcher.usable]
    physical = stored * matcher.gain.astype(np.float32) + matcher.offset.astype(np.float32)
    out_of_range = (
        ((physical < PLAUSIBLE_RANGE[0]) | (physical > PLAUSIBLE_RANGE[1])) & (stored != matcher.nodata)
    ).any(axis=1)
    scaled = scale_reflectance(stored.T[..., None], matcher.nodata, matcher.gain, matcher.offset)[..., 0].T
    matched = scaled[:, matcher.pick] if matcher.pick is not None else scaled @ matcher.weights.T
    return matched.astype(np.float32), out_of_range


@settings(max_examples=30, deadline=None)
@given(
    shift=st.sampled_from([0.0, 2.0]),
    dtype=st.sampled_from(["int16", "float32"]),
    n=st.integers(0, 20_000),
    seed=st.integers(0, 2**16),
)
def test_band_conversion_follows_the_scaling_rule(shift: float, dtype: str, n: int, seed: int):
    rng = np.random.default_rng(seed)
    wavelength = np.linspace(420.0, 1250.0, 60)
    good = np.ones(60, bool)
    good[rng.choice(np.arange(0, 60, 3), 4, replace=False)] = False  # single bad bands: bridged, never a hole
    table = BandTable(wavelength, np.full(60, 10.0), good)
    matcher = BandMatcher.build(table, wavelength[5:50] + shift, -32768, "x")
    raw = rng.integers(-1500, 13_000, (n, 60)).astype(dtype)
    raw[rng.random(raw.shape) < 0.01] = -32768
    if dtype == "float32":
        raw[rng.random(raw.shape) < 0.01] = np.nan
    got, beyond = matcher.reflectance(raw)
    expected, expected_beyond = reference_reflectance(matcher, raw)
    np.testing.assert_array_equal(beyond, expected_beyond)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


@st.composite
def detector_order_tables(draw: st.DrawFn) -> BandTable:
    """Two detectors' bands in file order: VNIR rising, then SWIR rising from inside the VNIR's range,
    with irregular spacing, per-band widths and a few bad bands."""
    n_vnir, n_swir = draw(st.integers(8, 40)), draw(st.integers(8, 60))
    vnir_start, swir_start = draw(st.floats(400.0, 450.0)), draw(st.floats(880.0, 960.0))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    vnir = vnir_start + np.cumsum(rng.uniform(4.0, 14.0, n_vnir))
    swir = swir_start + np.cumsum(rng.uniform(6.0, 25.0, n_swir))
    wavelength = np.concatenate([vnir, swir])
    fwhm = rng.uniform(4.0, 16.0, wavelength.size)
    good = rng.random(wavelength.size) > draw(st.sampled_from([0.0, 0.05]))
    return BandTable(wavelength, fwhm, good)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    table=detector_order_tables(),
    shift=st.one_of(st.just(0.0), st.floats(0.5, 4.0), st.floats(-4.0, -0.5)),
    every=st.integers(1, 3),
    dtype=st.sampled_from(["int16", "float32"]),
    n=st.integers(0, 3000),
    seed=st.integers(0, 2**16),
)
def test_band_conversion_equals_the_dense_srf_product_on_detector_order_tables(
    table: BandTable, shift: float, every: int, dtype: str, n: int, seed: int
):
    """The SRF product by blocks over wavelength-ordered bands gives the dense product's values,
    NaN pattern (a pixel with any invalid usable band is NaN in every band) and out-of-range flags."""
    rng = np.random.default_rng(seed)
    usable = np.sort(table.wavelength[table.usable()])
    target = usable[::every] + shift
    try:
        matcher = BandMatcher.build(table, target, -32768, "x")
    except InputDataError:  # a band the scene cannot give: refused, nothing to compare
        event("refused")
        return
    event("picked" if matcher.pick is not None else "resampled")
    raw = rng.integers(-1500, 13_000, (n, table.n_bands)).astype(dtype)
    raw[rng.random(raw.shape) < 0.002] = -32768
    raw[rng.random(n) < 0.05] = -32768
    if dtype == "float32":
        raw[rng.random(raw.shape) < 0.002] = rng.choice([np.nan, np.inf, -np.inf])
    got, beyond = matcher.reflectance(raw)
    expected, expected_beyond = reference_reflectance(matcher, raw)
    np.testing.assert_array_equal(beyond, expected_beyond)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
