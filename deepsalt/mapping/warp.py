"""Reading a scene's rasters onto a tile of the output grid (nearest neighbour).

Files GDAL reads (EnMAP GeoTIFFs, ENVI cubes, quality layers) are warped by a rasterio WarpedVRT;
HDF5/NetCDF products (EMIT, PRISMA) are read window by window through their reader's
:class:`~deepsalt.io.cube.GriddedCube` and warped from memory with the same GDAL warper.
Files are opened on first read: with the compositing rule most pixels come from the first scene,
so later scenes' files are often never touched. Every failure becomes an :class:`InputDataError`
naming the file and what is wrong, so a bad scene fails its tile with a readable reason.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack

import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS
from rasterio._err import CPLE_BaseError  # GDAL errors rasterio does not wrap
from rasterio.enums import Resampling
from rasterio.errors import CRSError, RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.warp import reproject, transform_bounds
from rasterio.windows import Window, from_bounds

from deepsalt.errors import InputDataError
from deepsalt.io.cube import GriddedCube, SpectralLayout
from deepsalt.io.paths import gdal_path
from deepsalt.io.scenes import cube_opener
from deepsalt.io.stac import SceneRef


class WarpedRaster:
    """One raster file warped onto a tile's grid; read blocks of it by window."""

    def __init__(
        self,
        stack: ExitStack,
        url: str,
        crs: CRS,
        transform: Affine,
        shape: tuple[int, int],
        nodata: float,
        n_bands: int | None = None,
    ):
        self.url = url
        self._stack = stack
        self._target = (crs, transform, shape, nodata)
        self._n_bands = n_bands
        self._vrt: WarpedVRT | None = None

    def _open(self) -> WarpedVRT:
        crs, transform, shape, nodata = self._target
        try:
            src = self._stack.enter_context(rasterio.open(gdal_path(self.url)))
        except (RasterioError, CPLE_BaseError) as exc:
            raise InputDataError(self.url, f"cannot be opened as a raster: {exc}") from exc
        if self._n_bands is not None and src.count != self._n_bands:
            raise InputDataError(self.url, f"has {src.count} bands but its band table lists {self._n_bands}")
        if src.crs is None:
            raise InputDataError(self.url, "has no CRS, so it cannot be placed on the output grid")
        try:
            return self._stack.enter_context(
                WarpedVRT(
                    src,
                    crs=crs,
                    transform=transform,
                    height=shape[0],
                    width=shape[1],
                    resampling=Resampling.nearest,
                    nodata=nodata,
                )
            )
        except (CRSError, RasterioError, CPLE_BaseError) as exc:
            raise InputDataError(
                self.url,
                f"its CRS {src.crs.to_string()[:80]!r} cannot be transformed to the grid CRS "
                f"{crs.to_string()} ({type(exc).__name__})",
            ) from exc

    def read(self, window: Window, indexes: list[int] | None = None) -> np.ndarray:
        """(bands, h, w) array of the window; pixels outside the file hold the nodata value."""
        if self._vrt is None:
            self._vrt = self._open()
        try:
            return self._vrt.read(indexes, window=window)
        except (RasterioError, CPLE_BaseError) as exc:
            raise InputDataError(self.url, f"cannot be read (corrupt or truncated?): {exc}") from exc


class WarpedCube:
    """A :class:`GriddedCube` (opened on first read) warped onto a tile's grid, window by window."""

    def __init__(
        self,
        stack: ExitStack,
        url: str,
        opener: Callable[[str], GriddedCube],
        crs: CRS,
        transform: Affine,
        nodata: float,
        n_bands: int,
    ):
        self.url = url
        self._stack = stack
        self._opener = opener
        self._target = (crs, transform, nodata)
        self._n_bands = n_bands
        self._cube: GriddedCube | None = None

    def read(self, window: Window, indexes: list[int] | None = None) -> np.ndarray:
        """(bands, h, w) array of the window; pixels outside the scene hold the nodata value."""
        if self._cube is None:
            self._cube = self._opener(self.url)
            self._stack.callback(self._cube.close)
        cube = self._cube
        crs, transform, nodata = self._target
        dst_transform = transform * Affine.translation(window.col_off, window.row_off)
        shape = (int(window.height), int(window.width))
        rows, cols = _source_window(cube, crs, dst_transform, shape)
        out = np.full((self._n_bands, *shape), nodata, dtype=np.float32)
        if rows.stop > rows.start and cols.stop > cols.start:
            values = cube.read(rows, cols)
            if len(values) != self._n_bands:
                raise InputDataError(
                    self.url, f"has {len(values)} bands but its band table lists {self._n_bands}"
                )
            reproject(
                values,
                out,
                src_transform=cube.transform * Affine.translation(cols.start, rows.start),
                src_crs=cube.crs,
                src_nodata=cube.nodata,
                dst_transform=dst_transform,
                dst_crs=crs,
                dst_nodata=nodata,
                resampling=Resampling.nearest,
            )
        return out if indexes is None else out[[i - 1 for i in indexes]]


def _source_window(
    cube: GriddedCube, crs: CRS, transform: Affine, shape: tuple[int, int]
) -> tuple[slice, slice]:
    """Rows and columns of the cube under a target window, one pixel to spare, clipped to the cube."""
    height, width = shape
    left, top = transform @ (0, 0)
    right, bottom = transform @ (width, height)
    bounds = transform_bounds(crs, cube.crs, left, min(top, bottom), right, max(top, bottom), densify_pts=21)
    window = from_bounds(*bounds, transform=cube.transform)
    row0 = max(int(np.floor(window.row_off)) - 1, 0)
    col0 = max(int(np.floor(window.col_off)) - 1, 0)
    row1 = min(int(np.ceil(window.row_off + window.height)) + 1, cube.shape[0])
    col1 = min(int(np.ceil(window.col_off + window.width)) + 1, cube.shape[1])
    return slice(row0, max(row1, row0)), slice(col0, max(col1, col0))


def open_spectral(
    stack: ExitStack,
    scene: SceneRef,
    layout: SpectralLayout,
    crs: CRS,
    transform: Affine,
    shape: tuple[int, int],
) -> WarpedRaster | WarpedCube:
    """The scene's reflectance cube on a tile's grid, through GDAL or the format's own reader."""
    opener = cube_opener(scene.format)
    if opener is None:
        return WarpedRaster(
            stack, scene.spectral_href, crs, transform, shape, layout.nodata, layout.table.n_bands
        )
    return WarpedCube(stack, scene.spectral_href, opener, crs, transform, layout.nodata, layout.table.n_bands)
