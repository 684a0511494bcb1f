"""The output grid: one projected CRS, square pixels, edges snapped to multiples of the pixel size.

Snapping makes grids of overlapping runs line up pixel for pixel, so maps of neighbouring regions
mosaic without resampling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from affine import Affine
from pyproj import CRS
from rasterio.warp import transform_bounds

from deepsalt.mapping.config import GridConfig, RegionConfig


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid: ``crs``, top-left corner, pixel size and shape ``(height, width)``."""

    crs: CRS
    x0: float
    y0: float
    resolution: float
    height: int
    width: int

    def __post_init__(self) -> None:
        if not self.crs.is_projected:
            raise ValueError(f"the output grid needs a projected CRS, got geographic {self.crs.name!r}")

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def transform(self) -> Affine:
        return Affine(self.resolution, 0.0, self.x0, 0.0, -self.resolution, self.y0)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        r = self.resolution
        return (self.x0, self.y0 - r * self.height, self.x0 + r * self.width, self.y0)

    def x_coords(self) -> np.ndarray:
        """Pixel-centre x coordinates (CF convention, as rioxarray expects)."""
        return self.x0 + self.resolution * (np.arange(self.width) + 0.5)

    def y_coords(self) -> np.ndarray:
        return self.y0 - self.resolution * (np.arange(self.height) + 0.5)

    def window_transform(self, row: int, col: int) -> Affine:
        """Transform of a window whose top-left pixel is (row, col)."""
        return self.transform @ Affine.translation(col, row)

    def bounds_lonlat(self) -> tuple[float, float, float, float]:
        return transform_bounds(self.crs, "EPSG:4326", *self.bounds, densify_pts=21)

    @classmethod
    def from_bounds(cls, crs: CRS, bounds: tuple[float, float, float, float], resolution: float) -> Grid:
        """Smallest snapped grid covering ``bounds`` (in ``crs``)."""
        left = math.floor(bounds[0] / resolution) * resolution
        bottom = math.floor(bounds[1] / resolution) * resolution
        right = math.ceil(bounds[2] / resolution) * resolution
        top = math.ceil(bounds[3] / resolution) * resolution
        width = max(1, round((right - left) / resolution))
        height = max(1, round((top - bottom) / resolution))
        return cls(crs, left, top, resolution, height, width)

    @classmethod
    def from_config(cls, grid: GridConfig, region: RegionConfig) -> Grid:
        crs = CRS.from_user_input(grid.crs)
        if region.bounds is not None:
            bounds = region.bounds
        else:
            assert region.bbox is not None
            bounds = transform_bounds("EPSG:4326", crs, *region.bbox, densify_pts=21)
        return cls.from_bounds(crs, bounds, grid.resolution)
