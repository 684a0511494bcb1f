"""Covariate rasters as soil and climate products deliver them: coarse, geographic, area-averaged.

The world's 30 m fields are averaged onto an EPSG:4326 grid of ``covariate_resolution_deg``
(≈ 500 m by default), the way gridded products aggregate; cells at the border that the region
does not reach take their nearest neighbour's value, so bilinear sampling at the edge stays valid.
"""

from __future__ import annotations

import math

import numpy as np
from affine import Affine
from rasterio.warp import Resampling, reproject, transform_bounds
from scipy.ndimage import distance_transform_edt

from deepsalt.io.covariates import COVARIATE_NAMES
from deepsalt.synth.world import World

COVARIATE_CRS = "EPSG:4326"
COVARIATE_UNITS = {"sand": "%", "clay": "%", "tmin": "degC", "tmax": "degC", "tmean": "degC"} | {
    p: "mm/month" for p in ("pmin", "pmax", "pmean")
}


def covariate_grid(world: World, resolution: float) -> tuple[Affine, tuple[int, int]]:
    """Transform and shape of the geographic grid covering the region with one cell to spare."""
    h, w = world.shape
    left, bottom = world.transform @ (0, h)
    right, top = world.transform @ (w, 0)
    west, south, east, north = transform_bounds(world.crs, COVARIATE_CRS, left, bottom, right, top)
    west = math.floor(west / resolution) * resolution - resolution
    north = math.ceil(north / resolution) * resolution + resolution
    cols = math.ceil((east - west) / resolution) + 1
    rows = math.ceil((north - south) / resolution) + 1
    return Affine(resolution, 0.0, west, 0.0, -resolution, north), (rows, cols)


def covariate_fields(world: World, resolution: float) -> tuple[dict[str, np.ndarray], Affine]:
    """Each covariate (``COVARIATE_NAMES`` order) averaged onto the geographic grid."""
    transform, shape = covariate_grid(world, resolution)
    sources = {"sand": world.sand, "clay": world.clay, **world.climate}
    out = {}
    for name in COVARIATE_NAMES:
        coarse = np.full(shape, np.nan, np.float32)
        reproject(
            sources[name],
            coarse,
            src_transform=world.transform,
            src_crs=world.crs,
            dst_transform=transform,
            dst_crs=COVARIATE_CRS,
            src_nodata=np.nan,
            dst_nodata=np.nan,
            resampling=Resampling.average,
        )
        missing = ~np.isfinite(coarse)
        if missing.all():
            raise ValueError(f"covariate {name}: the region does not overlap its grid")
        nearest = distance_transform_edt(missing, return_distances=False, return_indices=True)
        out[name] = coarse[tuple(nearest)]
    return out, transform
