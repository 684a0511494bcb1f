"""Covariate rasters (soil texture, climate) sampled at points or warped onto an output grid.

The rasters are COGs in whatever CRS their producer chose; they are sampled on the fly, bilinear,
so no reprojected copy is ever written. Points (training samples) and a grid's pixel centres (a
map tile) go through one rule, :class:`BilinearTaps`: the four source pixels around a position,
weighted by distance, with those off the raster or on its nodata left out and the rest
re-weighted, as GDAL's warper does; NaN where none is left. A position is on the raster when it
falls inside its outer edge.

Why not GDAL's warper for the grid: it warps one layer at a time, and a tile's eight layers come
from one or two grids (soil texture on one, climate on another), so it worked out the same source
positions and weights up to eight times per tile (about 85 ms per layer per megapixel, profiled
in ``benchmarks/notes.md``, session 25). Here the positions of a tile's pixel centres on each
source grid are worked out once (exactly on a lattice, interpolated between its nodes within
:data:`MAX_POSITION_ERROR_PX`, as GDAL's approximate transformer does, but tighter), and each layer
is then a gather and a weighted sum.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import rasterio
from affine import Affine
from pyproj import Transformer
from pyproj.exceptions import ProjError
from rasterio.crs import CRS
from rasterio.errors import CRSError, RasterioError
from rasterio.windows import Window

from deepsalt.errors import InputDataError
from deepsalt.io.paths import gdal_path

COVARIATE_NAMES: tuple[str, ...] = ("sand", "clay", "tmin", "tmax", "tmean", "pmin", "pmax", "pmean")


def covariate_urls(folder_url: str) -> dict[str, str]:
    """``{name: <folder>/<name>.tif}`` in COVARIATE_NAMES order."""
    folder = folder_url.rstrip("/")
    return {name: f"{folder}/{name}.tif" for name in COVARIATE_NAMES}


MAX_POSITION_ERROR_PX = 0.01
"""Largest error, in source pixels, of a grid position interpolated between exactly transformed
lattice nodes (GDAL's warper allows 0.125)."""
LATTICE_STEP = 16
"""Grid pixels between exactly transformed lattice nodes, halved until the error bound holds."""
SNAP = 1e-6
"""Positions this close to a pixel centre (source pixels) are taken as on it."""
MIN_WEIGHT = 1e-5
"""A position whose taps with data weigh less than this in all is nodata (GDAL's bilinear rule)."""


@dataclass(frozen=True)
class BilinearTaps:
    """Bilinear sampling of one source grid at fixed positions, worked out once and applied to every
    layer on that grid (see the module docstring)."""

    rows: slice
    cols: slice
    """The source window the taps read (empty when no position is on the raster)."""
    index: np.ndarray
    """(taps, n) int32 flat offsets of each position's taps in the window: the four around it, less
    those of weight zero at every position."""
    weight: np.ndarray
    """(taps, n) float32 bilinear weights; zero for taps off the raster and at positions off it."""
    total: np.ndarray
    """(n,) float32 sum of ``weight``: what the weights are divided by where every tap has data."""
    containing: np.ndarray
    """(n,) int32 flat offset of the pixel each position falls in: on nodata, the position is
    nodata, whatever its neighbours hold (GDAL's rule: data is not spread into nodata pixels)."""

    @classmethod
    def at(cls, row: np.ndarray, col: np.ndarray, shape: tuple[int, int]) -> BilinearTaps:
        """Taps at fractional source positions (pixel units from the raster's top-left corner; a
        pixel's centre is at +0.5) on a raster of ``shape``."""
        height, width = shape
        row = np.asarray(row, dtype=np.float64).reshape(-1)
        col = np.asarray(col, dtype=np.float64).reshape(-1)
        on = (row >= 0) & (row < height) & (col >= 0) & (col < width)
        if not on.any():
            none = np.zeros((0, row.size), np.int32)
            nowhere = np.zeros(row.size, np.int32)
            return cls(
                slice(0, 0), slice(0, 0), none, none.astype(np.float32), nowhere.astype(np.float32), nowhere
            )
        row = np.where(on, row, 0.5)  # off the raster (even inf or NaN): a pixel centre, no weight
        col = np.where(on, col, 0.5)
        # The tap above and left of the position. On a grid aligned with the source every position
        # is a pixel centre up to rounding: within SNAP of one it reads that pixel alone, exactly
        # (the taps of weight zero everywhere are dropped below).
        y0, x0 = np.floor(row - 0.5 + SNAP), np.floor(col - 0.5 + SNAP)
        r0 = max(int(np.min(y0, where=on, initial=height)), 0)
        c0 = max(int(np.min(x0, where=on, initial=width)), 0)
        r1 = min(int(np.max(y0, where=on, initial=-1)) + 2, height)
        c1 = min(int(np.max(x0, where=on, initial=-1)) + 2, width)
        fy = np.maximum(row - 0.5 - y0, 0).astype(np.float32)
        fx = np.maximum(col - 0.5 - x0, 0).astype(np.float32)
        # Per axis: the weights of the lower and upper tap, zero where the tap is off the raster
        # (or the position is); the four taps' weights are their products.
        zero = np.float32(0)
        lower_y = np.where(on & (y0 >= 0), 1 - fy, zero)
        upper_y = np.where(on & (y0 + 1 < height), fy, zero)
        lower_x = np.where(x0 >= 0, 1 - fx, zero)
        upper_x = np.where(x0 + 1 < width, fx, zero)
        weight = np.empty((4, row.size), np.float32)
        for k, (wy, wx) in enumerate(
            ((lower_y, lower_x), (lower_y, upper_x), (upper_y, lower_x), (upper_y, upper_x))
        ):
            np.multiply(wy, wx, out=weight[k])
        stride, last = c1 - c0, (r1 - r0) * (c1 - c0) - 1
        base = ((y0 - r0) * stride + (x0 - c0)).astype(np.int32)
        index = np.empty((4, row.size), np.int32)
        for k, offset in enumerate((0, 1, stride, stride + 1)):
            np.add(base, offset, out=index[k])
        np.clip(index, 0, last, out=index)  # taps of weight zero may point anywhere
        containing = base + np.where(fy >= 0.5, stride, 0).astype(np.int32) + (fx >= 0.5)
        np.clip(containing, 0, last, out=containing)
        used = weight.any(axis=1)
        if not used.all():
            index, weight = index[used], weight[used]
        return cls(slice(r0, r1), slice(c0, c1), index, weight, weight.sum(axis=0), containing)

    def sample(self, window: np.ndarray) -> np.ndarray:
        """(n,) float32 values from the source ``window`` (``rows`` × ``cols``, NaN for nodata)."""
        flat = np.ascontiguousarray(window, dtype=np.float32).reshape(-1)
        if not flat.size:
            return np.full(self.total.shape, np.nan, np.float32)
        values = np.take(flat, self.index)
        weight, total = self.weight, self.total
        if np.isnan(flat).any():  # leave out the taps on nodata, re-weight the rest
            missing = np.isnan(values)
            weight = np.where(missing, np.float32(0), weight)
            values[missing] = 0
            total = np.where(np.isnan(np.take(flat, self.containing)), np.float32(0), weight.sum(axis=0))
        values *= weight
        summed = values.sum(axis=0)
        out = np.full(summed.shape, np.nan, np.float32)
        enough = total >= MIN_WEIGHT
        np.divide(summed, total, out=out, where=enough)
        return out


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
            taps = BilinearTaps.at(np.asarray(row), np.asarray(col), (ds.height, ds.width))
            out[:, column] = taps.sample(_window(ds, url, taps))
    return out


def covariates_on_grid(
    urls: Mapping[str, str], crs: CRS | str, transform: Affine, shape: tuple[int, int]
) -> np.ndarray:
    """(8, h, w) float32 covariates sampled (bilinear) at the pixel centres of the grid
    ``crs``/``transform``/``shape``; the taps are worked out once per source grid."""
    out = np.full((len(COVARIATE_NAMES), *shape), np.nan, dtype=np.float32)
    target = CRS.from_user_input(crs)
    taps_of: dict[tuple[str, tuple[float, ...], tuple[int, int]], BilinearTaps] = {}
    for layer, name in enumerate(COVARIATE_NAMES):
        url = _url_of(urls, name)
        with _open(url) as ds:
            key = (ds.crs.to_wkt(), tuple(ds.transform)[:6], (ds.height, ds.width))
            if key not in taps_of:
                try:
                    row, col = grid_positions(ds.crs, ds.transform, target, transform, shape)
                except (CRSError, ProjError, ValueError) as exc:
                    raise InputDataError(url, f"cannot place covariate '{name}' on the grid: {exc}") from exc
                taps_of[key] = BilinearTaps.at(row, col, (ds.height, ds.width))
            taps = taps_of[key]
            out[layer] = taps.sample(_window(ds, url, taps)).reshape(shape)
    return out


def grid_positions(
    source_crs: CRS, source_transform: Affine, crs: CRS, transform: Affine, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """(h, w) float64 source rows and columns (pixel units, see :meth:`BilinearTaps.at`) of the
    grid's pixel centres: exact on a lattice, bilinear between its nodes (see the module)."""
    height, width = shape
    to_source = Transformer.from_crs(crs, source_crs, always_xy=True)
    inverse = ~source_transform

    def exact(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, y = transform @ (cols, rows)
        sx, sy = to_source.transform(x, y)  # inf where the source CRS cannot hold a point: off it
        col, row = inverse @ (np.asarray(sx), np.asarray(sy))
        return np.asarray(row, dtype=np.float64), np.asarray(col, dtype=np.float64)

    step = LATTICE_STEP
    while step > 1:
        node_rows = _lattice(height, step)
        node_cols = _lattice(width, step)
        grid_rows, grid_cols = np.meshgrid(node_rows, node_cols, indexing="ij")
        row, col = exact(grid_rows, grid_cols)
        # Checked on the lattice of half the step (cell centres and the middles of cell edges),
        # where a smooth transform departs most from the interpolation, against half the bound.
        mid_rows = _halfway(node_rows)
        mid_cols = _halfway(node_cols)
        true_row, true_col = exact(*np.meshgrid(mid_rows, mid_cols, indexing="ij"))
        error = max(
            np.abs(_bilinear_lattice(row, node_rows, node_cols, mid_rows, mid_cols) - true_row).max(),
            np.abs(_bilinear_lattice(col, node_rows, node_cols, mid_rows, mid_cols) - true_col).max(),
        )
        if not error <= MAX_POSITION_ERROR_PX / 2:  # NaN (a node off the source CRS) too
            step //= 2
            continue
        centres_r = np.arange(height) + 0.5
        centres_c = np.arange(width) + 0.5
        return _bilinear_lattice(row, node_rows, node_cols, centres_r, centres_c), _bilinear_lattice(
            col, node_rows, node_cols, centres_r, centres_c
        )
    rows, cols = np.meshgrid(np.arange(height) + 0.5, np.arange(width) + 0.5, indexing="ij")
    return exact(rows, cols)


def _lattice(n: int, step: int) -> np.ndarray:
    """Node positions (pixel centres) every ``step`` pixels, the first and last centres included."""
    nodes = np.arange(0, n, step, dtype=np.float64) + 0.5
    return nodes if nodes[-1] == n - 0.5 else np.append(nodes, n - 0.5)


def _halfway(nodes: np.ndarray) -> np.ndarray:
    """The nodes and the points halfway between neighbouring nodes, in order."""
    return np.sort(np.concatenate([nodes, (nodes[:-1] + nodes[1:]) / 2]))


def _bilinear_lattice(
    values: np.ndarray, node_rows: np.ndarray, node_cols: np.ndarray, rows: np.ndarray, cols: np.ndarray
) -> np.ndarray:
    """Lattice node ``values`` interpolated to every (row, col), one axis after the other."""
    along = _linear(values, node_cols, cols, axis=1)
    return _linear(along, node_rows, rows, axis=0)


def _linear(values: np.ndarray, nodes: np.ndarray, at: np.ndarray, axis: int) -> np.ndarray:
    """Piecewise-linear interpolation of ``values`` (nodes along ``axis``) at positions ``at``."""
    if nodes.size == 1:
        return np.repeat(values, at.size, axis=axis)
    k = np.clip(np.searchsorted(nodes, at, side="right") - 1, 0, nodes.size - 2)
    t = (at - nodes[k]) / (nodes[k + 1] - nodes[k])
    lower = np.take(values, k, axis=axis)
    upper = np.take(values, k + 1, axis=axis)
    t = t[None, :] if axis == 1 else t[:, None]
    return lower + (upper - lower) * t


def _window(ds: rasterio.DatasetReader, url: str, taps: BilinearTaps) -> np.ndarray:
    """The source window the taps read, float32, NaN where the raster has its nodata value."""
    rows, cols = taps.rows, taps.cols
    if rows.stop <= rows.start or cols.stop <= cols.start:
        return np.empty((0, 0), np.float32)
    try:
        window = ds.read(
            1,
            window=Window(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start),
            out_dtype="float32",
        )
    except RasterioError as exc:
        raise InputDataError(url, f"cannot read covariate raster: {exc}") from exc
    if ds.nodata is not None and not np.isnan(ds.nodata):
        window[window == np.float32(ds.nodata)] = np.nan
    return window


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
