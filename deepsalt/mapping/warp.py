"""Reading a scene's rasters onto a tile of the output grid (nearest neighbour).

Each raster of a scene is placed on a tile once: GDAL's warper (nearest neighbour, the same
transformer a WarpedVRT uses) warps a raster of source pixel numbers onto the tile, which gives
for every tile pixel the number of the source pixel under it (an index map). The spectral image
and the quality layers usually share one grid, so they share the map. Reading a block is then a
gather of the source pixels the compositor asks for, all bands at once, through the readers of
:mod:`deepsalt.mapping.tiff_blocks`; a scene's pixels that no block takes are never decoded
beyond the tiles they share with taken ones.

Files are opened on first use: with the compositing rule most pixels come from the first scenes,
so later scenes' spectral images are often never touched. Every failure becomes an
:class:`InputDataError` naming the file and what is wrong, so a bad scene fails its tile with a
readable reason.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS
from rasterio._err import CPLE_BaseError  # GDAL errors rasterio does not wrap
from rasterio.enums import Resampling
from rasterio.errors import CRSError, RasterioError
from rasterio.warp import reproject, transform_bounds
from rasterio.windows import from_bounds

from deepsalt.errors import InputDataError
from deepsalt.io.cube import GriddedCube, SpectralLayout
from deepsalt.io.paths import gdal_path
from deepsalt.io.scenes import cube_opener
from deepsalt.io.stac import SceneRef
from deepsalt.mapping.tiff_blocks import BlockCache, WindowReader, open_pixels

OUTSIDE = -1
"""Index-map value of a tile pixel no source pixel covers."""


@dataclass(frozen=True)
class TileGrid:
    """The target of a warp: a tile's CRS, transform and shape."""

    crs: CRS
    transform: Affine
    shape: tuple[int, int]


@dataclass(frozen=True)
class SourceGrid:
    crs: Any
    transform: Affine
    shape: tuple[int, int]


def index_map(source: SourceGrid, target: TileGrid, url: str) -> np.ndarray:
    """(h, w) int32: for each tile pixel the flat number (row × width + col) of the nearest source
    pixel, :data:`OUTSIDE` where the source does not reach."""
    out = np.full(target.shape, OUTSIDE, dtype=np.int32)
    try:
        rows, cols = _source_window(source, target)
        if rows.stop <= rows.start or cols.stop <= cols.start:
            return out
        width = source.shape[1]
        numbers = (
            np.arange(rows.start, rows.stop)[:, None] * width + np.arange(cols.start, cols.stop)
        ).astype(np.int32)
        reproject(
            numbers,
            out,
            src_transform=source.transform @ Affine.translation(cols.start, rows.start),
            src_crs=source.crs,
            src_nodata=OUTSIDE,
            dst_transform=target.transform,
            dst_crs=target.crs,
            dst_nodata=OUTSIDE,
            resampling=Resampling.nearest,
        )
    except (CRSError, RasterioError, CPLE_BaseError, ValueError) as exc:
        raise InputDataError(
            url,
            f"its CRS {CRS.from_user_input(source.crs).to_string()[:80]!r} cannot be transformed to the grid "
            f"CRS {target.crs.to_string()} ({type(exc).__name__})",
        ) from exc
    return out


def _source_window(source: SourceGrid, target: TileGrid) -> tuple[slice, slice]:
    """Rows and columns of the source under the tile, one pixel to spare, clipped to the source."""
    height, width = target.shape
    left, top = target.transform @ (0, 0)
    right, bottom = target.transform @ (width, height)
    bounds = transform_bounds(
        target.crs, source.crs, left, min(top, bottom), right, max(top, bottom), densify_pts=21
    )
    window = from_bounds(*bounds, transform=source.transform)
    row0 = max(int(np.floor(window.row_off)) - 1, 0)
    col0 = max(int(np.floor(window.col_off)) - 1, 0)
    row1 = min(int(np.ceil(window.row_off + window.height)) + 1, source.shape[0])
    col1 = min(int(np.ceil(window.col_off + window.width)) + 1, source.shape[1])
    return slice(row0, max(row1, row0)), slice(col0, max(col1, col0))


@dataclass(frozen=True)
class CoveredWindow:
    """Where a whole tile's pixels come from on one source grid: the source window under the tile
    and, for each tile pixel the source covers, its flat offset in that window."""

    positions: np.ndarray
    """Flat tile positions the source covers."""
    rows: slice
    cols: slice
    offsets: np.ndarray
    """Flat offset in the (rows, cols) window of the source pixel under each of ``positions``."""


@dataclass
class IndexMap:
    """A tile's index map onto one source grid, with the source window of the whole tile worked
    out once for the single-band layers that are read whole."""

    numbers: np.ndarray
    width: int
    """Width of the source grid (numbers are row × width + col)."""

    @cached_property
    def covered(self) -> CoveredWindow:
        """The source window under the tile, shared by every layer on this grid (a scene's quality
        layers): each layer is then one flat ``take`` from its window, several times faster than
        indexing the window with rows and columns (``benchmarks/notes.md``, session 24)."""
        flat = self.numbers.reshape(-1)
        positions = np.flatnonzero(flat != OUTSIDE)
        if not positions.size:
            return CoveredWindow(positions, slice(0, 0), slice(0, 0), positions)
        rows, cols = np.divmod(flat[positions], self.width)
        r0, c0 = int(rows.min()), int(cols.min())
        c1 = int(cols.max()) + 1
        offsets = (rows - r0) * (c1 - c0) + (cols - c0)
        return CoveredWindow(positions, slice(r0, int(rows.max()) + 1), slice(c0, c1), offsets)


