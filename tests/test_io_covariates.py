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

from deepsalt.errors import InputDataError
from deepsalt.io.covariates import COVARIATE_NAMES, covariate_urls, covariates_on_grid, sample_covariates

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
