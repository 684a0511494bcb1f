"""Reading a scene's rasters onto a tile of the output grid (rasterio WarpedVRT, nearest neighbour).

Files are opened on first read: with the compositing rule most pixels come from the first scene,
so later scenes' files are often never touched. Every failure becomes an :class:`InputDataError`
naming the file and what is wrong, so a bad scene fails its tile with a readable reason.
"""

from __future__ import annotations

from contextlib import ExitStack

import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS
from rasterio._err import CPLE_BaseError  # GDAL errors rasterio does not wrap
from rasterio.enums import Resampling
from rasterio.errors import CRSError, RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from deepsalt.errors import InputDataError
from deepsalt.io.paths import gdal_path


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
