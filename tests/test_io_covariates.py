"""deepsalt.io.covariates: sampling and warping rasters in several CRSs.

Each covariate raster holds a field that is linear in its own CRS's coordinates, so bilinear
sampling must return the field exactly wherever the point is, in whatever CRS it was asked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.warp import Resampling, reproject

from deepsalt.errors import InputDataError
from deepsalt.io.covariates import (
    COVARIATE_NAMES,
    MAX_POSITION_ERROR_PX,
    covariate_urls,
    covariates_on_grid,
    grid_positions,
    sample_covariates,
)

# Region around Fresno, CA; every raster covers it with a margin, on its own CRS and pixel size.
REGION = (-120.6, 36.4, -119.4, 37.6)
# name → (CRS, pixel size, coefficients (a, b, c) of a + b*x + c*y with x, y from the raster origin)
LAYERS = {
    "sand": ("EPSG:4326", 0.01, (40.0, 0.5, -0.3)),
    "clay": ("EPSG:4326", 0.02, (20.0, -0.2, 0.4)),
    "tmin": ("EPSG:32611", 250.0, (5.0, 1e-5, -2e-5)),
    "tmax": ("EPSG:32611", 500.0, (30.0, -1e-5, 1e-5)),
    "tmean": ("EPSG:3857", 1000.0, (18.0, 2e-6, 3e-6)),
    "pmin": ("EPSG:5070", 800.0, (2.0, 1e-6, 1e-6)),
    "pmax": ("EPSG:5070", 800.0, (90.0, -3e-6, 2e-6)),
    "pmean": ("EPSG:4326", 0.05, (30.0, 1.0, 0.5)),
}


def raster_grid(crs: str, size: float) -> tuple[float, float, int, int]:
    """Origin (x0, y0) and (width, height) of a grid covering REGION in ``crs``."""
    lon = np.linspace(REGION[0], REGION[2], 50)
    lat = np.linspace(REGION[1], REGION[3], 50)
    lon, lat = np.meshgrid(lon, lat)
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon.ravel(), lat.ravel())
    x0, y0 = float(np.min(x)), float(np.max(y))
    return x0, y0, int(np.ceil((np.max(x) - x0) / size)) + 1, int(np.ceil((y0 - np.min(y)) / size)) + 1


def field(name: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    crs, size, (a, b, c) = LAYERS[name]
    x0, y0, _, _ = raster_grid(crs, size)
    return a + b * (x - x0) + c * (y - y0)


def write_covariates(folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (crs, size, _) in LAYERS.items():
        x0, y0, width, height = raster_grid(crs, size)
        cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
        values = field(name, x0 + cols * size, y0 - rows * size).astype(np.float32)
        values[0, 0] = -9999.0  # one nodata pixel in the corner, far from the test points
        with rasterio.open(
            folder / f"{name}.tif", "w", driver="COG", width=width, height=height, count=1, dtype="float32",
            crs=crs, transform=Affine(size, 0, x0, 0, -size, y0), nodata=-9999.0,
        ) as ds:  # fmt: skip
            ds.write(values, 1)
    return covariate_urls(str(folder))


@pytest.fixture(scope="module")
def urls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return write_covariates(tmp_path_factory.mktemp("covariates"))


def expected_at(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    columns = []
    for name in COVARIATE_NAMES:
        x, y = Transformer.from_crs("EPSG:4326", LAYERS[name][0], always_xy=True).transform(lon, lat)
        columns.append(field(name, np.asarray(x), np.asarray(y)))
    return np.stack(columns, axis=1)


def test_covariate_urls_in_contract_order():
    assert list(covariate_urls("s3://b/cov/")) == list(COVARIATE_NAMES)
    assert covariate_urls("s3://b/cov/")["tmean"] == "s3://b/cov/tmean.tif"


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.floats(-120.4, -119.6), st.floats(36.6, 37.4)), min_size=1, max_size=20))
def test_points_sample_the_field_in_every_crs(urls: dict[str, str], points: list[tuple[float, float]]):
    lon, lat = np.array(points).T
    values = sample_covariates(urls, lon, lat)
    assert values.shape == (len(points), 8) and values.dtype == np.float32
    np.testing.assert_allclose(values, expected_at(lon, lat), rtol=1e-4, atol=1e-3)


def test_points_outside_or_on_nodata_are_nan(urls: dict[str, str]):
    x0, y0, _, _ = raster_grid("EPSG:4326", LAYERS["sand"][1])  # sand is on lon/lat
    lon = np.array([-119.9, 10.0, x0 + 0.001])
    lat = np.array([37.0, 10.0, y0 - 0.001])  # the last point sits in sand's nodata corner pixel
    values = sample_covariates(urls, lon, lat)
    assert np.isfinite(values[0]).all()
    assert np.isnan(values[1]).all()  # far outside every raster
    assert np.isnan(values[2, 0])


def test_grid_is_warped_from_every_crs(urls: dict[str, str]):
    # a 30 m EPSG:5070 tile inside the region
    transform = Affine(30.0, 0, -2_150_010.0, 0, -30.0, 1_800_000.0)
    shape = (40, 50)
    grid = covariates_on_grid(urls, "EPSG:5070", transform, shape)
    assert grid.shape == (8, 40, 50) and grid.dtype == np.float32
    cols, rows = np.meshgrid(np.arange(50) + 0.5, np.arange(40) + 0.5)
    x, y = transform @ (cols.ravel(), rows.ravel())
    lon, lat = Transformer.from_crs("EPSG:5070", "EPSG:4326", always_xy=True).transform(x, y)
    expected = expected_at(np.asarray(lon), np.asarray(lat)).T.reshape(8, 40, 50)
    np.testing.assert_allclose(grid, expected, rtol=1e-3, atol=1e-2)


def test_covariates_from_s3(urls: dict[str, str], s3):
    fs = s3.filesystem()
    for name, url in urls.items():
        fs.put(url, f"{s3.bucket}/cov/{name}.tif")
    remote = covariate_urls(s3.url("cov"))
    lon, lat = np.array([-120.1, -119.8]), np.array([36.9, 37.2])
    np.testing.assert_allclose(sample_covariates(remote, lon, lat), sample_covariates(urls, lon, lat))


def test_missing_covariate_file_names_it(urls: dict[str, str], tmp_path: Path):
    broken = {**urls, "clay": str(tmp_path / "clay.tif")}
    with pytest.raises(InputDataError, match=r"clay\.tif: cannot read covariate raster"):
        sample_covariates(broken, np.array([-120.0]), np.array([37.0]))


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_covariate_without_crs_names_it(urls: dict[str, str], tmp_path: Path):
    path = tmp_path / "tmax.tif"
    with rasterio.open(path, "w", driver="GTiff", width=4, height=4, count=1, dtype="float32") as ds:
        ds.write(np.zeros((1, 4, 4), np.float32))
    with pytest.raises(InputDataError, match=r"tmax\.tif: covariate raster has no CRS"):
        covariates_on_grid({**urls, "tmax": str(path)}, "EPSG:5070", Affine(30, 0, 0, 0, -30, 0), (2, 2))


def test_missing_covariate_name(urls: dict[str, str]):
    partial = {k: v for k, v in urls.items() if k != "pmean"}
    with pytest.raises(InputDataError, match="no raster given for covariate 'pmean'"):
        sample_covariates(partial, np.array([-120.0]), np.array([37.0]))


# --- the grid's bilinear rule against GDAL's warper --------------------------------------------------

WAVY_ORIGIN = (-2_160_000.0, 1_810_000.0)  # EPSG:5070, over the region's 30 m tiles below
WAVY_PIXEL = 250.0


@pytest.fixture(scope="module")
def wavy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 250 m EPSG:5070 raster of a non-linear field with nodata (-9999) pixels and a blob of them:
    bilinear interpolation is not exact on it, and the nodata rule matters."""
    rng = np.random.default_rng(11)
    rows, cols = np.mgrid[0:120, 0:140]
    values = (20 + 5 * np.sin(rows / 7.0) * np.cos(cols / 5.0) + rng.normal(0, 0.3, rows.shape)).astype(
        np.float32
    )
    values[rng.random(values.shape) < 0.03] = -9999.0
    values[40:46, 60:70] = -9999.0
    path = tmp_path_factory.mktemp("wavy") / "wavy.tif"
    with rasterio.open(
        path, "w", driver="GTiff", width=140, height=120, count=1, dtype="float32", crs="EPSG:5070",
        transform=Affine(WAVY_PIXEL, 0, WAVY_ORIGIN[0], 0, -WAVY_PIXEL, WAVY_ORIGIN[1]), nodata=-9999.0,
    ) as ds:  # fmt: skip
        ds.write(values, 1)
    return path