class IndexMaps:
    """The index maps of one tile, one per source grid (a scene's layers share theirs)."""

    def __init__(self, target: TileGrid):
        self.target = target
        self._maps: dict[tuple[str, tuple[float, ...], tuple[int, int]], IndexMap] = {}

    def get(self, source: SourceGrid, url: str) -> IndexMap:
        key = (CRS.from_user_input(source.crs).to_wkt(), tuple(source.transform)[:6], tuple(source.shape))
        if key not in self._maps:
            self._maps[key] = IndexMap(index_map(source, self.target, url), source.shape[1])
        return self._maps[key]


@dataclass(frozen=True)
class _Placed:
    """An opened raster on the tile: its index map, pixel reader and own nodata."""

    mapping: IndexMap
    reader: Any  # TiledTiff | WindowReader
    source_nodata: float | None


class TileRaster:
    """One raster of a scene (a file GDAL opens, or a format's :class:`GriddedCube`) on a tile."""

    def __init__(
        self,
        stack: ExitStack,
        url: str,
        maps: IndexMaps,
        nodata: float,
        cache: BlockCache,
        n_bands: int | None = None,
        cube_opener: Callable[[str], GriddedCube] | None = None,
    ):
        self.url = url
        self.nodata = nodata
        self._stack = stack
        self._maps = maps
        self._cache = cache
        self._n_bands = n_bands
        self._cube_opener = cube_opener
        self._placed: _Placed | None = None

    def _open(self) -> _Placed:
        if self._placed is None:
            self._placed = self._open_cube() if self._cube_opener is not None else self._open_file()
        return self._placed

    def _open_file(self) -> _Placed:
        try:
            src = self._stack.enter_context(rasterio.open(gdal_path(self.url)))
        except (RasterioError, CPLE_BaseError) as exc:
            raise InputDataError(self.url, f"cannot be opened as a raster: {exc}") from exc
        if self._n_bands is not None and src.count != self._n_bands:
            raise InputDataError(self.url, f"has {src.count} bands but its band table lists {self._n_bands}")
        if src.crs is None:
            raise InputDataError(self.url, "has no CRS, so it cannot be placed on the output grid")
        mapping = self._maps.get(SourceGrid(src.crs, src.transform, (src.height, src.width)), self.url)
        reader = open_pixels(self.url, src, self._cache)
        self._stack.callback(reader.close)
        return _Placed(mapping, reader, src.nodata)

    def _open_cube(self) -> _Placed:
        assert self._cube_opener is not None
        cube = self._cube_opener(self.url)
        self._stack.callback(cube.close)
        mapping = self._maps.get(SourceGrid(cube.crs, cube.transform, cube.shape), self.url)
        n_bands = self._n_bands

        def read(rows: slice, cols: slice) -> np.ndarray:
            values = cube.read(rows, cols)
            if n_bands is not None and len(values) != n_bands:
                raise InputDataError(self.url, f"has {len(values)} bands but its band table lists {n_bands}")
            return values

        return _Placed(mapping, WindowReader(self.url, read, n_bands or 0, np.float32), cube.nodata)

    def pixels(self, positions: np.ndarray) -> np.ndarray:
        """(n, bands) stored values at flat tile ``positions``; ``nodata`` where the source has none."""
        placed = self._open()
        numbers = placed.mapping.numbers.reshape(-1)[positions]
        inside = numbers != OUTSIDE
        rows, cols = np.divmod(numbers[inside], placed.mapping.width)
        values = placed.reader.read_pixels(rows, cols)
        if inside.all():
            out = values
        else:
            out = np.full((len(positions), values.shape[1]), self.nodata, dtype=values.dtype)
            out[inside] = values
        return self._own_nodata(out, placed.source_nodata)

    def plane(self) -> np.ndarray:
        """The whole tile of a single-band raster (quality layers), ``nodata`` where it has none.

        Read as one window of the source (one byte per pixel), not pixel by pixel."""
        placed = self._open()
        covered = placed.mapping.covered
        out = np.full(self._maps.target.shape, self.nodata, dtype=placed.reader.dtype)
        if covered.positions.size:
            window = placed.reader.plane_window(covered.rows, covered.cols)
            out.reshape(-1)[covered.positions] = np.take(window.reshape(-1), covered.offsets)
        return self._own_nodata(out, placed.source_nodata)

    def _own_nodata(self, values: np.ndarray, source_nodata: float | None) -> np.ndarray:
        """The source's own nodata value becomes ours (as GDAL's warper does)."""
        if source_nodata is not None and not (
            source_nodata == self.nodata or (np.isnan(source_nodata) and np.isnan(self.nodata))
        ):
            values[_equals(values, source_nodata)] = self.nodata
        return values


def _equals(values: np.ndarray, nodata: float) -> np.ndarray:
    return np.isnan(values) if np.isnan(nodata) else values == nodata


def open_spectral(
    stack: ExitStack, scene: SceneRef, layout: SpectralLayout, maps: IndexMaps, cache: BlockCache
) -> TileRaster:
    """The scene's reflectance cube on a tile, through GDAL or the format's own reader."""
    return TileRaster(
        stack,
        scene.spectral_href,
        maps,
        layout.nodata,
        cache,
        layout.table.n_bands,
        cube_opener(scene.format),
    )
