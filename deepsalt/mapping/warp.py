"""Reading a scene's rasters onto a tile of the output grid (rasterio WarpedVRT, nearest neighbour).

Every failure is turned into an :class:`InputDataError` naming the file and what is wrong, so a
bad scene fails its tile with a readable reason.
"""

from __future__ import annotations

from contextlib import ExitStack

import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS
from rasterio.enums import Resampling
from rasterio.errors import CRSError, RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from deepsalt.errors import InputDataError
from deepsalt.io.paths import gdal_path


class WarpedRaster:
    """One raster file warped onto a tile's grid; read blocks of it by window."""

    def __init__(
        self, stack: ExitStack, url: str, crs: CRS, transform: Affine, shape: tuple[int, int], nodata: float
    ):
        self.url = url
        try:
            src = stack.enter_context(rasterio.open(gdal_path(url)))
        except RasterioError as exc:
            raise InputDataError(url, f"cannot be opened as a raster: {exc}") from exc
        if src.crs is None:
            raise InputDataError(url, "has no CRS, so it cannot be placed on the output grid")
        try:
            self.vrt = stack.enter_context(
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
        except (CRSError, RasterioError) as exc:
            raise InputDataError(
                url, f"its CRS {src.crs.to_string()!r} cannot be reprojected to the grid CRS: {exc}"
            ) from exc
        self.count = src.count

    def read(self, window: Window, indexes: list[int] | None = None) -> np.ndarray:
        """(bands, h, w) array of the window; pixels outside the file hold the nodata value."""
        try:
            return self.vrt.read(indexes, window=window)
        except RasterioError as exc:
            raise InputDataError(self.url, f"cannot be read (corrupt or truncated?): {exc}") from exc