def gdal_bilinear(path: Path, crs: str, transform: Affine, shape: tuple[int, int]) -> np.ndarray:
    out = np.full(shape, np.nan, np.float32)
    with rasterio.open(path) as ds:
        reproject(
            rasterio.band(ds, 1), out, src_nodata=ds.nodata, dst_transform=transform, dst_crs=crs,
            dst_nodata=np.nan, resampling=Resampling.bilinear,
        )  # fmt: skip
    return out


def ours(
    path: Path, crs: str, transform: Affine, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Our grid values, and the exact source positions of the grid's pixel centres."""
    urls = dict.fromkeys(COVARIATE_NAMES, str(path))
    values = covariates_on_grid(urls, crs, transform, shape)
    assert all(np.array_equal(values[0], layer, equal_nan=True) for layer in values)  # one rule per grid
    with rasterio.open(path) as ds:
        cols, rows = np.meshgrid(np.arange(shape[1]) + 0.5, np.arange(shape[0]) + 0.5)
        x, y = transform @ (cols, rows)
        sx, sy = Transformer.from_crs(crs, ds.crs, always_xy=True).transform(x, y)
        col, row = ~ds.transform @ (np.asarray(sx), np.asarray(sy))
    return values[0], np.asarray(row), np.asarray(col)


@settings(max_examples=20, deadline=None)
@given(
    crs=st.sampled_from(["EPSG:5070", "EPSG:32611", "EPSG:4326"]),
    east=st.floats(0.05, 0.9),
    south=st.floats(0.05, 0.9),
    pixel=st.floats(0.05, 0.6),  # of the source's pixel
)
def test_the_grid_matches_gdals_bilinear_warp_with_its_nodata_rule(wavy, crs, east, south, pixel):
    """GDAL's warper places pixels with an approximate transformer (up to 0.125 source pixels off),
    so values agree to that shift of the field, and the nodata mask agrees except within that
    distance of a pixel edge."""
    x0 = WAVY_ORIGIN[0] + east * 140 * WAVY_PIXEL * 0.6
    y0 = WAVY_ORIGIN[1] - south * 120 * WAVY_PIXEL * 0.6
    lon0, lat0 = Transformer.from_crs("EPSG:5070", crs, always_xy=True).transform(x0, y0)
    size = pixel * WAVY_PIXEL * (1e-5 if crs == "EPSG:4326" else 1.0)  # about as many metres in degrees
    transform = Affine(size * (1.3 if crs == "EPSG:4326" else 1.0), 0, lon0, 0, -size, lat0)
    shape = (60, 70)
    mine, row, col = ours(wavy, crs, transform, shape)
    theirs = gdal_bilinear(wavy, crs, transform, shape)
    with rasterio.open(wavy) as ds:
        source = ds.read(1, masked=True).filled(np.nan)
    step = np.nanmax(np.abs(np.diff(source, axis=0)))  # the field's largest change per pixel
    both = np.isfinite(mine) & np.isfinite(theirs)
    assert both.any()  # the blob of nodata may cover much of a small grid
    np.testing.assert_allclose(mine[both], theirs[both], rtol=0, atol=0.13 * 2 * step)
    near_edge = (np.abs(row - np.round(row)) < 0.13) | (np.abs(col - np.round(col)) < 0.13)
    assert not ((np.isnan(mine) != np.isnan(theirs)) & ~near_edge).any()


def test_an_aligned_grid_reads_its_source_pixels_exactly(wavy):
    transform = Affine(
        WAVY_PIXEL, 0, WAVY_ORIGIN[0] + 30 * WAVY_PIXEL, 0, -WAVY_PIXEL, WAVY_ORIGIN[1] - 20 * WAVY_PIXEL
    )
    mine, _, _ = ours(wavy, "EPSG:5070", transform, (50, 60))
    with rasterio.open(wavy) as ds:
        source = ds.read(1, masked=True).filled(np.nan)[20:70, 30:90]
    np.testing.assert_array_equal(mine, source)  # bitwise, nodata where the source has none
    np.testing.assert_array_equal(mine, gdal_bilinear(wavy, "EPSG:5070", transform, (50, 60)))


def test_points_and_grid_pixels_get_the_same_values(urls: dict[str, str]):
    transform = Affine(30.0, 0, -2_150_010.0, 0, -30.0, 1_800_000.0)
    shape = (30, 40)
    grid = covariates_on_grid(urls, "EPSG:5070", transform, shape)
    cols, rows = np.meshgrid(np.arange(shape[1]) + 0.5, np.arange(shape[0]) + 0.5)
    x, y = transform @ (cols.ravel(), rows.ravel())
    lon, lat = Transformer.from_crs("EPSG:5070", "EPSG:4326", always_xy=True).transform(x, y)
    points = sample_covariates(urls, np.asarray(lon), np.asarray(lat))
    np.testing.assert_allclose(grid.reshape(8, -1).T, points, rtol=1e-5, atol=1e-4)


def test_a_nan_is_nodata_even_when_the_raster_declares_another_value(tmp_path: Path):
    """GDAL's warper would carry an undeclared NaN into its four neighbours' positions; a covariate
    is never NaN, so it is nodata like the declared value, and only its own pixel goes missing."""
    values = np.full((6, 6), 7.0, np.float32)
    values[2, 3] = np.nan
    path = tmp_path / "nan.tif"
    with rasterio.open(
        path, "w", driver="GTiff", width=6, height=6, count=1, dtype="float32", crs="EPSG:5070",
        transform=Affine(100, 0, 0, 0, -100, 600), nodata=-9999.0,
    ) as ds:  # fmt: skip
        ds.write(values, 1)
    fine = Affine(25, 0, 0, 0, -25, 600)  # 4 × 4 grid pixels per source pixel
    grid, _, _ = ours(path, "EPSG:5070", fine, (24, 24))
    expected = np.full((24, 24), 7.0, np.float32)
    expected[8:12, 12:16] = np.nan
    np.testing.assert_array_equal(grid, expected)


@settings(max_examples=15, deadline=None)
@given(
    source=st.sampled_from(["EPSG:4326", "EPSG:32611", "EPSG:3857", "EPSG:3031"]),
    pixel=st.sampled_from([10.0, 30.0, 500.0, 5000.0]),
    height=st.integers(1, 300),
    width=st.integers(1, 300),
)
def test_grid_positions_are_within_their_error_bound_of_the_exact_transform(source, pixel, height, width):
    """Interpolated between lattice nodes, the positions stay within MAX_POSITION_ERROR_PX of the
    exact transform, however far the source CRS bends the grid (EPSG:3031 is polar)."""
    source_transform = (
        Affine(1e-3, 0, -125.0, 0, -1e-3, 40.0) if source == "EPSG:4326" else Affine(90, 0, 0, 0, -90, 0)
    )
    transform = Affine(pixel, 0, -2_150_010.0, 0, -pixel, 1_800_000.0)
    row, col = grid_positions(
        CRS.from_user_input(source), source_transform, CRS.from_epsg(5070), transform, (height, width)
    )
    cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    x, y = transform @ (cols, rows)
    sx, sy = Transformer.from_crs("EPSG:5070", source, always_xy=True).transform(x, y)
    exact_col, exact_row = ~source_transform @ (np.asarray(sx), np.asarray(sy))
    assert np.abs(row - exact_row).max() <= MAX_POSITION_ERROR_PX
    assert np.abs(col - exact_col).max() <= MAX_POSITION_ERROR_PX
