"""Covariate rasters (soil texture, climate) sampled at points or warped onto an output grid.

The rasters are COGs in whatever CRS their producer chose; they are reprojected on the fly with
GDAL (bilinear), so no reprojected copy is ever written.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import numpy as np
import rasterio
from affine import Affine
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.errors import RasterioError
from rasterio.warp import Resampling, reproject
from rasterio.windows import Window
from scipy.ndimage import map_coordinates

from deepsalt.errors import InputDataError
from deepsalt.io.paths import gdal_path

COVARIATE_NAMES: tuple[str, ...] = ("sand", "clay", "tmin", "tmax", "tmean", "pmin", "pmax", "pmean")


def covariate_urls(folder_url: str) -> dict[str, str]:
    """``{name: <folder>/<name>.tif}`` in COVARIATE_NAMES order."""
    folder = folder_url.rstrip("/")
    return {name: f"{folder}/{name}.tif" for name in COVARIATE_NAMES}


def sample_covariates(urls: Mapping[str, str], lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """(n, 8) float32 covariates at WGS84 points, bilinear; NaN outside a raster or on its nodata."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    if lon.shape != lat.shape or lon.ndim != 1:
        raise ValueError(f"lon and lat must be 1-D of one length, got {lon.shape} and {lat.shape}")
    out = np.full((lon.size, len(COVARIATE_NAMES)), np.nan, dtype=np.float32)
    for column, name in enumerate(COVARIATE_NAMES):
        url = _url_of(urls, name)
        with _open(url) as ds:
            x, y = Transformer.from_crs("EPSG:4326", ds.crs, always_xy=True).transform(lon, lat)
            col, row = ~ds.transform @ (np.asarray(x), np.asarray(y))
            out[:, column] = _bilinear(ds, url, np.asarray(row) - 0.5, np.asarray(col) - 0.5)
    return out


def covariates_on_grid(
    urls: Mapping[str, str], crs: CRS | str, transform: Affine, shape: tuple[int, int]
) -> np.ndarray:
    """(8, h, w) float32 covariates warped (bilinear) onto the grid ``crs``/``transform``/``shape``."""
    out = np.full((len(COVARIATE_NAMES), *shape), np.nan, dtype=np.float32)
    for layer, name in enumerate(COVARIATE_NAMES):
        url = _url_of(urls, name)
        with _open(url) as ds:
            try:
                reproject(
                    source=rasterio.band(ds, 1),
                    destination=out[layer],
                    src_nodata=ds.nodata,
                    dst_transform=transform,
                    dst_crs=CRS.from_user_input(crs),
                    dst_nodata=np.nan,
                    resampling=Resampling.bilinear,
                )
            except RasterioError as exc:
                raise InputDataError(url, f"cannot warp covariate '{name}': {exc}") from exc
    return out


def _url_of(urls: Mapping[str, str], name: str) -> str:
    if name not in urls:
        raise InputDataError(
            "<covariates>", f"no raster given for covariate '{name}' (need all of {COVARIATE_NAMES})"
        )
    return urls[name]


@contextmanager
def _open(url: str) -> Iterator[rasterio.DatasetReader]:
    try:
        with rasterio.open(gdal_path(url)) as ds:
            if ds.crs is None:
                raise InputDataError(url, "covariate raster has no CRS")
            yield ds
    except RasterioError as exc:
        raise InputDataError(url, f"cannot read covariate raster: {exc}") from exc


def _bilinear(ds: rasterio.DatasetReader, url: str, row: np.ndarray, col: np.ndarray) -> np.ndarray:
    """Bilinear values at fractional pixel-centre coordinates; reads only the window the points span."""
    values = np.full(row.shape, np.nan, dtype=np.float32)
    inside = (row >= -0.5) & (row <= ds.height - 0.5) & (col >= -0.5) & (col <= ds.width - 0.5)
    if not inside.any():
        return values
    r0 = max(int(np.floor(row[inside].min())), 0)
    c0 = max(int(np.floor(col[inside].min())), 0)
    r1 = min(int(np.ceil(row[inside].max())) + 1, ds.height)
    c1 = min(int(np.ceil(col[inside].max())) + 1, ds.width)
    try:
        block = ds.read(1, window=Window(c0, r0, c1 - c0, r1 - r0), out_dtype="float64")
    except RasterioError as exc:
        raise InputDataError(url, f"cannot read covariate raster: {exc}") from exc
    if ds.nodata is not None:
        block[block == ds.nodata] = np.nan
    coords = np.stack([row[inside] - r0, col[inside] - c0])
    values[inside] = map_coordinates(block, coords, order=1, mode="nearest")
    return values
